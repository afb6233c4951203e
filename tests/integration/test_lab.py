"""`sre-workshop lab` end to end on a real local stack, as a learner meets it.

One stack, three labs: nginx-crash (nothing the learner sees names the fault, the examiner's record is not in
run/, doctor and the fault commands refuse, `check` says what it waits for, the hints grade down to the
repair, and the learner's own `service start` is credited); latency (the fault tool's own clear is not
credited; `giveup` reveals and clears); memory-leak with --assist (doctor counted as a hint; a restart alone
brings the deployed leak back, editing sre-app's env file on its instance and restarting is the repair).
Every step is in IncidentHistoryTable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from exposure import twin
from honesty import leaks
from sre_workshop.errors import StackBusy
from sre_workshop.faults import runner as faults
from sre_workshop.faults.backends import LocalBackend
from sre_workshop.local.components import LOCAL_CREDENTIALS
from sre_workshop.local.stack import Stack
from sre_workshop.mcp.world import LocalWorld
from sre_workshop.scenarios.identity import Identity
from sre_workshop.settings import Settings

from conftest import cli, cli_json, local_stack, port_offset, run_command

OFFSET = port_offset(300)
APP_ENV = "/etc/sre-workshop/sre-app.env"


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with local_stack(tmp_path_factory, "lab", OFFSET) as state:
        yield state
        if (state / "examiner" / "lab.json").exists():
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


def said(capsys, state: Path, *args: str) -> tuple[int, str]:
    """Run a command as a learner types it; return its exit status and all it printed (stdout and stderr)."""
    capsys.readouterr()
    code = cli(state, *args)
    out = capsys.readouterr()
    return code, out.out + out.err


def stack_of(state: Path) -> Stack:
    return Stack.open(Settings.from_env(state_dir=state))


def readable(state: Path) -> str:
    """What the learner reads in the state directory as an instance's /etc and /var/log: run/ and logs/."""
    found = [p for folder in ("run", "logs") for p in (state / folder).rglob("*") if p.is_file()]
    return "\n".join(f"{p.name} {p.read_text(errors='replace')}" for p in found if not p.is_socket())


def learners_aws(state: Path, capsys):
    """Check what `aws-env` gives a learner during a lab: an IAM user of its own at the scoped endpoint, whose
    SSM command history and CloudTrail hold its own calls, never the steps the fault tool ran (the operator's
    credentials see those); return a client factory for that identity."""
    code, env = cli_json(state, capsys, "aws-env", "--json")
    assert code == 0 and env["AWS_ACCESS_KEY_ID"] != LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"]
    client = Identity(env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"], env["AWS_ENDPOINT_URL"],
                      env["AWS_REGION"]).client
    assert twin(stack_of(state), "ssm").list_commands()["Commands"], "the tool ran the fault's steps by SSM"
    assert client("ssm").list_commands()["Commands"] == []
    nginx = client("ec2").describe_instances(Filters=[{"Name": "tag:Name", "Values": ["sre-workshop-nginx"]}])
    (instance,) = [i["InstanceId"] for r in nginx["Reservations"] for i in r["Instances"]]
    assert run_command(client("ssm"), instance, "grep -c proxy_pass /etc/nginx/nginx.conf")["Status"] == "Success"
    (own,) = client("ssm").list_commands()["Commands"]
    assert own["Parameters"]["commands"] == ["grep -c proxy_pass /etc/nginx/nginx.conf"]
    events = client("cloudtrail").lookup_events(MaxResults=50)["Events"]
    others = [json.loads(e["CloudTrailEvent"]) for e in events if e.get("AccessKeyId") != env["AWS_ACCESS_KEY_ID"]]
    assert others and not [e["requestParameters"] for e in others if e.get("requestParameters")]
    with pytest.raises(ClientError, match="AccessDeniedException"):
        client("dynamodb").scan(TableName="IncidentHistoryTable")
    return client


