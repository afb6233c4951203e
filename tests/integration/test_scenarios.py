"""Scenarios on a real local stack: a scorecard with doctor over one scenario of each kind (a crash, a bad
deploy, a fault that shows only under load) and the control without a false positive (the whole catalogue runs
in bench/bench_scorecard.py, results in bench/README.md), the ledger's events, the HTML page; a run
interrupted by Ctrl-C or killed leaves the stack recoverable; the reference agent over MCP on one
scenario and the control; and the cheater suite: an agent that reads no symptom and tries every channel
scores nothing, and nothing an examinee can read during a fault names it (bench/bench_honest.py does the
whole catalogue)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from sre_workshop.local.process import port_open
from sre_workshop.scenarios.catalogue import scenarios

from conftest import agent_env_args, cli, cli_json, eventually, examinee_python, local_stack, port_offset, settle

OFFSET = port_offset(100)
# One of each kind: hard down, wrong config, only under load; then the control.
SUBSET = ["nginx-crash", "bad-config-deploy", "dynamodb-throttling", "control"]


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with local_stack(tmp_path_factory, "scenarios", OFFSET) as state:
        yield state


@pytest.fixture
def steady(stack, monkeypatch, capsys):
    monkeypatch.setenv("SRE_WORKSHOP_PORT_OFFSET", str(OFFSET))
    yield stack
    settle(stack, capsys)


def events_of(state: Path, capsys, incident_id: str) -> dict[str, dict]:
    _, found = cli_json(state, capsys, "incidents", "--limit", "200")
    incident = next(i for i in found["incidents"] if i["incident_id"] == incident_id)
    return {e["event"]: e for e in incident["events"]}


def test_a_scorecard_with_doctor(steady, capsys, tmp_path):
    assert set(SUBSET) <= set(scenarios())
    html = tmp_path / "scorecard.html"
    code, out = cli_json(steady, capsys, "scenario", "run", *SUBSET, "--html", str(html))
    card = out["scorecards"][0]
    by_name = {r["scenario"]: r for r in card["results"]}
    assert list(by_name) == SUBSET
    for name, result in by_name.items():
        print(f"{name}: mttd {result['mttd_s']}s localized {result['localized']} category {result['category_match']}"
              f" recovery {result['recovery_s']}s false positives {result['false_positives']}")
    assert not [r["error"] for r in card["results"] if r["error"]]
    for name, result in by_name.items():
        if name == "control":
            alarms = {m["detail"] for m in result["timeline"] if m["kind"] == "diagnosis" and not m["ok"]}
            assert result["false_positives"] == 0 and result["diagnoses"] >= 5, alarms
        else:
            assert result["detected"] and result["localized"], (name, result["timeline"])
            assert result["recovered_at"], name
    assert code == 0
    events = events_of(steady, capsys, by_name["nginx-crash"]["incident_id"])
    assert {"injected", "detected", "cleared", "recovered", "scored"} <= set(events)
    assert events["detected"]["localized"] is True and events["detected"]["mttd_s"] > 0
    assert events["scored"]["passed"] is True
    page = html.read_text()
    assert all(f"doctor: {name}</h3>" in page for name in SUBSET)
    assert page.count("class='chart timeline'") == len(SUBSET)


def test_a_manual_breakage_beside_noise_is_scored_and_undone(steady, capsys):
    """A breakage by hand (crm-app frozen by SIGSTOP), with noise: scored on the scorecard and in the ledger,
    and its undo lets the CRM answer again. Compound scenarios, variants and the noisy control run in
    bench/bench_variants.py (minutes, not CI's seconds)."""
    code, out = cli_json(steady, capsys, "scenario", "run", "manual-crm-frozen", "--noise", "client-errors,error-lines")
    result = {r["scenario"]: r for r in out["scorecards"][0]["results"]}["manual-crm-frozen:crm-app-frozen"]
    assert result["localized"] and result["recovered_at"], result["timeline"]
    assert result["truth"]["component"] == "crm-app" and result["group"]["rank"] == 1
    events = events_of(steady, capsys, result["incident_id"])
    assert {"injected", "cleared", "scored"} <= set(events)
    assert code == 0


def run_in_background(state: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "SRE_WORKSHOP_PORT_OFFSET": str(OFFSET)}
    return subprocess.Popen([sys.executable, "-m", "sre_workshop.cli.main", "--state-dir", str(state), *args],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def injected(state: Path) -> bool:
    data = json.loads((state / "examiner" / "faults.json").read_text())
    return "nginx-crash" in data.get("faults", {})


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGKILL])
def test_an_interrupted_run_leaves_the_stack_recoverable(steady, capsys, how):
    run = run_in_background(steady, "scenario", "run", "nginx-crash", "--time-limit", "120", "--interval", "60")
    try:
        eventually(lambda: injected(steady), timeout=90, interval=0.2)
        os.killpg(run.pid, how) if how == signal.SIGKILL else run.send_signal(how)
        run.wait(timeout=90)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait()
    if how == signal.SIGINT:
        assert run.returncode == 130
        assert not injected(steady), "Ctrl-C cleared the fault itself"
    _, status = cli_json(steady, capsys, "fault", "status")
    assert cli(steady, "fault", "clear", "--all") == 0
    _, status = cli_json(steady, capsys, "fault", "status")
    assert status["faults"] == []


