"""sre-app's HTTP behaviour in process: the workshop JSON, health, the fault control's token and validation,
JSON errors, and settings taken as given."""

from __future__ import annotations

import pytest

from sre_app.app import create_app
from sre_app.config import Settings

TOKEN = "unit-fault-token"  # the token of the sre_app fixture (tests/unit/conftest.py)
AUTH = {"X-Fault-Token": TOKEN}


def test_root_answers_the_workshop_json(sre_client):
    body = sre_client.get("/").json
    assert body["message"] == "SRE Workshop App" and body["memory_leak_size_mb"] >= 0


def test_health_is_shallow(sre_client):
    assert sre_client.get("/health").json == {"status": "healthy"}


def test_deep_health_reads_the_table(aws, sre_client):
    deep = sre_client.get("/health?deep=1")
    assert deep.status_code == 200 and deep.json["checks"]["dynamodb"]["status"] == "ok"


def test_deep_health_names_a_missing_table(aws, tmp_path):
    client = create_app(Settings(metrics_table="NoSuchTable", log_file=str(tmp_path / "log"))).test_client()
    deep = client.get("/health?deep=1")
    assert deep.status_code == 503 and deep.json["checks"]["dynamodb"]["code"] == "ResourceNotFoundException"
    assert client.get("/health").status_code == 200


def test_fault_control_is_absent_without_a_token(tmp_path):
    client = create_app(Settings(log_file=str(tmp_path / "log"))).test_client()
    assert client.get("/admin/leak").status_code == 404
    assert client.put("/admin/leak", json={"mode": "off"}).status_code == 404


def test_fault_control_requires_the_token(sre_client):
    assert sre_client.get("/admin/leak").status_code == 401
    assert sre_client.get("/admin/leak", headers={"X-Fault-Token": "wrong"}).status_code == 401
    assert sre_client.get("/admin/leak", headers={"X-Fault-Token": TOKEN + "x"}).status_code == 401
    assert sre_client.get("/admin/leak", headers=AUTH).status_code == 200


@pytest.mark.parametrize(("body", "field"), [
    ({"mode": "sometimes"}, "mode"), ({"kb_per_request": -1}, "kb_per_request"),
    ({"cap_mb": "big"}, "cap_mb"), ({"colour": "red"}, "colour"), ([1, 2], "body"),
])
def test_fault_control_rejects_bad_settings_naming_the_field(sre_client, body, field):
    reply = sre_client.put("/admin/leak", json=body, headers=AUTH)
    assert reply.status_code == 400 and reply.json["field"] == field


def test_fault_control_changes_and_releases_the_leak(sre_client):
    for _ in range(3):
        sre_client.get("/")
    assert sre_client.put("/admin/leak", json={"mode": "off"}, headers=AUTH).json["settings"]["mode"] == "off"
    released = sre_client.post("/admin/leak/release", headers=AUTH).json
    assert released["settings"]["generation"] == 1
    assert sre_client.get("/").json["memory_leak_size_mb"] == 0


def test_unknown_path_is_a_json_404(sre_client):
    reply = sre_client.get("/no/such/page")
    assert reply.status_code == 404 and reply.json["error"] == "not_found"


def test_wrong_method_is_a_json_405(sre_client):
    reply = sre_client.post("/health")
    assert reply.status_code == 405 and reply.json["error"] == "method_not_allowed"


def test_metrics_in_one_process_count_requests(sre_client):
    for _ in range(3):
        sre_client.get("/")
    text = sre_client.get("/metrics").text
    assert 'sre_app_http_requests_total{endpoint="/",method="GET",status="200"} 3.0' in text


def test_create_app_with_settings_reads_no_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("LEAK_MODE", "sometimes")  # would fail Settings.from_env()
    monkeypatch.setenv("FAULT_CONTROL_TOKEN", "from-the-environment")
    client = create_app(Settings(log_file=str(tmp_path / "log"))).test_client()
    assert client.get("/admin/leak", headers={"X-Fault-Token": "from-the-environment"}).status_code == 404
