"""CloudFormation calls of the tool: submit a create or update, follow its events, name what failed."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from ..errors import AwsError

Progress = Callable[[str], None]
TERMINAL_SUFFIXES = ("_COMPLETE", "_FAILED")
# The template names no IAM resource (no RoleName, InstanceProfileName...), so CAPABILITY_IAM is enough; the
# roles with fixed names live outside the stack (see guard.py). tests/unit/test_template_static.py checks it.
CAPABILITIES = ["CAPABILITY_IAM"]
# States a stack can be left in that a new deploy cannot continue from.
STUCK = {
    "ROLLBACK_COMPLETE": "its first creation failed and was rolled back",
    "ROLLBACK_FAILED": "its rollback failed",
    "CREATE_FAILED": "its creation failed",
    "DELETE_FAILED": "its deletion failed, so it still bills (a cost-guard self-delete ends here too)",
    "UPDATE_ROLLBACK_FAILED": "an update failed and could not be rolled back",
}
# What CloudFormation answers while a role made seconds ago is not yet visible to it (IAM is eventually
# consistent); the submit is retried for a while instead of failing a first deploy.
ROLE_NOT_READY = ("cannot be assumed",)


class StackFailed(AwsError):
    """The stack did not reach the state asked for; the message names the first failed resource."""


class StackStuck(AwsError):
    """The stack is in a state a deploy cannot continue from; the message says what to do."""


def describe(cfn, name: str) -> dict[str, Any] | None:
    """Return the stack's description, or None if there is no such stack."""
    try:
        return cfn.describe_stacks(StackName=name)["Stacks"][0]
    except ClientError as exc:
        if no_such_stack(exc):
            return None
        raise


def status(cfn, name: str) -> str | None:
    """Return the stack's status, or None if there is no such stack."""
    stack = describe(cfn, name)
    return stack["StackStatus"] if stack else None


def no_such_stack(exc: ClientError) -> bool:
    """True if CloudFormation refused because the stack does not exist (it has no error code of its own)."""
    return "does not exist" in exc.response["Error"].get("Message", "")


def template_parameters(template: str) -> set[str]:
    """Return the parameter names of the template (the top-level keys of its Parameters section)."""
    section = re.search(r"^Parameters:\n((?:[ #].*\n|\n)*)", template, re.MULTILINE)
    return set(re.findall(r"^  ([A-Za-z0-9]+):", section.group(1), re.MULTILINE)) if section else set()


def parameters_of(stack: dict[str, Any] | None) -> dict[str, str]:
    """Return a described stack's parameters by key (empty for no stack)."""
    return {p["ParameterKey"]: p.get("ParameterValue", "") for p in (stack or {}).get("Parameters", [])}


def parameter_list(template_keys: set[str], given: dict[str, str], previous: dict[str, str] | None) -> list[dict]:
    """Return the Parameters of a create (None for previous) or an update.

    On an update every template parameter that is not given keeps the stack's value (UsePreviousValue):
    omitted, it would fall back to the template's default, undoing what the user chose before.
    """
    unknown = set(given) - template_keys
    if unknown:
        raise AwsError(f"the template has no parameter {', '.join(sorted(unknown))}")
    listed: list[dict] = [{"ParameterKey": k, "ParameterValue": v} for k, v in sorted(given.items())]
    if previous is not None:
        kept = sorted(template_keys & set(previous) - set(given))
        listed += [{"ParameterKey": k, "UsePreviousValue": True} for k in kept]
    return listed


def submit(cfn, request: dict[str, Any], exists: bool, progress: Progress, wait_for_role: float = 60.0) -> str | None:
    """Create or update the stack; return its id, or None when an update has nothing to change."""
    call = cfn.update_stack if exists else cfn.create_stack
    progress(f"{'updating' if exists else 'creating'} stack {request['StackName']}")
    extra = {} if exists else {"OnFailure": "ROLLBACK"}
    deadline = time.monotonic() + wait_for_role
    while True:
        try:
            return call(**request, **extra)["StackId"]
        except ClientError as exc:
            message = exc.response["Error"].get("Message", "")
            if exists and "No updates are to be performed" in message:
                progress("the stack's template and parameters are unchanged")
                return None
            if not any(s in message for s in ROLE_NOT_READY) or time.monotonic() > deadline:
                raise AwsError(f"CloudFormation refused the stack: {message}") from exc
        progress("waiting for IAM to show the new service role to CloudFormation")
        time.sleep(5)


def watch(cfn, name: str, since: datetime, progress: Progress, poll: float, timeout: float) -> str:
    """Print the stack's events as they come, with a count of finished resources; return its final status."""
    seen: set[str] = set()
    done: set[str] = set()
    deadline = time.monotonic() + timeout
    while True:
        events = [e for e in events_of(cfn, name) if e["Timestamp"] >= since and e["EventId"] not in seen]
        for event in sorted(events, key=lambda e: e["Timestamp"]):
            seen.add(event["EventId"])
            if event["ResourceStatus"].endswith("_COMPLETE") and event["LogicalResourceId"] != name:
                done.add(event["LogicalResourceId"])
            reason = f" - {event['ResourceStatusReason']}" if event.get("ResourceStatusReason") else ""
            progress(f"[{len(done):>2} done] {event['LogicalResourceId']:<36} {event['ResourceStatus']}{reason}")
        final = status(cfn, name) or "DELETE_COMPLETE"
        if final.endswith(TERMINAL_SUFFIXES):
            return final
        if time.monotonic() > deadline:
            raise StackFailed(f"stack {name} still {final} after {timeout:.0f}s")
        time.sleep(poll)


def events_of(cfn, name: str) -> list[dict[str, Any]]:
    """Return the stack's events, newest first (all pages)."""
    try:
        return [e for page in cfn.get_paginator("describe_stack_events").paginate(StackName=name)
                for e in page["StackEvents"]]
    except ClientError as exc:
        if no_such_stack(exc):
            return []
        raise


def failures(cfn, name: str, since: datetime | None = None) -> list[dict[str, str]]:
    """Return the resources that failed (since `since`), oldest first, with their reasons."""
    failed = [e for e in events_of(cfn, name) if (since is None or e["Timestamp"] >= since)
              and e["ResourceStatus"].endswith("_FAILED") and e["LogicalResourceId"] != name
              and "cancelled" not in e.get("ResourceStatusReason", "")]
    return [{"resource": e["LogicalResourceId"], "type": e["ResourceType"], "status": e["ResourceStatus"],
             "reason": e.get("ResourceStatusReason", "no reason given"), "time": e["Timestamp"].isoformat()}
            for e in sorted(failed, key=lambda e: e["Timestamp"])]


def first_failure(cfn, name: str, since: datetime | None = None) -> str:
    """Name the first resource that failed (since `since`), with its reason."""
    found = failures(cfn, name, since)
    if not found:
        return "no resource reported a failure (see the stack's events in the console)"
    first = found[0]
    return f"{first['resource']} ({first['type']}) {first['status']}: {first['reason']}"


def outputs(cfn, name: str) -> dict[str, str]:
    """Return the stack's outputs by key."""
    stack = describe(cfn, name) or {}
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
