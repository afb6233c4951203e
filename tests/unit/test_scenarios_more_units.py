"""Scenarios that cannot be memorised, in-process: variants drawn reproducibly from a seed and grouped by the
scorecard, the extra (compound, cascade, manual) scenarios' data and per-part scoring, manual steps, and
noise that names no fault."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from sre_workshop.diagnose.model import Finding, Observations, Report
from sre_workshop.errors import UsageError
from sre_workshop.faults.catalogue import catalogue
from sre_workshop.scenarios import noise, scorecard
from sre_workshop.scenarios.catalogue import get, scenarios
from sre_workshop.scenarios.extra import Multi, Part, extras, get_any
from sre_workshop.scenarios.multi import StepFailed, judge
from sre_workshop.scenarios.result import Result
from sre_workshop.scenarios.variants import group_of, variant, variants


def test_variants_are_reproducible_from_the_seed_and_differ_between_seeds():
    for scenario in scenarios().values():
        assert [v.params for v in variants(scenario, 7, 3)] == [v.params for v in variants(scenario, 7, 3)]
    drawn = {variant(get("latency"), seed, 1).params for seed in range(5)}
    assert len(drawn) > 1


@pytest.mark.parametrize("name", [n for n in sorted(scenarios()) if n != "control"])
def test_each_variant_draws_the_target_and_the_intensity_within_range(name):
    scenario = get(name)
    fault = scenario.fault_def()
    for drawn in variants(scenario, 11, 4):
        params = drawn.parsed_params()  # in range, or this raises
        assert group_of(drawn.name) == name
        for param in fault.params:
            if not (param.choices or param.intensity) and str(param.default) != "":
                assert params[param.name] == scenario.parsed_params()[param.name]


def test_a_scenario_narrows_what_is_drawn_and_the_control_has_no_variants():
    assert {variant(get("nginx-timeout"), s, 1).parsed_params()["timeout_s"] for s in range(20)} <= {1, 2}
    assert variants(get("control"), 1, 3) == [get("control")]


def test_the_scorecard_groups_variants_and_shows_their_spread():
    truth = get("latency").truth().to_dict()
    results = [Result(f"latency~v{i}", "doctor", truth, mttd_s=m, detected_at=1.0 if m else None,
                      localized=bool(m), params=[f"latency_ms={i * 100}"]) for i, m in ((1, 2.0), (2, 6.0), (3, None))]
    results.append(Result("control", "doctor", None))
    spread = scorecard.spread(results)
    assert [g["scenario"] for g in spread] == ["latency", "control"]
    assert spread[0]["runs"] == 3 and spread[0]["detected"] == 2 and spread[0]["mttd_s"] == {
        "min": 2.0, "median": 4.0, "max": 6.0}
    table = scorecard.spread_table(results)
    assert "latency" in table and "control" not in table and "latency_ms=300" in table


def test_extra_scenarios_load_with_their_parts_ground_truth():
    found = extras()
    assert {m.kind for m in found.values()} == {"compound", "cascade", "manual"}
    compound = [m for m in found.values() if m.kind == "compound"]
    assert all(len({p.truth().layer for p in m.parts}) == 2 for m in compound)  # different layers
    assert get_any("manual-crm-frozen").parts[0].truth().component == "crm-app"
    assert get_any("nginx-crash") is get("nginx-crash")
    with pytest.raises(UsageError, match="manual-crm-frozen"):
        get_any("nope")
    assert not set(found) & set(scenarios())


def test_a_part_is_a_fault_or_steps_with_a_truth_of_the_vocabulary():
    with pytest.raises(ValueError):
        Part.load({"fault": "nginx-crash", "steps": ["true"]})
    with pytest.raises(ValueError):
        Part.load({"label": "x", "steps": ["true"], "ground_truth": {"component": "kettle", "category": "crash",
                                                                     "cause": "c"}})


def test_an_extra_file_with_an_unknown_kind_is_refused(tmp_path: Path):
    path = tmp_path / "x.toml"
    path.write_text('title = "t"\nkind = "triple"\nticket = "t"\n[[parts]]\nfault = "nginx-crash"\n')
    with pytest.raises(ValueError, match="kind"):
        Multi.load_file(path)


def report(*components: str) -> Report:
    return Report("now", [Finding(c, "app", "major", c, ["e"], "fix") for c in components],
                  Observations("now", "local"))


def test_each_part_is_found_by_any_finding_and_ranked_by_when():
    multi = get_any("compound-web-and-crm")
    results = [Result(p.label, "doctor", p.truth().to_dict(), injected_at=time.time() - 2, group={"rank": None})
               for p in multi.parts]
    judge(results, report("sre-app"))
    judge(results, report("sre-app", "crm-app"))
    judge(results, report("crm-app", "nginx"))
    first, second = results
    assert second.detected and second.group["rank"] == 1
    assert first.detected and first.group["rank"] == 2 and first.diagnoses == 3


def test_manual_steps_run_in_order_with_the_stacks_pids_and_a_failure_names_the_step(tmp_path, monkeypatch):
    from sre_workshop.scenarios import multi

    monkeypatch.setattr(multi, "step_env", lambda stack, scratch: {"PATH": "/usr/bin:/bin", "PID_CRM_APP": "42",
                                                                    "SCRATCH": str(scratch)})
    out = tmp_path / "out"
    multi.run_steps(None, (f"echo one $PID_CRM_APP >> {out}", "echo kept > $SCRATCH/saved"), tmp_path)
    assert out.read_text() == "one 42\n" and (tmp_path / "saved").read_text() == "kept\n"
    with pytest.raises(StepFailed, match="exit 3"):
        multi.run_steps(None, ("exit 3", f"echo never >> {out}"), tmp_path)
    multi.run_steps(None, ("exit 3", f"echo undo >> {out}"), tmp_path, check=False)  # undo runs every step
    assert out.read_text().endswith("undo\n")


def test_noise_kinds_are_parsed_and_its_text_names_no_fault():
    assert noise.parse_kinds("all") == noise.KINDS and noise.parse_kinds(None) == ()
    with pytest.raises(UsageError, match="busy-process"):
        noise.parse_kinds("client-errors,fire")
    visible = " ".join([noise.BUSY, *(m for _, m in noise.LINES)]).lower()
    for word in [*catalogue(), "noise", "fault", "inject", "scenario"]:
        assert not re.search(rf"\b{word}", visible), word