REFERENCE = f"{examinee_python()} -m sre_workshop.agents.reference"


def test_the_reference_agent_over_mcp_on_a_fault_and_the_control(steady, capsys, monkeypatch):
    passed = agent_env_args(monkeypatch)
    code, out = cli_json(steady, capsys, "scenario", "run", "nginx-crash", "--agent", REFERENCE, "--assist", *passed)
    doctor_card, agent_card = out["scorecards"]
    assert agent_card["scorer"] == "agent:reference (assisted)" and agent_card["results"][0]["agent"]["assisted"]
    result = agent_card["results"][0]
    assert result["error"] is None, result
    agent = result["agent"]
    assert agent["submitted"] and result["localized"] and result["category_match"], agent["log_tail"]
    assert agent["mitigated"] is True, "it restarted nginx itself, before the tool's clear"
    assert agent["tools"]["diagnose"] >= 2 and agent["tools"]["restart_service"] == 1
    assert agent["tool_calls"] == sum(agent["tools"].values()) and 0 < agent["time_to_submit_s"] < 45
    assert result["recovered_at"] and doctor_card["results"][0]["passed"] and code == 0
    events = events_of(steady, capsys, result["incident_id"])
    submitted = events["agent_submitted"]
    assert submitted["scorer"] == "agent:reference (assisted)" and submitted["mitigated"] and submitted["assisted"]
    assert events["scored"]["passed"] is True and events["scored"]["assisted"] is True

    code, out = cli_json(steady, capsys, "scenario", "run", "control", "--agent", REFERENCE, "--assist", *passed)
    assert "scorecards" in out, out
    control = out["scorecards"][1]["results"][0]
    assert control["agent"]["submitted"] and control["agent"]["false_alarm"] is False, control["agent"]
    assert control["false_positives"] == 0 and control["passed"]


def test_an_agent_that_never_submits_scores_nothing(steady, capsys):
    code, out = cli_json(steady, capsys, "scenario", "run", "nginx-crash", "--time-limit", "8",
                         "--agent", f"{examinee_python()} -c 'import time; time.sleep(60)'")
    result = out["scorecards"][1]["results"][0]
    assert not result["agent"]["submitted"] and not result["localized"] and not result["passed"]
    assert result["agent"]["tool_calls"] == 0 and code == 1
    assert result["recovered_at"], "the tool cleared the fault all the same"


def agent_pid(token: str) -> int | None:
    """Return the pid of the process whose arguments carry `token` (the agent writes nothing where we can
    read: it runs in its own empty directory, as nobody when we are root)."""
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            if entry.name.isdigit() and token.encode() in (entry / "cmdline").read_bytes().split(b"\0"):
                return int(entry.name)
    return None


def test_ctrl_c_during_an_agent_run_ends_the_agent_and_the_server_too(steady, capsys, tmp_path):
    token = f"agent-{tmp_path.name}"
    agent = f"{examinee_python()} -c 'import time; time.sleep(120)' {token}"
    run = run_in_background(steady, "scenario", "run", "nginx-crash", "--agent", agent)
    try:
        pid = eventually(lambda: agent_pid(token), timeout=120, interval=0.2)
        shown = Path(f"/proc/{run.pid}/cmdline").read_bytes().split(b"\0")
        assert b"nginx-crash" not in shown and b"--agent" in shown, "the process table does not name the scenario"
        run.send_signal(signal.SIGINT)
        assert run.wait(timeout=120) == 130
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait()
    assert not Path(f"/proc/{pid}").exists(), "the agent was ended"
    assert not port_open(8766 + OFFSET), "the run's MCP server was ended"
    assert not injected(steady), "the fault was cleared"


