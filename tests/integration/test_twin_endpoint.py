"""The twin's dynamodb-endpoint as a real process between boto3 and dynalite, with a moto server standing for
the twin (IAM: the role and the template's DynamoDBAccess policy; CloudWatch: where the metrics go)."""

from __future__ import annotations

import json
import socket
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from cfn import load
from sre_workshop.local.engines import engine_launch, wait_engine_ready
from sre_workshop.local.process import ProcessSpec
from sre_workshop.tables import create_tables

from conftest import REGION, ROOT, Server, eventually, moto_spec, port_offset, start_server

PORTS = port_offset(1100) + 8000  # engine, twin, endpoint, endpoint without IAM
ACCOUNT = "123456789012"
ROLE = "EC2InstanceRole"
INSTANCE = "i-0123456789abcdef0"
THROTTLED = "ThrottledTable"
ARN = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/"
CALLER = f"arn:aws:sts::{ACCOUNT}:assumed-role/{ROLE}/{INSTANCE}"
NO_RETRIES = Config(retries={"total_max_attempts": 1, "mode": "standard"})


def template_policy() -> dict[str, Any]:
    """Return the template's DynamoDBAccess document, its table ARNs resolved as the local stack names them."""
    policies = load()["Resources"][ROLE]["Properties"]["Policies"]
    document = next(p for p in policies if p["PolicyName"] == "DynamoDBAccess")["PolicyDocument"]

    def resolve(entry: Any) -> str:
        if "Fn::GetAtt" in entry:
            return ARN + entry["Fn::GetAtt"][0]
        logical, rest = entry["Fn::Sub"].removeprefix("${").split(".Arn}")
        return ARN + logical + rest

    for statement in document["Statement"]:
        statement["Resource"] = [resolve(r) for r in statement["Resource"]]
    return document


def client(service: str, url: str, config: Config | None = None):
    session = boto3.session.Session(aws_access_key_id="test", aws_secret_access_key="test")
    return session.client(service, region_name=REGION, endpoint_url=url, config=config)


@dataclass
class Stack:
    engine: Server
    twin: Server
    endpoint: Server
    open_endpoint: Server
    stats: Path
    throttled_keys: int

    def dynamodb(self, url: str | None = None):
        return client("dynamodb", url or self.endpoint.url, NO_RETRIES)

    def iam(self):
        return client("iam", self.twin.url)


def endpoint_spec(tmp: Path, port: int, engine: Server, *twin_args: str) -> ProcessSpec:
    argv = [sys.executable, "-m", "sre_workshop.twin.endpoint", "--listen", f"127.0.0.1:{port}",
            "--engine", engine.url, "--region", REGION, "--account", ACCOUNT, "--instance-id", INSTANCE, *twin_args]
    return ProcessSpec("dynamodb-endpoint", argv, tmp / f"endpoint-{port}.log", ports=[port], stop_timeout=10)


