"""The apps' fault controls under real Gunicorn (2 sync workers) against moto's server, and the shell script
that drives them."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from sre_workshop.local.process import free_port

from conftest import ROOT, Server, app_spec, dynamodb, eventually, http, scan_all, start_server

TOKEN = "integration-fault-token"
AUTH = {"X-Fault-Token": TOKEN}
DEFAULTS = {"latency_ms": 0, "latency_fraction": 1.0, "error_rate": 0.0, "health": "ok"}
SCRIPT = ROOT / "src" / "sre_workshop" / "steps" / "app-faults.sh"
TELLTALES = ("chaos", "fault", "inject", "simulat", "deliberate")
# A path of each app that does real work (the CRM's reads DynamoDB).
WORK_PATH = {"sre_app": "/", "crm_app": "/api/customers?limit=2"}
RUNTIME_VAR = {"sre_app": "SRE_APP_RUNTIME_DIR", "crm_app": "CRM_APP_RUNTIME_DIR"}


def start(package: str, tmp: Path, moto_url: str) -> Server:
    """Start `package` under Gunicorn with fault control on and its runtime directory in `tmp`."""
    env = {"FAULT_CONTROL_TOKEN": TOKEN, RUNTIME_VAR[package]: str(tmp / "run"), "METRICS_INTERVAL_SECONDS": "1",
           "LEAK_MODE": "off"}
    return start_server(app_spec(package, tmp, moto_url, **env))


@pytest.fixture(scope="module", params=["sre_app", "crm_app"])
def app(request, moto, tmp_path_factory) -> Iterator[tuple[str, Server]]:
    """Each app once for the module; the tests reset its faults."""
    package = request.param
    server = start(package, tmp_path_factory.mktemp(package), moto.url)
    yield package, server
    server.stop()


@pytest.fixture(autouse=True)
def steady(request) -> Iterator[None]:
    """Start and end every test that uses an app with every fault off in every worker."""
    if "app" not in request.fixturenames:
        yield
        return
    _, server = request.getfixturevalue("app")
    http("DELETE", server.url + "/admin/faults", headers=AUTH)
    wait_for_settings(server.url, DEFAULTS)
    yield
    http("DELETE", server.url + "/admin/faults", headers=AUTH)


def settings_by_worker(url: str) -> dict[int, dict]:
    """Ask the fault API eight times over four connections at once, so every sync worker answers."""
    with ThreadPoolExecutor(4) as pool:
        replies = list(pool.map(lambda _: http("GET", url + "/admin/faults", headers=AUTH), range(8)))
    return {r.json()["worker"]["pid"]: r.json()["settings"] for r in replies if r.status == 200}


def wait_for_settings(url: str, expected: dict, workers: int = 2, timeout: float = 10) -> float:
    """Wait until each of the app's workers applies `expected`; return the seconds it took."""
    started = time.monotonic()
    seen: dict[int, dict] = {}

    def applied() -> bool:
        seen.update(settings_by_worker(url))
        return len(seen) == workers and all(s == expected for s in seen.values())

    eventually(applied, timeout=timeout, interval=0.02)
    return time.monotonic() - started


def put(url: str, changes: dict) -> dict:
    """Change the faults through one worker and wait until every worker applies them; return them."""
    reply = http("PUT", url + "/admin/faults", changes, headers=AUTH)
    assert reply.status == 200, reply.text
    wait_for_settings(url, reply.json()["settings"])
    return reply.json()["settings"]


def get_many(url: str, count: int, clients: int = 4) -> list:
    """Send `count` GETs over `clients` connections at once (so both workers serve some)."""
    with ThreadPoolExecutor(clients) as pool:
        return list(pool.map(lambda i: http("GET", url, headers={"X-Request-ID": f"many-{i}"}), range(count)))


def log_entries(server: Server) -> list[dict]:
    """Return the app's JSON log lines."""
    path = Path(server.spec.env["LOG_FILE"])
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_every_worker_applies_a_change_within_a_second(app):
    _, server = app
    changes = {"latency_ms": 1, "latency_fraction": 0.25, "error_rate": 0.125}
    reply = http("PUT", server.url + "/admin/faults", changes, headers=AUTH)
    assert reply.status == 200
    took = wait_for_settings(server.url, {**DEFAULTS, **changes})
    assert took < 1.5, f"the workers took {took:.2f} s to apply the change"


