"""The endpoint's decisions without HTTP (twin/calls.py, twin/gate.py): reading calls, refusing, metering."""

from __future__ import annotations

import json
import zlib

import pytest

from sre_workshop.twin.calls import BadCall, describe, operation_of, parse_body, split_capacity, with_capacity_request
from sre_workshop.twin.enforce.capacity import CapacityBook, throughputs
from sre_workshop.twin.enforce.iam import compile_policies, principal_context
from sre_workshop.twin.gate import Gate
from sre_workshop.twin.metering import Meter
from sre_workshop.twin.proxy import response

ACCOUNT = "123456789012"
T = f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/"


def test_calls_name_their_tables_indexes_and_authorizations():
    query = describe("Query", {"TableName": "Deals", "IndexName": "customer-index"}, "us-east-1", ACCOUNT)
    assert (query.tables, query.index, query.kind) == (["Deals"], "customer-index", "read")
    assert query.authorizations == [("dynamodb:Query", T + "Deals/index/customer-index")]
    batch = describe("BatchWriteItem", {"RequestItems": {"A": [], "B": []}}, "us-east-1", ACCOUNT)
    assert batch.authorizations == [("dynamodb:BatchWriteItem", T + "A"), ("dynamodb:BatchWriteItem", T + "B")]
    transact = describe("TransactWriteItems", {"TransactItems": [
        {"Put": {"TableName": "A"}}, {"ConditionCheck": {"TableName": "B"}}]}, "us-east-1", ACCOUNT)
    assert transact.authorizations == [("dynamodb:PutItem", T + "A"), ("dynamodb:ConditionCheckItem", T + "B")]
    assert transact.consistency == "transactional"
    assert describe("ListTables", {}, "us-east-1", ACCOUNT).authorizations == [("dynamodb:ListTables", "*")]
    strong = describe("GetItem", {"TableName": "A", "ConsistentRead": True}, "us-east-1", ACCOUNT)
    assert strong.consistency == "strong"


@pytest.mark.parametrize(("target", "body", "code"), [
    (None, b"{}", "UnknownOperationException"), ("DynamoDB_20120810.", b"{}", "UnknownOperationException"),
    ("DynamoDB_20120810.GetItem", b"{nope", "SerializationException"),
    ("DynamoDB_20120810.GetItem", b"[1]", "SerializationException")])
def test_malformed_calls_are_refused(target, body, code):
    with pytest.raises(BadCall) as caught:
        parse_body(body) if target and target != "DynamoDB_20120810." else operation_of(target)
    assert caught.value.code == code


def test_the_engine_is_asked_for_capacity_and_the_answer_stripped():
    call = describe("GetItem", {"TableName": "A"}, "us-east-1", ACCOUNT)
    sent = with_capacity_request(call, b'{"TableName":"A"}')
    assert json.loads(sent) == {"TableName": "A", "ReturnConsumedCapacity": "INDEXES"}
    answer = b'{"Item": {"k": {"S": "x"}}, "ConsumedCapacity": {"TableName": "A", "CapacityUnits": 0.5}}'
    assert split_capacity(answer, strip=True) == (b'{"Item": {"k": {"S": "x"}}}',
                                                  {"TableName": "A", "CapacityUnits": 0.5})
    # an item attribute named ConsumedCapacity is not the answer's
    tricky = b'{"Item": {"ConsumedCapacity": {"S": "x"}}}'
    assert split_capacity(tricky, strip=True) == (tricky, None)
    first = b'{"ConsumedCapacity": {"TableName": "A", "CapacityUnits": 1}, "Count": 0}'
    assert split_capacity(first, strip=True) == (b'{"Count":0}', {"TableName": "A", "CapacityUnits": 1})


