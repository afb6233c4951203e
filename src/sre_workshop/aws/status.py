"""Read what a workshop stack on AWS is doing, for `status` and the lead's `--json`: one dict, no changes.

It says plainly when the cost guard did not finish its job: a stack in DELETE_FAILED (a self-delete or a
destroy that left billable resources), or a stack still there well after its ExpiresAt (the schedule could
not delete it).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from . import guard, names, stack
from .deploy import DeployOptions, leftovers
from .session import account_id, session

# A scheduled deletion starts within a minute; past this, the schedule did not do its job.
GRACE = timedelta(minutes=15)


def aws_status(options: DeployOptions, now: datetime | None = None) -> dict[str, Any]:
    """Return the stack's status, expiry, guard and problems (each problem a sentence saying what to do)."""
    names.check_stack_name(options.stack_name)
    sess = session(options.region)
    cfn, name, region = sess.client("cloudformation"), options.stack_name, sess.region_name
    keeper = guard.Guard(name, region, account_id(sess), sess.get_partition_for_region(region))
    current = stack.describe(cfn, name)
    report: dict[str, Any] = {
        "stack_name": name, "region": region, "exists": current is not None,
        "status": current["StackStatus"] if current else None,
        "status_reason": (current or {}).get("StackStatusReason"),
        "expires_at": stack.parameters_of(current).get("ExpiresAt") or None,
        "outputs": {o["OutputKey"]: o["OutputValue"] for o in (current or {}).get("Outputs", [])},
        "guard": guard.describe(sess.client("iam"), sess.client("sns"), keeper),
        "other_stack": names.other_stack(cfn, sess.client("elbv2"), name),
    }
    report["failed_resources"] = stack.failures(cfn, name) if report["status"] == "DELETE_FAILED" else []
    report["leftovers"] = leftovers(sess, name) if current is None else []
    report["problems"] = problems(report, now or datetime.now(UTC))
    return report


def problems(report: dict[str, Any], now: datetime) -> list[str]:
    """Say what is wrong with the stack's cost guard, if anything."""
    found, name = [], report["stack_name"]
    expiry = _parse(report["expires_at"])
    if report["status"] == "DELETE_FAILED":
        last = report["failed_resources"][-1] if report["failed_resources"] else {"resource": "?", "reason": "?"}
        who = "the cost guard's self-delete" if expiry and expiry <= now else "a deletion"
        found.append(f"{who} of {name} failed at {last['resource']} ({last['reason']}): resources are left and "
                     f"still bill; run `sre-workshop destroy --stack-name {name}`")
    elif report["exists"] and expiry and now > expiry + GRACE and "DELETE" not in (report["status"] or ""):
        found.append(f"{name} should have deleted itself at {report['expires_at']} UTC and did not: run "
                     f"`sre-workshop destroy --stack-name {name}`")
    if report["leftovers"]:
        found.append(f"{name} is gone but billable resources tagged with it are left: {', '.join(report['leftovers'])}")
    if report["exists"] and not report["guard"]["service_role"]:
        found.append(f"the service role of {name} is missing, so CloudFormation cannot delete the stack: "
                     "deploy again (it remakes the role), then destroy")
    return found


def _parse(value: str | None) -> datetime | None:
    """Parse the template's ExpiresAt (UTC, no zone)."""
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC) if value else None
