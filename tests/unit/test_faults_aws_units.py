"""The AWS backend's pieces in process: the Run Command text (executed here by a real sh), waiting for an
invocation, the fault scripts themselves, policy documents, the tables' throttling logic, the ledger's open
incidents, the lock, steady state, and the contract every fault's aws.py keeps."""

from __future__ import annotations

import base64
import importlib
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from sre_workshop.aws.control import AwsControl, policy_document
from sre_workshop.aws.ssm import HEREDOC_END, OUTPUT_LIMIT, SCRIPTS_DIR, Runner, render, script, shell
from sre_workshop.errors import AwsError, ComponentFailed, StackBusy, UsageError
from sre_workshop.faults.aws_backend import LOCK_ID, AwsBackend
from sre_workshop.faults.catalogue import FAULTS_DIR, catalogue
from sre_workshop.faults.cpu_burn.aws import PIDFILE
from sre_workshop.faults.model import NotYet
from sre_workshop.tables import create_tables

REGION = "us-east-1"
FUNCTIONS = ("snapshot", "inject", "verify", "active", "clear")


def sh(text: str) -> subprocess.CompletedProcess:
    """Run a Run Command text as the SSM agent does: one shell script."""
    return subprocess.run(["sh", "-c", text], capture_output=True, text=True, timeout=30, check=False)


# --- the Run Command text ------------------------------------------------------------------------------------


def test_render_ships_each_script_verbatim_and_runs_it_with_quoted_arguments(tmp_path):
    env = tmp_path / "app.env"
    env.write_text("A=1\nCUSTOMERS_TABLE=old\n")
    tricky = "it's $HOME `id` \"q\" \\n; rm -rf /"
    text = render([script("env-set.sh", env, "CUSTOMERS_TABLE", tricky), script("file-get.sh", env)])
    assert text.count("<<'SRE_WORKSHOP_SCRIPT_END'") == 2
    assert (SCRIPTS_DIR / "env-set.sh").read_text().rstrip("\n") in text
    result = sh(text)
    assert result.returncode == 0, result.stderr
    assert env.read_text() == f"A=1\nCUSTOMERS_TABLE={tricky}\n"
    assert base64.b64decode(result.stdout.strip()) == env.read_bytes()


def test_render_stops_at_the_first_failing_step_with_its_one_line_error(tmp_path):
    conf = tmp_path / "nginx.conf"
    conf.write_text("proxy_read_timeout 60s;\n")
    text = render([script("file-replace.sh", conf, "no such line", "x"), shell("echo never")])
    result = sh(text)
    assert result.returncode == 1 and "never" not in result.stdout
    last = result.stderr.strip().splitlines()[-1]
    assert last == f"file-replace: 'no such line' is not in {conf}; nothing was changed"
    assert conf.read_text() == "proxy_read_timeout 60s;\n"
    assert not list(tmp_path.glob(".file-replace.*"))


def test_a_script_is_shipped_once_per_run(tmp_path):
    text = render([script("file-get.sh", "/a"), script("file-get.sh", "/b")])
    assert text.count("cat > \"$d/file-get.sh\"") == 1


def test_render_refuses_unknown_scripts_and_ones_that_would_end_their_here_document(tmp_path):
    with pytest.raises(UsageError, match=r"no fault script nope\.sh"):
        render([script("nope.sh")])
    with pytest.raises(UsageError, match="no fault script"):
        render([script("../control.py")])
    (tmp_path / "bad.sh").write_text(f"echo\n{HEREDOC_END}\nrm -rf /\n")
    with pytest.raises(UsageError, match="would end its here-document"):
        render([script("bad.sh")], tmp_path)


# --- waiting for an invocation ---------------------------------------------------------------------------------


