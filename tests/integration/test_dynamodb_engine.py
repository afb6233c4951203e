"""The local DynamoDB engines, dynalite and moto, as real processes on free ports: every call and error shape
the apps, the tool and the coming faults rely on, and that a write the engine confirmed survives kill -9.

Calls in use (grep of apps/ and src/): CreateTable with a GSI (on-demand), ListTables, DescribeTable,
UpdateTable (the throttling fault on AWS), DeleteTable (a lost-table fault), PutItem / UpdateItem /
DeleteItem with ConditionExpression, GetItem with ConsistentRead, Query on customer-index with Limit and
ExclusiveStartKey, Scan with Limit, FilterExpression, ProjectionExpression and ExclusiveStartKey, and
BatchWriteItem (the CRM, its seeding, sre-app's metrics, the snapshot). BatchGetItem and transactions are
used nowhere; dynalite has no transactions (a case below shows it).

Each case states what DynamoDB answers; where an engine answers otherwise, `differs` says what it does
instead, so every difference is written down here and a change in one fails the test.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from sre_workshop.errors import MissingProgram, UsageError
from sre_workshop.local.engines import (
    ENGINES,
    READY_HEADERS,
    EngineLaunch,
    check_engine,
    choose_engine,
    engine_launch,
    engine_ready,
    wait_engine_ready,
)
from sre_workshop.local.process import ProcessSpec, free_port, group_members, is_alive, proc_stat
from sre_workshop.tables import create_tables, table_definitions

from conftest import REGION, ROOT, Server, dynamodb, eventually, start_server

CUSTOMERS, DEALS = "CRMCustomersTable", "CRMDealsTable"


def start_engine(name: str, tmp: Path, port: int | None = None) -> tuple[Server, EngineLaunch]:
    """Start an engine on a free (or given) port with its data under `tmp`; wait until it answers."""
    port = port or free_port()
    launch = engine_launch(name, port, tmp / "data", ROOT)
    server = start_server(ProcessSpec(name, launch.argv, tmp / f"{name}.log", launch.env, ports=[port],
                                      stop_timeout=10))
    if not wait_engine_ready(server.record, server.url, 30):
        server.stop()
        raise RuntimeError(f"{name} does not answer ListTables: {server.log.read_text()[-2000:]}")
    return server, launch


@dataclass
class Engine:
    """A running engine with the five tables and a client for it."""

    name: str
    server: Server
    client: Any


@pytest.fixture(scope="module", params=ENGINES)
def engine(request, tmp_path_factory) -> Iterator[Engine]:
    """Each engine once for the module, with the five tables."""
    server, _ = start_engine(request.param, tmp_path_factory.mktemp(request.param))
    client = dynamodb(server.url)
    create_tables(client)
    yield Engine(request.param, server, client)
    server.stop()


# --- error shapes ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """An engine's answer to a call: HTTP status, error code, and a part of the message."""

    status: int = 200
    code: str = ""
    message: str = ""


def answer(call: Callable[[], object]) -> tuple[int, str, str]:
    """Make the call; return its status, error code and message (200, "", "" when it succeeded)."""
    try:
        call()
    except ClientError as exc:
        return exc.response["ResponseMetadata"]["HTTPStatusCode"], exc.response["Error"]["Code"], \
            exc.response["Error"].get("Message", "")
    return 200, "", ""


@dataclass(frozen=True)
class Case:
    """One call, what DynamoDB answers to it, and what each engine that differs answers instead."""

    id: str
    call: Callable[[Any], object]
    aws: Answer
    differs: dict[str, Answer] = field(default_factory=dict)


def put_new(client, table: str, item: dict[str, Any], key: str) -> dict:
    """PutItem that never overwrites, as the CRM creates items."""
    return client.put_item(TableName=table, Item=item, ConditionExpression="attribute_not_exists(#k)",
                           ExpressionAttributeNames={"#k": key})


