"""sre-app under real Gunicorn against moto's server over HTTP."""

from __future__ import annotations

import json
import os
import re
import signal
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import pytest

from sre_workshop.local.process import is_alive

from conftest import (
    create_tables,
    dynamodb,
    eventually,
    http,
    moto_spec,
    scan_all,
    start_server,
    wait_for_leak_settings,
)

TOKEN = "test-fault-token"


def rss_mb(pid: int) -> float:
    """Read a process's RSS from /proc (the kernel's number, not the app's)."""
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+) kB", f.read()).group(1)) / 1024


def test_root_answers_the_workshop_json(moto, start_app):
    app = start_app("sre_app", moto.url)
    reply = http("GET", app.url + "/")
    assert reply.status == 200
    body = reply.json()
    assert body["message"] == "SRE Workshop App"
    assert datetime.fromisoformat(body["timestamp"]).utcoffset() is not None  # unambiguous across machines
    assert isinstance(body["memory_leak_size_mb"], int | float)
    assert reply.headers["x-request-id"]


def test_health_is_shallow_and_deep_checks_dynamodb(moto, start_app):
    app = start_app("sre_app", moto.url)
    assert http("GET", app.url + "/health").json() == {"status": "healthy"}
    deep = http("GET", app.url + "/health?deep=1")
    assert deep.status == 200
    assert deep.json()["checks"]["dynamodb"]["status"] == "ok"



def test_leak_grows_with_traffic_by_default(moto, start_app):
    app = start_app("sre_app", moto.url, WEB_CONCURRENCY="1")
    first = http("GET", app.url + "/").json()["memory_leak_size_mb"]
    for _ in range(200):
        http("GET", app.url + "/")
    last = http("GET", app.url + "/").json()["memory_leak_size_mb"]
    assert last > first
    assert abs((last - first) - 201 * 16 / 1024) < 0.05  # 16 KB per request


def test_reported_leak_agrees_with_rss_growth(moto, start_app):
    app = start_app("sre_app", moto.url, WEB_CONCURRENCY="1", LEAK_KB_PER_REQUEST="1024", LEAK_CAP_MB="500")
    worker = http("GET", app.url + "/").json()["worker_pid"]
    before_rss, before_leak = rss_mb(worker), http("GET", app.url + "/").json()["memory_leak_size_mb"]
    for _ in range(150):
        reported = http("GET", app.url + "/").json()["memory_leak_size_mb"]
    grown_rss = rss_mb(worker) - before_rss
    grown_leak = reported - before_leak
    assert grown_leak == pytest.approx(150, abs=1)
    assert grown_rss == pytest.approx(grown_leak, rel=0.20)


def test_leak_stops_at_the_cap(moto, start_app):
    app = start_app("sre_app", moto.url, WEB_CONCURRENCY="1", LEAK_KB_PER_REQUEST="1024", LEAK_CAP_MB="20")
    for _ in range(40):
        reported = http("GET", app.url + "/").json()["memory_leak_size_mb"]
    assert reported == 20


def test_time_mode_leaks_without_traffic(moto, start_app):
    app = start_app("sre_app", moto.url, WEB_CONCURRENCY="1", LEAK_MODE="time", LEAK_MB_PER_MINUTE="600")
    eventually(lambda: http("GET", app.url + "/").json()["memory_leak_size_mb"] >= 20, timeout=10)





def leak_by_worker(url: str, requests: int) -> dict[int, float]:
    """GET / `requests` times from four clients at once, so that both sync workers take some: the leak
    size each worker reported last."""
    with ThreadPoolExecutor(4) as pool:
        bodies = list(pool.map(lambda _: http("GET", url + "/").json(), range(requests)))
    sizes: dict[int, float] = {}
    for body in bodies:
        sizes[body["worker_pid"]] = max(sizes.get(body["worker_pid"], 0), body["memory_leak_size_mb"])
    return sizes