class FakeSSM:
    """An SSM client that answers a scripted series of GetCommandInvocation results."""

    def __init__(self, *answers: dict[str, Any] | Exception, refuse: bool = False) -> None:
        self.answers = list(answers)
        self.refuse = refuse
        self.sent: list[dict[str, Any]] = []

    def send_command(self, **params):
        if self.refuse:
            raise ClientError({"Error": {"Code": "InvalidInstanceId", "Message": "Instances not in a valid state"}},
                              "SendCommand")
        self.sent.append(params)
        return {"Command": {"CommandId": "c-1"}}

    def get_command_invocation(self, **_):
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


MISSING = ClientError({"Error": {"Code": "InvocationDoesNotExist", "Message": ""}}, "GetCommandInvocation")


def test_runner_waits_through_a_missing_then_pending_invocation():
    client = FakeSSM(MISSING, {"Status": "Pending"}, {"Status": "InProgress"},
                     {"Status": "Success", "StandardOutputContent": "done\n"})
    assert Runner(client, poll=0).run("i-1", "nginx", [shell("true")]) == "done\n"
    (sent,) = client.sent
    assert sent["InstanceIds"] == ["i-1"] and sent["DocumentName"] == "AWS-RunShellScript"
    assert sent["Comment"] == "sre-workshop: true" and sent["Parameters"]["executionTimeout"] == ["120"]


def test_doctors_runs_are_labelled_as_doctors_in_ssms_history():
    client = FakeSSM({"Status": "Success", "StandardOutputContent": "{}\n"})
    Runner(client, poll=0, purpose="doctor").run("i-1", "nginx", [shell("true")], "observe-host.sh")
    assert client.sent[0]["Comment"] == "sre-workshop doctor: observe-host.sh"


def test_a_failed_step_is_one_line_naming_the_instance_and_its_stderr():
    stderr = "warning\nfile-put: the content is not valid base64\n"
    client = FakeSSM({"Status": "Failed", "StandardErrorContent": stderr})
    with pytest.raises(ComponentFailed) as caught:
        Runner(client, poll=0).run("i-1", "nginx", [script("file-put.sh", "/f", "x")])
    assert str(caught.value) == "file-put.sh on nginx (i-1) ended Failed: file-put: the content is not valid base64"


def test_runner_bounds_the_wait_and_names_refusals_and_cut_output():
    with pytest.raises(AwsError, match=r"true on nginx \(i-1\) did not finish within 0s \(command c-1\)"):
        Runner(FakeSSM({"Status": "InProgress"}), timeout=0, poll=0, delivery=0).run("i-1", "nginx",
                                                                                      [shell("true")])
    with pytest.raises(AwsError, match=r"cannot run true on nginx \(i-1\) through SSM: InvalidInstanceId.*online"):
        Runner(FakeSSM(refuse=True)).run("i-1", "nginx", [shell("true")])
    cut = {"Status": "Success", "StandardOutputContent": "x" * OUTPUT_LIMIT}
    with pytest.raises(AwsError, match="cut at 24000 characters"):
        Runner(FakeSSM(cut)).run("i-1", "nginx", [shell("true")])


# --- the fault scripts, run here as on an instance ----------------------------------------------------------------


def run_script(name: str, *args: object) -> subprocess.CompletedProcess:
    return subprocess.run(["sh", str(SCRIPTS_DIR / name), *map(str, args)], capture_output=True, text=True,
                          timeout=30, check=False)


def test_file_get_and_put_restore_a_file_byte_for_byte_keeping_its_mode(tmp_path):
    conf = tmp_path / "nginx.conf"
    original = b"line one\n\ttabbed \xe2\x82\xac\nno newline at the end"
    conf.write_bytes(original)
    conf.chmod(0o640)
    saved = run_script("file-get.sh", conf).stdout.strip()
    conf.write_text("edited\n")
    assert run_script("file-put.sh", conf, saved).returncode == 0
    assert conf.read_bytes() == original and conf.stat().st_mode & 0o777 == 0o640
    bad = run_script("file-put.sh", conf, "@@not base64@@")
    assert bad.returncode == 1 and bad.stderr == "file-put: the content is not valid base64\n"
    assert conf.read_bytes() == original
    assert run_script("file-get.sh", tmp_path / "none").stderr == f"file-get: no file {tmp_path / 'none'}\n"


