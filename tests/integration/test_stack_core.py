"""The local stack behaves like units on an instance: one stack per state directory, a dead main process
takes its workers with it, a clean environment, configs that carry changes, the tool's own DynamoDB traffic
beside the fault point, and failures that leave nothing half-done."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from sre_workshop.cli.main import ExitStatus
from sre_workshop.local import deep
from sre_workshop.local.process import ProcessRecord, free_port, group_members, is_alive
from sre_workshop.local.stack import Stack
from sre_workshop.mcp.world import LocalWorld
from sre_workshop.settings import BASE_PORTS, Settings
from sre_workshop.state import Overlay, StateStore

from conftest import cli, cli_json, eventually, http, port_offset

OFFSET = port_offset(600)


def port(name: str, offset: int = OFFSET) -> int:
    return BASE_PORTS[name] + offset



def records(state: Path) -> dict[str, ProcessRecord]:
    return {r.name: r for r in map(ProcessRecord.load, (state / "run" / "pids").glob("*.json")) if r}


def stack_pids(state: Path) -> set[int]:
    return {pid for r in records(state).values() for pid in group_members(r.pid)}


def status(state: Path, capsys) -> dict:
    capsys.readouterr()
    cli(state, "status", "--json")
    return json.loads(capsys.readouterr().out)


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """One stack for the tests that leave it as they found it. A shell's settings must not reach it."""
    state = tmp_path_factory.mktemp("core")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SRE_WORKSHOP_PORT_OFFSET", str(OFFSET))
        for name, value in {"LEAK_MODE": "off", "WEB_CONCURRENCY": "5", "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
                            "METRICS_TABLE": "Nope"}.items():
            mp.setenv(name, value)
        assert cli(state, "up", "--detach") == 0
        yield state
        cli(state, "down")


@pytest.fixture
def offset(monkeypatch):
    monkeypatch.setenv("SRE_WORKSHOP_PORT_OFFSET", str(OFFSET))


def test_components_start_with_a_clean_environment(stack):
    leak = http("GET", f"http://127.0.0.1:{port('sre-app')}/admin/leak",
                headers={"X-Fault-Token": (stack / "run" / "fault-token").read_text()}).json()
    assert leak["settings"]["mode"] == "request", "LEAK_MODE of the user's shell reached the app"
    gunicorn = records(stack)["sre-app"].pid
    workers = [p for p in group_members(gunicorn) if p != gunicorn]
    assert len(workers) == 2, "WEB_CONCURRENCY of the user's shell reached the app"
    environ = Path(f"/proc/{gunicorn}/environ").read_bytes().split(b"\0")
    assert b"AWS_ENDPOINT_URL=http://127.0.0.1:9" not in environ and b"LEAK_MODE=off" not in environ


def test_a_killed_nginx_master_takes_its_workers_with_it(stack, offset, capsys):
    master = records(stack)["nginx"].pid
    workers = [p for p in group_members(master) if p != master]
    assert workers
    os.kill(master, signal.SIGKILL)  # only the master, as `kill -9 <pid>` from `status` would
    try:
        eventually(lambda: not list(group_members(master)), timeout=10)
        assert http("GET", f"http://127.0.0.1:{port('nginx')}/health").status == 0, "an orphan still serves"
        problems = status(stack, capsys)["problems"]
        assert {k: problems[0][k] for k in ("component", "kind")} == {"component": "nginx", "kind": "exited"}
    finally:
        assert cli(stack, "service", "start", "nginx") == 0
    eventually(lambda: http("GET", f"http://127.0.0.1:{port('public-alb')}/").status == 200, timeout=15)


