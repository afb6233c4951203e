"""DynamoDB's throughput as token buckets, one per table and global secondary index and per read/write.

    throughputs(DescribeTable's Table) -> {None: table's Throughput, "index": the GSI's}
    book = CapacityBook(clock); book.configure(table, throughputs)
    refusal = book.admit(table, READ, index)      # None: go ahead; else a Refusal to answer
    book.charge(table, READ, {None: 1.5, "customer-index": 0.5})   # what the call consumed

A bucket fills at the provisioned rate (units per second) and holds up to BURST_SECONDS of it: DynamoDB keeps
up to 300 seconds of unused read and write capacity for bursts. A table the book has not seen starts full
(an idle table); one that gets a limit it did not have (on-demand switched to PROVISIONED) starts empty, as
it has left no provisioned capacity unused yet, and saves burst from then on. A call is admitted while its
buckets hold any tokens; what it consumed is charged after it ran, as DynamoDB learns an item's size only
when it reads it, so a bucket may go into debt, and calls are refused until it is paid back.

PAY_PER_REQUEST tables and indexes are unlimited, unless OnDemandThroughput sets MaxReadRequestUnits or
MaxWriteRequestUnits (-1 or absent: no maximum): then the bucket fills at that rate and holds one second of
it (a maximum, no burst retained), and a refusal is DynamoDB's ThrottlingException with the
MaxOnDemandThroughputExceeded reason, where a provisioned one is ProvisionedThroughputExceededException.

Sizes, as DynamoDB counts them: reads in 4 KB units (eventually consistent: half a unit per 4 KB,
transactional: two units); writes in 1 KB units (transactional: two units); a Query or Scan rounds the sum
of the items it read, a single-item or batch call rounds each item.
"""

from __future__ import annotations

import base64
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

READ = "read"
WRITE = "write"
BURST_SECONDS = 300.0
ON_DEMAND_BURST_SECONDS = 1.0
READ_UNIT = 4096
WRITE_UNIT = 1024
READ_FACTOR = {"eventual": 0.5, "strong": 1.0, "transactional": 2.0}

TABLE_MESSAGE = ("The level of configured provisioned throughput for the table was exceeded. "
                 "Consider increasing your provisioning level with the UpdateTable API.")
INDEX_MESSAGE = ("The level of configured provisioned throughput for one or more global secondary indexes of the "
                 "table was exceeded. Consider increasing your provisioning level for the under-provisioned global "
                 "secondary indexes with the UpdateTable API")
ON_DEMAND_MESSAGE = "Throughput exceeds the maximum OnDemandThroughput configured on table or index"


@dataclass(frozen=True)
class Throughput:
    """The rate of one table or index, in capacity units per second (None: unlimited)."""

    read: float | None
    write: float | None
    on_demand: bool


@dataclass(frozen=True)
class Refusal:
    """A throttled call: DynamoDB's error code and message, and the throttling reason with its resource."""

    code: str
    message: str
    reason: str
    table: str
    index: str | None


UNLIMITED = Throughput(None, None, True)


def _rate(value: Any) -> float | None:
    """Read a throughput number: None for absent, zero or negative (-1 is DynamoDB's 'no maximum')."""
    return float(value) if isinstance(value, (int, float)) and value > 0 else None


def _throughput(on_demand: bool, described: Mapping[str, Any]) -> Throughput:
    """Return the Throughput of a table or index description."""
    if on_demand:
        limits = described.get("OnDemandThroughput") or {}
        return Throughput(_rate(limits.get("MaxReadRequestUnits")), _rate(limits.get("MaxWriteRequestUnits")), True)
    provisioned = described.get("ProvisionedThroughput") or {}
    return Throughput(float(provisioned.get("ReadCapacityUnits", 0)),
                      float(provisioned.get("WriteCapacityUnits", 0)), False)


def throughputs(table: Mapping[str, Any]) -> dict[str | None, Throughput]:
    """Return the throughput of a table (key None) and of each of its GSIs, from DescribeTable's `Table`."""
    mode = (table.get("BillingModeSummary") or {}).get("BillingMode")
    if mode is None:  # engines that omit the summary: a table without provisioned units is on-demand
        units = (table.get("ProvisionedThroughput") or {}).get("ReadCapacityUnits", 0)
        mode = "PROVISIONED" if units else "PAY_PER_REQUEST"
    on_demand = mode == "PAY_PER_REQUEST"
    found: dict[str | None, Throughput] = {None: _throughput(on_demand, table)}
    for index in table.get("GlobalSecondaryIndexes") or []:
        found[index["IndexName"]] = _throughput(on_demand, index)
    return found


class Bucket:
    """Tokens of one table or index for reads or writes."""

    __slots__ = ("capacity", "rate", "stamp", "tokens")

    def __init__(self, rate: float, burst_seconds: float, now: float, full: bool = True) -> None:
        self.rate = rate
        self.capacity = rate * burst_seconds
        self.tokens = self.capacity if full else 0.0
        self.stamp = now

    def refill(self, now: float) -> None:
        """Add what the rate gave since the last look, up to the capacity."""
        if now > self.stamp:
            self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now

    def retune(self, rate: float, burst_seconds: float, now: float) -> None:
        """Take a new rate (UpdateTable), keeping the tokens saved within the new capacity."""
        self.refill(now)
        self.rate = rate
        self.capacity = rate * burst_seconds
        self.tokens = min(self.tokens, self.capacity)


