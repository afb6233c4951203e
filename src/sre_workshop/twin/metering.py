"""Per-second statistics of the DynamoDB calls, shaped as the AWS/DynamoDB CloudWatch metrics.

    meter.add(second, "ThrottledRequests", (("TableName", t), ("Operation", op)), 1)
    meter.drain(before=now_second) -> MetricData for PutMetricData (StatisticValues, one datum per second)

The names and dimensions are DynamoDB's: SuccessfulRequestLatency, ThrottledRequests and SystemErrors by
TableName and Operation; UserErrors with no dimension; ConditionalCheckFailedRequests by TableName;
ConsumedRead/WriteCapacityUnits and Read/WriteThrottleEvents by TableName, and by TableName and
GlobalSecondaryIndexName for an index. Request counts per table and operation are kept as totals for the
stats file (AWS publishes no such metric). Pure: the caller says what second it is.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

NAMESPACE = "AWS/DynamoDB"
UNITS = {"SuccessfulRequestLatency": "Milliseconds"}
Dimensions = tuple[tuple[str, str], ...]


class Meter:
    """Statistics (sum, count, min, max) per second, metric and dimensions; and running totals."""

    def __init__(self) -> None:
        self.stats: dict[tuple[int, str, Dimensions], list[float]] = {}
        self.totals: Counter[tuple[str, str, str]] = Counter()  # (table, operation, outcome) -> calls

    def add(self, second: int, name: str, dimensions: Dimensions, value: float) -> None:
        """Record one value of a metric in its second."""
        stat = self.stats.get((second, name, dimensions))
        if stat is None:
            self.stats[(second, name, dimensions)] = [value, 1, value, value]
            return
        stat[0] += value
        stat[1] += 1
        stat[2] = min(stat[2], value)
        stat[3] = max(stat[3], value)

    def count(self, table: str, operation: str, outcome: str) -> None:
        """Count one call in the running totals (outcome: ok, throttled, user_error, system_error, ...)."""
        self.totals[(table, operation, outcome)] += 1

    def drain(self, before: int) -> list[dict[str, Any]]:
        """Remove and return the MetricData of every second before `before` (those are complete)."""
        done = [key for key in self.stats if key[0] < before]
        return [_datum(key, self.stats.pop(key)) for key in done]

    def totals_json(self) -> list[dict[str, Any]]:
        """Return the running totals as a list of {table, operation, outcome, count}."""
        return [{"table": t, "operation": o, "outcome": r, "count": n} for (t, o, r), n in sorted(self.totals.items())]


def _datum(key: tuple[int, str, Dimensions], stat: list[float]) -> dict[str, Any]:
    """Return one PutMetricData datum with StatisticValues."""
    second, name, dimensions = key
    return {
        "MetricName": name,
        "Dimensions": [{"Name": n, "Value": v} for n, v in dimensions],
        "Timestamp": dt.datetime.fromtimestamp(second, dt.UTC),
        "StatisticValues": {"Sum": stat[0], "SampleCount": stat[1], "Minimum": stat[2], "Maximum": stat[3]},
        "Unit": UNITS.get(name, "Count"),
    }


def table_dims(table: str, index: str | None = None) -> Dimensions:
    """Return the dimensions of a table metric, or of a GSI's."""
    return (("TableName", table),) if index is None else (("TableName", table), ("GlobalSecondaryIndexName", index))


def operation_dims(table: str, operation: str) -> Dimensions:
    """Return the dimensions of a per-operation metric."""
    return (("TableName", table), ("Operation", operation))