def test_error_rate_one_answers_500s_logged_at_error_like_real_errors(app):
    package, server = app
    put(server.url, {"error_rate": 1})
    replies = get_many(server.url + WORK_PATH[package], 12)
    assert [r.status for r in replies] == [500] * 12
    assert all(r.headers["content-type"].startswith("application/json") for r in replies)
    ids = {f"many-{i}" for i in range(12)}

    def logged() -> list[dict]:
        entries = log_entries(server)
        access = [e for e in entries if e.get("request_id") in ids and "status" in e]
        return entries if len(access) == 12 else []

    entries = eventually(logged)
    assert {e["status"] for e in entries if e.get("request_id") in ids and "status" in e} == {500}
    errors = [e for e in entries if e["level"] == "ERROR"]
    assert len(errors) == 12 and all("Traceback" in e["exception"] for e in errors)
    if package == "sre_app":  # its handler tags the error with the request id, as it does for every error
        assert {e["request_id"] for e in errors} == ids
    text = json.dumps(entries).replace(str(ROOT), "").lower().replace("/admin/faults", "")
    assert not [word for word in TELLTALES if word in text]
    assert http("GET", server.url + "/health").status == 200  # the target stays healthy: only requests fail


def test_failed_requests_count_in_sre_apps_metrics(moto, tmp_path):
    server = start("sre_app", tmp_path, moto.url)
    try:
        put(server.url, {"error_rate": 1})
        pids: set[int] = set()  # both workers' (eight answers can all come from one when the machine is busy)
        eventually(lambda: pids.update(settings_by_worker(server.url)) or len(pids) == 2, timeout=10, interval=0.02)
        get_many(server.url + "/", 10)
        metrics = http("GET", server.url + "/metrics").text
    finally:
        server.stop()  # its workers flush their last metrics interval on the way out
    counted = re.search(r'sre_app_http_requests_total\{endpoint="/",method="GET",status="500"\} (\S+)', metrics)
    assert counted and float(counted.group(1)) == 10
    items = scan_all(dynamodb(moto.url), "ApplicationMetricsTable")
    assert sum(int(i["error_count"]["N"]) for i in items
               if i["metric_id"]["S"].startswith("sre-app#") and int(i["pid"]["N"]) in pids) == 10


def test_the_control_is_never_failed_however_its_path_is_spelled(app):
    _, server = app
    put(server.url, {"error_rate": 1, "latency_ms": 2000})
    for path in ("/admin/faults", "//admin/faults", "/%61dmin/faults"):  # Gunicorn decodes, Werkzeug merges
        started = time.perf_counter()
        reply = http("GET", server.url + path, headers=AUTH)
        assert reply.status == 200 and reply.json()["settings"]["error_rate"] == 1.0
        assert time.perf_counter() - started < 2


def test_latency_shows_in_response_times_but_not_on_health(app):
    package, server = app
    put(server.url, {"latency_ms": 400})
    started = time.perf_counter()
    assert http("GET", server.url + WORK_PATH[package]).status == 200
    assert time.perf_counter() - started >= 0.4
    started = time.perf_counter()
    assert http("GET", server.url + "/health").status == 200
    assert time.perf_counter() - started < 0.4
    slow = eventually(lambda: [e for e in log_entries(server) if e.get("path") == WORK_PATH[package].split("?")[0]
                               and e.get("duration_ms", 0) >= 400])
    assert slow[-1]["status"] == 200


def test_health_fail_answers_503_on_every_worker(app):
    package, server = app
    put(server.url, {"health": "fail"})
    replies = get_many(server.url + "/health", 8)
    assert {r.status for r in replies} == {503}
    assert all(r.json()["status"] == "unhealthy" for r in replies)
    assert http("GET", server.url + WORK_PATH[package]).status == 200


def test_delete_restores_exactly(app):
    package, server = app
    put(server.url, {"latency_ms": 300, "latency_fraction": 0.5, "error_rate": 0.5, "health": "fail"})
    reply = http("DELETE", server.url + "/admin/faults", headers=AUTH)
    assert reply.status == 200 and reply.json()["settings"] == DEFAULTS
    wait_for_settings(server.url, DEFAULTS)
    control = Path(server.spec.env[RUNTIME_VAR[package]]) / "fault-control.json"
    assert json.loads(control.read_text()) == DEFAULTS
    started = time.perf_counter()
    replies = get_many(server.url + WORK_PATH[package], 16)
    assert {r.status for r in replies} == {200}
    assert time.perf_counter() - started < 0.3 * 16 / 4  # not one of them delayed by 300 ms
    assert {r.status for r in get_many(server.url + "/health", 8)} == {200}


