"""DynamoDB capacity (twin/enforce/capacity.py): unit rounding, item sizes, burst buckets on a fake clock."""

from __future__ import annotations

import pytest

from sre_workshop.twin.enforce.capacity import (
    INDEX_MESSAGE,
    ON_DEMAND_MESSAGE,
    READ,
    TABLE_MESSAGE,
    WRITE,
    CapacityBook,
    Throughput,
    item_size,
    read_units,
    throughputs,
    write_units,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(("size", "consistency", "units"), [
    (0, "eventual", 0.5), (1, "strong", 1.0), (4096, "eventual", 0.5), (4097, "eventual", 1.0),
    (4097, "strong", 2.0), (10_000, "transactional", 6.0), (1_048_576, "eventual", 128.0)])
def test_reads_round_up_to_4_kb(size, consistency, units):
    assert read_units(size, consistency) == units


@pytest.mark.parametrize(("size", "transactional", "units"), [
    (0, False, 1.0), (1024, False, 1.0), (1025, False, 2.0), (3500, True, 8.0)])
def test_writes_round_up_to_1_kb(size, transactional, units):
    assert write_units(size, transactional) == units


def test_item_size_counts_names_and_values():
    assert item_size({"id": {"S": "abc"}}) == 5
    assert item_size({"n": {"N": "12345"}}) == 1 + 4  # three bytes of digits plus one
    assert item_size({"ok": {"BOOL": True}, "z": {"NULL": True}}) == 2 + 1 + 1 + 1
    assert item_size({"m": {"M": {"a": {"S": "xy"}}}}) == 1 + 3 + 1 + 1 + 2
    assert item_size({"l": {"L": [{"S": "x"}, {"S": "y"}]}}) == 1 + 3 + 2 + 2
    assert item_size({"b": {"B": "AAEC"}}) == 1 + 3


def described(mode="PROVISIONED", rcu=1, wcu=1, gsi=True, on_demand=None):
    table = {"TableName": "T", "BillingModeSummary": {"BillingMode": mode},
             "ProvisionedThroughput": {"ReadCapacityUnits": rcu, "WriteCapacityUnits": wcu}}
    if on_demand:
        table["OnDemandThroughput"] = on_demand
    if gsi:
        table["GlobalSecondaryIndexes"] = [{"IndexName": "customer-index", "ProvisionedThroughput": {
            "ReadCapacityUnits": rcu, "WriteCapacityUnits": wcu}}]
    return table


def test_throughputs_from_describe_table():
    assert throughputs(described(rcu=5, wcu=2)) == {None: Throughput(5, 2, False),
                                                    "customer-index": Throughput(5, 2, False)}
    on_demand = throughputs(described("PAY_PER_REQUEST", 0, 0, on_demand={"MaxReadRequestUnits": 10,
                                                                          "MaxWriteRequestUnits": -1}))
    assert on_demand[None] == Throughput(10, None, True)
    # dynalite leaves BillingModeSummary out: zero units is on-demand
    assert throughputs({"ProvisionedThroughput": {"ReadCapacityUnits": 0, "WriteCapacityUnits": 0}}) == {
        None: Throughput(None, None, True)}


def test_an_idle_table_has_its_burst_then_throttles_until_refilled():
    clock = Clock()
    book = CapacityBook(clock)
    book.configure("T", throughputs(described(rcu=1, wcu=1)))
    assert book.tokens("T", READ) == 300  # 300 seconds of unused capacity
    book.charge("T", READ, {None: 299.5})
    assert book.admit("T", READ) is None  # 0.5 left: admitted, and charged after
    book.charge("T", READ, {None: 2.0})
    refusal = book.admit("T", READ)
    assert refusal is not None
    assert (refusal.code, refusal.message, refusal.reason) == (
        "ProvisionedThroughputExceededException", TABLE_MESSAGE, "TableReadProvisionedThroughputExceeded")
    clock.now += 1.0  # 1 RCU: the debt of 1.5 is paid in 1.5 s
    assert book.admit("T", READ) is not None
    clock.now += 0.6
    assert book.admit("T", READ) is None
    clock.now += 10_000
    assert book.tokens("T", READ) == 300  # never more than the burst


def test_a_switch_to_provisioned_starts_without_burst_and_saves_it_from_then_on():
    clock = Clock()
    book = CapacityBook(clock)
    book.configure("T", throughputs(described("PAY_PER_REQUEST", 0, 0)))
    book.configure("T", throughputs(described(rcu=1, wcu=1)))  # UpdateTable: PROVISIONED 1/1
    assert book.tokens("T", READ) == 0 and book.admit("T", READ) is not None  # no unused capacity yet
    clock.now += 2.0
    assert book.tokens("T", READ) == 2 and book.admit("T", READ) is None
    clock.now += 10_000
    assert book.tokens("T", READ) == 300


def test_writes_need_the_table_and_every_gsi():
    clock = Clock()
    book = CapacityBook(clock, burst_seconds=10)
    book.configure("T", throughputs(described(rcu=1, wcu=1)))
    book.charge("T", WRITE, {"customer-index": 11})
    refusal = book.admit("T", WRITE)
    assert refusal is not None and (refusal.message, refusal.index) == (INDEX_MESSAGE, "customer-index")
    assert refusal.reason == "IndexWriteProvisionedThroughputExceeded"
    assert book.admit("T", READ) is None and book.admit("T", READ, "customer-index") is None


def test_a_query_on_an_index_uses_the_index_bucket_and_an_lsi_the_table():
    book = CapacityBook(Clock(), burst_seconds=1)
    book.configure("T", throughputs(described(rcu=1, wcu=1)))
    book.charge("T", READ, {"customer-index": 5})
    assert book.admit("T", READ, "customer-index") is not None
    assert book.admit("T", READ) is None
    assert book.admit("T", READ, "some-lsi") is None


def test_on_demand_is_unlimited_unless_a_maximum_is_set():
    clock = Clock()
    book = CapacityBook(clock)
    book.configure("T", throughputs(described("PAY_PER_REQUEST", 0, 0)))
    book.charge("T", READ, {None: 1e9})
    assert book.admit("T", READ) is None and book.tokens("T", READ) is None
    book.configure("T", throughputs(described("PAY_PER_REQUEST", 0, 0, gsi=False,
                                              on_demand={"MaxReadRequestUnits": 4})))
    assert book.tokens("T", READ) == 4  # one second of the maximum, no burst kept
    book.charge("T", READ, {None: 5})
    refusal = book.admit("T", READ)
    assert refusal is not None and (refusal.code, refusal.message, refusal.reason) == (
        "ThrottlingException", ON_DEMAND_MESSAGE, "TableReadMaxOnDemandThroughputExceeded")
    clock.now += 0.5
    assert book.admit("T", READ) is None


def test_update_table_keeps_saved_tokens_within_the_new_burst():
    clock = Clock()
    book = CapacityBook(clock)
    book.configure("T", throughputs(described(rcu=10, wcu=1, gsi=False)))
    book.charge("T", READ, {None: 2500})
    book.configure("T", throughputs(described(rcu=1, wcu=1, gsi=False)))
    assert book.tokens("T", READ) == 300
    book.configure("T", throughputs(described(rcu=100, wcu=1, gsi=False)))
    assert book.tokens("T", READ) == 300  # saved tokens do not grow with the rate
    clock.now += 1
    assert book.tokens("T", READ) == 400
    book.forget("T")
    assert book.tokens("T", READ) is None