def test_runtime_control_reaches_every_worker_and_release_frees_memory(moto, start_app):
    app = start_app("sre_app", moto.url, WEB_CONCURRENCY="2", FAULT_CONTROL_TOKEN=TOKEN, LEAK_MODE="off")
    wait_for_leak_settings(app.url, TOKEN, mode="off")  # both workers have booted
    auth = {"X-Fault-Token": TOKEN}
    reply = http("PUT", app.url + "/admin/leak", {"mode": "request", "kb_per_request": 512}, headers=auth)
    assert reply.json()["settings"]["kb_per_request"] == 512
    wait_for_leak_settings(app.url, TOKEN, mode="request", kb_per_request=512)
    sizes = leak_by_worker(app.url, 60)
    assert len(sizes) == 2, "both workers answered"
    assert sum(sizes.values()) == pytest.approx(60 * 0.5, abs=0.1)
    workers = list(sizes)
    before = sum(rss_mb(pid) for pid in workers)
    http("POST", app.url + "/admin/leak/release", headers=auth)
    wait_for_leak_settings(app.url, TOKEN, generation=1)
    assert sum(rss_mb(pid) for pid in workers) < before - 20
    http("PUT", app.url + "/admin/leak", {"mode": "off"}, headers=auth)
    wait_for_leak_settings(app.url, TOKEN, mode="off")
    assert {http("GET", app.url + "/").json()["memory_leak_size_mb"] for _ in range(10)} == {0}



def test_prometheus_metrics_add_up_across_workers(moto, start_app):
    app = start_app("sre_app", moto.url, WEB_CONCURRENCY="2")
    for _ in range(40):
        http("GET", app.url + "/")
    text = http("GET", app.url + "/metrics").text
    count = re.search(r'sre_app_http_requests_total\{endpoint="/",method="GET",status="200"\} (\S+)', text)
    assert count and float(count.group(1)) == 40
    assert "sre_app_memory_leak_bytes" in text
    assert 'sre_app_http_request_duration_seconds_bucket{endpoint="/",le="0.5"}' in text


def test_json_logs_carry_request_fields(moto, start_app):
    app = start_app("sre_app", moto.url)
    http("GET", app.url + "/", headers={"X-Request-ID": "trace-me-123"})
    log = app.spec.env["LOG_FILE"]

    def line():
        with open(log) as f:
            entries = [json.loads(raw) for raw in f]
        return next((e for e in entries if e.get("request_id") == "trace-me-123"), None)

    entry = eventually(line, timeout=5)
    assert entry["method"] == "GET" and entry["path"] == "/" and entry["status"] == 200
    assert {"time", "level", "logger", "message", "duration_ms"} <= set(entry)


def metric_items(moto_url: str) -> list[dict]:
    return [i for i in scan_all(dynamodb(moto_url), "ApplicationMetricsTable") if i["metric_id"]["S"] != "x"]


def test_interval_metrics_land_in_the_table_per_worker(own_moto, start_app):
    app = start_app("sre_app", own_moto.url, WEB_CONCURRENCY="2", METRICS_INTERVAL_SECONDS="1")
    for _ in range(30):
        http("GET", app.url + "/")
    items = eventually(lambda: [i for i in metric_items(own_moto.url) if int(i["request_count"]["N"])], timeout=10)
    item = items[0]
    assert item["metric_id"]["S"].startswith("sre-app#")
    for field in ("p50_ms", "p90_ms", "p99_ms", "rss_mb", "memory_leak_size_mb", "error_count"):
        assert field in item
    eventually(lambda: sum(int(i["request_count"]["N"]) for i in metric_items(own_moto.url)) == 30, timeout=10)


def test_no_metrics_are_lost_on_sigterm(own_moto, start_app):
    # A long interval: everything is still in memory when the master gets SIGTERM.
    app = start_app("sre_app", own_moto.url, WEB_CONCURRENCY="2", METRICS_INTERVAL_SECONDS="300")
    for _ in range(57):
        http("GET", app.url + "/")
    os.kill(app.record.pid, signal.SIGTERM)
    eventually(lambda: not is_alive(app.record), timeout=30)  # the master waits for its workers
    items = metric_items(own_moto.url)
    assert sum(int(i["request_count"]["N"]) for i in items) == 57