def test_file_replace_is_all_or_nothing_and_treats_strings_literally(tmp_path):
    conf = tmp_path / "nginx.conf"
    conf.write_text('set $private_alb "a.b";\nproxy_read_timeout 60s;\n')
    ok = run_script("file-replace.sh", conf, 'set $private_alb "a.b";', 'set $private_alb "127.0.0.1:1";',
                    "proxy_read_timeout 60s;", "proxy_read_timeout 1s; # a\\b &")
    assert ok.returncode == 0, ok.stderr
    assert conf.read_text() == 'set $private_alb "127.0.0.1:1";\nproxy_read_timeout 1s; # a\\b &\n'
    before = conf.read_text()
    partial = run_script("file-replace.sh", conf, "proxy_read_timeout 1s;", "x", "missing", "y")
    assert partial.returncode == 1 and conf.read_text() == before
    assert run_script("file-replace.sh", conf, "only-old").returncode == 2


def test_env_set_changes_exactly_one_existing_line(tmp_path):
    env = tmp_path / "crm-app.env"
    env.write_text("CUSTOMERS_TABLE=a\nFAULT_CONTROL_TOKEN=t\n")
    env.chmod(0o600)
    assert run_script("env-set.sh", env, "CUSTOMERS_TABLE", "a-v2").returncode == 0
    assert env.read_text() == "CUSTOMERS_TABLE=a-v2\nFAULT_CONTROL_TOKEN=t\n" and env.stat().st_mode & 0o777 == 0o600
    missing = run_script("env-set.sh", env, "DEALS_TABLE", "x")
    assert missing.returncode == 1 and "has 0 lines setting DEALS_TABLE, not one" in missing.stderr
    assert run_script("env-set.sh", env, "A=B", "x").returncode == 2
    env.write_text("X=1\nX=2\n")
    assert "has 2 lines setting X" in run_script("env-set.sh", env, "X", "3").stderr


def test_app_leak_refuses_bad_usage_before_any_request(tmp_path):
    token = tmp_path / "token"
    token.write_text("secret\n")
    assert run_script("app-leak.sh", "80a", token, "get").stderr == "app-leak: PORT must be a number, not '80a'\n"
    assert run_script("app-leak.sh", "1", token, "drop").returncode == 2
    assert run_script("app-leak.sh", "1", token, "put").returncode == 2
    assert "cannot read the token file" in run_script("app-leak.sh", "1", tmp_path / "none", "get").stderr
    refused = run_script("app-leak.sh", "1", token, "get")  # nothing listens on port 1
    assert refused.returncode == 1 and refused.stderr.startswith("app-leak: GET http://127.0.0.1:1/admin/leak failed")


def test_pidfile_alive_lists_only_live_pids(tmp_path):
    pidfile = tmp_path / "burn.pid"
    dead = subprocess.Popen(["true"])
    dead.wait()
    pidfile.write_text(f"{os.getpid()}\n{dead.pid} junk\n")
    assert run_script("pidfile-alive.sh", pidfile).stdout == f"{os.getpid()}\n"
    assert run_script("pidfile-alive.sh", tmp_path / "none").stdout == ""


# --- IAM policy documents ---------------------------------------------------------------------------------------


def test_policy_document_takes_data_or_url_encoded_json_and_refuses_anything_else():
    doc = {"Version": "2012-10-17", "Statement": []}
    assert policy_document(doc) is doc
    assert policy_document("%7B%22Version%22%3A%20%222012-10-17%22%2C%20%22Statement%22%3A%20%5B%5D%7D") == doc
    with pytest.raises(AwsError, match="not JSON"):
        policy_document("{'Version': '2012-10-17'}")


# --- faults' logic over a stub control ---------------------------------------------------------------------------


