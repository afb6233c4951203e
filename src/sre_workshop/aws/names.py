"""Stack names: what `--stack-name` may be, and why a second workshop stack cannot share a region.

The spec fixes names that are unique per account and region: the ALBs `sre-workshop-public-alb` and
`sre-workshop-private-alb`, the log groups under /aws/sre-workshop/ and the SSM parameters under
/sre-workshop/. So one account and region holds one workshop stack, whatever it is called; `--stack-name`
only picks that name. A deploy under another name while one exists is refused before anything is made.
"""

from __future__ import annotations

import re

from botocore.exceptions import ClientError

from ..errors import AwsError, UsageError

# Short enough that the names derived from it fit IAM's 64 characters: the guard's roles (with the region) and
# the ones CloudFormation generates, <stack>-EC2InstanceProfile-<13 random>, which the service role matches.
STACK_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,23}$")
ALB_NAMES = ("sre-workshop-public-alb", "sre-workshop-private-alb")
PROJECT_TAG = {"Key": "Project", "Value": "sre-workshop"}
GONE = ("DELETE_COMPLETE",)


class NamesTaken(AwsError):
    """Another stack in this account and region holds the spec's fixed names."""

    code = "names_taken"


def check_stack_name(name: str) -> None:
    """Refuse a stack name CloudFormation or the derived role names would reject."""
    if not STACK_NAME.match(name):
        raise UsageError(f"--stack-name {name!r}: use a letter then up to 23 letters, digits or hyphens")


def workshop_stacks(cfn) -> list[str]:
    """Return the names of this region's live stacks that the tool made (tagged Project=sre-workshop)."""
    found = []
    for page in cfn.get_paginator("describe_stacks").paginate():
        for stack in page["Stacks"]:
            if stack["StackStatus"] not in GONE and PROJECT_TAG in stack.get("Tags", []):
                found.append(stack["StackName"])
    return found


def load_balancer(elbv2, name: str) -> dict | None:
    """Return the load balancer of that name, or None."""
    try:
        return elbv2.describe_load_balancers(Names=[name])["LoadBalancers"][0]
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "LoadBalancerNotFound":
            return None
        raise


def alb_owners(elbv2, ours: set[str]) -> set[str]:
    """Return the stacks (by their CloudFormation tag) that own the spec's fixed ALB names, but for `ours`.

    Each name is looked up on its own: asked together, one missing name fails the whole call, and a stack
    half made or half deleted (one ALB left) would go unseen.
    """
    found = [lb for lb in (load_balancer(elbv2, name) for name in ALB_NAMES) if lb]
    arns = [lb["LoadBalancerArn"] for lb in found if lb["LoadBalancerArn"] not in ours]
    if not arns:
        return set()
    return {tag["Value"] for d in elbv2.describe_tags(ResourceArns=arns)["TagDescriptions"] for tag in d["Tags"]
            if tag["Key"] == "aws:cloudformation:stack-name"} or {"(not a CloudFormation stack)"}


def resource_ids(cfn, name: str) -> set[str]:
    """Return the physical ids of a stack's resources (none if there is no such stack)."""
    try:
        pages = cfn.get_paginator("list_stack_resources").paginate(StackName=name)
        return {r.get("PhysicalResourceId", "") for page in pages for r in page["StackResourceSummaries"]}
    except ClientError as exc:
        if "does not exist" in exc.response["Error"].get("Message", ""):
            return set()
        raise


def other_stack(cfn, elbv2, name: str) -> str | None:
    """Return the stack other than `name` that holds the workshop's fixed names here, if any."""
    others = (set(workshop_stacks(cfn)) | alb_owners(elbv2, resource_ids(cfn, name))) - {name}
    return sorted(others)[0] if others else None


def ensure_only_stack(cfn, elbv2, name: str, region: str) -> None:
    """Refuse to deploy `name` while another workshop stack exists in the region, saying why."""
    other = other_stack(cfn, elbv2, name)
    if other:
        raise NamesTaken(
            f"stack {other} already holds the workshop's fixed names in {region} (sre-workshop-public-alb, "
            f"/aws/sre-workshop/ log groups, /sre-workshop/ SSM parameters; the spec fixes them, so a region "
            f"holds one workshop stack): deploy with --stack-name {other}, or destroy it first")