def test_a_restart_keeps_a_config_change_until_it_is_removed(stack, offset):
    store = StateStore(Settings.from_env({}, state_dir=stack, port_offset=OFFSET))
    change = {"proxy_read_timeout 60s;": "proxy_read_timeout 7s;"}
    with store.update() as state:
        state.overlays.append(Overlay("test", "nginx.conf", change))
    try:
        assert cli(stack, "service", "restart", "nginx") == 0
        assert "proxy_read_timeout 7s;" in (stack / "run" / "nginx.conf").read_text()
        assert cli(stack, "service", "restart", "public-alb") == 0  # rendering another config keeps it too
        assert "proxy_read_timeout 7s;" in (stack / "run" / "nginx.conf").read_text()
    finally:
        with store.update() as state:
            state.overlays = [o for o in state.overlays if o.owner != "test"]
        assert cli(stack, "service", "restart", "nginx") == 0
    assert "proxy_read_timeout 60s;" in (stack / "run" / "nginx.conf").read_text()
    eventually(lambda: http("GET", f"http://127.0.0.1:{port('public-alb')}/").status == 200, timeout=15)


def test_the_tools_dynamodb_traffic_does_not_pass_the_fault_point(stack, offset):
    """With the endpoint proxy (where faults go) down, the engine still restarts with its data."""
    crm = f"http://127.0.0.1:{port('public-alb-crm')}"
    created = http("POST", crm + "/api/customers", {"name": "Kept", "email": "k@example.com"}).json()
    assert cli(stack, "service", "stop", "dynamodb-endpoint") == 0
    try:
        assert cli(stack, "service", "restart", "dynamodb") == 0
    finally:
        assert cli(stack, "service", "start", "dynamodb-endpoint") == 0
    reply = eventually(lambda: (r := http("GET", f"{crm}/api/customers/{created['customer_id']}")).status == 200
                       and r, timeout=15)
    assert reply.json()["name"] == "Kept"


def test_a_second_up_is_refused_and_the_stack_keeps_running(stack, offset, capsys):
    before = stack_pids(stack)
    capsys.readouterr()
    assert cli(stack, "up", "--detach") == ExitStatus.BUSY
    assert "already running" in capsys.readouterr().err
    env = {**os.environ, "SRE_WORKSHOP_PORT_OFFSET": str(OFFSET)}
    foreground = subprocess.run([sys.executable, "-m", "sre_workshop.cli.main", "--state-dir", str(stack), "up"],
                                env=env, capture_output=True, text=True, timeout=60)
    assert foreground.returncode == ExitStatus.BUSY, foreground.stderr
    assert stack_pids(stack) == before and status(stack, capsys)["healthy"]


def test_two_concurrent_ups_start_one_stack(tmp_path, monkeypatch):
    offset = OFFSET + 100
    env = {**os.environ, "SRE_WORKSHOP_PORT_OFFSET": str(offset)}
    argv = [sys.executable, "-m", "sre_workshop.cli.main", "--state-dir", str(tmp_path), "up", "--detach"]
    try:
        with ThreadPoolExecutor(2) as pool:
            results = list(pool.map(lambda _: subprocess.run(argv, env=env, capture_output=True, text=True,
                                                             timeout=120), range(2)))
        assert sorted(r.returncode for r in results) == [0, ExitStatus.BUSY], [r.stderr for r in results]
        assert len(records(tmp_path)) == 9
    finally:
        monkeypatch.setenv("SRE_WORKSHOP_PORT_OFFSET", str(offset))
        pids = stack_pids(tmp_path)
        assert cli(tmp_path, "down") == 0
    assert not [p for p in pids if Path(f"/proc/{p}").exists() and not _zombie(p)], "down left processes"