class StubControl:
    """What a fault reads, set by the test: a policy, public answers, target health."""

    def __init__(self, **answers: Any) -> None:
        self.answers = answers

    def role_name(self) -> str:
        return "wk-EC2InstanceRole-1"

    def role_policy(self, name: str):
        return self.answers["policy"]

    def probe(self, entry: str, path: str = "/", timeout: float = 5.0) -> tuple[int, float]:
        return self.answers["probes"].get((entry, path), 200), 0.1

    def url(self, entry: str, path: str = "/") -> str:
        return f"http://{entry}.example{path}"

    def target_health(self):
        return self.answers["targets"]


def test_access_denied_verify_waits_for_the_policy_then_for_its_effect():
    from sre_workshop.faults.dynamodb_access_denied import aws

    with pytest.raises(NotYet, match="not the Deny yet"):
        aws.verify(StubControl(policy={"Statement": []}, probes={}), {})
    with pytest.raises(NotYet, match="still answers 200 \\(IAM is propagating\\)"):
        aws.verify(StubControl(policy=aws.DENY, probes={}), {})
    evidence = aws.verify(StubControl(policy=aws.DENY, probes={aws.PROBE: 503}), {})
    assert "denies dynamodb:*" in evidence and "answers 503" in evidence
    assert aws.active(StubControl(policy=None), {}) is True  # no policy: nothing allows DynamoDB
    allow = {"Statement": {"Effect": "Allow", "Action": "dynamodb:*", "Resource": "*"}}
    assert aws.active(StubControl(policy=allow), {}) is False


def test_problems_name_unhealthy_or_missing_targets_before_probing(monkeypatch):
    monkeypatch.setattr("sre_workshop.faults.aws_backend.PROBLEMS_INTERVAL", 0.0)
    backend = AwsBackend.__new__(AwsBackend)
    backend._looked_at = 0.0
    backend.ctl = StubControl(targets={"PublicALBTargetGroup": [{"id": "i-1", "state": "unhealthy",
                                                                 "reason": "Health checks failed"}],
                                       "CRMAppTargetGroup": []}, probes={})
    assert backend.problems() == ["PublicALBTargetGroup: target i-1 is unhealthy (Health checks failed)",
                                  "CRMAppTargetGroup has no registered target"]
    healthy = [{"id": "i-1", "state": "healthy", "reason": ""}]
    backend.ctl = StubControl(targets={"PublicALBTargetGroup": healthy}, probes={("crm", "/health"): 0})
    assert backend.problems() == ["http://crm.example/health answered nothing"]
    backend.ctl = StubControl(targets={"PublicALBTargetGroup": healthy}, probes={})
    assert backend.problems() == []


def test_problems_are_looked_at_every_few_seconds_at_most(monkeypatch):
    backend = AwsBackend.__new__(AwsBackend)
    backend._looked_at = -10.0
    backend.ctl = StubControl(targets={}, probes={})
    monkeypatch.setattr("sre_workshop.faults.aws_backend.PROBLEMS_INTERVAL", 0.5)
    started = time.monotonic()
    backend.problems()
    assert time.monotonic() - started < 0.4
    backend.problems()
    assert time.monotonic() - started >= 0.5


