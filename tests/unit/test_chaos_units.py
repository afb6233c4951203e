"""The apps' fault controls in process (Flask test client): validation, token, merge, reset and effects.

(Named _units: tests/integration/test_chaos.py has the plain name, and pytest needs distinct module names.)
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

import pytest

from appkit.chaos import FaultControl, FaultSettings, FaultSettingsError
from appkit.jsonlog import JsonFormatter
from crm_app.app import create_app as _create_crm
from crm_app.config import Settings as CRMSettings
from sre_app.app import create_app as _create_sre
from sre_app.config import Settings as SreSettings

ROOT = Path(__file__).resolve().parents[2]


def create_sre(config: dict):
    """sre-app from explicit settings (create_app reads no environment when given them)."""
    return _create_sre(SreSettings(**config))


def create_crm(config: dict):
    """crm-app from explicit settings."""
    return _create_crm(CRMSettings(**config))
TOKEN = "unit-test-token"
AUTH = {"X-Fault-Token": TOKEN}
DEFAULTS = {"latency_ms": 0, "latency_fraction": 1.0, "error_rate": 0.0, "health": "ok"}
# Words that would tell a reader of the logs that a failure was made on purpose.
TELLTALES = ("chaos", "fault", "inject", "simulat", "deliberate")


@pytest.fixture(params=["sre_app", "crm_app"])
def app(request, tmp_path):
    """Each app with fault control on, its settings shared through a control file in tmp_path."""
    create = create_sre if request.param == "sre_app" else create_crm
    config = {"fault_control_token": TOKEN, "runtime_dir": str(tmp_path), "log_file": str(tmp_path / "app.log")}
    if request.param == "sre_app":
        config["leak_mode"] = "off"
    yield create(config)
    close_log_handlers()


def close_log_handlers() -> None:
    """Close the JSON log handlers create_app added to the root logger (it replaces them without closing)."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h.formatter, JsonFormatter)]:
        root.removeHandler(handler)
        handler.close()


@pytest.fixture
def client(app):
    return app.test_client()


def log_entries(tmp_path) -> list[dict]:
    """Return the app's JSON log lines."""
    return [json.loads(line) for line in (tmp_path / "app.log").read_text().splitlines()]


def is_sre(app) -> bool:
    return app.name.startswith("sre_app")


def test_without_a_token_there_is_no_fault_api(tmp_path):
    for create in (create_sre, create_crm):
        client = create({"runtime_dir": str(tmp_path)}).test_client()
        assert client.get("/admin/faults", headers=AUTH).status_code == 404
    close_log_handlers()


@pytest.mark.parametrize("headers", [{}, {"X-Fault-Token": "wrong"}, {"X-Fault-Token": TOKEN + "x"}])
def test_a_missing_or_wrong_token_is_refused(client, headers):
    for method in ("get", "put", "delete"):
        reply = getattr(client, method)("/admin/faults", headers=headers, json={"error_rate": 1})
        assert reply.status_code == 401 and reply.json["error"] == "unauthorized"
    assert client.get("/admin/faults", headers=AUTH).json["settings"] == DEFAULTS


def test_requests_that_came_through_a_proxy_get_the_apps_own_404(client):
    for header in ("X-Forwarded-For", "Forwarded"):
        reply = client.put("/admin/faults", headers={**AUTH, header: "203.0.113.9"}, json={"error_rate": 1})
        assert reply.status_code == 404
        assert reply.data == client.get("/no-such-page").data  # indistinguishable from a path it does not have
    assert client.get("/admin/faults", headers=AUTH).json["settings"] == DEFAULTS


def test_get_shows_the_settings_and_the_workers_pid(client):
    body = client.get("/admin/faults", headers=AUTH).json
    assert body == {"settings": DEFAULTS, "worker": {"pid": os.getpid()}}


def test_put_merges_and_delete_turns_everything_off(client):
    client.put("/admin/faults", headers=AUTH, json={"latency_ms": 5})
    reply = client.put("/admin/faults", headers=AUTH, json={"error_rate": 0.25, "health": "fail"})
    assert reply.status_code == 200
    expected = {**DEFAULTS, "latency_ms": 5, "error_rate": 0.25, "health": "fail"}
    assert reply.json["settings"] == expected
    assert client.get("/admin/faults", headers=AUTH).json["settings"] == expected
    reply = client.delete("/admin/faults", headers=AUTH)
    assert reply.status_code == 200 and reply.json["settings"] == DEFAULTS
    assert client.get("/admin/faults", headers=AUTH).json["settings"] == DEFAULTS


