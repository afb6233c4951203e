"""DynamoDB access for the CRM: customers, deals and activities. No Flask in here.

Every read is bounded: lists are one Scan or Query page with a cursor, a customer's deals and activities
come from a Query on the `customer-index` GSI, and the customer page costs three calls whatever the
table size. Creates use server-generated ids and `attribute_not_exists` conditions, so a create can
never overwrite; a repeated create with the same idempotency key and the same data returns the first
one, and the same key with other data is refused.

Everything a client can send that reaches DynamoDB as a key (ids in paths, cursors) is checked against
the shape of the keys this module makes, so a forged value is a 404 or a 422, never a DynamoDB error.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import BotoCoreError, ClientError

from appkit.aws import REQUEST_CONFIG, call, dynamodb_client

from .config import Settings
from .exceptions import DatabaseError, IdempotencyConflict, InvalidField, NotFound, UnknownReference

logger = logging.getLogger(__name__)

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()

MAX_SEARCH_CALLS = 5  # Scan pages one name search may read before it hands back a cursor
SEARCH_PAGE_READ = 100  # items each of those Scan pages evaluates
# Stable namespace for ids derived from idempotency keys (uuid5).
IDEMPOTENCY_NAMESPACE = uuid.UUID("6b1f6d5e-7a54-4f0e-9a63-3f7d8c2f4a11")
# Every id this CRM makes (new_id, the sample data): a prefix and hex digits.
ID_PATTERN = r"^[a-z]{3,4}-[0-9a-f]{4,32}$"
ID_RE = re.compile(ID_PATTERN)


@dataclass(frozen=True)
class Entity:
    """One CRM table: its key attribute and the prefix of its generated ids."""

    name: str
    key: str
    prefix: str


CUSTOMER = Entity("customer", "customer_id", "cust")
DEAL = Entity("deal", "deal_id", "deal")
ACTIVITY = Entity("activity", "activity_id", "act")


@dataclass
class Page:
    """One page of items and the cursor to the next (None at the end)."""

    items: list[dict[str, Any]]
    next_cursor: str | None = None
    stats: dict[str, int] = field(default_factory=dict)


def now_iso() -> str:
    """Return the current UTC time as ISO-8601 with seconds."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def new_id(entity: Entity, idempotency_key: str | None = None) -> str:
    """Return a fresh id, or the id an idempotency key always maps to."""
    raw = uuid.uuid5(IDEMPOTENCY_NAMESPACE, idempotency_key) if idempotency_key else uuid.uuid4()
    return f"{entity.prefix}-{raw.hex[:16]}"


def encode_cursor(last_key: dict[str, Any] | None) -> str | None:
    """Turn a LastEvaluatedKey into an opaque URL-safe cursor."""
    if not last_key:
        return None
    return base64.urlsafe_b64encode(json.dumps(last_key, separators=(",", ":")).encode()).decode()


def decode_cursor(cursor: str | None, key_names: set[str], pinned: dict[str, str] | None = None
                  ) -> dict[str, Any] | None:
    """Turn a cursor back into an ExclusiveStartKey, refusing anything that is not one of ours.

    A cursor must name exactly the keys of the table or index it pages through (`key_names`), each an
    id of ours, and agree with the `pinned` values of the query (the customer whose deals are listed).
    """
    if not cursor:
        return None
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, binascii.Error, UnicodeError, RecursionError):
        raise InvalidField("cursor", "not a valid cursor", "query") from None
    valid = (isinstance(key, dict) and set(key) == key_names
             and all(isinstance(v, dict) and set(v) == {"S"} and isinstance(v["S"], str) and ID_RE.match(v["S"])
                     for v in key.values())
             and all(key[name]["S"] == value for name, value in (pinned or {}).items()))
    if not valid:
        raise InvalidField("cursor", "not a valid cursor", "query")
    return key


def fingerprint(data: dict[str, Any]) -> str:
    """Return a digest of a create's data: the same data, whatever its key order, gives the same digest."""
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:32]


def to_item(data: dict[str, Any]) -> dict[str, Any]:
    """Serialise a plain dict into DynamoDB attribute values (floats as exact decimals)."""
    clean = {k: (Decimal(str(v)) if isinstance(v, float) else v) for k, v in data.items() if v is not None}
    return {k: _serializer.serialize(v) for k, v in clean.items()}


def from_item(item: dict[str, Any]) -> dict[str, Any]:
    """Deserialise a DynamoDB item into a plain dict (numbers as float)."""
    plain = {k: _deserializer.deserialize(v) for k, v in item.items()}
    return {k: float(v) if isinstance(v, Decimal) else v for k, v in plain.items()}