def test_security_group_rule_is_found_among_other_pairs_and_permissions():
    from sre_workshop.faults.security_group_block import aws

    class Groups:
        def physical(self, logical: str) -> str:
            return {"NginxSecurityGroup": "sg-n", "PublicALBSecurityGroup": "sg-p"}[logical]

        def ingress(self, group: str):
            return [{"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "UserIdGroupPairs": [{"GroupId": "sg-p"}]},
                    {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "UserIdGroupPairs": [
                        {"GroupId": "sg-x", "Description": "other"},
                        {"GroupId": "sg-p", "UserId": "1", "Description": "from the public ALB"}]}]

    assert aws.rule(Groups(), "public-alb->nginx") == ("sg-n", {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80,
                                                    "UserIdGroupPairs": [{"GroupId": "sg-p",
                                                                          "Description": "from the public ALB"}]})


def test_cpu_burn_verify_reads_the_pids_and_the_load_average():
    from sre_workshop.faults.cpu_burn import aws

    class Host:
        def __init__(self, output: str) -> None:
            self.output = output

        def run(self, component, *steps, label=""):
            return self.output

        def instance(self, component):
            return "i-app"

    evidence = aws.verify(Host("101\n102\n1.95 0.80 0.30 3/120 4567\n"), {})
    assert evidence == "2 burners run on i-app; load average 1.95 0.80 0.30"
    with pytest.raises(NotYet, match="no burner runs on i-app"):
        aws.verify(Host("0.01 0.02 0.00 1/90 4567\n"), {})


class LocalHost:
    """An instance that is this machine: runs the very text SSM would run, with the app's pid file moved."""

    def __init__(self, pidfile: Path) -> None:
        self.pidfile = str(pidfile)

    def run(self, component, *steps, label=""):
        text = render(list(steps)).replace(PIDFILE, self.pidfile)
        return subprocess.run(["sh", "-c", text], capture_output=True, text=True, check=True, timeout=30).stdout

    def instance(self, component):
        return "i-app"


def test_cpu_burn_on_aws_counts_burners_not_their_start_times(tmp_path, monkeypatch):
    """Issue 20.6: the pid file holds "pid start_time" lines; only the pids are burners."""
    from sre_workshop.faults.cpu_burn import aws

    host = LocalHost(tmp_path / "cpu-burn.pid")
    aws.inject(host, {"workers": 2, "duration_s": 30})
    try:
        assert len(aws.burners(host)) == 2
        assert aws.verify(host, {}).startswith("2 burners run on i-app")
        assert aws.active(host, {}) is True
    finally:
        aws.clear(host, {}, {"pidfile": aws.PIDFILE})
    assert aws.burners(host) == [] and aws.active(host, {}) is False
    # A burner gone, whose recorded start time happens to be the number of a live process: no phantom burner.
    gone = subprocess.run(["sh", "-c", "echo $$"], capture_output=True, text=True, check=True).stdout.strip()
    Path(host.pidfile).write_text(f"{gone} {os.getpid()}\n")
    assert aws.burners(host) == [] and aws.active(host, {}) is False


# --- DynamoDB throttling: restore exactly, and what happens when AWS refuses the switch back --------------------


@pytest.fixture
def aws_tables():
    """A control over moto's in-process DynamoDB, with the stack's three CRM tables under their own names."""
    with mock_aws():
        session = boto3.session.Session(region_name=REGION, aws_access_key_id="t", aws_secret_access_key="t")
        create_tables(session.client("dynamodb"))
        ctl = AwsControl(session, "wk", poll=0)
        ctl._resources = {name: name for name in ("CRMCustomersTable", "CRMDealsTable", "CRMActivitiesTable")}
        ctl._outputs = {"IncidentsTableName": "IncidentHistoryTable"}
        yield ctl


def test_a_refused_switch_back_to_on_demand_leaves_the_crm_working_and_says_so(aws_tables, monkeypatch):
    from sre_workshop.faults.dynamodb_throttling import aws

    ctl, params = aws_tables, {"mode": "provisioned"}
    saved = aws.snapshot(ctl, params)
    aws.inject(ctl, params)
    real_update = ctl.update_table

    def refuse_switch(name: str, **changes):
        if changes.get("BillingMode") == "PAY_PER_REQUEST":
            raise AwsError("dynamodb update_table: LimitExceededException: billing mode switch refused")
        return real_update(name, **changes)

    monkeypatch.setattr(ctl, "update_table", refuse_switch)
    with pytest.raises(AwsError) as caught:
        aws.clear(ctl, params, saved)
    message = str(caught.value)
    assert "cannot switch CRMCustomersTable, CRMDealsTable, CRMActivitiesTable back to on-demand" in message
    assert "four switches" in message and "fault clear dynamodb-throttling --aws" in message
    deals = ctl.describe_table("CRMDealsTable")
    assert deals["ProvisionedThroughput"]["ReadCapacityUnits"] == aws.RESCUE_UNITS
    assert deals["GlobalSecondaryIndexes"][0]["ProvisionedThroughput"]["WriteCapacityUnits"] == aws.RESCUE_UNITS
    assert aws.active(ctl, params) is True  # still not as deployed: the incident stays open
    monkeypatch.setattr(ctl, "update_table", real_update)
    aws.clear(ctl, params, saved)  # a day later
    assert aws.active(ctl, params) is False


class Tables:
    """Table descriptions with on-demand maximums (moto keeps none), and the updates asked for."""

    def __init__(self, limits: dict[str, int]) -> None:
        self.limits, self.updates = limits, []

    def table_name(self, logical: str) -> str:
        return logical

    def describe_table(self, name: str) -> dict[str, Any]:
        limit = {"MaxReadRequestUnits": self.limits[name], "MaxWriteRequestUnits": self.limits[name]}
        index = [{"IndexName": "customer-index", "OnDemandThroughput": limit}] if name != "CRMCustomersTable" else []
        return {"BillingModeSummary": {"BillingMode": "PAY_PER_REQUEST"}, "OnDemandThroughput": limit,
                "GlobalSecondaryIndexes": index}

    def update_table(self, name: str, **changes) -> None:
        self.updates.append((name, changes))


def test_on_demand_clear_restores_the_saved_maximums_and_only_where_they_differ():
    from sre_workshop.faults.dynamodb_throttling import aws

    tables = Tables({"CRMCustomersTable": 1, "CRMDealsTable": 1, "CRMActivitiesTable": 40})
    saved = {name: aws.state(Tables({name: -1}).describe_table(name)) for name in tables.limits}
    saved["CRMActivitiesTable"] = aws.state(tables.describe_table("CRMActivitiesTable"))  # it had a maximum of 40
    assert aws.active(tables, {"mode": "on-demand"}) is True
    aws.clear(tables, {"mode": "on-demand"}, saved)
    unlimited = {"MaxReadRequestUnits": -1, "MaxWriteRequestUnits": -1}
    assert tables.updates == [
        ("CRMCustomersTable", {"OnDemandThroughput": unlimited}),
        ("CRMDealsTable", {"OnDemandThroughput": unlimited}),
        ("CRMDealsTable", {"GlobalSecondaryIndexUpdates": [
            {"Update": {"IndexName": "customer-index", "OnDemandThroughput": unlimited}}]})]
    assert aws.active(Tables({"CRMCustomersTable": -1, "CRMDealsTable": 40, "CRMActivitiesTable": -1}),
                      {"mode": "on-demand"}) is False


def test_on_demand_mode_refuses_provisioned_tables(aws_tables):
    from sre_workshop.faults.dynamodb_throttling import aws

    aws.inject(aws_tables, {"mode": "provisioned"})
    with pytest.raises(ComponentFailed, match="run PROVISIONED, where an on-demand maximum does not apply"):
        aws.snapshot(aws_tables, {"mode": "on-demand"})


# --- the ledger's open incidents, and the lock ---------------------------------------------------------------------


def test_recorded_is_the_newest_open_incident_of_each_fault(aws_tables):
    backend = AwsBackend(aws_tables, owner="me")
    ledger = backend.ledger
    old = ledger.open("nginx-crash", {"params": {}, "saved": {"was_running": True}, "injected_by": "a"})
    ledger.event(old, "injected")
    new = ledger.open("nginx-crash", {"params": {}, "saved": {"n": 2}, "injected_by": "b"})
    done = ledger.open("app-crash", {"params": {"target": "sre-app"}, "saved": {}, "injected_by": "c"})
    ledger.event(done, "cleared")
    failed = ledger.open("latency", {"params": {}, "saved": {}, "injected_by": "d"})
    ledger.event(failed, "failed", reason="x")
    local = type(ledger)(ledger.client, source="local", table=ledger.table)
    local.open("cpu-burn", {"params": {}, "saved": {}, "injected_by": "e"})
    recorded = backend.recorded()
    assert list(recorded) == ["nginx-crash"]
    assert recorded["nginx-crash"]["incident_id"] == new and recorded["nginx-crash"]["saved"] == {"n": 2}
    assert isinstance(recorded["nginx-crash"]["injected_at"], float)


def test_a_scenario_is_told_when_the_change_is_in_place_before_the_effect_is_verified(aws_tables, monkeypatch):
    from sre_workshop.faults import runner

    steps: list[str] = []

    class Impl:
        """A fault whose change takes a while (the tool's reads and saves), then is checked."""

        snapshot = staticmethod(lambda ctl, params: {})
        active = staticmethod(lambda ctl, params: False)
        clear = staticmethod(lambda ctl, params, saved: steps.append("clear"))

        @staticmethod
        def inject(ctl, params) -> None:
            time.sleep(0.2)
            steps.append("change")

        @staticmethod
        def verify(ctl, params) -> str:
            steps.append("verify")
            return "seen"

    monkeypatch.setattr(runner, "backend_module", lambda fault, backend: Impl)
    backend = AwsBackend(aws_tables, owner="me")
    monkeypatch.setattr(backend, "check_up", lambda: None)
    told: list[dict] = []
    record = runner.inject(backend, "nginx-crash", [], on_injected=lambda r: (told.append(dict(r)),
                                                                              steps.append("told")))
    assert steps == ["change", "told", "verify"]
    assert told[0]["changed_at"] - told[0]["injected_at"] >= 0.2  # the tool began earlier than the breakage
    assert record["changed_at"] == told[0]["changed_at"] and record["evidence"] == "seen"


def owner(client, backend: AwsBackend) -> str:
    return client.get_item(TableName="IncidentHistoryTable", Key=backend._lock_key())["Item"]["owner"]["S"]


def test_an_expired_lock_is_taken_and_a_lock_is_released_only_by_its_owner(aws_tables):
    first, second = AwsBackend(aws_tables, owner="first"), AwsBackend(aws_tables, owner="second")
    client = aws_tables.client("dynamodb")
    with first.locked():
        second._release_lock()  # not its lock: nothing happens
        assert owner(client, first) == "first"
        with pytest.raises(StackBusy), second.locked(wait=0):
            pass
        client.update_item(TableName="IncidentHistoryTable", Key=first._lock_key(),
                           UpdateExpression="SET expires_at = :past", ExpressionAttributeValues={":past": {"N": "1"}})
        with second.locked(wait=0):  # the first holder died long ago: its lock expired
            assert owner(client, first) == "second"
    assert "Item" not in client.get_item(TableName="IncidentHistoryTable", Key=first._lock_key())
    assert LOCK_ID not in {i["incident_id"] for i in first.ledger.incidents(100)}


# --- the contract every fault's aws.py keeps --------------------------------------------------------------------------


def fault_folders() -> list[Path]:
    return sorted(p for p in FAULTS_DIR.iterdir() if (p / "aws.py").exists() or (p / "fault.toml").exists())


def test_every_fault_has_the_five_aws_functions():
    folders = fault_folders()
    assert len(folders) >= 13
    for folder in folders:
        module = importlib.import_module(f"sre_workshop.faults.{folder.name}.aws")
        missing = [f for f in FUNCTIONS if not callable(getattr(module, f, None))]
        assert not missing, f"{folder.name}/aws.py lacks {missing}"
    leak = importlib.import_module("sre_workshop.faults.memory_leak.aws")
    assert catalogue()["memory-leak"].steady == {"mode": "off"} and callable(leak.current_params)


def test_a_parameter_of_one_world_is_refused_in_the_other():
    throttling = catalogue()["dynamodb-throttling"]
    assert [p.name for p in throttling.params_in("aws")] == ["mode"]
    assert throttling.parse(["mode=provisioned"], "aws")["mode"] == "provisioned"
    with pytest.raises(UsageError, match="only on aws"):
        throttling.parse(["mode=provisioned"], "local")
