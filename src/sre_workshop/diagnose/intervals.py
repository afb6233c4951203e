"""sre-app's interval metrics as doctor reads them, locally and on AWS: ApplicationMetricsTable items
(metric_id sre-app#HOSTNAME#PID, timestamp, p99_ms, memory_leak_size_mb, rss_mb, ...) scanned over a window,
and the report's per-worker charts made from them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

MAX_SCAN_PAGES = 20
Charts = dict[str, dict[str, list[tuple[float, float]]]]
# The report's charts of the interval metrics: title, item field.
CHARTS = (("sre-app latency p99 (ms)", "p99_ms"), ("sre-app leak size per worker (MB)", "memory_leak_size_mb"),
          ("sre-app RSS per worker (MB)", "rss_mb"))


def scan(client, table: str, prefix: str, since: float, max_pages: int | None = MAX_SCAN_PAGES) -> list[dict[str, Any]]:
    """Return the items whose metric_id starts with `prefix`, written since `since` (at most `max_pages`
    pages of the table; None reads it all)."""
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"TableName": table, "FilterExpression": "begins_with(metric_id, :p) AND #t >= :s",
                              "ExpressionAttributeNames": {"#t": "timestamp"},
                              "ExpressionAttributeValues": {":p": {"S": prefix}, ":s": {"N": str(int(since))}}}
    pages = 0
    while max_pages is None or pages < max_pages:
        page = client.scan(**kwargs)
        pages += 1
        items += page.get("Items", [])
        if "LastEvaluatedKey" not in page:
            break
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    return items


def charts(items: list[dict[str, Any]], worker: Callable[[str], str]) -> Charts:
    """Return the per-worker charts of `items`, each worker named by `worker(metric_id)`."""
    found: Charts = {title: {} for title, _ in CHARTS}
    for item in sorted(items, key=lambda i: float(i["timestamp"]["N"])):
        name, stamp = worker(item["metric_id"]["S"]), float(item["timestamp"]["N"])
        for title, field in CHARTS:
            if field in item:
                found[title].setdefault(name, []).append((stamp, float(item[field]["N"])))
    return found