def customer(cid: str, **extra: str) -> dict[str, Any]:
    """Return a customer item."""
    return {"customer_id": {"S": cid}, "name": {"S": extra.pop("name", "Ada")},
            **{k: {"S": v} for k, v in extra.items()}}


def deal(did: str, cid: str) -> dict[str, Any]:
    """Return a deal item (in the customer-index GSI)."""
    return {"deal_id": {"S": did}, "customer_id": {"S": cid}, "amount": {"N": "100"}}


def put_twice(client) -> None:
    put_new(client, CUSTOMERS, customer("case-twice"), "customer_id")
    put_new(client, CUSTOMERS, customer("case-twice"), "customer_id")


def customers_query(client, **kwargs) -> dict:
    """Query the deals of customer case-c (who has one) on customer-index."""
    client.put_item(TableName=DEALS, Item=deal("deal-case-c", "case-c"))
    return client.query(**{"TableName": DEALS, "IndexName": "customer-index",
                           "KeyConditionExpression": "customer_id = :c",
                           "ExpressionAttributeValues": {":c": {"S": "case-c"}}, **kwargs})


def scan_from_a_key_not_the_tables(client) -> dict:
    """Scan the deals (there is one at least) from a start key that is not deal_id."""
    client.put_item(TableName=DEALS, Item=deal("deal-case-s", "c"))
    return client.scan(TableName=DEALS, Limit=3, ExclusiveStartKey={"customer_id": {"S": "x"}})


def provisioned_without_index_throughput(client) -> None:
    definition = {**table_definitions()[2], "TableName": "CaseProvisioned"}
    client.create_table(**definition)
    when_active(client, "CaseProvisioned")
    client.update_table(TableName="CaseProvisioned", BillingMode="PROVISIONED",
                        ProvisionedThroughput={"ReadCapacityUnits": 1, "WriteCapacityUnits": 1})


CCF = Answer(400, "ConditionalCheckFailedException", "The conditional request failed")
NOT_FOUND = Answer(400, "ResourceNotFoundException", "Requested resource not found")
MOTO_500 = Answer(500, "500", "Internal Server Error")  # an HTML page, not a DynamoDB error


def invalid(message: str) -> Answer:
    """DynamoDB's answer to bad input: 400 ValidationException with this in its message."""
    return Answer(400, "ValidationException", message)