def seed_throttled(engine) -> int:
    """A PROVISIONED 1/1 table with 900 KB of items, written straight to the engine (no capacity drawn):
    a Scan of it consumes about 110 read units, so three spend the 300 s burst of an idle table."""
    engine.create_table(TableName=THROTTLED, BillingMode="PROVISIONED",
                        ProvisionedThroughput={"ReadCapacityUnits": 1, "WriteCapacityUnits": 1},
                        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}])
    # dynalite creates a table in the background (CREATING, then ACTIVE), as DynamoDB does: a write before
    # that is refused with ResourceNotFoundException.
    eventually(lambda: engine.describe_table(TableName=THROTTLED)["Table"]["TableStatus"] == "ACTIVE", timeout=30)
    for n in range(9):
        engine.put_item(TableName=THROTTLED, Item={"id": {"S": f"item-{n}"}, "data": {"S": "x" * 100_000}})
    return 9


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("twin-endpoint")
    launch = engine_launch("dynalite", PORTS, tmp / "data", ROOT)
    engine = start_server(ProcessSpec("dynalite", launch.argv, tmp / "dynalite.log", launch.env, ports=[PORTS]))
    started = [engine]
    try:
        assert wait_engine_ready(engine.record, engine.url, 30)
        direct = client("dynamodb", engine.url)
        create_tables(direct)
        keys = seed_throttled(direct)
        twin = start_server(moto_spec(tmp, PORTS + 1))
        started.append(twin)
        iam = client("iam", twin.url)
        iam.create_role(RoleName=ROLE, AssumeRolePolicyDocument=json.dumps({"Statement": [{
            "Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]}))
        iam.put_role_policy(RoleName=ROLE, PolicyName="DynamoDBAccess", PolicyDocument=json.dumps(template_policy()))
        # The throttled table is the test's own: a managed policy (the attached path) allows it.
        managed = iam.create_policy(PolicyName="ThrottledTableAccess", PolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "dynamodb:*",
                                                    "Resource": ARN + THROTTLED}]}))["Policy"]["Arn"]
        iam.attach_role_policy(RoleName=ROLE, PolicyArn=managed)
        stats = tmp / "endpoint-stats.json"
        endpoint = start_server(endpoint_spec(tmp, PORTS + 2, engine, "--iam-endpoint", twin.url, "--role-name", ROLE,
                                              "--cloudwatch-endpoint", twin.url, "--metrics-period", "1",
                                              "--stats-file", str(stats)))
        started.append(endpoint)
        open_endpoint = start_server(endpoint_spec(tmp, PORTS + 3, engine))
        started.append(open_endpoint)
        yield Stack(engine, twin, endpoint, open_endpoint, stats, keys)
    finally:
        for server in reversed(started):
            server.stop()


def error_of(call) -> dict[str, Any]:
    with pytest.raises(ClientError) as caught:
        call()
    return caught.value.response["Error"]


def test_the_roles_allowed_calls_work(stack: Stack):
    ddb = stack.dynamodb()
    ddb.put_item(TableName="CRMCustomersTable", Item={"customer_id": {"S": "c1"}, "name": {"S": "Ada"}})
    assert ddb.get_item(TableName="CRMCustomersTable", Key={"customer_id": {"S": "c1"}})["Item"]["name"] == {"S": "Ada"}
    ddb.batch_write_item(RequestItems={"CRMDealsTable": [{"PutRequest": {"Item": {
        "deal_id": {"S": "d1"}, "customer_id": {"S": "c1"}}}}]})
    found = ddb.query(TableName="CRMDealsTable", IndexName="customer-index", KeyConditionExpression="customer_id = :c",
                      ExpressionAttributeValues={":c": {"S": "c1"}})
    assert found["Count"] == 1 and "ConsumedCapacity" not in found  # the endpoint's own request is not shown
    asked = ddb.scan(TableName="CRMCustomersTable", ReturnConsumedCapacity="TOTAL")
    assert asked["ConsumedCapacity"]["TableName"] == "CRMCustomersTable"


def test_what_the_policy_does_not_allow_is_denied_implicitly(stack: Stack):
    error = error_of(lambda: stack.dynamodb().describe_table(TableName="CRMDealsTable"))
    assert error == {"Code": "AccessDeniedException", "Message": (
        f"User: {CALLER} is not authorized to perform: dynamodb:DescribeTable on resource: {ARN}CRMDealsTable "
        "because no identity-based policy allows the dynamodb:DescribeTable action")}
    error = error_of(lambda: stack.dynamodb().query(
        TableName="CRMCustomersTable", IndexName="customer-index", KeyConditionExpression="customer_id = :c",
        ExpressionAttributeValues={":c": {"S": "c1"}}))
    assert f"on resource: {ARN}CRMCustomersTable/index/customer-index because" in error["Message"]


def test_an_explicit_deny_takes_effect_within_two_seconds_and_its_removal_too(stack: Stack):
    ddb, iam = stack.dynamodb(), stack.iam()
    key = {"customer_id": {"S": "c1"}}
    deny = {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "dynamodb:GetItem",
                                                    "Resource": ARN + "CRMCustomersTable"}]}
    iam.put_role_policy(RoleName=ROLE, PolicyName="DenyCustomers", PolicyDocument=json.dumps(deny))
    try:
        start = time.monotonic()

        def denied():
            try:
                ddb.get_item(TableName="CRMCustomersTable", Key=key)
            except ClientError as exc:
                return exc.response["Error"]
            return None

        error = eventually(denied, timeout=2.0, interval=0.05)
        assert time.monotonic() - start <= 2.0
        assert error == {"Code": "AccessDeniedException", "Message": (
            f"User: {CALLER} is not authorized to perform: dynamodb:GetItem on resource: {ARN}CRMCustomersTable "
            "with an explicit deny in an identity-based policy")}
        ddb.put_item(TableName="CRMCustomersTable", Item={**key, "name": {"S": "Ada"}})  # only GetItem is denied
    finally:
        iam.delete_role_policy(RoleName=ROLE, PolicyName="DenyCustomers")
    eventually(lambda: denied() is None, timeout=2.0, interval=0.05)


