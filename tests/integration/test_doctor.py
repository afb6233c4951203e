"""doctor on the local stack: each fault's ground truth is its top finding, breakage made by hand is found
just as well, a healthy stack under load is healthy every time, and the report renders with data."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By

from sre_workshop.faults.catalogue import catalogue
from sre_workshop.local.process import ProcessRecord, group_members
from sre_workshop.settings import BASE_PORTS

from conftest import cli, eventually, http, local_stack, port_offset

OFFSET = port_offset(900)
APP = f"http://127.0.0.1:{BASE_PORTS['public-alb'] + OFFSET}"
CRM = f"http://127.0.0.1:{BASE_PORTS['public-alb-crm'] + OFFSET}"



def doctor(state: Path, capsys) -> dict:
    capsys.readouterr()
    code = cli(state, "doctor", "--json")
    report = json.loads(capsys.readouterr().out)
    assert code == (0 if report["healthy"] else 1)
    return report


def top(state: Path, capsys) -> tuple[str, str] | None:
    findings = doctor(state, capsys)["findings"]
    return (findings[0]["component"], findings[0]["category"]) if findings else None


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with local_stack(tmp_path_factory, "doctor", OFFSET) as state:
        yield state


@pytest.fixture
def steady(stack, monkeypatch, capsys):
    """Steady state, and doctor agreeing (once the last fault's log lines left its window)."""
    monkeypatch.setenv("SRE_WORKSHOP_PORT_OFFSET", str(OFFSET))
    assert cli(stack, "fault", "clear", "--all") == 0
    eventually(lambda: top(stack, capsys) is None, timeout=HEALTHY_AGAIN_S, interval=1)
    yield stack
    assert cli(stack, "fault", "clear", "--all") == 0


def truth(name: str) -> tuple[str, str]:
    fault = catalogue()[name]
    gt = fault.ground_truth(fault.defaults())
    return gt.component, gt.category


# doctor reads the last 20 s of logs: a cleared fault's error lines age out of its window within that.
HEALTHY_AGAIN_S = 35
# memory-leak: three 10 s metric intervals, with a margin; cpu-burn: its burners count once they have burned
# for 10 s (readers.BURNER_MIN_AGE_S); the others show at once.
DETECT_WITHIN = {"memory-leak": 60, "cpu-burn": 30}


@pytest.mark.parametrize("name", ["app-crash", "bad-config-deploy", "cpu-burn", "dynamodb-access-denied",
                                  "error-rate", "health-check-fail", "latency", "memory-leak", "nginx-bad-upstream",
                                  "nginx-crash", "nginx-timeout", "security-group-block"])
def test_the_top_finding_names_the_faults_ground_truth(steady, capsys, name):
    assert cli(steady, "fault", "inject", name) == 0
    started = time.monotonic()
    found = eventually(lambda: top(steady, capsys) == truth(name), timeout=DETECT_WITHIN.get(name, 15), interval=1)
    assert found, name
    print(f"{name}: detected in {time.monotonic() - started:.1f}s")
    assert cli(steady, "fault", "clear", name) == 0
    eventually(lambda: top(steady, capsys) is None, timeout=HEALTHY_AGAIN_S, interval=1)


def record(state: Path, name: str) -> ProcessRecord:
    return ProcessRecord.load(state / "run" / "pids" / f"{name}.json")


def kill(state: Path, name: str) -> None:
    """SIGKILL a component's process group and wait until it is gone (the kernel takes a moment)."""
    pid = record(state, name).pid
    os.killpg(pid, signal.SIGKILL)
    eventually(lambda: not list(group_members(pid)), timeout=10)


def test_nginx_killed_by_hand(steady, capsys):
    kill(steady, "nginx")
    try:
        assert top(steady, capsys) == ("nginx", "crash")
    finally:
        assert cli(steady, "service", "start", "nginx") == 0


def test_a_config_edited_by_hand(steady, capsys):
    conf = steady / "run" / "nginx.conf"
    original = conf.read_text()
    conf.write_text(original.replace("proxy_read_timeout 60s;", "proxy_read_timeout 2s;"))
    try:
        assert cli(steady, "service", "reload", "nginx") == 0
        report = doctor(steady, capsys)
        assert (report["findings"][0]["component"], report["findings"][0]["category"]) == ("nginx", "config")
        assert any("proxy_read_timeout 2s" in e for e in report["findings"][0]["evidence"])
    finally:
        conf.write_text(original)
        assert cli(steady, "service", "reload", "nginx") == 0
    assert top(steady, capsys) is None


def test_the_dynamodb_engine_killed(steady, capsys):
    kill(steady, "dynamodb")
    try:
        assert top(steady, capsys) == ("dynamodb", "crash")
    finally:
        assert cli(steady, "service", "start", "dynamodb") == 0
    eventually(lambda: top(steady, capsys) is None, timeout=HEALTHY_AGAIN_S, interval=1)


def test_a_healthy_stack_under_steady_load_is_healthy_every_time(steady, capsys):
    stop = threading.Event()

    def traffic() -> None:
        while not stop.is_set():
            http("GET", APP + "/")
            http("GET", CRM + "/api/customers?limit=20")

    workers = [threading.Thread(target=traffic) for _ in range(3)]
    for worker in workers:
        worker.start()
    try:
        verdicts = []
        for _ in range(8):
            report = doctor(steady, capsys)
            verdicts.append(report["healthy"] or report["findings"])
            assert report["seconds"] < 10  # never hangs (how fast: bench/bench_doctor.py)
            time.sleep(1)
    finally:
        stop.set()
        for worker in workers:
            worker.join()
    assert all(v is True for v in verdicts), verdicts


def test_the_report_renders_with_charts(steady, capsys, browser, tmp_path):
    for _ in range(20):
        http("GET", APP + "/")
        http("GET", CRM + "/api/customers")
    page = tmp_path / "report.html"
    healthy = cli(steady, "doctor", "--report", str(page)) == 0
    html = page.read_text()
    assert "default-src 'none'" in html  # the page may fetch nothing from anywhere
    browser.get(page.as_uri())
    verdict = browser.find_element(By.CSS_SELECTOR, "p.ok" if healthy else "p.bad").text
    assert verdict == "healthy" if healthy else "finding" in verdict
    charts = browser.find_elements(By.CSS_SELECTOR, "figure.chart canvas")
    assert len(charts) >= 4 and not [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    data = json.loads(browser.find_element(By.ID, "chart-data").get_attribute("textContent"))
    points = [len(chart["data"][0]) for chart in data["charts"].values()]
    assert points and max(points) >= 2, "the charts have data"


def test_throttling_is_found_under_load(steady, capsys):
    stop = threading.Event()

    def traffic() -> None:
        while not stop.is_set():
            http("GET", CRM + "/api/customers?limit=20")

    assert cli(steady, "fault", "inject", "dynamodb-throttling") == 0
    workers = [threading.Thread(target=traffic) for _ in range(4)]
    for worker in workers:
        worker.start()
    try:
        assert eventually(lambda: top(steady, capsys) == truth("dynamodb-throttling"), timeout=40, interval=1)
    finally:
        stop.set()
        for worker in workers:
            worker.join()
    assert cli(steady, "fault", "clear", "dynamodb-throttling") == 0