class Store:
    """The CRM's three tables, through one DynamoDB client per thread."""

    def __init__(self, settings: Settings, client_config=REQUEST_CONFIG) -> None:
        self.settings = settings
        self.client_config = client_config
        self.tables = {CUSTOMER: settings.customers_table, DEAL: settings.deals_table,
                       ACTIVITY: settings.activities_table}

    def client(self):
        """Return the process's DynamoDB client (made on first use)."""
        return dynamodb_client(self.settings.region, self.client_config)

    def call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        """Call DynamoDB, turning every failure but a failed condition into DatabaseError."""
        try:
            return call(self.client(), operation, **kwargs)
        except ClientError as exc:
            code = exc.response["Error"]["Code"]
            if code == "ConditionalCheckFailedException":
                raise
            raise self._database_error(operation, code, exc.response["Error"].get("Message", "")) from exc
        except BotoCoreError as exc:
            raise self._database_error(operation, type(exc).__name__, str(exc)) from exc

    def _database_error(self, operation: str, code: str, detail: str) -> DatabaseError:
        logger.error("DynamoDB %s failed: %s: %s", operation, code, detail, extra={"error_code": code})
        return DatabaseError(code, detail)

    # --- reads -------------------------------------------------------------------------------------

    def get(self, entity: Entity, entity_id: str) -> dict[str, Any]:
        """Return one item, or raise NotFound (at once for a string that is no id of ours)."""
        if not ID_RE.match(entity_id):
            raise NotFound(entity.name, entity_id)
        response = self.call("get_item", TableName=self.tables[entity],
                              Key={entity.key: {"S": entity_id}}, ConsistentRead=True)
        if "Item" not in response:
            raise NotFound(entity.name, entity_id)
        return from_item(response["Item"])

    def scan_page(self, entity: Entity, limit: int, cursor: str | None) -> Page:
        """Return one Scan page of a table: reads `limit` items, never the whole table."""
        kwargs: dict[str, Any] = {"TableName": self.tables[entity], "Limit": limit}
        start = decode_cursor(cursor, {entity.key})
        if start:
            kwargs["ExclusiveStartKey"] = start
        response = self.call("scan", **kwargs)
        return Page([from_item(i) for i in response.get("Items", [])],
                    encode_cursor(response.get("LastEvaluatedKey")),
                    {"calls": 1, "scanned": response.get("ScannedCount", 0)})

    def search_customers(self, prefix: str, limit: int, cursor: str | None) -> Page:
        """Find customers whose name starts with `prefix` (case-insensitive), with bounded reads.

        The spec gives the customers table no index on name, so this is a filtered Scan that reads at
        most MAX_SEARCH_CALLS pages per request and returns a cursor where it stopped.
        """
        kwargs: dict[str, Any] = {
            "TableName": self.tables[CUSTOMER], "Limit": SEARCH_PAGE_READ,
            "FilterExpression": "begins_with(name_lower, :p)",
            "ExpressionAttributeValues": {":p": {"S": prefix.lower()}},
        }
        start = decode_cursor(cursor, {CUSTOMER.key})
        found: list[dict[str, Any]] = []
        stats = {"calls": 0, "scanned": 0}
        while stats["calls"] < MAX_SEARCH_CALLS and len(found) < limit:
            if start:
                kwargs["ExclusiveStartKey"] = start
            response = self.call("scan", **kwargs)
            stats["calls"] += 1
            stats["scanned"] += response.get("ScannedCount", 0)
            found.extend(from_item(i) for i in response.get("Items", []))
            start = response.get("LastEvaluatedKey")
            if not start:
                break
        return Page(found, encode_cursor(start), stats)

    def for_customer(self, entity: Entity, customer_id: str, limit: int, cursor: str | None) -> Page:
        """Return one page of a customer's deals or activities (Query on customer-index)."""
        kwargs: dict[str, Any] = {
            "TableName": self.tables[entity], "IndexName": "customer-index", "Limit": limit,
            "KeyConditionExpression": "customer_id = :c",
            "ExpressionAttributeValues": {":c": {"S": customer_id}},
        }
        start = decode_cursor(cursor, {entity.key, "customer_id"}, {"customer_id": customer_id})
        if start:
            kwargs["ExclusiveStartKey"] = start
        response = self.call("query", **kwargs)
        items = sorted((from_item(i) for i in response.get("Items", [])),
                       key=lambda i: i.get("created_at", ""), reverse=True)
        return Page(items, encode_cursor(response.get("LastEvaluatedKey")),
                    {"calls": 1, "scanned": response.get("ScannedCount", 0)})

    # --- writes ------------------------------------------------------------------------------------

    def create(self, entity: Entity, data: dict[str, Any],
               idempotency_key: str | None = None) -> tuple[dict[str, Any], bool]:
        """Create an item with a new id; returns (item as stored, created). Never overwrites.

        A deal or activity must name an existing customer. With an idempotency key, repeating the
        create with the same data returns the item the first call made (created=False); the same key
        with other data raises IdempotencyConflict.
        """
        if entity is not CUSTOMER:
            self.require_customer(data["customer_id"])
        item = {**data, entity.key: new_id(entity, idempotency_key), "created_at": now_iso()}
        if entity is CUSTOMER:
            item["name_lower"] = item["name"].lower()
        if entity is ACTIVITY and not item.get("occurred_at"):
            item["occurred_at"] = item["created_at"]
        if idempotency_key:
            item["request_hash"] = fingerprint(data)
        stored = to_item(item)
        try:
            self.call("put_item", TableName=self.tables[entity], Item=stored,
                       ConditionExpression="attribute_not_exists(#k)",
                       ExpressionAttributeNames={"#k": entity.key})
        except ClientError:  # the condition failed: this id exists already
            if idempotency_key:
                return self._replay(entity, item), False
            raise DatabaseError("IdCollision", "generated id already exists") from None
        return from_item(stored), True

    def _replay(self, entity: Entity, item: dict[str, Any]) -> dict[str, Any]:
        """Return the item an earlier create with the same key made, if it was made from the same data."""
        first = self.get(entity, item[entity.key])
        if first.get("request_hash") != item["request_hash"]:
            raise IdempotencyConflict
        return first

    def require_customer(self, customer_id: str) -> None:
        """Raise UnknownReference unless the customer exists."""
        try:
            self.get(CUSTOMER, customer_id)
        except NotFound:
            raise UnknownReference("customer_id", f"customer {customer_id!r} does not exist") from None

    def update_customer(self, customer_id: str, data: dict[str, Any]) -> dict[str, Any]:
        """Replace a customer's editable fields; raise NotFound if it does not exist."""
        if not ID_RE.match(customer_id):
            raise NotFound(CUSTOMER.name, customer_id)
        fields = {k: v for k, v in data.items() if v is not None}
        fields.update(name_lower=data["name"].lower(), updated_at=now_iso())
        removed = [k for k, v in data.items() if v is None]
        names = {f"#f{i}": k for i, k in enumerate(fields)}
        values = to_item({f":v{i}": v for i, v in enumerate(fields.values())})
        expression = "SET " + ", ".join(f"#f{i} = :v{i}" for i in range(len(fields)))
        if removed:
            names.update({f"#r{i}": k for i, k in enumerate(removed)})
            expression += " REMOVE " + ", ".join(f"#r{i}" for i in range(len(removed)))
        try:
            response = self.call(
                "update_item", TableName=self.tables[CUSTOMER], Key={"customer_id": {"S": customer_id}},
                UpdateExpression=expression, ConditionExpression="attribute_exists(customer_id)",
                ExpressionAttributeNames=names, ExpressionAttributeValues=values, ReturnValues="ALL_NEW")
        except ClientError:
            raise NotFound("customer", customer_id) from None
        return from_item(response["Attributes"])

    def delete_customer(self, customer_id: str) -> None:
        """Delete a customer with its deals and activities; raise NotFound if it does not exist."""
        self.get(CUSTOMER, customer_id)
        for entity in (DEAL, ACTIVITY):
            cursor = None
            while True:
                page = self.for_customer(entity, customer_id, 100, cursor)
                self._batch_delete(entity, [i[entity.key] for i in page.items])
                cursor = page.next_cursor
                if not cursor:
                    break
        try:
            self.call("delete_item", TableName=self.tables[CUSTOMER], Key={"customer_id": {"S": customer_id}},
                       ConditionExpression="attribute_exists(customer_id)")
        except ClientError:
            raise NotFound("customer", customer_id) from None

    def _batch_delete(self, entity: Entity, ids: list[str]) -> None:
        """Delete items by id with BatchWriteItem, retrying what comes back unprocessed."""
        for start in range(0, len(ids), 25):
            requests = [{"DeleteRequest": {"Key": {entity.key: {"S": i}}}} for i in ids[start:start + 25]]
            self.batch_write(self.tables[entity], requests)

    def batch_write(self, table: str, requests: list[dict[str, Any]]) -> None:
        """Write up to 25 requests, resending unprocessed ones a few times before giving up."""
        for _ in range(5):
            response = self.call("batch_write_item", RequestItems={table: requests})
            requests = response.get("UnprocessedItems", {}).get(table, [])
            if not requests:
                return
        raise DatabaseError("UnprocessedItems", f"{len(requests)} writes to {table} left unprocessed")

    def ping(self) -> dict[str, str]:
        """Read one absent key from each table; map table name -> 'ok' or the error code."""
        result = {}
        for entity, table in self.tables.items():
            try:
                self.call("get_item", TableName=table, Key={entity.key: {"S": "__healthcheck__"}})
                result[table] = "ok"
            except DatabaseError as exc:
                result[table] = exc.aws_code
        return result
