"""The AWS side of the tool in process: guard, names, stack submission, rollout, status, wheels.

AWS-calling code runs against moto's in-process mock (mock_aws) or a small fake client where the point is
what the tool does with an answer AWS gives (a role not yet visible, a command that failed).
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from sre_workshop.aws import deploy, guard, names, rollout, stack, wheels
from sre_workshop.aws.status import problems
from sre_workshop.errors import UsageError
from sre_workshop.settings import Settings

REGION = "us-east-1"
INFRA = Settings.from_env().infra_dir
STACK_ID = "arn:aws:cloudformation:us-east-1:123456789012:stack/wk/0000"


@pytest.fixture
def aws(monkeypatch):
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": REGION}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        yield lambda service: boto3.client(service, region_name=REGION)


def error(code: str, message: str = "") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, "Call")


def test_the_guard_survives_a_self_delete_and_the_next_deploy_reuses_it(aws):
    """Issue 9.3: what a deleted stack leaves outside (roles, topic, rule) is made again without 'already exists'."""
    keeper = guard.Guard("wk", REGION, "123456789012")
    said: list[str] = []
    assert guard.ensure_roles(aws("iam"), keeper, INFRA, said.append) is True
    guard.ensure_notices(aws("sns"), aws("events"), keeper, STACK_ID, "a@b.co", said.append)
    # ...the stack deletes itself; the next deploy runs the same steps again:
    assert guard.ensure_roles(aws("iam"), keeper, INFRA, said.append) is False
    topic = guard.ensure_notices(aws("sns"), aws("events"), keeper, STACK_ID.replace("0000", "1111"), "a@b.co",
                                 said.append)
    assert guard.subscribers(aws("sns"), topic) == ["a@b.co"]  # subscribed once
    pattern = json.loads(aws("events").describe_rule(Name="wk-stack-events")["EventPattern"])
    assert pattern["detail"]["stack-id"] == [STACK_ID.replace("0000", "1111")]
    assert sorted(r["RoleName"] for r in aws("iam").list_roles(PathPrefix="/sre-workshop/")["Roles"]) == [
        "wk-us-east-1-cfn", "wk-us-east-1-expiry"]


def test_service_role_policy_is_filled_in_and_compact():
    keeper = guard.Guard("wk", "eu-west-1", "123456789012", "aws-cn")
    policy = guard.service_role_policy(keeper, INFRA)
    assert "${" not in policy and " " not in policy and "arn:aws-cn:iam::123456789012:role/wk-*" in policy
    assert '"Resource":"arn:aws-cn:iam::123456789012:role/sre-workshop/wk-eu-west-1-expiry"' in policy
    assert '"aws:RequestedRegion":"eu-west-1"' in policy


def test_the_service_role_cannot_touch_the_tools_own_roles():
    """The guard's roles sit under /sre-workshop/, outside the role/STACK-* the service role may change."""
    keeper = guard.Guard("wk", REGION, "123456789012")
    assert keeper.role_arn(keeper.service_role) == "arn:aws:iam::123456789012:role/sre-workshop/wk-us-east-1-cfn"
    assert not keeper.role_arn(keeper.service_role).split(":role/")[1].startswith("wk-")


def test_message_names_the_stack_and_what_to_do():
    transformer = guard.message_template()
    text = json.loads(transformer["InputTemplate"])
    assert "<status>" in text and "sre-workshop destroy" in text and set(transformer["InputPathsMap"]) == {
        "stack", "status", "reason", "time"}


@pytest.mark.parametrize("name", ["sre-workshop", "wk", "A1-b"])
def test_good_stack_names(name):
    names.check_stack_name(name)


@pytest.mark.parametrize("name", ["", "1abc", "a_b", "a" * 25, "with space"])
def test_bad_stack_names_are_usage_errors(name):
    with pytest.raises(UsageError, match="--stack-name"):
        names.check_stack_name(name)


class FakeCfn:
    """Answers create_stack as CloudFormation does while a new service role is not yet visible to it."""

    def __init__(self, refusals: int):
        self.refusals, self.calls = refusals, 0

    def create_stack(self, **_):
        self.calls += 1
        if self.calls <= self.refusals:
            raise error("ValidationError", "Role arn:aws:iam::1:role/x is invalid or cannot be assumed")
        return {"StackId": STACK_ID}


def test_submit_waits_for_a_new_service_role(monkeypatch):
    monkeypatch.setattr(stack.time, "sleep", lambda _: None)
    cfn = FakeCfn(refusals=2)
    assert stack.submit(cfn, {"StackName": "wk"}, exists=False, progress=lambda _: None) == STACK_ID
    assert cfn.calls == 3
    with pytest.raises(deploy.AwsError, match="cannot be assumed"):
        stack.submit(FakeCfn(refusals=99), {"StackName": "wk"}, exists=False, progress=lambda _: None,
                     wait_for_role=0)


