"""Keep the emulator's data across `down` and `up`: dump every table to a file, load it back.

moto keeps its state in memory, so `down` writes all items of the five tables to data/dynamodb.json
(atomically) before it stops the emulator, and `up` writes them back after creating the tables.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..tables import table_definitions


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
            requests = [{"PutRequest": {"Item": item}} for item in items[start:start + 25]]
            while requests:
                response = client.batch_write_item(RequestItems={name: requests})
                requests = response.get("UnprocessedItems", {}).get(name, [])
    return {name: len(items) for name, items in data.items()}