@pytest.mark.parametrize(("body", "field"), [
    ({"latency_ms": -1}, "latency_ms"), ({"latency_ms": 60_001}, "latency_ms"), ({"latency_ms": 1.5}, "latency_ms"),
    ({"latency_ms": "200"}, "latency_ms"), ({"latency_ms": True}, "latency_ms"), ({"latency_ms": None}, "latency_ms"),
    ({"latency_fraction": 1.01}, "latency_fraction"), ({"error_rate": -0.1}, "error_rate"),
    ({"error_rate": "0.5"}, "error_rate"), ({"health": "bad"}, "health"), ({"health": None}, "health"),
    ({"crash": True}, "crash"), ([1, 2], "body"), ("text", "body"), (None, "body"),
])
def test_bad_input_is_a_400_naming_the_field_and_changes_nothing(client, body, field):
    client.put("/admin/faults", headers=AUTH, json={"latency_ms": 7})
    data = json.dumps(body) if body is not None else "{not json"
    reply = client.put("/admin/faults", headers=AUTH, data=data, content_type="application/json")
    assert reply.status_code == 400
    assert reply.json["error"] == "invalid_field" and reply.json["field"] == field and reply.json["message"]
    assert client.get("/admin/faults", headers=AUTH).json["settings"] == {**DEFAULTS, "latency_ms": 7}


@pytest.mark.parametrize("raw", ['{"latency_ms": NaN}', '{"latency_ms": Infinity}', '{"error_rate": NaN}',
                                 '{"error_rate": 0.5, "latency_ms": 2}x'])
def test_non_finite_numbers_and_broken_json_are_refused(client, raw):
    reply = client.put("/admin/faults", headers=AUTH, data=raw, content_type="application/json")
    assert reply.status_code == 400 and reply.json["field"] in ("latency_ms", "error_rate", "body")
    assert client.get("/admin/faults", headers=AUTH).json["settings"] == DEFAULTS


def test_a_bad_field_beside_good_ones_writes_nothing(client):
    reply = client.put("/admin/faults", headers=AUTH, json={"latency_ms": 5, "error_rate": 2})
    assert reply.status_code == 400 and reply.json["field"] == "error_rate"
    assert client.get("/admin/faults", headers=AUTH).json["settings"] == DEFAULTS


def test_error_rate_answers_the_apps_own_500_and_logs_it_like_a_real_error(app, client, tmp_path):
    path = "/" if is_sre(app) else "/api/customers"
    client.put("/admin/faults", headers=AUTH, json={"error_rate": 1})
    reply = client.get(path, headers={"X-Request-ID": "req-err-1"})
    assert reply.status_code == 500 and reply.is_json and reply.json["error"].startswith("internal")
    entries = log_entries(tmp_path)
    errors = [e for e in entries if e["level"] == "ERROR"]
    assert len(errors) == 1 and "Traceback" in errors[0]["exception"]
    assert any(e.get("status") == 500 and e.get("path") == path and e["request_id"] == "req-err-1" for e in entries)
    # Without the checkout's path (this one is named wt-chaos) and the control API's own access lines.
    text = json.dumps(entries).replace(str(ROOT), "").lower().replace("/admin/faults", "")
    assert not [word for word in TELLTALES if word in text]


def test_a_path_the_app_does_not_have_stays_a_404_under_error_rate(client):
    client.put("/admin/faults", headers=AUTH, json={"error_rate": 1})
    assert client.get("/no-such-page").status_code == 404


def test_error_rate_fails_about_that_fraction(client):
    client.put("/admin/faults", headers=AUTH, json={"error_rate": 0.5})
    path = "/" if is_sre(client.application) else "/openapi.json"
    statuses = [client.get(path).status_code for _ in range(200)]
    assert set(statuses) == {200, 500}
    assert 60 <= statuses.count(500) <= 140  # binomial(200, 0.5): outside this once in ~10^8 runs


def test_health_fail_answers_503_unhealthy_and_spares_everything_else(app, client):
    client.put("/admin/faults", headers=AUTH, json={"health": "fail"})
    for path in ("/health", "/health?deep=1"):
        reply = client.get(path)
        assert reply.status_code == 503 and reply.json["status"] == "unhealthy"
    assert client.get("/" if is_sre(app) else "/openapi.json").status_code == 200
    client.delete("/admin/faults", headers=AUTH)
    assert client.get("/health").json == {"status": "healthy"}


