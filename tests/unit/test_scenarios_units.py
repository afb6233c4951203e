"""Scenarios in-process: the catalogue's data, scoring one diagnosis, the scorecard and its HTML page; the MCP
server's log summaries, run records and incident redaction; the reference agent's choice of action."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from honesty import leaks
from sre_workshop import diagnose
from sre_workshop.agents.reference import action_for
from sre_workshop.diagnose.model import Finding, Observations, Report
from sre_workshop.errors import UsageError
from sre_workshop.faults.catalogue import catalogue
from sre_workshop.mcp import logs
from sre_workshop.mcp.run import RunRecord
from sre_workshop.mcp.world import incidents
from sre_workshop.scenarios import scorecard
from sre_workshop.scenarios.agent import agent_name
from sre_workshop.scenarios.catalogue import get, scenarios
from sre_workshop.scenarios.html import page
from sre_workshop.scenarios.model import Scenario
from sre_workshop.scenarios.result import Result
from sre_workshop.scenarios.runner import judge
from sre_workshop.vocabulary import CATEGORIES, COMPONENTS


@pytest.mark.parametrize("name", sorted(n for n, s in scenarios().items() if not s.is_control))
def test_a_labs_hints_name_no_fault_and_end_at_the_hand_repair(name):
    scenario = scenarios()[name]
    assert all(not leaks(hint) for hint in scenario.hints), "a hint names the fault before giveup"
    assert scenario.hints[-1].startswith("Repair:") and not any(h.startswith("Repair:") for h in scenario.hints[:-1])
    assert "fault clear" not in " ".join(scenario.hints), "the repair is the learner's, not the tool's undo"


def test_every_fault_has_a_scenario_and_there_is_one_control():
    faults = {s.fault for s in scenarios().values() if s.fault}
    assert faults == set(catalogue())
    assert [s.name for s in scenarios().values() if s.is_control] == ["control"]
    assert list(scenarios())[-1] == "control"


@pytest.mark.parametrize("name", sorted(scenarios()))
def test_each_scenario_is_complete(name):
    scenario = scenarios()[name]
    assert scenario.title and scenario.ticket and scenario.hints
    assert scenario.writeup.happened and scenario.writeup.see and scenario.writeup.fix
    assert 10 <= scenario.time_limit_s <= 300
    truth = scenario.truth()
    if truth:
        assert truth.component in COMPONENTS and truth.category in CATEGORIES
        # the ticket is what a user sees: it must not give the answer away
        assert scenario.fault not in scenario.ticket


def test_unknown_scenario_names_the_valid_ones():
    with pytest.raises(UsageError, match="control"):
        get("no-such")


def test_a_scenario_file_with_a_bad_parameter_is_refused(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('title = "t"\nfault = "latency"\nparams = ["latency_ms=99999999"]\nticket = "x"\n'
                    '[writeup]\nhappened = "a"\nsee = "b"\nfix = "c"\n')
    with pytest.raises(UsageError, match="latency_ms"):
        Scenario.load_file(path)


def test_only_the_control_has_no_fault(tmp_path):
    path = tmp_path / "nofault.toml"
    path.write_text('title = "t"\nticket = "x"\n[writeup]\nhappened = "a"\nsee = "b"\nfix = "c"\n')
    with pytest.raises(ValueError, match="only the control"):
        Scenario.load_file(path)


def report(*findings: tuple[str, str]) -> Report:
    return Report("now", [Finding(c, k, "major", f"{c} {k}", ["e"], "fix") for c, k in findings],
                  Observations("now", "local"))


def fault_result() -> Result:
    truth = get("nginx-crash").truth().to_dict()
    return Result("nginx-crash", "doctor", truth, injected_at=time.time() - 3)


def test_a_diagnosis_naming_another_component_does_not_detect():
    result = fault_result()
    assert not judge(get("nginx-crash"), result, report(("sre-app", "crash")))
    assert not judge(get("nginx-crash"), result, report())
    assert result.diagnoses == 2 and not result.detected


def test_the_top_finding_naming_the_component_detects_and_scores_the_category():
    result = fault_result()
    assert judge(get("nginx-crash"), result, report(("nginx", "config"), ("sre-app", "crash")))
    assert result.detected and result.localized and not result.category_match
    assert 2.5 < result.mttd_s < 10
    assert result.finding["component"] == "nginx"


def test_the_control_counts_every_finding_as_a_false_positive():
    result = Result("control", "doctor", None, injected_at=time.time())
    for diagnosis in (report(), report(("sre-app", "cpu")), report()):
        assert not judge(get("control"), result, diagnosis)
    assert (result.diagnoses, result.false_positives, result.passed) == (3, 1, False)


def test_totals_and_table():
    found = fault_result()
    judge(get("nginx-crash"), found, report(("nginx", "crash")))
    found.recovered_at = time.time()
    missed = Result("latency", "doctor", get("latency").truth().to_dict(), error="doctor does not find it healthy")
    control = Result("control", "doctor", None, diagnoses=4)
    totals = scorecard.totals([found, missed, control])
    assert totals["passed"] == 2 and totals["localized"] == 1 and totals["errors"] == 1
    assert totals["false_positives"] == 0 and totals["faults"] == 2
    text = scorecard.table([("doctor", [found, missed, control])])
    assert "nginx/crash" in text and "0 false positive(s) in 4" in text and "error" in text


def test_the_html_page_escapes_what_it_shows():
    result = fault_result()
    result.mark("diagnosis", "<script>alert(1)</script>", ok=False)
    html = page([("doctor", [result])])
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "id=chart-data" in html and "default-src 'none'" in html  # charts drawn in the page, nothing loaded


# --- the MCP server's pieces and the reference agent, in-process -------------------------------------------

def test_log_lines_are_summarised_and_cut():
    lines = [f'{{"time":"2026-01-01T00:00:0{i}+00:00","level":"ERROR","status":500,"message":"boom {i}"}}'
             for i in range(8)] + ["x" * 1000]
    summary = logs.summarise("sre-app", lines, limit=3, window_s=60)
    assert summary["matched"] == 9 and summary["omitted"] == 6 and len(summary["lines"]) == 3
    assert summary["by_status"] == {"500": 8} and summary["by_level"] == {"ERROR": 8}
    assert summary["most_repeated"][0] == {"message": "boom N", "count": 8}, "numbers are folded"
    assert summary["lines"][-1].endswith("...(cut)") and len(summary["lines"][-1]) < 420


def test_log_times_are_read_from_json_and_nginx_lines():
    assert logs.stamp('{"time":"2026-01-01T00:00:00+00:00","x":1}') == 1767225600.0
    assert logs.stamp("2026/01/01 00:00:00 [error] 1#1: *2 upstream timed out") is not None
    assert logs.stamp("[WARNING]  (1407) : Server X is DOWN") is None


def test_the_reference_agent_takes_the_first_step_a_tool_can_take():
    assert action_for("start it: `sre-workshop service start nginx` (AWS: systemctl)") == ("restart_service", "nginx")
    assert action_for("restart (`sre-workshop service restart sre-app`) or "
                      "`sre-workshop fault clear memory-leak`") == ("restart_service", "sre-app")
    assert action_for("locally: `sre-workshop fault clear bad-config-deploy`") is None  # no fault controls
    assert action_for("then `sre-workshop service reload nginx`") is None


def test_a_submission_is_checked_and_taken_once(tmp_path):
    record = RunRecord(tmp_path)
    with pytest.raises(UsageError, match="component must be"):
        record.submit("the-web-server", "crash", "", [])
    with pytest.raises(UsageError, match="both none"):
        record.submit("nginx", "none", "", [])
    record.call("diagnose", {}, True)
    assert record.submit("nginx", "crash", "killed", ["restart_service(nginx): ok"])["component"] == "nginx"
    with pytest.raises(UsageError, match="already submitted"):
        record.submit("none", "none", "", [])
    assert record.submission()["category"] == "crash" and record.calls()[0]["tool"] == "diagnose"


class Ledger:
    def incidents(self, limit):
        return [{"incident_id": "inc-1-nginx-crash", "status": "active", "detail": {"saved": {}, "params": {}}},
                {"incident_id": "inc-0-latency", "status": "cleared", "detail": {"saved": {"x": 1}, "params": {}}}]


class Backend:
    ledger = Ledger()


def test_an_evaluated_agent_does_not_see_open_incidents_and_nobody_sees_what_clear_restores():
    assert [i["incident_id"] for i in incidents(Backend(), 10, hide_open=True)] == ["inc-0-latency"]
    shown = incidents(Backend(), 10, hide_open=False)
    assert len(shown) == 2 and all("saved" not in i["detail"] for i in shown)


def test_agents_are_named_by_their_command():
    assert agent_name("python -m sre_workshop.agents.reference") == "reference"
    assert agent_name("/opt/bin/my-agent --fast") == "my-agent"
    with pytest.raises(UsageError):
        agent_name("  ")


def test_diagnose_never_imports_scenarios_or_the_mcp_server():
    root = Path(diagnose.__file__).parent
    imports = re.compile(r"^\s*(?:from|import)\s+\S*(scenarios|mcp|agents)\b", re.MULTILINE)
    assert not [p.name for p in root.rglob("*.py") if imports.search(p.read_text())]


def test_an_agents_control_row_says_whether_it_raised_a_false_alarm():
    quiet = Result("control", "agent:x", None, agent={"submitted": True, "tool_calls": 7})
    alarm = Result("control", "agent:x", None, false_positives=1, agent={"submitted": True, "tool_calls": 2})
    assert scorecard.row(quiet)[-1] == "no false alarm (7 calls)"
    assert scorecard.row(alarm)[-1] == "FALSE ALARM (2 calls)"
    assert scorecard.row(Result("control", "agent:x", None))[-1] == "no submission (0 calls)"
