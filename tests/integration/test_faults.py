"""Every fault on the local stack, end to end: steady state -> inject -> the symptom at the public entry
points -> a second inject refused -> clear from a fresh CLI process -> steady state, nothing lost."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from sre_workshop.cli.main import ExitStatus, main
from sre_workshop.faults.catalogue import catalogue
from sre_workshop.local.process import ProcessRecord, group_members
from sre_workshop.settings import BASE_PORTS, TABLE_NAMES

from conftest import dynamodb, eventually, http, scan_all

OFFSET = int(os.environ.get("SRE_WORKSHOP_TEST_PORT_OFFSET", "20000")) + 800
APP = f"http://127.0.0.1:{BASE_PORTS['public-alb'] + OFFSET}"
CRM = f"http://127.0.0.1:{BASE_PORTS['public-alb-crm'] + OFFSET}"
ENGINE = f"http://127.0.0.1:{BASE_PORTS['dynamodb'] + OFFSET}"
CRM_TABLES = [TABLE_NAMES[k] for k in ("CUSTOMERS_TABLE", "DEALS_TABLE", "ACTIVITIES_TABLE")]


def cli(state: Path, *args: str) -> int:
    return main(["--state-dir", str(state), *args])


def cli_json(state: Path, capsys, *args: str) -> tuple[int, dict]:
    capsys.readouterr()
    code = cli(state, *args, "--json")
    return code, json.loads(capsys.readouterr().out or "{}")


def fresh_cli(state: Path, *args: str) -> subprocess.CompletedProcess:
    """Run the CLI in a new process, as another shell would."""
    env = {**os.environ, "SRE_WORKSHOP_PORT_OFFSET": str(OFFSET)}
    return subprocess.run([sys.executable, "-m", "sre_workshop.cli.main", "--state-dir", str(state), *args],
                          env=env, capture_output=True, text=True, timeout=180)


def item_counts() -> dict[str, int]:
    client = dynamodb(ENGINE)
    return {table: len(scan_all(client, table)) for table in CRM_TABLES}


def record(state: Path, name: str) -> ProcessRecord:
    return ProcessRecord.load(state / "run" / "pids" / f"{name}.json")


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    state = tmp_path_factory.mktemp("faults")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SRE_WORKSHOP_PORT_OFFSET", str(OFFSET))
        assert cli(state, "up", "--detach") == 0
        yield state
        cli(state, "fault", "clear", "--all")
        cli(state, "down")


@pytest.fixture
def steady(stack, monkeypatch, capsys):
    """Start each test from steady state (no fault, the pre-baked leak included), and check nothing was lost."""
    monkeypatch.setenv("SRE_WORKSHOP_PORT_OFFSET", str(OFFSET))
    if cli_json(stack, capsys, "fault", "status")[1] != {"faults": []}:  # the pre-baked leak, on the first test
        assert cli(stack, "fault", "clear", "--all") == 0
    assert cli_json(stack, capsys, "fault", "status")[1] == {"faults": []}
    before = item_counts()
    yield stack
    assert cli(stack, "fault", "clear", "--all") == 0
    after = item_counts()
    assert all(after[t] >= before[t] for t in CRM_TABLES), (before, after)


def test_up_starts_with_the_pre_baked_leak(stack, monkeypatch, capsys):
    monkeypatch.setenv("SRE_WORKSHOP_PORT_OFFSET", str(OFFSET))
    _code, status = cli_json(stack, capsys, "fault", "status")
    rows = [r for r in status["faults"] if r["fault"] == "memory-leak"]
    if rows:  # unless an earlier test of this module cleared it already
        assert rows[0]["state"] == "active" and rows[0]["pre_baked"] and rows[0]["params"]["mode"] == "request"


def test_the_catalogue_lists_parameters_and_ground_truth(capsys):
    code, listed = cli_json(Path("/nonexistent"), capsys, "fault", "list")
    assert code == 0
    faults = {f["name"]: f for f in listed["faults"]}
    assert {"memory-leak", "nginx-crash", "app-crash", "nginx-timeout", "nginx-bad-upstream",
            "bad-config-deploy"} <= set(faults)
    assert all(f["ground_truth"]["component"] and f["ground_truth"]["category"] for f in faults.values())
    assert any(p["intensity"] for p in faults["memory-leak"]["params"])


def test_bad_names_and_parameters_are_one_line_usage_errors(stack, capsys):
    for args, named in ((("fault", "inject", "disk-full"), "nginx-crash"),
                        (("fault", "inject", "memory-leak", "--set", "mb_per_minute=9999"), "from 0.1 to 600"),
                        (("fault", "inject", "memory-leak", "--set", "rate=1"), "mb_per_minute"),
                        (("fault", "clear",), "--all")):
        capsys.readouterr()
        assert cli(stack, *args) == ExitStatus.USAGE, args
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and named in err, err


def status_of(url: str) -> int:
    return http("GET", url, timeout=10).status


def leak_grows() -> Callable[[], bool]:
    sizes = [http("GET", APP + "/").json()["memory_leak_size_mb"] for _ in range(4)]

    def grown() -> bool:
        return max(http("GET", APP + "/").json()["memory_leak_size_mb"] for _ in range(4)) > max(sizes) + 1
    return grown


def slow_app_gives_504(state: Path) -> bool:
    """Stop sre-app for a moment: nginx times out on the private ALB after the fault's 1 s."""
    gunicorn = record(state, "sre-app").pid
    os.killpg(gunicorn, signal.SIGSTOP)
    try:
        started = time.monotonic()
        reply = http("GET", APP + "/", timeout=30)
        return reply.status == 504 and time.monotonic() - started < 5
    finally:
        os.killpg(gunicorn, signal.SIGCONT)


