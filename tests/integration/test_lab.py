"""`sre-workshop lab` end to end on a real local stack: a learner starts a lab, submits a wrong and then a
right diagnosis, fixes the fault as a person would (`service start`), and `lab check` passes; another lab
ends with hints and `lab giveup`. Every step is in IncidentHistoryTable."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import cli, cli_json, local_stack, port_offset

OFFSET = port_offset(300)




@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with local_stack(tmp_path_factory, "lab", OFFSET) as state:
        yield state
        if (state / "run" / "lab.json").exists():
            cli(state, "lab", "giveup")


@pytest.fixture
def learner(stack, monkeypatch):
    monkeypatch.setenv("SRE_WORKSHOP_PORT_OFFSET", str(OFFSET))
    return stack


def lab_events(state: Path, capsys) -> dict[str, list[dict]]:
    _, found = cli_json(state, capsys, "incidents", "--limit", "5")
    incident = next(i for i in found["incidents"] if any(e["event"] == "lab_started" for e in i["events"]))
    by_kind: dict[str, list[dict]] = {}
    for event in incident["events"]:
        by_kind.setdefault(event["event"], []).append(event)
    return by_kind


def load_requests(state: Path) -> int:
    log = state / "logs" / "nginx-access.log"
    return sum('"request_id":"load-' in line for line in log.read_text().splitlines()) if log.exists() else 0


def test_a_lab_from_ticket_to_a_fix_that_holds(learner, capsys):
    before = load_requests(learner)
    code, ticket = cli_json(learner, capsys, "lab", "start", "nginx-crash")
    assert code == 0 and "502" in ticket["ticket"] and "nginx" not in ticket["ticket"]
    assert cli(learner, "lab", "start", "latency") == 7, "one lab at a time"
    assert cli(learner, "scenario", "run", "latency") == 7, "a scenario would clear the learner's fault"

    code, wrong = cli_json(learner, capsys, "lab", "submit", "--component", "sre-app", "--category", "crash")
    assert code == 1 and wrong == {"component_correct": False, "category_correct": True, "correct": False,
                                   "attempt": 1}
    code, early = cli_json(learner, capsys, "lab", "check", "--sustain", "2")
    assert code == 1 and early["fixed"] is False and early["problems"]
    code, right = cli_json(learner, capsys, "lab", "submit", "--component", "nginx", "--category", "crash",
                           "--cause", "nginx was killed")
    assert code == 0 and right["correct"] and right["attempt"] == 2

    assert cli(learner, "service", "start", "nginx") == 0  # the learner's own fix
    code, done = cli_json(learner, capsys, "lab", "check", "--sustain", "3")
    assert code == 0 and done["fixed"] and done["diagnosed"] and done["attempts"] == 2
    assert done["ground_truth"]["component"] == "nginx" and "service start nginx" in done["writeup"]["fix"]
    assert load_requests(learner) > before, "the lab ran load"
    assert not (learner / "run" / "lab-load.json").exists(), "and stopped it"

    events = lab_events(learner, capsys)
    assert [e["correct"] for e in events["lab_submitted"]] == [False, True]
    assert "remediated" in events and "cleared" not in events, "fixed by the learner, not by the tool"
    assert events["lab_passed"][0]["fixed"] is True


def test_hints_and_giving_up(learner, capsys):
    assert cli(learner, "lab", "start", "bad-config-deploy") == 0
    hints = [cli_json(learner, capsys, "lab", "hint")[1] for _ in range(4)]
    assert [h["number"] for h in hints] == [1, 2, 3, 3] and hints[0]["hint"] != hints[1]["hint"]
    code, out = cli_json(learner, capsys, "lab", "giveup")
    assert code == 0 and out["fixed"] is False and out["hints"] == 3 and not out["diagnosed"]
    assert out["ground_truth"] == {"component": "crm-app", "layer": "app", "category": "config",
                                   "cause": "crm-app was deployed with CUSTOMERS_TABLE naming a table that does "
                                            "not exist"}
    _, status = cli_json(learner, capsys, "fault", "status")
    assert status["faults"] == []
    assert "lab_gave_up" in lab_events(learner, capsys)
    assert cli(learner, "lab", "giveup") == 2, "no lab is running"
    assert cli(learner, "lab", "submit", "--component", "nginx", "--category", "crash") == 2