# The cheater suite (issue 18): a few faults here, the whole catalogue in bench/bench_honest.py. Compound
# names only: a one-word fault (latency) is also a category every examinee is given (tests/honesty.py).
CHEATED = ["security-group-block"]
SCANNED = ["security-group-block", "error-rate", "dynamodb-access-denied"]  # a config, an app, a twin fault
CHEATER = f"{examinee_python()} {Path(__file__).parent.parent / 'cheater.py'}"


def test_a_cheater_that_reads_no_symptom_scores_nothing(steady, monkeypatch):
    from sre_workshop.local.stack import Stack
    from sre_workshop.scenarios.agent import AgentOptions, run_agent_many
    from sre_workshop.scenarios.runner import Options
    from sre_workshop.settings import Settings

    passed = agent_env_args(monkeypatch)[1::2]  # the agent imports our packages and tests/honesty.py
    stack = Stack.open(Settings.from_env(state_dir=steady))
    chosen = [scenarios()[name] for name in CHEATED]
    _, results = run_agent_many(stack, chosen, CHEATER, Options(), lambda _: None, AgentOptions(env=passed))
    for result in results:
        agent = result.agent
        assert agent["submitted"], agent["log_tail"]
        report = json.loads(agent["submission"]["cause"])
        assert report["leaks"] == {}, (result.scenario, report["leaks"])
        assert {"ledger", "files", "environment", "process table", "tool get_logs"} <= set(report["channels"])
        tried = report["tried"]  # each channel was reached for, and the closed ones were closed by the guards
        assert {tried[f"ledger via {port}"] for port in ("dynamodb", "dynamodb-endpoint", "aws-api")} == \
            {"EndpointConnectionError"}, tried  # Landlock refuses the connect
        assert tried["command lines read"] >= 9, tried
        assert agent["tool_calls"] > 100, agent  # it tried: every tool, every name
        assert not result.detected_at and not result.localized and not agent["mitigated"], (result.scenario, agent)
        assert result.recovered_at and not result.error, result.scenario


@pytest.mark.parametrize("name", SCANNED)
def test_nothing_an_examinee_can_read_during_a_fault_names_it(steady, capsys, monkeypatch, tmp_path, name):
    import exposure
    from sre_workshop.local.stack import Stack
    from sre_workshop.settings import Settings

    monkeypatch.setenv(exposure.TOKEN_ENV, tmp_path.name)  # what the fault's commands start carries it
    stack = Stack.open(Settings.from_env(state_dir=steady))
    endpoint = stack.record("dynamodb-endpoint").pid
    assert cli(steady, "fault", "inject", name) == 0
    found = exposure.collect(stack, tmp_path, tmp_path.name)
    assert cli(steady, "fault", "clear", name) == 0
    assert {channel: names for channel, names in found.items() if names} == {}
    assert len(found) > 10, sorted(found)  # every tool answered, and the other channels were read
    assert stack.record("dynamodb-endpoint").pid == endpoint, "the real fault restarts no endpoint"



ONCALL = f"{examinee_python()} {Path(__file__).parent.parent / 'oncall_agent.py'}"


@pytest.mark.parametrize("repairs", [True, False], ids=["agent-repairs", "tool-clears"])
def test_mitigation_is_credited_only_for_the_agent_s_own_repair(steady, capsys, monkeypatch, repairs):
    from sre_workshop.local.stack import Stack
    from sre_workshop.scenarios.agent import AgentOptions, run_agent_many
    from sre_workshop.scenarios.runner import Options
    from sre_workshop.settings import Settings

    passed = agent_env_args(monkeypatch)[1::2]
    stack = Stack.open(Settings.from_env(state_dir=steady))
    agent = ONCALL if repairs else f"{ONCALL} --no-repair"
    _, (result,) = run_agent_many(stack, [scenarios()["dynamodb-access-denied"]], agent, Options(), lambda _: None,
                                  AgentOptions(env=passed))
    facts = result.agent
    assert facts["submitted"] and result.localized and result.category_match, facts["log_tail"]
    assert facts["acted"] is repairs and facts["mitigated"] is repairs, facts
    assert result.recovered_at and not result.error, "the tool's clear ran afterwards either way"
    events = events_of(steady, capsys, result.incident_id)
    assert events["agent_submitted"]["mitigated"] is repairs