def test_a_lab_from_ticket_to_a_fix_that_holds(learner, capsys):
    before = load_requests(learner)
    code, shown = said(capsys, learner, "lab", "start", "nginx-crash")
    assert code == 0 and "TICKET" in shown and "502" in shown and "sre-workshop shell INSTANCE" in shown
    assert leaks(shown) == set() and "nginx" not in shown.split("Investigate")[0], shown
    assert (learner / "examiner" / "lab.json").exists() and not (learner / "run" / "lab.json").exists()
    # sre-app's Prometheus metric of its deliberate leak is always there, whatever is broken (as memory_leak_size_mb)
    assert leaks(readable(learner), echo=("sre_app_memory_leak_bytes",)) == set(), "run/ or logs/ name the fault"
    assert "nginx-crash" in (learner / "examiner" / "faults.json").read_text(), "the examiner keeps it"
    assert cli(learner, "lab", "start", "latency") == 7, "one lab at a time"
    assert cli(learner, "scenario", "run", "latency") == 7, "a scenario would clear the learner's fault"

    with pytest.raises(ClientError, match="AccessDeniedException"):  # the `aws` CLI through aws-env
        twin(stack_of(learner), "dynamodb").scan(TableName="IncidentHistoryTable")
    with pytest.raises(StackBusy, match="lab hint"):  # `sre-workshop mcp`'s doctor
        LocalWorld(stack_of(learner)).diagnose()
    for oracle in (["doctor"], ["fault", "status"], ["fault", "clear", "--all"], ["incidents"]):
        code, refusal = said(capsys, learner, *oracle)
        assert code == 7 and len(refusal.strip().splitlines()) == 1 and leaks(refusal) == set(), refusal
    assert "lab hint" in said(capsys, learner, "doctor")[1]
    key = learners_aws(learner, capsys)

    code, wrong = cli_json(learner, capsys, "lab", "submit", "--component", "sre-app", "--category", "crash")
    assert code == 1 and wrong == {"component_correct": False, "category_correct": True, "correct": False,
                                   "attempt": 1}
    code, waiting = said(capsys, learner, "lab", "check", "--sustain", "2", "--wait", "3")
    assert code == 1 and "waiting for your repair" in waiting and leaks(waiting) == set(), waiting
    hints = [cli_json(learner, capsys, "lab", "hint")[1] for _ in range(6)]
    assert [h["number"] for h in hints] == [1, 2, 3, 4, 5, 5]
    assert "systemctl start nginx" in hints[-1]["hint"] and "Repair" not in hints[0]["hint"], "down to the repair"
    assert leaks(" ".join(h["hint"] for h in hints)) == set()
    code, right = cli_json(learner, capsys, "lab", "submit", "--component", "nginx", "--category", "crash",
                           "--cause", "nginx was killed")
    assert code == 0 and right["correct"] and right["attempt"] == 2

    assert cli(learner, "service", "start", "nginx") == 0  # the learner's own fix
    code, done = cli_json(learner, capsys, "lab", "check", "--sustain", "3")
    assert code == 0 and done["fixed"] and done["diagnosed"] and done["attempts"] == 2 and done["hints"] == 5
    assert done["ground_truth"]["component"] == "nginx" and "service start nginx" in done["writeup"]["fix"]
    assert load_requests(learner) > before, "the lab ran load"
    assert not (learner / "run" / "lab-load.json").exists(), "and stopped it"

    with pytest.raises(ClientError, match="InvalidClientTokenId"):
        key("sts").get_caller_identity()  # the learner's key ends with the lab
    assert cli_json(learner, capsys, "aws-env", "--json")[1]["AWS_ACCESS_KEY_ID"] == LOCAL_CREDENTIALS[
        "AWS_ACCESS_KEY_ID"]

    events = lab_events(learner, capsys)
    assert [e["correct"] for e in events["lab_submitted"]] == [False, True]
    assert "remediated" in events and "cleared" not in events, "fixed by the learner, not by the tool"
    assert events["lab_passed"][0]["fixed"] is True


def test_the_fault_tools_own_clear_is_not_credited_and_giveup_reveals(learner, capsys):
    assert cli(learner, "lab", "start", "latency") == 0
    # As an MCP client allowed changes would: the tool's undo, not a repair of the learner's.
    faults.clear(LocalBackend(stack_of(learner)), "latency")
    code, out = cli_json(learner, capsys, "lab", "check", "--sustain", "2")
    assert code == 1 and out["fixed"] is False and out["credit"] is False and "not credited" in out["waiting"]
    code, out = cli_json(learner, capsys, "lab", "giveup")
    assert code == 0 and out["fixed"] is False and not out["diagnosed"]
    assert out["ground_truth"]["component"] == "sre-app" and out["ground_truth"]["category"] == "latency"
    _, status = cli_json(learner, capsys, "fault", "status")
    assert status["faults"] == [], "giveup cleared it"
    assert "lab_gave_up" in lab_events(learner, capsys)
    assert cli(learner, "lab", "giveup") == 2, "no lab is running"
    assert cli(learner, "lab", "submit", "--component", "nginx", "--category", "crash") == 2


def test_the_leak_is_repaired_in_the_apps_deployed_config_and_doctor_counts_as_a_hint(learner, capsys):
    code, shown = said(capsys, learner, "lab", "start", "memory-leak", "--assist")
    assert code == 0 and leaks(shown) == set() and "doctor` is allowed" in shown, shown
    assert cli(learner, "doctor") in (0, 1), "--assist: doctor runs"
    deployed = f"grep -qx LEAK_MODE=request {APP_ENV}"
    assert cli(learner, "shell", "AppServerInstance1", "-c", deployed) == 0, "the app is deployed leaking"

    assert cli(learner, "shell", "AppServerInstance1", "-c", "systemctl restart sre-app") == 0
    code, out = cli_json(learner, capsys, "lab", "check", "--sustain", "2")
    assert code == 1 and out["credit"] and "waiting for your repair" in out["waiting"], "a restart brings it back"

    edit = f"sed -i 's/^LEAK_MODE=.*/LEAK_MODE=off/' {APP_ENV} && systemctl restart sre-app"
    assert cli(learner, "shell", "AppServerInstance1", "-c", edit) == 0
    code, done = cli_json(learner, capsys, "lab", "check", "--sustain", "3", "--wait", "30")
    assert code == 0 and done["fixed"] and done["hints"] == 1, "the doctor run counted as a hint"
    assert "LEAK_MODE=off" in done["writeup"]["fix"]
    events = lab_events(learner, capsys)
    assert "remediated" in events and "cleared" not in events
    assert [e.get("doctor") for e in events["lab_hint"]] == [1]
