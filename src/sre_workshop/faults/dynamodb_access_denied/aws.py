"""dynamodb-access-denied on AWS: the instances' role's DynamoDBAccess inline policy replaced by an explicit
Deny (the workshop's fault). The original document is saved with the incident and put back by clear."""

from __future__ import annotations

from typing import Any

from ...errors import ComponentFailed
from ..contract import AwsCtl
from ..model import NotYet

POLICY = "DynamoDBAccess"
DENY = {"Version": "2012-10-17",
        "Statement": [{"Sid": "DenyDynamoDB", "Effect": "Deny", "Action": "dynamodb:*", "Resource": "*"}]}
# Where the CRM reads a table on every request: its answer shows when the denial reached DynamoDB.
PROBE = ("crm", "/api/customers?limit=1")


def snapshot(ctl: AwsCtl, params: dict[str, Any]) -> dict[str, Any]:
    """Save the role's DynamoDBAccess policy document as it is."""
    document = ctl.role_policy(POLICY)
    if document is None:
        raise ComponentFailed(f"role {ctl.role_name()} has no inline policy {POLICY}: put it back first")
    return {"policy": POLICY, "document": document}


def inject(ctl: AwsCtl, params: dict[str, Any]) -> None:
    """Replace the policy with an explicit Deny of every DynamoDB action."""
    ctl.put_role_policy(POLICY, DENY)


def verify(ctl: AwsCtl, params: dict[str, Any]) -> str:
    """Evidence: the Deny is in place and the CRM's reads fail (IAM takes seconds to propagate: polled)."""
    if ctl.role_policy(POLICY) != DENY:
        raise NotYet(f"{POLICY} of {ctl.role_name()} is not the Deny yet")
    status, _ = ctl.probe(*PROBE)
    if status != 503:
        raise NotYet(f"GET {ctl.url(*PROBE)} still answers {status or 'nothing'} (IAM is propagating)")
    return f"{POLICY} of role {ctl.role_name()} denies dynamodb:*; GET {ctl.url(*PROBE)} answers 503"


def active(ctl: AwsCtl, params: dict[str, Any]) -> bool:
    """True while the policy denies DynamoDB, or is gone (then nothing allows it)."""
    document = ctl.role_policy(POLICY)
    if document is None:
        return True
    statements = document.get("Statement", [])
    statements = [statements] if isinstance(statements, dict) else statements
    return any(s.get("Effect") == "Deny" for s in statements)


def clear(ctl: AwsCtl, params: dict[str, Any], saved: dict[str, Any]) -> None:
    """Put the saved policy document back, exactly."""
    ctl.put_role_policy(saved["policy"], saved["document"])