class CapacityBook:
    """Every bucket of the tables the endpoint serves."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, burst_seconds: float = BURST_SECONDS) -> None:
        self.clock = clock
        self.burst_seconds = burst_seconds
        self.tables: dict[str, dict[str | None, Throughput]] = {}
        self.buckets: dict[tuple[str, str | None, str], Bucket] = {}

    def configure(self, table: str, found: Mapping[str | None, Throughput]) -> None:
        """Set the throughput of `table` and its GSIs (from throughputs()); buckets keep their tokens."""
        now, known = self.clock(), table in self.tables
        self.tables[table] = dict(found)
        for resource, throughput in found.items():
            for kind, rate in ((READ, throughput.read), (WRITE, throughput.write)):
                self._set_bucket((table, resource, kind), rate, throughput.on_demand, now, saved=not known)

    def forget(self, table: str) -> None:
        """Drop a deleted table's buckets."""
        self.tables.pop(table, None)
        for key in [k for k in self.buckets if k[0] == table]:
            del self.buckets[key]

    def _set_bucket(self, key: tuple[str, str | None, str], rate: float | None, on_demand: bool, now: float,
                    saved: bool) -> None:
        """Create (full if `saved`, else empty), retune or drop (unlimited) one bucket."""
        if rate is None:
            self.buckets.pop(key, None)
            return
        burst = ON_DEMAND_BURST_SECONDS if on_demand else self.burst_seconds
        bucket = self.buckets.get(key)
        if bucket is None:
            # an on-demand maximum is a rate, with no burst to save: it starts with its second's worth
            self.buckets[key] = Bucket(rate, burst, now, full=saved or on_demand)
        elif bucket.rate != rate or bucket.capacity != rate * burst:
            bucket.retune(rate, burst, now)

    def admit(self, table: str, kind: str, index: str | None = None) -> Refusal | None:
        """Return None if a call may run now, else why it is refused. A read uses the bucket of the table or of
        the index it reads; a write uses the table's and every GSI's (each index is written too)."""
        now = self.clock()
        resources: list[str | None] = [index if index in self.tables.get(table, {}) else None]  # an LSI: the table
        if kind == WRITE:
            resources = [None] + [name for name in self.tables.get(table, {}) if name is not None]
        for resource in resources:
            bucket = self.buckets.get((table, resource, kind))
            if bucket is None:
                continue
            bucket.refill(now)
            if bucket.tokens <= 0:
                return self._refusal(table, resource, kind)
        return None

    def charge(self, table: str, kind: str, units: Mapping[str | None, float]) -> None:
        """Take what a call consumed from the buckets of the table (key None) and of its indexes."""
        now = self.clock()
        for resource, consumed in units.items():
            bucket = self.buckets.get((table, resource, kind))
            if bucket is not None:
                bucket.refill(now)
                bucket.tokens -= consumed

    def tokens(self, table: str, kind: str, index: str | None = None) -> float | None:
        """Return the tokens a bucket holds now (None: unlimited)."""
        bucket = self.buckets.get((table, index, kind))
        if bucket is None:
            return None
        bucket.refill(self.clock())
        return bucket.tokens

    def _refusal(self, table: str, index: str | None, kind: str) -> Refusal:
        """Build the refusal DynamoDB answers for an empty bucket."""
        on_demand = self.tables.get(table, {}).get(index, UNLIMITED).on_demand
        level = "Table" if index is None else "Index"
        operation = "Read" if kind == READ else "Write"
        if on_demand:
            return Refusal("ThrottlingException", ON_DEMAND_MESSAGE,
                           f"{level}{operation}MaxOnDemandThroughputExceeded", table, index)
        return Refusal("ProvisionedThroughputExceededException", TABLE_MESSAGE if index is None else INDEX_MESSAGE,
                       f"{level}{operation}ProvisionedThroughputExceeded", table, index)


def read_units(size: int, consistency: str = "eventual") -> float:
    """Return the read units of reading `size` bytes (one item, or a Query/Scan's sum): 4 KB units."""
    return max(1, math.ceil(size / READ_UNIT)) * READ_FACTOR[consistency]


def write_units(size: int, transactional: bool = False) -> float:
    """Return the write units of writing one item of `size` bytes: 1 KB units."""
    return max(1, math.ceil(size / WRITE_UNIT)) * (2.0 if transactional else 1.0)


def _number_size(text: str) -> int:
    """Return a number's stored size: about one byte per two significant digits, plus one."""
    try:
        digits = Decimal(text).normalize().as_tuple().digits
    except InvalidOperation:
        return len(text)
    return (len(digits) + 1) // 2 + 1


def value_size(value: Mapping[str, Any]) -> int:
    """Return the size of one attribute value in DynamoDB JSON ({"S": ...}, {"M": {...}}, ...)."""
    (kind, body), = value.items()
    if kind == "S":
        return len(body.encode())
    if kind == "N":
        return _number_size(body)
    if kind == "B":
        return len(base64.b64decode(body))
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(s.encode()) for s in body)
    if kind == "NS":
        return sum(_number_size(n) for n in body)
    if kind == "BS":
        return sum(len(base64.b64decode(b)) for b in body)
    if kind == "L":
        return 3 + sum(1 + value_size(v) for v in body)
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + value_size(v) for k, v in body.items())
    raise ValueError(f"unknown attribute type {kind}")


def item_size(item: Mapping[str, Mapping[str, Any]]) -> int:
    """Return an item's size as DynamoDB counts it: each attribute's name plus its value."""
    return sum(len(name.encode()) + value_size(value) for name, value in item.items())
