"""What one DynamoDB call is, read from its X-Amz-Target and JSON body: the tables and indexes it touches, the
IAM authorizations it needs, the capacity it draws; and what it consumed, read from the engine's answer.

No HTTP here: endpoint.py speaks it and calls these.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .enforce.capacity import READ, WRITE

TARGET_PREFIX = "DynamoDB_20120810."
READS = {"GetItem", "Query", "Scan", "BatchGetItem", "TransactGetItems"}
WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}
# Operations that take ReturnConsumedCapacity: the endpoint asks for it to meter them.
METERED = READS | WRITES
# Operations on no table: IAM's resource for them is "*".
ACCOUNT_LEVEL = {"ListTables", "DescribeLimits", "DescribeEndpoints", "ListBackups", "ListGlobalTables",
                 "ListExports", "ListImports", "ListContributorInsights", "DescribeReservedCapacity"}
DECODER = json.JSONDecoder()
TRANSACT_ACTIONS = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem",
                    "ConditionCheck": "ConditionCheckItem", "Get": "GetItem"}
PARTIQL = re.compile(r"^\s*(SELECT|INSERT|UPDATE|DELETE|EXISTS)\b.*?(?:FROM|INTO|UPDATE)?\s*\"([^\"]+)\"",
                     re.IGNORECASE | re.DOTALL)


class BadCall(ValueError):
    """A request DynamoDB would refuse before looking at it: the code and message of its 400 answer."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class Call:
    """One DynamoDB call as the endpoint decides on it."""

    operation: str
    body: dict[str, Any]
    tables: list[str] = field(default_factory=list)  # in the order the request names them
    index: str | None = None  # the index a Query or Scan reads
    kind: str | None = None  # READ, WRITE, or None (control plane, not metered in capacity)
    consistency: str = "eventual"
    authorizations: list[tuple[str, str]] = field(default_factory=list)  # (action, resource ARN)

    @property
    def wants_capacity(self) -> bool:
        """True if the client itself asked for ConsumedCapacity in the answer."""
        return self.body.get("ReturnConsumedCapacity", "NONE") != "NONE"


def table_arn(region: str, account: str, table: str, index: str | None = None) -> str:
    """Return the ARN of a table, or of one of its indexes."""
    arn = f"arn:aws:dynamodb:{region}:{account}:table/{table}"
    return f"{arn}/index/{index}" if index else arn


def operation_of(target: str | None) -> str:
    """Return the operation named by an X-Amz-Target header; raise BadCall as DynamoDB does."""
    if not target or not target.startswith(TARGET_PREFIX) or len(target) == len(TARGET_PREFIX):
        raise BadCall("UnknownOperationException", "")
    return target[len(TARGET_PREFIX):]


def parse_body(raw: bytes) -> dict[str, Any]:
    """Parse a request's JSON body; raise BadCall(SerializationException) if it is not a JSON object."""
    try:
        body = json.loads(raw) if raw.strip() else {}
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadCall("SerializationException", "Start of structure or map found where not expected.") from exc
    if not isinstance(body, dict):
        raise BadCall("SerializationException", "Start of structure or map found where not expected.")
    return body


def _names(value: Any) -> list[str]:
    """Return the table names of a RequestItems map (ignoring what is not one)."""
    return [name for name in value if isinstance(name, str)] if isinstance(value, Mapping) else []