def test_down_from_another_shell_stops_a_foreground_up(tmp_path, monkeypatch):
    offset = OFFSET + 100
    env = {**os.environ, "SRE_WORKSHOP_PORT_OFFSET": str(offset)}
    proc = subprocess.Popen([sys.executable, "-m", "sre_workshop.cli.main", "--state-dir", str(tmp_path), "up"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    monkeypatch.setenv("SRE_WORKSHOP_PORT_OFFSET", str(offset))
    try:
        eventually(lambda: (tmp_path / "run" / "foreground.json").exists(), timeout=60)
        assert cli(tmp_path, "down") == 0
        assert proc.wait(timeout=30) == 0
        assert not records(tmp_path) and (tmp_path / "data" / "dynalite").is_dir()
    finally:
        if proc.poll() is None:
            proc.kill()
        cli(tmp_path, "down")


def test_a_failed_up_leaves_nothing_running_and_remembers_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SRE_WORKSHOP_PORT_OFFSET", str(OFFSET + 100))
    unreachable = f"http://127.0.0.1:{free_port()}"
    assert cli(tmp_path, "up", "--detach", "--timeout", "5", "--dynamodb-endpoint", unreachable) != 0
    assert not stack_pids(tmp_path) and not records(tmp_path)
    assert StateStore(Settings.from_env({}, state_dir=tmp_path)).read().dynamodb_endpoint is None


def test_a_stack_in_a_deep_state_dir_runs_and_reports_its_targets(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SRE_WORKSHOP_PORT_OFFSET", str(OFFSET + 100))
    deep = tmp_path / ("d" * 60) / ("e" * 60)  # the load balancers' sockets would be > 107 bytes long
    assert cli(deep, "up", "--detach") == 0
    try:
        targets = status(deep, capsys)["targets"]
        assert targets and all(t["state"] == "healthy" for t in targets), targets
    finally:
        assert cli(deep, "down") == 0


def test_down_keeps_the_engine_when_its_data_cannot_be_saved(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SRE_WORKSHOP_PORT_OFFSET", str(OFFSET + 100))
    assert cli(tmp_path, "up", "--detach", "--engine", "moto") == 0  # the engine whose data lives in memory
    try:
        (tmp_path / "data" / "dynamodb.tmp").mkdir()  # the snapshot's temporary file cannot be written
        capsys.readouterr()
        assert cli(tmp_path, "down") == ExitStatus.STATE
        assert "could not save DynamoDB data" in capsys.readouterr().err
        assert list(records(tmp_path)) == ["dynamodb"], "the engine (and only it) keeps running"
        (tmp_path / "data" / "dynamodb.tmp").rmdir()
    finally:
        assert cli(tmp_path, "down") == 0
    assert not records(tmp_path) and (tmp_path / "data" / "dynamodb.json").exists()


def _items(client, table: str) -> list[dict]:
    return sorted(client.scan(TableName=table)["Items"], key=json.dumps)


def test_a_table_deleted_by_hand_is_saved_and_recreated_by_up_and_by_restore(tmp_path, monkeypatch, capsys):
    """down names a table deleted by hand and keeps its items from the last snapshot; up recreates it from the
    template with them; `restore TABLE` does the same on a running stack (the default, durable engine)."""
    monkeypatch.setenv("SRE_WORKSHOP_PORT_OFFSET", str(OFFSET + 100))
    assert cli(tmp_path, "up", "--detach") == 0
    try:
        client = Stack.open(Settings.from_env(state_dir=tmp_path)).dynamodb_client()
        assert cli(tmp_path, "service", "restart", "dynamodb") == 0  # a first snapshot, as down writes one
        assert (tmp_path / "data" / "dynamodb.json").exists()
        deals, customers = _items(client, "CRMDealsTable"), _items(client, "CRMCustomersTable")
        assert deals and customers
        client.delete_table(TableName="CRMDealsTable")
        capsys.readouterr()
        assert cli(tmp_path, "down") == 0, "a missing table does not fail the save"
        assert "CRMDealsTable is missing from the engine: kept its" in capsys.readouterr().err
        assert cli(tmp_path, "up", "--detach") == 0
        assert "CRMDealsTable was missing: recreated from the template" in capsys.readouterr().err
        assert _items(client, "CRMDealsTable") == deals
        assert client.describe_table(TableName="CRMDealsTable")["Table"]["GlobalSecondaryIndexes"]
        client.delete_table(TableName="CRMCustomersTable")
        code, out = cli_json(tmp_path, capsys, "restore", "CRMCustomersTable")
        assert code == 0 and out["items"] == len(customers) and _items(client, "CRMCustomersTable") == customers
        assert cli(tmp_path, "restore", "CRMCustomersTable") == ExitStatus.USAGE, "an existing table is kept"
        assert http("GET", f"http://127.0.0.1:{port('public-alb-crm', OFFSET + 100)}/api/customers").status == 200
    finally:
        assert cli(tmp_path, "down") == 0


def test_status_says_when_the_engine_is_frozen_or_a_table_is_gone(stack, offset, capsys):
    """An engine alive but frozen (SIGSTOP) and a deleted table are both named by `status` and by the MCP
    server's check_health, within their deadlines: neither says healthy while the data path is dead."""
    engine = records(stack)["dynamodb"].pid
    os.kill(engine, signal.SIGSTOP)
    try:
        started = time.monotonic()
        code, found = cli_json(stack, capsys, "status")
        took = time.monotonic() - started
    finally:
        os.kill(engine, signal.SIGCONT)
    assert code == ExitStatus.UNHEALTHY and not found["healthy"]
    assert any(p["component"] == "dynamodb" and "does not answer a DynamoDB call" in p["detail"]
               for p in found["problems"]), found["problems"]
    assert not next(c for c in found["components"] if c["name"] == "dynamodb")["healthy"]
    assert took < deep.APP_DEADLINE_S + 3, f"status took {took:.1f}s: the checks run at once, each with a deadline"
    eventually(lambda: cli(stack, "status") == 0, timeout=15)

    client = Stack.open(Settings.from_env(state_dir=stack)).dynamodb_client()
    client.delete_table(TableName="CRMDealsTable")
    try:
        code, found = cli_json(stack, capsys, "status")
        details = [p["detail"] for p in found["problems"]]
        assert code == ExitStatus.UNHEALTHY and any("table CRMDealsTable is missing" in d for d in details), details
        assert any("cannot use table CRMDealsTable" in d for d in details), "crm-app's deep check names it too"
        health = LocalWorld(Stack.open(Settings.from_env(state_dir=stack))).health()
        assert not health["healthy"] and any("CRMDealsTable" in p for p in health["problems"]), health
    finally:
        assert cli(stack, "restore", "CRMDealsTable") == 0
    assert cli(stack, "status") == 0


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def test_a_restart_is_quick_and_leaves_no_duplicate(stack, offset):
    before = records(stack)["crm-app"]
    started = time.monotonic()
    assert cli(stack, "service", "restart", "crm-app") == 0
    after = records(stack)["crm-app"]
    assert after.pid != before.pid and not list(group_members(before.pid))
    assert time.monotonic() - started < 30
    eventually(lambda: http("GET", f"http://127.0.0.1:{port('public-alb-crm')}/api/customers").status == 200,
               timeout=15)


def test_a_write_the_api_confirmed_survives_a_kill_of_the_engine(stack, offset):
    crm = f"http://127.0.0.1:{port('public-alb-crm')}"
    created = [http("POST", crm + "/api/customers", {"name": f"Durable {i}", "email": f"d{i}@example.com"})
               for i in range(20)]
    assert all(r.status == 201 for r in created), [r.status for r in created]
    engine = records(stack)["dynamodb"]
    os.killpg(engine.pid, signal.SIGKILL)  # no save, no warning: a crash
    # SIGKILL is delivered, not done, when kill() returns: until the engine is gone, `service start` rightly
    # finds it running and starts nothing (as `systemctl start` on a unit still running).
    eventually(lambda: not is_alive(engine), timeout=10)
    assert cli(stack, "service", "start", "dynamodb") == 0
    for reply in created:
        customer_id = reply.json()["customer_id"]
        assert eventually(lambda cid=customer_id: http("GET", f"{crm}/api/customers/{cid}").status == 200,
                          timeout=15), customer_id
