"""`sre-workshop load` against a real local stack: every flow runs, a healthy stack gives no failure, the
5xx count agrees with the CRM's own access log while DynamoDB is down, and cleanup removes exactly the
data load made. The stack runs on its own ports (conftest.port_offset)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlencode

import pytest
from click.testing import CliRunner

from sre_workshop.cli.load import load
from sre_workshop.cli.main import main
from sre_workshop.load import local_targets, start
from sre_workshop.load.cleanup import _pages
from sre_workshop.load.marker import MARKER_PREFIX, is_marked_customer
from sre_workshop.local.process import free_port
from sre_workshop.settings import Settings

from conftest import eventually, http, port_offset

OFFSET = port_offset(1000)
FLOWS = {"app.home", "crm.list", "crm.page", "crm.search", "crm.open", "crm.add_activity", "crm.add_deal"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """A whole local stack for this module; yields its settings."""
    state = tmp_path_factory.mktemp("load-stack")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SRE_WORKSHOP_PORT_OFFSET", str(OFFSET))
        assert main(["--state-dir", str(state), "up", "--detach"]) == 0
        try:
            yield Settings.from_env(state_dir=state)
        finally:
            main(["--state-dir", str(state), "down"])


def service(settings: Settings, action: str, name: str) -> None:
    """Stop or start one component, as `sre-workshop service` does."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SRE_WORKSHOP_PORT_OFFSET", str(OFFSET))
        assert main(["--state-dir", str(settings.state_dir), "service", action, name]) == 0


def crm_data(crm: str) -> dict[str, dict[str, dict]]:
    """Every customer, deal and activity, by id, read through the API."""
    return {kind: {item[f"{key}_id"]: item for item in _pages(crm, f"/api/{kind}", 10)}
            for kind, key in (("customers", "customer"), ("deals", "deal"), ("activities", "activity"))}


def test_a_short_run_exercises_every_flow_without_failure(stack):
    summary = start(local_targets(stack), users=6, rate=50, duration="15s").wait(timeout=120)
    assert set(summary.flows) == FLOWS and all(summary.flows.values()), summary.flows
    assert summary.total.count > 300 and summary.total.failures == 0, summary.to_dict()
    assert summary.flow_errors == {}
    names = {e.name for e in summary.endpoints}
    assert {"app GET /", "crm GET /api/customers", "crm GET /customers", "crm GET /customers/{id}",
            "crm GET /api/customers?cursor", "crm GET /api/customers?q"} <= names
    assert any(n.startswith("crm POST /api/") for n in names)
    assert any(n.startswith("crm POST /customers/") for n in names)
    assert abs(summary.total.rps - 50) < 5, summary.total.rps  # the shared pacer holds the total rate
    assert summary.users == 6 and not summary.stopped_early and summary.total.p95_ms is not None


def test_cleanup_removes_exactly_the_marked_data(stack):
    crm = stack.endpoints["crm"]
    before = crm_data(crm)
    summary = start(local_targets(stack, "crm"), users=4, rate=40, duration="10s").wait(timeout=120)
    assert summary.flows.get("crm.add_activity") and summary.flows.get("crm.add_deal")
    during = crm_data(crm)
    new = {kind: set(during[kind]) - set(before[kind]) for kind in during}
    assert new["customers"] and (new["deals"] or new["activities"])
    assert all(is_marked_customer(during["customers"][c]) for c in new["customers"])
    marked = {c for c, item in during["customers"].items() if is_marked_customer(item)}
    assert all(during["deals"][d]["customer_id"] in marked and during["deals"][d]["title"].startswith(MARKER_PREFIX)
               for d in new["deals"])
    assert all(during["activities"][a]["customer_id"] in marked for a in new["activities"])

    result = CliRunner().invoke(load, ["--cleanup", "--json"], env={"SRE_WORKSHOP_PORT_OFFSET": str(OFFSET)},
                                standalone_mode=False, catch_exceptions=False)
    removed = json.loads(result.output)
    after = crm_data(crm)
    unmarked_before = {c for c, item in before["customers"].items() if not is_marked_customer(item)}
    assert set(after["customers"]) == unmarked_before
    for kind in ("deals", "activities"):
        # Kept: what belongs to unmarked customers, and records whose customer was already gone before
        # (the API cannot reach those; a `service stop dynamodb` snapshot taken under writes can leave some).
        kept = {i for i, item in before[kind].items()
                if item["customer_id"] in unmarked_before or item["customer_id"] not in before["customers"]}
        assert set(after[kind]) == kept
        assert removed[kind] == len(during[kind]) - len(kept)
    assert removed["customers"] == len(marked)


