"""dynamodb-access-denied on the local stack: the AWS implementation (aws.py), run against the AWS API twin.

The instance role's DynamoDBAccess policy is replaced in the twin by an explicit Deny; `dynamodb-endpoint`
authorizes every DynamoDB call of the apps against the role's current policies, so the apps get
AccessDeniedException with AWS's message within its policy refresh (1 s). The repair is the one on AWS: put
the policy back (`aws iam put-role-policy` through `sre-workshop aws-env`), which `fault status` then
records as remediated.
"""

from __future__ import annotations

from typing import Any

from ..contract import LocalCtl
from . import aws


def snapshot(ctl: LocalCtl, params: dict[str, Any]) -> dict[str, Any]:
    """Save the role's DynamoDBAccess policy document as the twin has it."""
    return aws.snapshot(ctl.twin(), params)


def inject(ctl: LocalCtl, params: dict[str, Any]) -> None:
    """Replace the policy with an explicit Deny of every DynamoDB action."""
    aws.inject(ctl.twin(), params)


def verify(ctl: LocalCtl, params: dict[str, Any]) -> str:
    """Evidence: the Deny is in place and the CRM's reads answer 503."""
    return aws.verify(ctl.twin(), params)


def active(ctl: LocalCtl, params: dict[str, Any]) -> bool:
    """True while the policy denies DynamoDB, or is gone."""
    return aws.active(ctl.twin(), params)


def clear(ctl: LocalCtl, params: dict[str, Any], saved: dict[str, Any]) -> None:
    """Put the saved policy document back, exactly."""
    aws.clear(ctl.twin(), params, saved)
