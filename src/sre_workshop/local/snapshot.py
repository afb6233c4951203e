"""Keep the emulator's data across `down` and `up`: dump every table to a file, load it back.

moto keeps its state in memory, so `down` writes all items of the five tables to data/dynamodb.json
(atomically) before it stops the emulator, and `up` writes them back after creating the tables.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from ..errors import ComponentFailed
from ..tables import table_definitions

# Rounds of re-sending unprocessed items before restore gives up (the engine is then overloaded or failing).
RESTORE_ROUNDS = 8


def dump(client, path: Path) -> dict[str, int]:
    """Write every item of the five tables to `path`; return item counts by table."""
    data: dict[str, list[dict[str, Any]]] = {}
    for definition in table_definitions():
        name = definition["TableName"]
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"TableName": name}
        while True:
            response = client.scan(**kwargs)
            items.extend(response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                break
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        data[name] = items
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    tmp.replace(path)
    return {name: len(items) for name, items in data.items()}


def restore(client, path: Path) -> dict[str, int]:
    """Write the items saved in `path` back into their tables; return counts by table."""
    if not path.exists():
        return {}
    data = json.loads(path.read_text())
    for name, items in data.items():
        for start in range(0, len(items), 25):
            _write_batch(client, name, [{"PutRequest": {"Item": item}} for item in items[start:start + 25]])
    return {name: len(items) for name, items in data.items()}


def _write_batch(client, table: str, requests: list[dict]) -> None:
    """BatchWriteItem with unprocessed items sent again, a bounded number of times with backoff."""
    for attempt in range(RESTORE_ROUNDS):
        requests = client.batch_write_item(RequestItems={table: requests}).get("UnprocessedItems", {}).get(table, [])
        if not requests:
            return
        time.sleep(min(0.05 * 2 ** attempt, 2.0))
    raise ComponentFailed(f"the DynamoDB engine left {len(requests)} items of {table} unprocessed "
                          f"{RESTORE_ROUNDS} times; is it overloaded?")