def slow(url: str, at_least_s: float) -> bool:
    started = time.monotonic()
    return http("GET", url, timeout=30).status == 200 and time.monotonic() - started >= at_least_s


def some_500s(url: str) -> bool:
    statuses = [status_of(url) for _ in range(20)]
    return 500 in statuses and 200 in statuses


SYMPTOMS: dict[str, Callable[[Path], bool]] = {
    "latency": lambda state: slow(APP + "/", 1.5) and not slow(CRM + "/api/customers", 1.0),
    "error-rate": lambda state: some_500s(APP + "/"),
    "health-check-fail": lambda state: status_of(APP + "/") == 503 and http(
        "GET", f"http://127.0.0.1:{BASE_PORTS['sre-app'] + OFFSET}/").status == 200,
    "memory-leak": lambda state: eventually(leak_grows(), timeout=20),
    "nginx-crash": lambda state: status_of(APP + "/") in (502, 503) and status_of(CRM + "/api/customers") == 200,
    "app-crash": lambda state: eventually(lambda: status_of(APP + "/") == 503, timeout=15),
    "nginx-timeout": slow_app_gives_504,
    "nginx-bad-upstream": lambda state: status_of(APP + "/") == 502 and status_of(CRM + "/health") == 200,
    "bad-config-deploy": lambda state: (r := http("GET", CRM + "/api/customers")).status == 503
    and b"ResourceNotFound" in r.body,
}