class FakeSsm:
    """SSM Run Command with one instance whose install fails, and one agent that registers late."""

    def __init__(self):
        self.unregistered = {"i-late": 1}

    def send_command(self, InstanceIds, **_):
        (instance,) = InstanceIds
        if self.unregistered.get(instance, 0) > 0:
            self.unregistered[instance] -= 1
            raise error("InvalidInstanceId", "not registered")
        return {"Command": {"CommandId": f"c-{instance}"}}

    def get_command_invocation(self, CommandId, InstanceId):
        if InstanceId == "i-bad":
            return {"Status": "Failed", "StandardErrorContent": "+ curl -fsS http://127.0.0.1:8080/health?deep=1\n"}
        return {"Status": "Success", "StandardOutputContent": "sre-app.zip x: installed"}


def test_rollout_names_the_instance_whose_install_failed(monkeypatch):
    monkeypatch.setattr(rollout.time, "sleep", lambda _: None)
    steps = [{"zip": "sre-app.zip", "instance": "i-late", "sha256": "a" * 64},
             {"zip": "crm-app.zip", "instance": "i-bad", "sha256": "b" * 64}]
    with pytest.raises(rollout.RolloutFailed, match=r"i-bad \(crm-app.zip\): Failed.*health\?deep=1"):
        rollout.rollout(FakeSsm(), steps, lambda _: None, poll=0)
    done = rollout.rollout(FakeSsm(), steps[:1], lambda _: None, poll=0)
    assert done[0]["status"] == "Success" and done[0]["installed"] is True


def test_rollout_plan_pairs_zips_with_their_instances():
    artifacts = [deploy.package.Artifact(n, Path(n), n[0] * 64) for n in ("nginx-assets.zip", "sre-app.zip")]
    outputs = {"NginxInstanceId": "i-n", "AppServerInstanceId": "i-a", "CRMAppInstanceId": "i-c"}
    assert rollout.plan(outputs, artifacts) == [{"zip": "nginx-assets.zip", "instance": "i-n", "sha256": "n" * 64},
                                                {"zip": "sre-app.zip", "instance": "i-a", "sha256": "s" * 64}]
    assert rollout.command("f" * 64) == [f"/usr/local/sbin/sre-workshop-update-assets {'f' * 64}"]


def report(**changes) -> dict:
    base = {"stack_name": "wk", "exists": True, "status": "CREATE_COMPLETE", "expires_at": "2030-01-01T10:00:00",
            "failed_resources": [], "leftovers": [], "guard": {"service_role": "arn"}}
    return {**base, **changes}


def test_status_says_a_self_delete_failed():
    """Issue 9.2: a failed self-delete is named, with the resource, and what to do."""
    now = datetime(2030, 1, 1, 11, tzinfo=UTC)
    failed = report(status="DELETE_FAILED", failed_resources=[{"resource": "VPC", "reason": "DependencyViolation"}])
    (problem,) = problems(failed, now)
    assert "cost guard's self-delete of wk failed at VPC (DependencyViolation)" in problem
    assert "sre-workshop destroy --stack-name wk" in problem
    (overdue,) = problems(report(), now)
    assert "should have deleted itself at 2030-01-01T10:00:00" in overdue
    assert problems(report(), datetime(2030, 1, 1, 10, 5, tzinfo=UTC)) == []
    (gone,) = problems(report(exists=False, status=None, leftovers=["instance i-1"]), now)
    assert "instance i-1" in gone


def test_lock_lines_must_be_pinned_with_a_hash(tmp_path):
    lock = tmp_path / "requirements.txt"
    lock.write_text("flask==3.1.0 \\\n    --hash=sha256:" + "a" * 64 + "\n")
    assert wheels.read_lock(lock)[0] == wheels.Pin("flask", "3.1.0", frozenset({"a" * 64}))
    lock.write_text("flask>=3\n")
    with pytest.raises(wheels.WheelError, match="not pinned"):
        wheels.read_lock(lock)


def test_choose_parameters_keeps_the_expiry_on_an_update_unless_a_ttl_is_given(aws):
    sess = boto3.session.Session(region_name=REGION)
    assets = {"bucket": "b", "prefix": "assets/x/"}
    current = {"Parameters": [{"ParameterKey": "ImageId", "ParameterValue": "ami-12345678"}]}
    update = deploy.choose_parameters(sess, deploy.DeployOptions(), current, assets, "arn:role")
    assert "ExpiresAt" not in update and "ImageId" not in update and "AlarmEmail" not in update
    renewed = deploy.choose_parameters(sess, deploy.DeployOptions(ttl_hours=0), current, assets, "arn:role")
    assert renewed["ExpiresAt"] == ""
    created = deploy.choose_parameters(sess, deploy.DeployOptions(alarm_email="a@b.co"), None, assets, "arn:role")
    assert created["ExpiresAt"] and created["ImageId"].startswith("ami-") and created["AlarmEmail"] == "a@b.co"


def test_no_test_here_reaches_a_real_account():
    assert os.environ.get("AWS_PROFILE") is None or "mock" in os.environ.get("AWS_PROFILE", "")