@pytest.fixture(scope="module")
def burst(stack: Stack) -> tuple[int, int]:
    """One GetItem on the idle provisioned table, then eight Scans in a row: (served, refused) Scans."""
    ddb = stack.dynamodb()
    assert ddb.get_item(TableName=THROTTLED, Key={"id": {"S": "item-0"}})["Item"]
    served, refused = 0, 0
    for _ in range(8):
        try:
            assert ddb.scan(TableName=THROTTLED)["Count"] == stack.throttled_keys
            served += 1
        except ClientError as exc:
            assert exc.response["Error"]["Code"] == "ProvisionedThroughputExceededException"
            assert exc.response["Error"]["Message"].startswith("The level of configured provisioned throughput")
            refused += 1
    return served, refused


def test_a_provisioned_table_answers_when_idle_and_throttles_a_burst(burst: tuple[int, int]):
    assert burst == (3, 5)  # 300 s of 1 RCU: three Scans of ~110 units, then the debt


def test_metrics_arrive_in_cloudwatch(stack: Stack, burst: tuple[int, int]):
    served, refused = burst
    cloudwatch = client("cloudwatch", stack.twin.url)
    now = time.time()

    def statistic(name: str, dimensions: dict[str, str], stat: str = "Sum") -> float:
        points = cloudwatch.get_metric_statistics(
            Namespace="AWS/DynamoDB", MetricName=name, StartTime=now - 600, EndTime=now + 600, Period=3600,
            Statistics=[stat], Dimensions=[{"Name": k, "Value": v} for k, v in dimensions.items()])["Datapoints"]
        return sum(p[stat] for p in points)

    throttled = {"TableName": THROTTLED, "Operation": "Scan"}
    eventually(lambda: statistic("ThrottledRequests", throttled) >= refused, timeout=6)
    assert statistic("ThrottledRequests", throttled) == refused
    assert statistic("SuccessfulRequestLatency", throttled, "SampleCount") == served
    assert statistic("ConsumedReadCapacityUnits", {"TableName": THROTTLED}) >= 330
    assert statistic("UserErrors", {}) >= 2  # the AccessDeniedExceptions
    stats = json.loads(stack.stats.read_text())
    assert stats["iam"]["read"] and stats["metrics"]["sent"] > 0
    assert {"table": THROTTLED, "operation": "Scan", "outcome": "throttled", "count": refused} in stats["totals"]


def test_without_a_twin_nothing_is_enforced(stack: Stack):
    ddb = stack.dynamodb(stack.open_endpoint.url)
    assert ddb.describe_table(TableName="CRMDealsTable")["Table"]["TableName"] == "CRMDealsTable"


def exchange(port: int, raw: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(raw)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


@pytest.mark.parametrize("raw", [b"garbage\r\n\r\n", b"POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n",
                                 b"POST / HTTP/1.1\r\nContent-Length: 3\r\nConnection: close\r\n\r\n{x}",
                                 b"POST / HTTP/1.1\r\nX-Amz-Target: Nope\r\nConnection: close\r\n\r\n{}"])
def test_malformed_requests_get_dynamodb_style_400s(stack: Stack, raw: bytes):
    answer = exchange(stack.endpoint.port, raw)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 ")
    assert json.loads(body)["__type"].startswith("com.amazon")
    assert stack.dynamodb().get_item(TableName="CRMCustomersTable", Key={"customer_id": {"S": "c1"}})  # still up