@pytest.mark.parametrize("name", sorted(SYMPTOMS))
def test_a_fault_breaks_the_system_and_clears(steady, capsys, name):
    code, injected = cli_json(steady, capsys, "fault", "inject", name)
    assert code == 0, injected
    assert injected["ground_truth"] == catalogue()[name].ground_truth(catalogue()[name].defaults()).to_dict()
    assert SYMPTOMS[name](steady), f"{name}: symptom not seen"
    capsys.readouterr()
    assert cli(steady, "fault", "inject", name) == ExitStatus.BUSY
    assert "already active" in capsys.readouterr().err
    code, status = cli_json(steady, capsys, "fault", "status")
    assert [(r["fault"], r["state"]) for r in status["faults"]] == [(name, "active")]

    cleared = fresh_cli(steady, "fault", "clear", name, "--json")
    assert cleared.returncode == 0, cleared.stderr
    assert json.loads(cleared.stdout)["cleared"] == [{"fault": name, "incident_id": injected["incident_id"],
                                                     "ended": "cleared"}]
    assert status_of(APP + "/") == 200 and status_of(CRM + "/api/customers") == 200
    events = [e["event"] for e in _incident(steady, capsys, injected["incident_id"])["events"]]
    assert events == ["injected", "cleared"]


def _incident(state: Path, capsys, incident_id: str) -> dict:
    _code, listed = cli_json(state, capsys, "incidents", "--limit", "200")
    return next(i for i in listed["incidents"] if i["incident_id"] == incident_id)


def test_a_fault_fixed_by_hand_is_recorded_as_remediated(steady, capsys):
    _code, injected = cli_json(steady, capsys, "fault", "inject", "nginx-crash")
    assert cli(steady, "service", "start", "nginx") == 0  # the real fix, as `systemctl start nginx`
    _code, status = cli_json(steady, capsys, "fault", "status")
    assert status["faults"] == [] or status["faults"][0]["state"] == "remediated"
    assert [e["event"] for e in _incident(steady, capsys, injected["incident_id"])["events"]] == \
        ["injected", "remediated"]


def test_a_config_fault_survives_a_restart_until_cleared(steady, capsys):
    assert cli(steady, "fault", "inject", "nginx-bad-upstream") == 0
    assert cli(steady, "service", "restart", "nginx") == 0
    eventually(lambda: status_of(CRM + "/health") == 200 and status_of(APP + "/") == 502, timeout=15)
    assert cli(steady, "fault", "clear", "nginx-bad-upstream") == 0
    assert status_of(APP + "/") == 200


def test_clear_works_after_the_cli_was_killed_mid_inject(steady, capsys):
    env = {**os.environ, "SRE_WORKSHOP_PORT_OFFSET": str(OFFSET)}
    proc = subprocess.Popen([sys.executable, "-m", "sre_workshop.cli.main", "--state-dir", str(steady),
                             "fault", "inject", "bad-config-deploy"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # Killed once the fault is recorded (before its effect is verified): the record is durable first.
    eventually(lambda: "bad-config-deploy" in (steady / "run" / "state.json").read_text(), timeout=30,
               interval=0.02)
    proc.kill()
    proc.wait()
    cleared = fresh_cli(steady, "fault", "clear", "--all")
    assert cleared.returncode == 0, cleared.stderr
    assert status_of(CRM + "/api/customers") == 200
    assert b"CUSTOMERS_TABLE=CRMCustomersTable\0" in \
        Path(f"/proc/{record(steady, 'crm-app').pid}/environ").read_bytes()


def test_clear_works_after_down_and_up(steady, capsys):
    assert cli(steady, "fault", "inject", "nginx-bad-upstream") == 0
    assert cli(steady, "down") == 0
    assert cli(steady, "up", "--detach") == 0
    assert status_of(APP + "/") == 502, "the edited nginx.conf survives down and up, as on an instance"
    assert cli(steady, "fault", "clear", "--all") == 0
    assert status_of(APP + "/") == 200


def test_clear_all_returns_a_crashed_stack_to_steady_state(steady, capsys):
    assert cli(steady, "fault", "inject", "app-crash", "--set", "target=crm-app") == 0
    assert cli(steady, "fault", "inject", "nginx-crash") == 0
    assert not list(group_members(record(steady, "nginx").pid))
    assert cli(steady, "fault", "clear", "--all") == 0
    assert status_of(APP + "/") == 200 and status_of(CRM + "/api/customers") == 200
