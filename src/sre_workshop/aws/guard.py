"""What `deploy` makes outside the stack, so that the stack can always be deleted and someone hears if not.

- The CloudFormation service role (IAM path /sre-workshop/, `<stack>-<region>-cfn`), passed as RoleARN:
  CloudFormation creates, updates and deletes every resource with it, whoever starts the operation. Its
  policy (infra/cloudformation/service-role-policy.json) allows the actions the handlers of the template's
  resource types need, with IAM limited to roles named after the stack and the spec's two managed policies.
- The expiry role (`<stack>-<region>-expiry`): EventBridge Scheduler assumes it at ExpiresAt, and it may call
  nothing but cloudformation:DeleteStack on this stack's id. It needs no other right: CloudFormation deletes
  with the service role, even for a caller that may not pass that role.
- The stack-events topic and rule (`<stack>-stack-events`): EventBridge sends the stack's DELETE_FAILED
  (a self-delete that left billable resources), ROLLBACK_FAILED and DELETE_COMPLETE to an SNS topic, which
  `--alarm-email` subscribes to.

They cost nothing and live outside the stack because a deletion cannot depend on what it deletes; the next
deploy reuses them (so a redeploy after a self-delete works) and `destroy` removes them once the stack is gone.
"""

from __future__ import annotations

import json
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from .stack import Progress

ROLE_PATH = "/sre-workshop/"
TAGS = [{"Key": "Project", "Value": "sre-workshop"}]
NOTIFIED_STATUSES = ["DELETE_FAILED", "DELETE_COMPLETE", "ROLLBACK_FAILED", "UPDATE_ROLLBACK_FAILED"]


@dataclass(frozen=True)
class Guard:
    """Names and place of one stack's guard resources."""

    stack: str
    region: str
    account: str
    partition: str = "aws"

    @property
    def service_role(self) -> str:
        """Name of the CloudFormation service role."""
        return f"{self.stack}-{self.region}-cfn"

    @property
    def expiry_role(self) -> str:
        """Name of the role the expiry schedule assumes."""
        return f"{self.stack}-{self.region}-expiry"

    @property
    def notices(self) -> str:
        """Name of the stack-events topic and of its EventBridge rule."""
        return f"{self.stack}-stack-events"

    def role_arn(self, name: str) -> str:
        """Return the ARN of one of the guard's roles."""
        return f"arn:{self.partition}:iam::{self.account}:role{ROLE_PATH}{name}"


def service_role_policy(guard: Guard, infra_dir: Path) -> str:
    """Return the service role's policy with this stack's partition, account, region and names filled in."""
    text = (infra_dir / "cloudformation" / "service-role-policy.json").read_text()
    filled = string.Template(text).substitute(
        Partition=guard.partition, AccountId=guard.account, Region=guard.region, StackName=guard.stack,
        ExpiryRoleArn=guard.role_arn(guard.expiry_role))
    return json.dumps(json.loads(filled), separators=(",", ":"))  # IAM counts characters: send it compact