def _transact(body: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Return (IAM action, table) of each element of TransactItems."""
    found = []
    for element in body.get("TransactItems") or []:
        if isinstance(element, Mapping):
            for kind, action in TRANSACT_ACTIONS.items():
                inner = element.get(kind)
                if isinstance(inner, Mapping) and isinstance(inner.get("TableName"), str):
                    found.append((action, inner["TableName"]))
    return found


def _resource_table(body: Mapping[str, Any]) -> str | None:
    """Return the table of a call that names it by TableName or ResourceArn (tags, policies)."""
    if isinstance(body.get("TableName"), str):
        return body["TableName"]
    arn = body.get("ResourceArn")
    if isinstance(arn, str) and ":table/" in arn:
        return arn.split(":table/", 1)[1].split("/", 1)[0]
    return None


def describe(operation: str, body: dict[str, Any], region: str, account: str) -> Call:
    """Read a call: its tables, index, capacity kind and consistency, and its IAM authorizations."""
    call = Call(operation, body)
    action = f"dynamodb:{operation}"
    if operation in ("BatchGetItem", "BatchWriteItem"):
        call.tables = _names(body.get("RequestItems"))
        call.authorizations = [(action, table_arn(region, account, t)) for t in call.tables]
        reads = body.get("RequestItems") or {}
        strong = any(isinstance(v, Mapping) and v.get("ConsistentRead") for v in reads.values())
        call.consistency = "strong" if operation == "BatchGetItem" and strong else "eventual"
    elif operation in ("TransactGetItems", "TransactWriteItems"):
        pairs = _transact(body)
        call.tables = list(dict.fromkeys(t for _, t in pairs))
        call.authorizations = [(f"dynamodb:{a}", table_arn(region, account, t)) for a, t in pairs]
        call.consistency = "transactional"
    elif operation in ("ExecuteStatement",):
        verb, table = _partiql(body.get("Statement"))
        call.tables = [table] if table else []
        call.authorizations = [(f"dynamodb:PartiQL{verb}", table_arn(region, account, table) if table else "*")]
    elif operation in ACCOUNT_LEVEL:
        call.authorizations = [(action, "*")]
    else:
        table = _resource_table(body)
        index = body.get("IndexName") if operation in ("Query", "Scan") else None
        call.index = index if isinstance(index, str) else None
        call.tables = [table] if table else []
        call.authorizations = [(action, table_arn(region, account, table, call.index) if table else "*")]
        call.consistency = "strong" if body.get("ConsistentRead") is True else "eventual"
    call.kind = READ if operation in READS else WRITE if operation in WRITES else None
    return call


def _partiql(statement: Any) -> tuple[str, str | None]:
    """Return the PartiQL verb (Select, Insert, ...) and the quoted table of a statement, as far as it shows."""
    match = PARTIQL.match(statement) if isinstance(statement, str) else None
    if match is None:
        return "Select", None
    verb = match.group(1).capitalize()
    return ("Select" if verb == "Exists" else verb), match.group(2)


def with_capacity_request(call: Call, raw: bytes) -> bytes:
    """Return the request body asking the engine for ConsumedCapacity by index, if the client did not ask."""
    if call.operation not in METERED or call.wants_capacity:
        return raw
    if "ReturnConsumedCapacity" in call.body:  # "NONE" spelt out: a second key would be overridden by it
        return json.dumps({**call.body, "ReturnConsumedCapacity": "INDEXES"}, separators=(",", ":")).encode()
    start = raw.index(b"{") + 1
    rest = raw[start:].lstrip()
    joiner = b"" if rest.startswith(b"}") else b","
    return b'{"ReturnConsumedCapacity":"INDEXES"' + joiner + rest


def split_capacity(answer: bytes, strip: bool) -> tuple[bytes, Any]:
    """Find the top-level ConsumedCapacity of an engine's answer; return (the answer, without it if `strip`,
    and the ConsumedCapacity value, or None). Both engines put it last: that case costs no full parse."""
    at = answer.rfind(b'"ConsumedCapacity"')
    if at < 0:
        return answer, None
    tail = answer[at:].decode("utf-8", "replace")
    start = tail.index(":") + 1
    while start < len(tail) and tail[start] in " \t\r\n":
        start += 1
    try:
        value, end = DECODER.raw_decode(tail, start)
    except ValueError:
        value, end = None, 0
    if value is None or tail[end:].strip() != "}":  # not the last top-level key: parse the whole answer
        return _split_parsed(answer, strip)
    if not strip:
        return answer, value
    head = answer[:at].rstrip()
    head = head[:-1] if head.endswith(b",") else head
    return head + b"}", value


def _split_parsed(answer: bytes, strip: bool) -> tuple[bytes, Any]:
    """The slow path of split_capacity: parse, and serialize again if stripping."""
    try:
        document = json.loads(answer)
    except ValueError:
        return answer, None
    if not isinstance(document, dict) or "ConsumedCapacity" not in document:
        return answer, None
    value = document.pop("ConsumedCapacity") if strip else document["ConsumedCapacity"]
    return (json.dumps(document, separators=(",", ":")).encode() if strip else answer), value


def consumption(value: Any, gsis: Mapping[str, set[str]]) -> dict[str, dict[str | None, float]]:
    """Turn ConsumedCapacity (one object, or a list for batches) into {table: {None or GSI name: units}}.
    `gsis` names each table's GSIs: what an engine files under LocalSecondaryIndexes but is a GSI counts
    as the GSI's (moto does that), a real LSI's units are the table's."""
    found: dict[str, dict[str | None, float]] = {}
    for entry in value if isinstance(value, list) else [value]:
        if not isinstance(entry, Mapping) or not isinstance(entry.get("TableName"), str):
            continue
        table = entry["TableName"]
        units = found.setdefault(table, {})
        if not any(k in entry for k in ("Table", "GlobalSecondaryIndexes", "LocalSecondaryIndexes")):
            units[None] = units.get(None, 0.0) + float(entry.get("CapacityUnits") or 0)
            continue
        units[None] = units.get(None, 0.0) + float((entry.get("Table") or {}).get("CapacityUnits") or 0)
        for key in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
            for name, part in (entry.get(key) or {}).items():
                target = name if name in gsis.get(table, ()) else None
                units[target] = units.get(target, 0.0) + float((part or {}).get("CapacityUnits") or 0)
    return found


def error_type(code: str) -> str:
    """Return the __type DynamoDB gives an error code."""
    if code in ("AccessDeniedException", "UnknownOperationException", "SerializationException",
                "MissingAuthenticationTokenException", "UnrecognizedClientException"):
        return f"com.amazon.coral.service#{code}"
    if code in ("ThrottlingException", "ServiceUnavailableException"):
        return f"com.amazon.coral.availability#{code}"
    return f"com.amazonaws.dynamodb.v20120810#{code}"


def error_body(code: str, message: str, **extra: Any) -> bytes:
    """Return DynamoDB's JSON error body (AccessDeniedException spells Message with a capital, as AWS does)."""
    key = "Message" if code == "AccessDeniedException" else "message"
    return json.dumps({"__type": error_type(code), key: message, **extra}, separators=(",", ":")).encode()