def test_latency_delays_requests_but_not_health_or_the_control(client):
    client.put("/admin/faults", headers=AUTH, json={"latency_ms": 300, "error_rate": 1})

    def seconds(method, path, **kwargs):
        started = time.perf_counter()
        getattr(client, method)(path, **kwargs)
        return time.perf_counter() - started

    assert seconds("get", "/no-such-page") >= 0.3
    assert seconds("get", "/health") < 0.3
    assert seconds("get", "/admin/faults", headers=AUTH) < 0.3  # never delayed nor failed: the way back
    assert seconds("delete", "/admin/faults", headers=AUTH) < 0.3
    assert seconds("get", "/no-such-page") < 0.3


def test_the_crms_openapi_document_still_builds_and_leaves_the_control_out(tmp_path):
    client = create_crm({"fault_control_token": TOKEN, "runtime_dir": str(tmp_path)}).test_client()
    reply = client.get("/openapi.json")
    close_log_handlers()
    assert reply.status_code == 200 and "/api/customers" in reply.json["paths"]
    assert not [path for path in reply.json["paths"] if "admin" in path]


def test_latency_fraction_zero_delays_nothing():
    assert not FaultSettings(latency_ms=500, latency_fraction=0).active
    assert FaultSettings(latency_ms=500).active and not FaultSettings().active


def test_workers_share_settings_through_the_control_file(tmp_path):
    path = str(tmp_path / "fault-control.json")
    one, two = FaultControl(path), FaultControl(path)
    one.change(lambda s: s.updated({"error_rate": 0.5}))
    two.change(lambda s: s.updated({"latency_ms": 10}))  # merged with the other worker's change, not over it
    one._next_sync = 0  # as if the sync interval had passed
    assert one.current() == two.current() == FaultSettings(latency_ms=10, error_rate=0.5)


def test_a_missing_control_file_means_everything_off_and_a_broken_one_is_ignored(tmp_path):
    path = tmp_path / "fault-control.json"
    control = FaultControl(str(path))
    control.change(lambda s: s.updated({"health": "fail"}))
    path.write_text('{"health": "maybe"}')
    control._next_sync = 0
    assert control.current().health == "fail"  # unreadable: keep what applies
    path.unlink()
    control._next_sync = 0
    assert control.current() == FaultSettings()


def test_a_worker_reads_the_file_at_most_once_per_sync_interval(tmp_path):
    path = tmp_path / "fault-control.json"
    control = FaultControl(str(path))
    control.current()
    path.write_text(json.dumps({**DEFAULTS, "error_rate": 1.0}))
    assert control.current().error_rate == 0  # not yet: the next read is due within SYNC_SECONDS
    control._next_sync = 0
    assert control.current().error_rate == 1.0


def test_settings_errors_name_their_field():
    with pytest.raises(FaultSettingsError) as caught:
        FaultSettings().updated({"health": "ok", "latency_ms": 99_999})
    assert caught.value.field == "latency_ms"


def test_the_crms_fault_control_answers_while_slow_requests_hold_every_admission_slot(tmp_path):
    """A delay of many seconds fills the CRM's admission slots with users' requests; the instance's own
    control (to read it or put it back) must not queue behind them and be refused as busy."""
    import threading

    app = create_crm({"fault_control_token": TOKEN, "runtime_dir": str(tmp_path), "log_file": str(tmp_path / "log"),
                      "max_active": 1, "max_waiting": 0})
    try:
        client = app.test_client()
        assert client.put("/admin/faults", headers=AUTH, json={"latency_ms": 1500}).status_code == 200
        done = threading.Event()

        def user() -> None:  # slow requests, one after another
            while not done.is_set():
                app.test_client().get("/api/customers")

        slow = threading.Thread(target=user)
        slow.start()
        deadline = time.monotonic() + 10  # until a slow request holds the only slot
        while client.get("/api/customers").status_code != 503:  # a user's request is refused as busy ...
            assert time.monotonic() < deadline
        assert client.get("/admin/faults", headers=AUTH).status_code == 200  # ... the control is not
        assert client.put("/admin/faults", headers=AUTH, json={"latency_ms": 0}).status_code == 200
        done.set()
        slow.join()
    finally:
        close_log_handlers()
