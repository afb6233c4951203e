"""Real-AWS smoke test: deploy, use both flows, update with changed code, let the cost guard delete the stack.

Costs money (about an hour of the stack, see the README); never run in CI:

    SRE_WORKSHOP_AWS_TESTS=1 AWS_PROFILE=... AWS_REGION=... .venv/bin/pytest tests/aws -x -v

The tests run in file order on one stack: deploy (with a short TTL), both flows through the public ALB, an
update whose changed sre-app must then be served (same instances, same expiry), and last the expiry path:
the stack must delete itself at its ExpiresAt and leave nothing billable. `destroy` runs at the end
whatever happened. Not collected by the default test run (pyproject's testpaths leave tests/aws out);
without the opt-in variable it fails at once rather than skipping, so it never passes unchecked.

    SRE_WORKSHOP_AWS_STACK   stack name (default sre-workshop-smoke)
    SRE_WORKSHOP_AWS_TTL     hours until the self-delete (default 0.75: deploy, update, then the expiry)
    SRE_WORKSHOP_AWS_EMAIL   an address to subscribe (you then get the alarm and stack-event mails)
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from datetime import UTC, datetime, timedelta

import boto3
import pytest

from sre_workshop.aws import deploy
from sre_workshop.aws.status import aws_status
from sre_workshop.settings import Settings

from conftest import ROOT, http

STACK = os.environ.get("SRE_WORKSHOP_AWS_STACK", "sre-workshop-smoke")
TTL_HOURS = float(os.environ.get("SRE_WORKSHOP_AWS_TTL", "0.75"))


def say(message: str) -> None:
    print(f"  {message}", flush=True)


def options(**changes) -> deploy.DeployOptions:
    return deploy.DeployOptions(stack_name=STACK, poll_seconds=15, **changes)


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    if os.environ.get("SRE_WORKSHOP_AWS_TESTS") != "1":
        pytest.fail("tests/aws deploys billable resources: set SRE_WORKSHOP_AWS_TESTS=1 to run them")
    try:
        yield deploy.deploy(Settings.from_env(), options(ttl_hours=TTL_HOURS,
                                                         alarm_email=os.environ.get("SRE_WORKSHOP_AWS_EMAIL")),
                            say, tmp_path_factory.mktemp("build"))
    finally:
        report = deploy.destroy(options(), say)
        assert report["leftovers"] == [], report


def until(check, timeout: float, interval: float = 10):
    """Return check()'s first truthy answer, or its last one at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        answer = check()
        if answer or time.monotonic() > deadline:
            return answer
        time.sleep(interval)


def served(url: str, text: str = "") -> bool:
    reply = http("GET", url, timeout=10)
    return reply.status == 200 and text in reply.text


def test_main_flow_answers_the_workshop_json(stack):
    assert until(lambda: served(stack["outputs"]["AppURL"], "memory_leak_size_mb"), 300)


def test_crm_shows_customers_without_database_error(stack):
    url = stack["outputs"]["CRMURL"] + "customers"
    assert until(lambda: served(url, "cust-"), 300)
    assert "database error" not in http("GET", url).text


def test_fault_control_is_not_public(stack):
    assert http("GET", stack["outputs"]["AppURL"] + "admin/leak").status == 403


def test_status_has_no_problem_and_a_pending_expiry(stack):
    status = aws_status(options())
    assert status["status"] == "CREATE_COMPLETE" and status["problems"] == [], status
    assert status["expires_at"] == stack["expires_at"] and status["guard"]["service_role"] == stack["service_role"]


def test_an_update_with_changed_code_is_served_by_the_same_instances(stack, tmp_path):
    """Issue 9.5: new code reaches the instances (SSM Run Command), nothing is replaced, the expiry is kept."""
    home = tmp_path / "home"
    for part in ("apps", "infra"):
        shutil.copytree(ROOT / part, home / part, ignore=shutil.ignore_patterns("__pycache__"))
    marker = f"SRE Workshop App {uuid.uuid4().hex[:8]}"
    app = home / "apps" / "sre_app" / "app.py"
    app.write_text(app.read_text().replace('"message": "SRE Workshop App"', f'"message": "{marker}"'))
    report = deploy.deploy(Settings.from_env({"SRE_WORKSHOP_HOME": str(home)}), options(), say, tmp_path / "build")
    installed = {i["zip"]: i for i in report["installed"]}
    assert installed["sre-app.zip"]["status"] == "Success" and installed["sre-app.zip"]["installed"]
    assert not installed["crm-app.zip"]["installed"]  # unchanged zip: not reinstalled, not restarted
    for key in ("NginxInstanceId", "AppServerInstanceId", "CRMAppInstanceId"):
        assert report["outputs"][key] == stack["outputs"][key]
    assert report["expires_at"] == stack["expires_at"]
    assert until(lambda: served(stack["outputs"]["AppURL"], marker), 120)


def test_the_stack_deletes_itself_at_its_expiry_and_leaves_nothing(stack):
    """Issue 9.2: the schedule's role deletes the stack, CloudFormation deletes with the service role."""
    expiry = datetime.strptime(stack["expires_at"], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    wait = (expiry - datetime.now(UTC) + timedelta(minutes=30)).total_seconds()
    cfn = boto3.client("cloudformation", region_name=stack["region"])

    def gone() -> bool:
        found = cfn.describe_stacks(StackName=stack["stack_id"])["Stacks"][0]["StackStatus"]
        assert found != "DELETE_FAILED", aws_status(options())["problems"]
        return found == "DELETE_COMPLETE"

    assert until(gone, wait, interval=60), f"{STACK} still exists 30 minutes after {stack['expires_at']}"
    status = aws_status(options())
    assert not status["exists"] and status["leftovers"] == [] and status["problems"] == [], status
    assert status["guard"]["service_role"]  # outside the stack: it survived, destroy removes it