def test_metrics_survive_a_dynamodb_outage(tmp_path, start_app):
    spec = moto_spec(tmp_path)
    moto = start_server(spec)
    create_tables(dynamodb(moto.url))
    app = start_app("sre_app", moto.url, WEB_CONCURRENCY="1", METRICS_INTERVAL_SECONDS="1")
    moto.stop()
    for _ in range(25):
        assert http("GET", app.url + "/").status == 200  # the request path never waits on DynamoDB
    # A few intervals fail to write and stay buffered.
    eventually(lambda: Path(app.spec.env["LOG_FILE"]).read_text().count("metrics write failed") >= 2, timeout=15)
    moto = start_server(spec)  # same port, empty engine
    try:
        create_tables(dynamodb(moto.url))
        eventually(lambda: sum(int(i["request_count"]["N"]) for i in metric_items(moto.url)) == 25, timeout=40)
    finally:
        moto.stop()


def test_a_bad_setting_stops_the_server_with_one_line(moto, tmp_path):
    from sre_workshop.local.process import spawn, wait_ready

    from conftest import app_spec

    spec = app_spec("sre_app", tmp_path, moto.url, LEAK_MODE="sometimes")
    record = spawn(spec)
    assert not wait_ready(record, spec.ports, timeout=15)
    log = spec.log_path.read_text()
    assert "LEAK_MODE must be one of off, request, time" in log and "Traceback" not in log


def test_runtime_files_live_in_the_apps_runtime_directory_and_go_with_it(moto, start_app, tmp_path):
    run = tmp_path / "run"
    stale = run / "prometheus" / "counter_4242.db"  # left by a master that was killed
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"stale")
    before = set(Path("/dev/shm").glob("sre-app-*")) | set(Path(tempfile.gettempdir()).glob("sre-app-*"))
    app = start_app("sre_app", moto.url, SRE_APP_RUNTIME_DIR=str(run))
    for _ in range(5):
        http("GET", app.url + "/")
    assert not stale.exists() and list((run / "prometheus").glob("*.db"))
    count = re.search(r'sre_app_http_requests_total\{endpoint="/",method="GET",status="200"\} (\S+)',
                      http("GET", app.url + "/metrics").text)
    assert float(count.group(1)) == 5  # counted from zero, not from the stale files
    app.stop()
    assert not (run / "prometheus").exists()
    after = set(Path("/dev/shm").glob("sre-app-*")) | set(Path(tempfile.gettempdir()).glob("sre-app-*"))
    assert after <= before  # nothing of this app anywhere else


def test_an_app_started_without_a_runtime_directory_removes_the_one_it_made(moto, tmp_path):
    from sre_workshop.local.process import spawn, stop, wait_ready

    from conftest import app_spec

    spec = app_spec("sre_app", tmp_path, moto.url)
    del spec.env["SRE_APP_RUNTIME_DIR"]  # as someone starting Gunicorn by hand would
    before = set(Path(tempfile.gettempdir()).glob("sre-app-*"))
    record = spawn(spec)
    assert wait_ready(record, spec.ports, timeout=30)
    made = eventually(lambda: set(Path(tempfile.gettempdir()).glob("sre-app-*")) - before, timeout=10)
    assert http("GET", f"http://127.0.0.1:{spec.ports[0]}/").status == 200
    stop(record, timeout=spec.stop_timeout)
    assert not any(path.exists() for path in made)


def test_stopping_while_dynamodb_is_away_takes_seconds_not_ten(tmp_path, start_app):
    moto = start_server(moto_spec(tmp_path))
    create_tables(dynamodb(moto.url))
    app = start_app("sre_app", moto.url, WEB_CONCURRENCY="2", METRICS_INTERVAL_SECONDS="300")
    for _ in range(10):
        http("GET", app.url + "/")
    moto.stop()
    started = time.monotonic()
    os.kill(app.record.pid, signal.SIGTERM)
    eventually(lambda: not is_alive(app.record), timeout=30)
    assert time.monotonic() - started < 6  # the final flush gives up after METRICS_FINAL_FLUSH_SECONDS (3)
    log = app.log.read_text() + Path(app.spec.env["LOG_FILE"]).read_text()
    assert "metric intervals unwritten" in log
