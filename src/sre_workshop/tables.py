"""The five DynamoDB tables of the spec, with their exact key schemas and GSIs, in one place."""

from __future__ import annotations

from typing import Any

from .settings import TABLE_NAMES


def _key(name: str, kind: str = "S") -> dict[str, str]:
    return {"AttributeName": name, "AttributeType": kind}


def _customer_index() -> dict[str, Any]:
    return {"IndexName": "customer-index",
            "KeySchema": [{"AttributeName": "customer_id", "KeyType": "HASH"}],
            "Projection": {"ProjectionType": "ALL"}}


def table_definitions(names: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Return CreateTable arguments (on-demand) for the five tables."""
    names = {**TABLE_NAMES, **(names or {})}

    def table(env: str, keys: list[tuple[str, str, str]], gsis: list | None = None) -> dict[str, Any]:
        definition = {
            "TableName": names[env], "BillingMode": "PAY_PER_REQUEST",
            "KeySchema": [{"AttributeName": n, "KeyType": role} for n, _, role in keys],
            "AttributeDefinitions": [_key(n, kind) for n, kind, _ in keys],
        }
        if gsis:
            definition["AttributeDefinitions"].append(_key("customer_id"))
            definition["GlobalSecondaryIndexes"] = gsis
        return definition

    return [
        table("METRICS_TABLE", [("metric_id", "S", "HASH"), ("timestamp", "N", "RANGE")]),
        table("CUSTOMERS_TABLE", [("customer_id", "S", "HASH")]),
        table("DEALS_TABLE", [("deal_id", "S", "HASH")], [_customer_index()]),
        table("ACTIVITIES_TABLE", [("activity_id", "S", "HASH")], [_customer_index()]),
        table("INCIDENTS_TABLE", [("incident_id", "S", "HASH"), ("occurred_at", "N", "RANGE")]),
    ]


def create_tables(client, names: dict[str, str] | None = None) -> list[str]:
    """Create whichever of the five tables are missing; return the names created."""
    existing = set(client.list_tables().get("TableNames", []))
    created = []
    for definition in table_definitions(names):
        if definition["TableName"] not in existing:
            client.create_table(**definition)
            created.append(definition["TableName"])
    return created
