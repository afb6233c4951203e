"""Keep the emulator's data across `down` and `up`: dump every table to a file, load it back.

moto keeps its state in memory, so `down` writes all items of the five tables to data/dynamodb.json
(atomically) before it stops the emulator, and `up` writes them back after creating the tables. A durable
engine keeps its own store; the same file is then its backup, from which a deleted table is recreated.
A table missing from the engine does not fail the dump: its items from the previous snapshot are kept.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from ..errors import ComponentFailed, StateError
from ..tables import table_definitions

logger = logging.getLogger(__name__)

# Rounds of re-sending unprocessed items before restore gives up (the engine is then overloaded or failing).
RESTORE_ROUNDS = 8
IMPORTED_SUFFIX = ".json.imported"  # a snapshot a durable engine has taken over (data.py)


@dataclass
class Dump:
    """What one dump saved: item counts by table, and what it found missing from the engine."""

    counts: dict[str, int] = field(default_factory=dict)
    kept: dict[str, int] = field(default_factory=dict)  # missing tables whose previous items were kept
    lost: list[str] = field(default_factory=list)  # missing tables no earlier snapshot holds


def latest(path: Path) -> Path | None:
    """Return the newest snapshot: `path`, or the one a durable engine imported, or None."""
    found = [p for p in (path, path.with_suffix(IMPORTED_SUFFIX)) if p.exists()]
    return max(found, key=lambda p: p.stat().st_mtime) if found else None


def read(path: Path | None) -> dict[str, list[dict[str, Any]]]:
    """Return the items by table of a snapshot ({} for none); raise StateError if it cannot be read."""
    if path is None or not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise StateError(f"the DynamoDB snapshot {path} cannot be read ({exc}); move it away to go on "
                         "without it") from exc
    if not isinstance(data, dict):
        raise StateError(f"the DynamoDB snapshot {path} is not a snapshot (no tables); move it away")
    return data


def _previous(path: Path) -> dict[str, list[dict[str, Any]]]:
    """The last snapshot's items, for tables missing now; an unreadable one holds nothing (said in the log)."""
    try:
        return read(latest(path))
    except StateError as exc:
        logger.warning("%s", exc)
        return {}


def dump(client, path: Path) -> Dump:
    """Write every item of the five tables to `path`; a table missing from the engine keeps the items the
    last snapshot had (so a later `restore` brings them back) and is named in the result."""
    previous: dict[str, list] | None = None
    data: dict[str, list[dict[str, Any]]] = {}
    result = Dump()
    for definition in table_definitions():
        name = definition["TableName"]
        try:
            data[name] = _scan(client, name)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                raise
            previous = _previous(path) if previous is None else previous
            if name in previous:
                data[name] = previous[name]
                result.kept[name] = len(previous[name])
            else:
                result.lost.append(name)
            continue
        result.counts[name] = len(data[name])
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    tmp.replace(path)
    return result


def _scan(client, table: str) -> list[dict[str, Any]]:
    """Return every item of one table, page by page."""
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"TableName": table}
    while True:
        response = client.scan(**kwargs)
        items.extend(response.get("Items", []))
        if "LastEvaluatedKey" not in response:
            return items
        kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def restore(client, path: Path | None, tables: list[str] | None = None) -> dict[str, int]:
    """Write the items saved in the snapshot at `path` back into their tables (only `tables`, if given);
    return counts by table."""
    data = read(path)
    restored = {}
    for name, items in data.items():
        if tables is not None and name not in tables:
            continue
        for start in range(0, len(items), 25):
            _write_batch(client, name, [{"PutRequest": {"Item": item}} for item in items[start:start + 25]])
        restored[name] = len(items)
    return restored


def _write_batch(client, table: str, requests: list[dict]) -> None:
    """BatchWriteItem with unprocessed items sent again, a bounded number of times with backoff."""
    for attempt in range(RESTORE_ROUNDS):
        requests = client.batch_write_item(RequestItems={table: requests}).get("UnprocessedItems", {}).get(table, [])
        if not requests:
            return
        time.sleep(min(0.05 * 2 ** attempt, 2.0))
    raise ComponentFailed(f"the DynamoDB engine left {len(requests)} items of {table} unprocessed "
                          f"{RESTORE_ROUNDS} times; is it overloaded?")
