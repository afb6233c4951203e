"""sre-app's interval metrics in the stack's ApplicationMetricsTable: per worker, (time, leak MB, RSS MB,
p50 ms) over the window, for the leak's trend and the usual latency.

The workers' ids (sre-app#HOSTNAME#PID) come from the app instance's own reading (its hostname and its
unit's processes), and each is a Query. When the instance could not be read, the table is scanned for
sre-app's items of the window instead (bounded), keeping only workers that wrote in the last LIVE_S seconds:
a worker that is gone leaks nothing any more.
"""

from __future__ import annotations

from typing import Any

from ...aws.control import AwsControl
from .. import intervals

Point = tuple[float, float, float, float]  # epoch s, leak MB, RSS MB, p50 ms
LIVE_S = 60.0  # sre-app's workers write every 10 s


def point(item: dict[str, Any]) -> Point:
    """Return one interval item as a point."""
    return (float(item["timestamp"]["N"]), float(item.get("memory_leak_size_mb", {}).get("N", 0)),
            float(item.get("rss_mb", {}).get("N", 0)), float(item.get("p50_ms", {}).get("N", 0)))


def series(ctl: AwsControl, metric_ids: list[str], since: float) -> dict[str, list[Point]]:
    """Return each worker's points since `since` (by query when the ids are known, else by a bounded scan)."""
    client, table = ctl.client("dynamodb"), ctl.physical("ApplicationMetricsTable")
    if metric_ids:
        return {m: [point(i) for i in _query(client, table, m, since)] for m in metric_ids}
    found: dict[str, list[Point]] = {}
    for item in intervals.scan(client, table, "sre-app#", since):
        found.setdefault(item["metric_id"]["S"], []).append(point(item))
    newest = max((p[0] for points in found.values() for p in points), default=0.0)
    return {m: sorted(points) for m, points in found.items() if max(p[0] for p in points) >= newest - LIVE_S}


def _query(client, table: str, metric_id: str, since: float) -> list[dict[str, Any]]:
    return client.query(TableName=table, KeyConditionExpression="metric_id = :m AND #t >= :s",
                        ExpressionAttributeNames={"#t": "timestamp"},
                        ExpressionAttributeValues={":m": {"S": metric_id}, ":s": {"N": str(int(since))}})["Items"]
