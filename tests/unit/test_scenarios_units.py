"""Scenarios in-process: the catalogue's data, scoring one diagnosis, the scorecard and its HTML page."""

from __future__ import annotations

import time

import pytest

from sre_workshop.diagnose.model import Finding, Observations, Report
from sre_workshop.errors import UsageError
from sre_workshop.faults.catalogue import catalogue
from sre_workshop.scenarios import scorecard
from sre_workshop.scenarios.catalogue import get, scenarios
from sre_workshop.scenarios.html import page
from sre_workshop.scenarios.model import Scenario
from sre_workshop.scenarios.result import Result
from sre_workshop.scenarios.runner import judge
from sre_workshop.vocabulary import CATEGORIES, COMPONENTS


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
    assert "<svg" in html and "http" not in html.replace("http-equiv", "")
