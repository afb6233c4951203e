"""The DynamoDB snapshot (local/snapshot.py) against moto in-process: a table missing from the engine keeps
its items from the last snapshot instead of failing the whole dump, and a restore can refill one table."""

from __future__ import annotations

import json
import os

import boto3
import pytest
from moto import mock_aws

from sre_workshop.errors import StateError
from sre_workshop.local import snapshot
from sre_workshop.tables import create_tables


@pytest.fixture
def client(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        create_tables(dynamodb)
        for i in range(3):
            dynamodb.put_item(TableName="CRMDealsTable", Item={"deal_id": {"S": f"d{i}"}})
        dynamodb.put_item(TableName="CRMCustomersTable", Item={"customer_id": {"S": "c1"}})
        yield dynamodb


def test_a_missing_table_keeps_its_items_from_the_last_snapshot(client, tmp_path):
    path = tmp_path / "dynamodb.json"
    assert snapshot.dump(client, path).counts["CRMDealsTable"] == 3
    client.delete_table(TableName="CRMDealsTable")
    client.delete_table(TableName="CRMCustomersTable")
    saved = json.loads(path.read_text())
    del saved["CRMCustomersTable"]  # as if it had never been saved
    path.write_text(json.dumps(saved))
    result = snapshot.dump(client, path)
    assert result.kept == {"CRMDealsTable": 3} and result.lost == ["CRMCustomersTable"]
    assert "CRMDealsTable" not in result.counts and len(json.loads(path.read_text())["CRMDealsTable"]) == 3


def test_restore_refills_only_the_tables_named(client, tmp_path):
    path = tmp_path / "dynamodb.json"
    snapshot.dump(client, path)
    client.delete_table(TableName="CRMDealsTable")
    client.delete_table(TableName="CRMCustomersTable")
    assert create_tables(client) == ["CRMCustomersTable", "CRMDealsTable"]
    assert snapshot.restore(client, snapshot.latest(path), ["CRMDealsTable"]) == {"CRMDealsTable": 3}
    assert client.scan(TableName="CRMCustomersTable")["Count"] == 0


def test_an_unreadable_snapshot_is_a_clear_error_for_restore_but_not_for_dump(client, tmp_path):
    path = tmp_path / "dynamodb.json"
    path.write_text("{not json")
    with pytest.raises(StateError, match="cannot be read"):
        snapshot.restore(client, path)
    client.delete_table(TableName="CRMDealsTable")
    assert snapshot.dump(client, path).lost == ["CRMDealsTable"]  # the save goes on; the rest is saved


def test_the_newest_snapshot_wins(tmp_path):
    path = tmp_path / "dynamodb.json"
    assert snapshot.latest(path) is None
    imported = path.with_suffix(snapshot.IMPORTED_SUFFIX)
    imported.write_text("{}")
    assert snapshot.latest(path) == imported
    path.write_text("{}")
    os.utime(imported, (1, 1))
    assert snapshot.latest(path) == path