CASES = [
    # Conditions: the CRM's create-never-overwrites, update and delete of a customer that must exist.
    Case("put-condition-fails", put_twice, CCF),
    Case("update-condition-fails", lambda c: c.update_item(
        TableName=CUSTOMERS, Key={"customer_id": {"S": "case-absent"}}, UpdateExpression="SET #n = :n",
        ConditionExpression="attribute_exists(customer_id)", ExpressionAttributeNames={"#n": "name"},
        ExpressionAttributeValues={":n": {"S": "x"}}, ReturnValues="ALL_NEW"), CCF),
    Case("delete-condition-fails", lambda c: c.delete_item(
        TableName=CUSTOMERS, Key={"customer_id": {"S": "case-absent"}},
        ConditionExpression="attribute_exists(customer_id)"), CCF),
    # A missing table (a lost-table fault, or a stack whose tables were never created).
    Case("get-missing-table", lambda c: c.get_item(TableName="NoSuchTable", Key={"k": {"S": "1"}}), NOT_FOUND),
    Case("put-missing-table", lambda c: c.put_item(TableName="NoSuchTable", Item={"k": {"S": "1"}}), NOT_FOUND),
    Case("query-missing-table", lambda c: c.query(
        TableName="NoSuchTable", KeyConditionExpression="k = :k", ExpressionAttributeValues={":k": {"S": "1"}}),
        NOT_FOUND),
    Case("scan-missing-table", lambda c: c.scan(TableName="NoSuchTable"), NOT_FOUND),
    Case("batch-write-missing-table", lambda c: c.batch_write_item(
        RequestItems={"NoSuchTable": [{"PutRequest": {"Item": {"k": {"S": "1"}}}}]}), NOT_FOUND),
    Case("describe-missing-table", lambda c: c.describe_table(TableName="NoSuchTable"),
         Answer(400, "ResourceNotFoundException", "Table: NoSuchTable not found")),
    Case("create-existing-table", lambda c: c.create_table(**table_definitions()[1]),
         Answer(400, "ResourceInUseException", "Table already exists: CRMCustomersTable"),
         {"dynalite": Answer(400, "ResourceInUseException", "")}),
    Case("table-name-too-short", lambda c: c.describe_table(TableName="ab"),
         invalid("at least 3 characters"), {"moto": NOT_FOUND}),
    # Keys that do not fit the table's key schema.
    Case("get-key-wrong-type", lambda c: c.get_item(TableName=CUSTOMERS, Key={"customer_id": {"N": "1"}}),
         invalid("The provided key element does not match the schema"), {"moto": Answer(200)}),
    Case("get-key-wrong-name", lambda c: c.get_item(TableName=CUSTOMERS, Key={"id": {"S": "1"}}),
         invalid("The provided key element does not match the schema")),
    Case("put-missing-key", lambda c: c.put_item(TableName=CUSTOMERS, Item={"name": {"S": "x"}}),
         invalid("Missing the key customer_id in the item")),
    Case("put-empty-key", lambda c: c.put_item(TableName=CUSTOMERS, Item={"customer_id": {"S": ""}}),
         invalid("empty string")),
    # Item and number limits.
    Case("put-item-over-400kb", lambda c: c.put_item(TableName=CUSTOMERS, Item=customer(
        "case-big", blob="x" * 410_000)), invalid("Item size has exceeded the maximum allowed size")),
    Case("put-item-under-400kb", lambda c: c.put_item(TableName=CUSTOMERS, Item=customer(
        "case-big", blob="x" * 399_000)), Answer(200)),
    Case("put-not-a-number", lambda c: c.put_item(TableName=CUSTOMERS, Item={
        "customer_id": {"S": "case-n"}, "amount": {"N": "abc"}}), invalid("cannot be converted to a numeric value")),
    Case("put-number-overflow", lambda c: c.put_item(TableName=CUSTOMERS, Item={
        "customer_id": {"S": "case-n"}, "amount": {"N": "1e200"}}), invalid("Number overflow")),
    Case("put-39-significant-digits", lambda c: c.put_item(TableName=CUSTOMERS, Item={
        "customer_id": {"S": "case-n"}, "amount": {"N": "1." + "2" * 38}}),
        invalid("more than 38 significant digits"), {"moto": Answer(200)}),
    # BatchWriteItem limits.
    Case("batch-write-26-items", lambda c: c.batch_write_item(RequestItems={CUSTOMERS: [
        {"PutRequest": {"Item": customer(f"case-b{n}")}} for n in range(26)]}),
        invalid("25"), {"moto": Answer(200)}),
    Case("batch-write-duplicate-keys", lambda c: c.batch_write_item(RequestItems={CUSTOMERS: [
        {"PutRequest": {"Item": customer("case-dup")}}] * 2}),
        invalid("Provided list of item keys contains duplicates")),
    # Query on customer-index: a tampered cursor must be a 400, never a 500.
    Case("query-consistent-read-on-gsi", lambda c: customers_query(c, ConsistentRead=True),
         invalid("Consistent reads are not supported on global secondary indexes")),
    Case("query-missing-index", lambda c: customers_query(c, IndexName="no-such-index"),
         invalid("The table does not have the specified index"),
         {"moto": Answer(400, "ResourceNotFoundException", "Invalid index: no-such-index")}),
    Case("query-start-key-missing-index-key", lambda c: customers_query(
        c, ExclusiveStartKey={"deal_id": {"S": "deal-x"}}), invalid("The provided starting key is invalid"),
        {"moto": MOTO_500}),
    Case("query-start-key-other-partition", lambda c: customers_query(
        c, ExclusiveStartKey={"deal_id": {"S": "deal-x"}, "customer_id": {"S": "case-other"}}),
        invalid("outside query boundaries"), {"moto": Answer(200)}),
    Case("query-condition-not-on-key", lambda c: customers_query(c, KeyConditionExpression="deal_id = :c"),
         invalid("Query condition missed key schema element")),
    Case("query-unused-value", lambda c: customers_query(
        c, ExpressionAttributeValues={":c": {"S": "case-c"}, ":unused": {"S": "x"}}),
        invalid("unused in expressions"), {"moto": Answer(200)}),
    # Scan.
    Case("scan-start-key-not-the-key", scan_from_a_key_not_the_tables,
         invalid("The provided starting key is invalid"), {"moto": MOTO_500}),
    Case("scan-filter-syntax-error", lambda c: c.scan(
        TableName=CUSTOMERS, FilterExpression="begins_with(name_lower", ExpressionAttributeValues={":p": {"S": "a"}}),
        invalid("Invalid FilterExpression"), {"moto": invalid("Bad Filter Expression")}),
    # Not used by the apps today: dynalite has no transactions (nor UpdateTimeToLive, streams or backups).
    Case("transact-write-items", lambda c: c.transact_write_items(TransactItems=[
        {"Put": {"TableName": CUSTOMERS, "Item": customer("case-tx")}}]), Answer(200),
        {"dynalite": Answer(400, "UnknownOperationException")}),
    # UpdateTable to PROVISIONED must give each GSI its throughput too.
    Case("update-table-provisioned-without-index-throughput", provisioned_without_index_throughput,
         invalid("ProvisionedThroughput must be specified for index: customer-index"), {"moto": Answer(200)}),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_answers_as_dynamodb_does_or_as_written_down(engine: Engine, case: Case):
    """Each call gets DynamoDB's status, code and message, or the engine's difference written in the case."""
    expected = case.differs.get(engine.name, case.aws)
    status, code, message = answer(lambda: case.call(engine.client))
    assert (status, code) == (expected.status, expected.code), message
    assert expected.message in message


def test_a_lone_surrogate_in_a_string(engine: Engine):
    """Neither engine refuses it with a 400 (DynamoDB's answer is unverified here), so the apps must refuse it.

    moto fails to encode it and answers a 500 HTML page; dynalite stores it and gives it back.
    """
    item = customer("case-surrogate", name="a\ud800")
    status, code, _ = answer(lambda: engine.client.put_item(TableName=CUSTOMERS, Item=item))
    assert (status, code) == ((500, "500") if engine.name == "moto" else (200, ""))


# --- the calls that succeed ----------------------------------------------------------------------------


def test_the_five_tables_are_created_as_the_spec_says(engine: Engine):
    """Every table is ACTIVE and on-demand right after CreateTable, with its key schema and customer-index."""
    names = engine.client.list_tables()["TableNames"]
    assert set(names) >= {d["TableName"] for d in table_definitions()}
    if engine.name != "moto":  # DynamoDB lists names sorted; moto lists them in creation order
        assert names == sorted(names)
    for definition in table_definitions():
        table = engine.client.describe_table(TableName=definition["TableName"])["Table"]
        assert (table["TableStatus"], table["BillingModeSummary"]["BillingMode"]) == ("ACTIVE", "PAY_PER_REQUEST")
        assert table["KeySchema"] == definition["KeySchema"]
        for index in table.get("GlobalSecondaryIndexes", []):
            assert (index["IndexName"], index["IndexStatus"]) == ("customer-index", "ACTIVE")
            assert index["KeySchema"] == [{"AttributeName": "customer_id", "KeyType": "HASH"}]
            assert index["Projection"] == {"ProjectionType": "ALL"}


def test_an_item_is_created_read_updated_and_deleted(engine: Engine):
    """Put (never overwriting), consistent Get, Update with SET and REMOVE returning ALL_NEW, conditional Delete."""
    client, key = engine.client, {"customer_id": {"S": "crud-1"}}
    put_new(client, CUSTOMERS, {**customer("crud-1", phone=""), "score": {"N": "12.50"}}, "customer_id")
    got = client.get_item(TableName=CUSTOMERS, Key=key, ConsistentRead=True)["Item"]
    assert got["phone"] == {"S": ""}  # empty strings are allowed outside keys
    # DynamoDB stores numbers normalised (12.5); moto gives back the string it was sent.
    assert got["score"] == {"N": "12.50" if engine.name == "moto" else "12.5"}
    updated = client.update_item(
        TableName=CUSTOMERS, Key=key, UpdateExpression="SET #f0 = :v0 REMOVE #r0",
        ConditionExpression="attribute_exists(customer_id)", ExpressionAttributeNames={"#f0": "name", "#r0": "phone"},
        ExpressionAttributeValues={":v0": {"S": "Grace"}}, ReturnValues="ALL_NEW")["Attributes"]
    assert updated["name"] == {"S": "Grace"} and "phone" not in updated
    client.delete_item(TableName=CUSTOMERS, Key=key, ConditionExpression="attribute_exists(customer_id)")
    assert "Item" not in client.get_item(TableName=CUSTOMERS, Key=key, ConsistentRead=True)


def query_pages(client, customer_id: str, limit: int) -> list[dict]:
    """Return every page of a customer's deals on customer-index, `limit` per page."""
    kwargs = {"TableName": DEALS, "IndexName": "customer-index", "Limit": limit,
              "KeyConditionExpression": "customer_id = :c", "ExpressionAttributeValues": {":c": {"S": customer_id}}}
    pages = []
    while True:
        pages.append(client.query(**kwargs))
        if "LastEvaluatedKey" not in pages[-1]:
            return pages
        kwargs["ExclusiveStartKey"] = pages[-1]["LastEvaluatedKey"]


@pytest.mark.parametrize("limit", [1, 4, 14, 100])
def test_query_pages_visit_each_of_a_customers_items_once(engine: Engine, limit: int):
    """Query on customer-index with Limit and ExclusiveStartKey returns the customer's items, each once."""
    mine = {f"deal-q{n:02d}" for n in range(14)}
    requests = [{"PutRequest": {"Item": deal(d, "query-c")}} for d in sorted(mine)]
    requests += [{"PutRequest": {"Item": deal(f"deal-q-other{n}", "query-other")}} for n in range(5)]
    engine.client.batch_write_item(RequestItems={DEALS: requests})
    pages = query_pages(engine.client, "query-c", limit)
    seen = [i["deal_id"]["S"] for p in pages for i in p["Items"]]
    assert sorted(seen) == sorted(mine)
    assert all(len(p["Items"]) <= limit and p["ScannedCount"] == p["Count"] == len(p["Items"]) for p in pages)
    assert all(set(p["LastEvaluatedKey"]) == {"deal_id", "customer_id"} for p in pages[:-1])
    # DynamoDB hands back a LastEvaluatedKey whenever a page is full, so a full last page is followed by an
    # empty one; moto stops without it when nothing is left.
    full_last = len(mine) % limit == 0
    assert len(pages) == -(-len(mine) // limit) + (full_last and engine.name != "moto")


def test_a_filtered_scan_pages_through_every_match(engine: Engine):
    """Scan with Limit, FilterExpression, ProjectionExpression and ExclusiveStartKey finds each match once."""
    wanted = {f"scan-{n}" for n in range(12)}
    requests = [{"PutRequest": {"Item": customer(c, name_lower=f"zq scan {c}")}} for c in sorted(wanted)]
    requests += [{"PutRequest": {"Item": customer(f"scan-other-{n}", name_lower="other")}} for n in range(8)]
    engine.client.batch_write_item(RequestItems={CUSTOMERS: requests})
    kwargs = {"TableName": CUSTOMERS, "Limit": 7, "FilterExpression": "begins_with(name_lower, :p)",
              "ExpressionAttributeValues": {":p": {"S": "zq scan"}}, "ProjectionExpression": "#k",
              "ExpressionAttributeNames": {"#k": "customer_id"}}
    found = []
    while True:
        page = engine.client.scan(**kwargs)
        assert page["ScannedCount"] <= 7 and page["Count"] == len(page["Items"])
        assert all(set(item) == {"customer_id"} for item in page["Items"])
        found += [item["customer_id"]["S"] for item in page["Items"]]
        if "LastEvaluatedKey" not in page:
            break
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    assert sorted(found) == sorted(wanted)


def test_batch_write_puts_and_deletes_25_at_a_time(engine: Engine):
    """BatchWriteItem of 25 puts, then 25 deletes, answers an empty UnprocessedItems map each time."""
    ids = [f"batch-{n}" for n in range(25)]
    put = engine.client.batch_write_item(RequestItems={CUSTOMERS: [{"PutRequest": {"Item": customer(i)}} for i in ids]})
    assert put["UnprocessedItems"] == {}
    assert all("Item" in engine.client.get_item(TableName=CUSTOMERS, Key={"customer_id": {"S": i}}) for i in ids)
    delete = engine.client.batch_write_item(RequestItems={CUSTOMERS: [
        {"DeleteRequest": {"Key": {"customer_id": {"S": i}}}} for i in ids]})
    assert delete["UnprocessedItems"] == {}
    assert not any("Item" in engine.client.get_item(TableName=CUSTOMERS, Key={"customer_id": {"S": i}}) for i in ids)


def capacity(described: dict) -> dict[str, int]:
    """Return the read and write capacity units of a described table or index."""
    return {k: described["ProvisionedThroughput"][k] for k in ("ReadCapacityUnits", "WriteCapacityUnits")}


def when_active(client, name: str) -> tuple[str, dict, list[dict]]:
    """Wait until the table is ACTIVE; return its billing mode, its capacity and its GSIs' capacity."""
    table = eventually(lambda: (t := client.describe_table(TableName=name)["Table"])["TableStatus"] == "ACTIVE" and t)
    return (table["BillingModeSummary"]["BillingMode"], capacity(table),
            [capacity(i) for i in table.get("GlobalSecondaryIndexes", [])])


def test_update_table_to_provisioned_1_1_and_back(engine: Engine):
    """UpdateTable switches a table with a GSI to PROVISIONED 1/1 (AWS's throttling fault) and back; data stays."""
    client, name = engine.client, "UpdateTableCase"
    client.create_table(**{**table_definitions()[2], "TableName": name})
    when_active(client, name)
    put_new(client, name, deal("deal-u1", "c-u"), "deal_id")
    one = {"ReadCapacityUnits": 1, "WriteCapacityUnits": 1}
    client.update_table(TableName=name, BillingMode="PROVISIONED", ProvisionedThroughput=one,
                        GlobalSecondaryIndexUpdates=[{"Update": {"IndexName": "customer-index",
                                                                 "ProvisionedThroughput": one}}])
    assert when_active(client, name) == ("PROVISIONED", one, [one])
    client.update_table(TableName=name, BillingMode="PAY_PER_REQUEST")
    mode, throughput, _ = when_active(client, name)
    assert mode == "PAY_PER_REQUEST"
    # On-demand tables report 0/0 again; moto keeps showing the last provisioned numbers.
    assert throughput == (one if engine.name == "moto" else {"ReadCapacityUnits": 0, "WriteCapacityUnits": 0})
    assert "Item" in client.get_item(TableName=name, Key={"deal_id": {"S": "deal-u1"}})


def test_a_deleted_table_is_gone_and_can_be_created_again(engine: Engine):
    """DeleteTable (a lost-table fault) makes calls answer ResourceNotFoundException until it is recreated."""
    client, name = engine.client, "DeleteTableCase"
    client.create_table(**{**table_definitions()[1], "TableName": name})
    when_active(client, name)
    status = client.delete_table(TableName=name)["TableDescription"]["TableStatus"]
    assert status == ("ACTIVE" if engine.name == "moto" else "DELETING")  # DynamoDB says DELETING
    eventually(lambda: answer(lambda: client.describe_table(TableName=name))[1] == "ResourceNotFoundException")
    client.create_table(**{**table_definitions()[1], "TableName": name})
    assert when_active(client, name)[0] == "PAY_PER_REQUEST"


# --- launching, readiness and durability ------------------------------------------------------------------


def test_engine_launch_names_what_is_wrong(tmp_path: Path):
    """An unknown engine is a usage error; a missing dynalite install names scripts/install."""
    with pytest.raises(UsageError, match="unknown DynamoDB engine 'dynamo'"):
        engine_launch("dynamo", 1, tmp_path, ROOT)
    with pytest.raises(MissingProgram, match="scripts/install"):
        check_engine("dynalite", tmp_path)  # a checkout without infra/dynalite/node_modules
    assert choose_engine(None, tmp_path)[0] == "moto", "a machine that cannot run dynalite falls back to moto"
    assert choose_engine(None, ROOT)[0] == "dynalite"
    assert engine_launch("dynalite", 1, tmp_path, ROOT).data_path == tmp_path / "dynalite"
    assert not engine_launch("moto", 1, tmp_path, ROOT).durable  # the stack must save moto's tables itself


def test_readiness_needs_a_dynamodb_answer_not_an_open_port(tmp_path: Path):
    """Nothing listening, or a web server that is not DynamoDB, is not ready."""
    assert not engine_ready(f"http://127.0.0.1:{free_port()}")
    port = free_port()
    web = start_server(ProcessSpec("web", [sys.executable, "-m", "http.server", "-b", "127.0.0.1", str(port)],
                                   tmp_path / "web.log", ports=[port], cwd=tmp_path))
    try:
        assert not engine_ready(web.url)
    finally:
        web.stop()


def test_dynalite_that_cannot_open_its_store_is_never_ready(tmp_path: Path):
    """dynalite listens before it opens its store; with a file where its directory should be, it exits at the
    readiness check's first request, and the wait says so instead of waiting out its time."""
    (tmp_path / "data").write_text("a file where the data directory should be")
    port = free_port()
    launch = engine_launch("dynalite", port, tmp_path / "data", ROOT)
    server = start_server(ProcessSpec("dynalite", launch.argv, tmp_path / "dynalite.log", launch.env, ports=[port]))
    try:
        started = time.monotonic()
        assert not wait_engine_ready(server.record, server.url, 30)
        assert time.monotonic() - started < 20 and not is_alive(server.record)
    finally:
        server.stop()


def writer(url: str, prefix: str, acked: list[tuple[str, str]], stop: threading.Event) -> None:
    """Create customers with one deal each, then rename each; record every write the engine confirmed."""
    client = boto3.session.Session(aws_access_key_id="test", aws_secret_access_key="test").client(
        "dynamodb", region_name=REGION, endpoint_url=url,
        config=Config(retries={"max_attempts": 1}, connect_timeout=1, read_timeout=2))
    n = 0
    try:
        while not stop.is_set():
            cid = f"{prefix}-{n}"
            put_new(client, CUSTOMERS, customer(cid), "customer_id")
            acked.append(("customer", cid))
            client.batch_write_item(RequestItems={DEALS: [{"PutRequest": {"Item": deal(f"deal-{cid}", cid)}}]})
            acked.append(("deal", cid))
            client.update_item(TableName=CUSTOMERS, Key={"customer_id": {"S": cid}}, UpdateExpression="SET #n = :n",
                               ExpressionAttributeNames={"#n": "name"}, ExpressionAttributeValues={":n": {"S": "v2"}})
            acked.append(("update", cid))
            n += 1
    except (BotoCoreError, ClientError):
        return  # the engine was killed under it


def test_acknowledged_writes_survive_kill_9_of_the_engine(tmp_path: Path):
    """Writes dynalite answered 200 are all there after a kill -9 during writes and a restart on its data."""
    server, launch = start_engine("dynalite", tmp_path)
    create_tables(dynamodb(server.url))
    acked: list[tuple[str, str]] = []
    stop = threading.Event()
    threads = [threading.Thread(target=writer, args=(server.url, f"w{t}", acked, stop)) for t in range(4)]
    for thread in threads:
        thread.start()
    try:
        eventually(lambda: len(acked) >= 300, timeout=60)
        os.killpg(server.record.pid, signal.SIGKILL)  # while the four writers are still writing
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=10)
        server.stop()
    assert launch.data_path is not None and launch.data_path.is_dir()
    server, _ = start_engine("dynalite", tmp_path, port=server.port)
    try:
        check_all_present(dynamodb(server.url), list(acked))
    finally:
        server.stop()


def check_all_present(client, acked: list[tuple[str, str]]) -> None:
    """Assert every confirmed write is readable: customers, their renames, and deals through the GSI."""
    for kind, cid in acked:
        if kind == "deal":
            items = client.query(TableName=DEALS, IndexName="customer-index", KeyConditionExpression="customer_id = :c",
                                 ExpressionAttributeValues={":c": {"S": cid}})["Items"]
            assert [i["deal_id"]["S"] for i in items] == [f"deal-{cid}"], cid
        else:
            item = client.get_item(TableName=CUSTOMERS, Key={"customer_id": {"S": cid}}, ConsistentRead=True)
            assert "Item" in item, f"{kind} of {cid} was confirmed, then lost"
            if kind == "update":
                assert item["Item"]["name"] == {"S": "v2"}, cid


def scan_many(server: Server, count: int) -> None:
    """Send `count` Scan requests (Limit 25, so each stops short of the table's end) on one connection."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    headers = {**READY_HEADERS, "X-Amz-Target": "DynamoDB_20120810.Scan"}
    body = json.dumps({"TableName": CUSTOMERS, "Limit": 25})
    try:
        for _ in range(count):
            connection.request("POST", "/", body, headers)
            response = connection.getresponse()
            assert response.status == 200, response.read()
            response.read()
    finally:
        connection.close()


def rss_kb(server: Server) -> int:
    """Resident memory of the server's processes in KB."""
    pages = sum(int(proc_stat(pid)[21]) for pid in group_members(server.record.pid))
    return pages * os.sysconf("SC_PAGE_SIZE") // 1024


def test_scans_do_not_grow_dynalite(tmp_path: Path):
    """Thousands of Scans that stop at Limit leave dynalite's memory flat (dynalite 4.0.0 alone leaks an open
    LevelDB iterator, about 10 KB, per Scan or Query; infra/dynalite/server.js closes them)."""
    server, _ = start_engine("dynalite", tmp_path)
    try:
        client = dynamodb(server.url)
        create_tables(client)
        for start in range(0, 200, 25):
            client.batch_write_item(RequestItems={CUSTOMERS: [
                {"PutRequest": {"Item": customer(f"rss-{n}")}} for n in range(start, start + 25)]})
        scan_many(server, 4000)  # warm up: V8's heap grows to its working size (about 20 MB more) first
        before = rss_kb(server)
        scan_many(server, 8000)  # the leak would add about 150 MB
        assert rss_kb(server) - before < 40_000
    finally:
        server.stop()