def gate(policies=None, rcu=1):
    book = CapacityBook(lambda: 0.0, burst_seconds=1)
    meter = Meter()
    context = principal_context(ACCOUNT, "Role", "i-1", "us-east-1")
    compiled = compile_policies(policies, context) if policies is not None else None
    g = Gate("us-east-1", ACCOUNT, "Role", "i-1", (lambda: compiled) if policies is not None else None, book, meter,
             wall=lambda: 100.0, timer=lambda: 0.0)
    g.configure({"A": throughputs({"BillingModeSummary": {"BillingMode": "PROVISIONED"}, "ProvisionedThroughput": {
        "ReadCapacityUnits": rcu, "WriteCapacityUnits": 1}, "GlobalSecondaryIndexes": [
        {"IndexName": "gsi", "ProvisionedThroughput": {"ReadCapacityUnits": 1, "WriteCapacityUnits": 1}}]})})
    return g, meter


def test_the_gate_denies_with_dynamodbs_message_and_meters_a_user_error():
    g, meter = gate([{"Statement": {"Effect": "Deny", "Action": "dynamodb:*", "Resource": T + "A"}}])
    answer = g.admit(describe("GetItem", {"TableName": "A"}, "us-east-1", ACCOUNT))
    assert answer is not None and answer.status == 400
    body = json.loads(answer.body)
    assert body["__type"] == "com.amazon.coral.service#AccessDeniedException"
    assert body["Message"].endswith(f"dynamodb:GetItem on resource: {T}A with an explicit deny in an "
                                    "identity-based policy")
    assert [d["MetricName"] for d in meter.drain(before=101)] == ["UserErrors"]


def test_policies_never_read_deny_everything():
    g, _ = gate()
    g.policies = lambda: None
    answer = g.admit(describe("GetItem", {"TableName": "A"}, "us-east-1", ACCOUNT))
    assert answer is not None and b"because no identity-based policy allows" in answer.body


def test_the_gate_throttles_meters_and_strips_what_was_not_asked():
    g, meter = gate()
    call = describe("PutItem", {"TableName": "A"}, "us-east-1", ACCOUNT)
    assert g.admit(call) is None
    answer = b'{"ConsumedCapacity":{"TableName":"A","CapacityUnits":2,"Table":{"CapacityUnits":2}}}'
    assert g.settle(call, 200, answer, 0.0) == b"{}"
    refused = g.admit(call)  # 1 WCU, 1 s of burst: 2 units put the table and its GSI in debt
    assert refused is not None
    assert json.loads(refused.body) == {
        "__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
        "message": "The level of configured provisioned throughput for the table was exceeded. Consider increasing "
                   "your provisioning level with the UpdateTable API.",
        "ThrottlingReasons": [{"reason": "TableWriteProvisionedThroughputExceeded", "resource": T + "A"}]}
    metrics = {(d["MetricName"], tuple(x["Value"] for x in d["Dimensions"])): d["StatisticValues"]["Sum"]
               for d in meter.drain(before=101)}
    assert metrics == {("SuccessfulRequestLatency", ("A", "PutItem")): 0.0,
                       ("ConsumedWriteCapacityUnits", ("A",)): 2.0, ("ConsumedWriteCapacityUnits", ("A", "gsi")): 2.0,
                       ("ThrottledRequests", ("A", "PutItem")): 1, ("WriteThrottleEvents", ("A",)): 1}


def test_conditional_check_failures_and_system_errors_are_their_own_metrics():
    g, meter = gate()
    call = describe("PutItem", {"TableName": "A"}, "us-east-1", ACCOUNT)
    g.settle(call, 400, b'{"__type":"com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException"}', 0.0)
    g.settle(call, 400, b'{"__type":"com.amazonaws.dynamodb.v20120810#ValidationException"}', 0.0)
    g.settle(call, 500, b"{}", 0.0)
    names = sorted(d["MetricName"] for d in meter.drain(before=101))
    assert names == ["ConditionalCheckFailedRequests", "SystemErrors", "UserErrors"]


def test_responses_carry_dynamodbs_crc_and_length():
    raw = response(400, b'{"a":1}')
    head, body = raw.split(b"\r\n\r\n")
    assert body == b'{"a":1}' and f"x-amz-crc32: {zlib.crc32(body)}".encode() in head
    assert b"Content-Length: 7" in head and head.startswith(b"HTTP/1.1 400 Bad Request")