def trust(service: str, account: str | None = None) -> str:
    """Return a trust policy letting one AWS service assume a role (from this account only, when given)."""
    statement: dict[str, Any] = {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
    if account:
        statement["Condition"] = {"StringEquals": {"aws:SourceAccount": account}}
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def ensure_role(iam, name: str, trust_policy: str, description: str) -> bool:
    """Create the role unless it exists (then refresh its trust policy); True if it was created now."""
    try:
        iam.get_role(RoleName=name)
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "NoSuchEntity":
            raise
        iam.create_role(RoleName=name, Path=ROLE_PATH, AssumeRolePolicyDocument=trust_policy,
                        Description=description, Tags=TAGS)
        return True
    iam.update_assume_role_policy(RoleName=name, PolicyDocument=trust_policy)
    return False


def ensure_roles(iam, guard: Guard, infra_dir: Path, progress: Progress) -> bool:
    """Make or refresh the service role (with its policy) and the expiry role; True if either is new."""
    created = ensure_role(iam, guard.service_role, trust("cloudformation.amazonaws.com"),
                          f"CloudFormation creates, updates and deletes stack {guard.stack} with this role.")
    iam.put_role_policy(RoleName=guard.service_role, PolicyName="StackResources",
                        PolicyDocument=service_role_policy(guard, infra_dir))
    created |= ensure_role(iam, guard.expiry_role, trust("scheduler.amazonaws.com", guard.account),
                           f"EventBridge Scheduler deletes stack {guard.stack} at its ExpiresAt with this role.")
    progress(f"roles: {guard.role_arn(guard.service_role)} (CloudFormation), {guard.expiry_role} (cost guard)")
    return created


def scope_expiry_role(iam, guard: Guard, stack_id: str) -> None:
    """Allow the expiry role exactly one call: DeleteStack on this stack's id (known once the stack exists)."""
    only = {"Sid": "DeleteThisStackOnly", "Effect": "Allow", "Action": "cloudformation:DeleteStack",
            "Resource": stack_id}
    policy = {"Version": "2012-10-17", "Statement": [only]}
    iam.put_role_policy(RoleName=guard.expiry_role, PolicyName="DeleteThisStack", PolicyDocument=json.dumps(policy))


def event_pattern(stack_id: str) -> dict[str, Any]:
    """Return the EventBridge pattern of this stack's status changes worth a message."""
    return {"source": ["aws.cloudformation"], "detail-type": ["CloudFormation Stack Status Change"],
            "detail": {"stack-id": [stack_id], "status-details": {"status": NOTIFIED_STATUSES}}}


def topic_policy(guard: Guard, topic: str, rule_arn: str) -> str:
    """Return the topic's policy: the account manages it, and only this rule's EventBridge may publish."""
    owner = {"Sid": "AccountManagesTheTopic", "Effect": "Allow",
             "Principal": {"AWS": f"arn:{guard.partition}:iam::{guard.account}:root"},
             "Action": ["sns:GetTopicAttributes", "sns:SetTopicAttributes", "sns:Subscribe", "sns:Publish",
                        "sns:ListSubscriptionsByTopic", "sns:DeleteTopic"], "Resource": topic}
    events = {"Sid": "StackEventsFromTheRule", "Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"},
              "Action": "sns:Publish", "Resource": topic, "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn}}}
    return json.dumps({"Version": "2012-10-17", "Statement": [owner, events]})


def message_template() -> dict[str, Any]:
    """Return the rule's input transformer: one plain sentence per stack status change."""
    paths = {"stack": "$.detail.stack-id", "status": "$.detail.status-details.status",
             "reason": "$.detail.status-details.status-reason", "time": "$.time"}
    text = ("sre-workshop: stack <stack> is <status> at <time> (<reason>). DELETE_FAILED means resources are left "
            "and still bill: run sre-workshop destroy for this stack, or delete them in the console.")
    return {"InputPathsMap": paths, "InputTemplate": json.dumps(text)}


def ensure_notices(sns, events, guard: Guard, stack_id: str, email: str | None, progress: Progress) -> str:
    """Make the stack-events topic and rule for this stack id, subscribe `email`; return the topic's ARN."""
    topic = sns.create_topic(Name=guard.notices, Tags=TAGS)["TopicArn"]
    rule = events.put_rule(Name=guard.notices, EventPattern=json.dumps(event_pattern(stack_id)), State="ENABLED",
                           Description=f"Tells {guard.notices} when stack {guard.stack} fails to delete or is gone.")
    sns.set_topic_attributes(TopicArn=topic, AttributeName="Policy",
                             AttributeValue=topic_policy(guard, topic, rule["RuleArn"]))
    events.put_targets(Rule=guard.notices, Targets=[
        {"Id": "stack-events-topic", "Arn": topic, "InputTransformer": message_template()}])
    if email and email not in subscribers(sns, topic):
        sns.subscribe(TopicArn=topic, Protocol="email", Endpoint=email)
        progress(f"{email}: confirm the subscription mail to hear of a failed self-delete")
    return topic


def subscribers(sns, topic: str) -> list[str]:
    """Return the endpoints subscribed to a topic."""
    pages = sns.get_paginator("list_subscriptions_by_topic").paginate(TopicArn=topic)
    return [s["Endpoint"] for page in pages for s in page["Subscriptions"]]


def topic_arn(guard: Guard) -> str:
    """Return the ARN the stack-events topic has (or would have)."""
    return f"arn:{guard.partition}:sns:{guard.region}:{guard.account}:{guard.notices}"


def remove(iam, sns, events, guard: Guard, progress: Progress) -> list[str]:
    """Delete the guard's rule, topic and roles (only once the stack is gone: it deletes with the role)."""
    removed = []
    try:
        events.remove_targets(Rule=guard.notices, Ids=["stack-events-topic"])
        events.delete_rule(Name=guard.notices)
        removed.append(f"rule {guard.notices}")
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ResourceNotFoundException":
            raise
    if _topic_exists(sns, guard):
        sns.delete_topic(TopicArn=topic_arn(guard))
        removed.append(f"topic {guard.notices}")
    # The last name is the retained expiry role of stacks made before the guard existed (it was in the stack).
    legacy = f"{guard.stack}-expiry-{guard.region}"
    removed += [f"role {name}" for name in (guard.expiry_role, guard.service_role, legacy) if delete_role(iam, name)]
    for item in removed:
        progress(f"deleted {item}")
    return removed


def delete_role(iam, name: str) -> bool:
    """Delete a role and its inline policies; False if there was none."""
    try:
        for policy in iam.list_role_policies(RoleName=name)["PolicyNames"]:
            iam.delete_role_policy(RoleName=name, PolicyName=policy)
        iam.delete_role(RoleName=name)
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "NoSuchEntity":
            return False
        raise
    return True


def _topic_exists(sns, guard: Guard) -> bool:
    """True if the stack-events topic exists."""
    try:
        sns.get_topic_attributes(TopicArn=topic_arn(guard))
    except ClientError as exc:
        if exc.response["Error"]["Code"] in ("NotFound", "NotFoundException"):
            return False
        raise
    return True


def describe(iam, sns, guard: Guard) -> dict[str, Any]:
    """Report which guard resources exist and who hears of the stack's failures."""
    roles = {}
    for key, name in (("service_role", guard.service_role), ("expiry_role", guard.expiry_role)):
        try:
            roles[key] = iam.get_role(RoleName=name)["Role"]["Arn"]
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "NoSuchEntity":
                raise
            roles[key] = None
    exists = _topic_exists(sns, guard)
    return {**roles, "notices_topic": topic_arn(guard) if exists else None,
            "notified": subscribers(sns, topic_arn(guard)) if exists else []}