def test_a_restarted_app_starts_without_faults(moto, tmp_path):
    server = start("crm_app", tmp_path, moto.url)
    try:
        put(server.url, {"health": "fail"})
    finally:
        server.stop()
    server = start("crm_app", tmp_path, moto.url)  # same runtime directory, as a local restart keeps it
    try:
        assert all(s == DEFAULTS for s in settings_by_worker(server.url).values())
        assert http("GET", server.url + "/health").status == 200
    finally:
        server.stop()


def run_script(*args: str, path: str | None = None) -> subprocess.CompletedProcess:
    """Run app-faults.sh under the POSIX shell."""
    env = {"PATH": path or os.environ["PATH"]}
    return subprocess.run(["sh", str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=60,
                          check=False)


@pytest.fixture
def token_file(tmp_path) -> Path:
    path = tmp_path / "fault-token"
    path.write_text(TOKEN + "\n")
    path.chmod(0o600)
    return path


def test_the_script_puts_gets_and_deletes(app, token_file):
    package, server = app
    port = str(server.port)
    done = run_script(port, str(token_file), "put", '{"error_rate": 1, "latency_ms": 5}')
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["settings"] == {**DEFAULTS, "error_rate": 1.0, "latency_ms": 5}
    wait_for_settings(server.url, {**DEFAULTS, "error_rate": 1.0, "latency_ms": 5})
    assert http("GET", server.url + WORK_PATH[package]).status == 500
    shown = run_script(port, str(token_file), "get")
    assert shown.returncode == 0 and json.loads(shown.stdout)["settings"]["error_rate"] == 1.0
    cleared = run_script(port, str(token_file), "delete")
    assert cleared.returncode == 0 and json.loads(cleared.stdout)["settings"] == DEFAULTS
    wait_for_settings(server.url, DEFAULTS)
    assert http("GET", server.url + WORK_PATH[package]).status == 200


def test_the_script_fails_with_one_line(app, token_file, tmp_path):
    _, server = app
    port = str(server.port)
    wrong = tmp_path / "wrong-token"
    wrong.write_text("not-the-token")
    cases = [
        ((port, str(token_file), "put", '{"error_rate": 2}'), 1, "error_rate"),
        ((port, str(token_file), "put", '{"nonsense": 1}'), 1, "nonsense"),
        ((port, str(wrong), "get"), 1, "401"),
        ((str(free_port()), str(token_file), "get"), 1, "failed"),  # nothing listens there
        ((port, str(tmp_path / "missing"), "get"), 2, "token file"),
        ((port, str(token_file), "post", "{}"), 2, "unknown action"),
        ((port, str(token_file), "put"), 2, "JSON"),
        (("80a", str(token_file), "get"), 2, "PORT"),
        ((port,), 2, "usage"),
    ]
    for args, status, words in cases:
        done = run_script(*args)
        assert done.returncode == status, (args, done.stderr)
        assert done.stdout == "" and done.stderr.count("\n") == 1 and words in done.stderr, (args, done.stderr)
    assert settings_by_worker(server.url) and all(s == DEFAULTS for s in settings_by_worker(server.url).values())


def test_the_script_never_puts_the_token_on_a_command_line(app, token_file, tmp_path):
    _, server = app
    spy = tmp_path / "bin"
    spy.mkdir()
    real_curl = subprocess.run(["sh", "-c", "command -v curl"], capture_output=True, text=True, check=True).stdout
    (spy / "curl").write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" >> "{tmp_path}/argv"\nexec {real_curl.strip()} "$@"\n')
    (spy / "curl").chmod(0o755)
    done = run_script(str(server.port), str(token_file), "put", '{"latency_ms": 1}', path=f"{spy}:/usr/bin:/bin")
    assert done.returncode == 0, done.stderr
    argv = (tmp_path / "argv").read_text()
    assert "/admin/faults" in argv and TOKEN not in argv