def test_5xx_count_matches_the_crm_access_log_while_dynamodb_is_down(stack):
    handle = start(local_targets(stack, "crm"), users=4, rate=30, duration="3m")
    try:
        eventually(lambda: handle.progress and handle.progress.requests > 30, 60)
        service(stack, "stop", "dynamodb")
        eventually(lambda: handle.progress.failures >= 20, 60)
        service(stack, "start", "dynamodb")
        eventually(recovered(handle, handle.progress.requests), 90)
    finally:
        summary = handle.stop()
    lines = [json.loads(line) for line in (stack.logs_dir / "crm-app.json.log").read_text().splitlines()]
    ours = [line for line in lines if line.get("request_id", "").startswith(summary.run_id + "-")]
    total = summary.total
    # The CRM's two sync workers wait on DynamoDB, its health checks time out, and the public ALB answers
    # 503 itself while the target is unhealthy: those never reach the CRM. Every other 5xx the CRM logged.
    crm_5xx = sum(1 for line in ours if line["status"] >= 500)
    assert total.status_count(500, 599, by_public_alb=False) == crm_5xx > 0, total
    assert total.status_count(500, 599, by_public_alb=True) == summary.server_errors - crm_5xx
    assert "connection" not in total.failures_by_status
    # Every request the load counted reached the CRM, except those the ALB answered; no other did.
    assert len(ours) == total.count - sum(total.public_alb_failures.values())


def recovered(handle, since: int):
    """Return a check that is true once 60 requests passed `since` and the last 30 added no failure."""
    readings: list[tuple[int, int]] = []

    def check() -> bool:
        now = handle.progress
        readings.append((now.requests, now.failures))
        earlier = [failures for requests, failures in readings if requests <= now.requests - 30]
        return now.requests > since + 60 and bool(earlier) and earlier[-1] == now.failures

    return check


def test_cli_json_run(stack):
    result = CliRunner().invoke(load, ["--target", "app", "--users", "2", "--rate", "20", "--duration", "3s",
                                       "--json"], env={"SRE_WORKSHOP_PORT_OFFSET": str(OFFSET)},
                                standalone_mode=False, catch_exceptions=False)
    summary = json.loads(result.stdout)
    assert set(summary) >= {"run_id", "targets", "users", "rate", "duration_s", "elapsed_s", "stopped_early",
                            "flows", "endpoints", "total", "flow_errors"}
    assert summary["targets"] == {"app": stack.endpoints["app"]}
    assert [e["name"] for e in summary["endpoints"]] == ["app GET /"]
    assert summary["total"]["count"] > 20 and summary["total"]["failures"] == 0


def test_web_ui_on_loopback_cannot_send_load_elsewhere(stack):
    port = free_port()
    with start(local_targets(stack, "app"), users=1, rate=5, duration="60s", web_port=port) as handle:
        assert handle.web_url == f"http://127.0.0.1:{port}/"
        assert http("GET", handle.web_url).status == 200
        stats = eventually(lambda: json.loads(http("GET", f"{handle.web_url}stats/requests").body or "{}"), 30)
        assert stats["state"] in ("running", "spawning")
        # A new swarm from the UI with another host: the users stay pinned to the stack's entry point.
        form = urlencode({"user_count": 2, "spawn_rate": 2, "host": "http://example.invalid"})
        assert http("POST", f"{handle.web_url}swarm", form.encode(),
                    {"Content-Type": "application/x-www-form-urlencoded"}).status == 200
        eventually(lambda: handle.progress and handle.progress.users == 2 and handle.progress.requests > 10, 30)
    summary = handle.summary
    assert not handle.running and summary.total.count > 10
    assert summary.total.failures == 0 and summary.flow_errors == {}


def test_ctrl_c_stops_with_a_summary_and_leaves_no_process(stack):
    code = "from sre_workshop.cli.load import load; load(['--duration', '5m', '--rate', '10', '--json'])"
    env = {**os.environ, "SRE_WORKSHOP_PORT_OFFSET": str(OFFSET)}
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    children = eventually(lambda: Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split(), 60)
    eventually(lambda: b"load.child" in Path(f"/proc/{children[0]}/cmdline").read_bytes(), 30)
    log = stack.logs_dir / "crm-app.json.log"
    size = log.stat().st_size
    eventually(lambda: log.stat().st_size > size + 2000, 60)  # some traffic first (the run lasts 5 minutes)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    summary = json.loads(out)
    assert summary["stopped_early"] and summary["total"]["count"] > 0
    assert not any(Path(f"/proc/{pid}").exists() for pid in children)
