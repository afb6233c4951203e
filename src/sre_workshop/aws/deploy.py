"""Deploy the workshop stack and take it down again, showing progress and naming what failed.

deploy:  assets bucket (created if needed, private, encrypted) -> upload the zips under a content hash ->
         create or update the stack -> stream its events with progress -> print the outputs.
destroy: empty and delete the assets bucket -> delete the stack -> wait -> check nothing billable is left.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from ..settings import Settings
from . import package
from .session import AwsError, account_id, session

Progress = Callable[[str], None]
TERMINAL_SUFFIXES = ("_COMPLETE", "_FAILED")
# States a stack can be left in that a new deploy cannot continue from.
STUCK = {
    "ROLLBACK_COMPLETE": "its first creation failed and was rolled back",
    "ROLLBACK_FAILED": "its rollback failed",
    "CREATE_FAILED": "its creation failed",
    "DELETE_FAILED": "its deletion failed",
    "UPDATE_ROLLBACK_FAILED": "an update failed and could not be rolled back",
}


class StackFailed(AwsError):
    """The stack did not reach the state asked for; the message names the first failed resource."""


class StackStuck(AwsError):
    """The stack is in a state a deploy cannot continue from; the message says what to do."""


@dataclass
class DeployOptions:
    """What the user chose for one deploy or destroy."""

    stack_name: str = "sre-workshop"
    region: str | None = None
    ttl_hours: float = 8.0
    poll_seconds: float = 5.0
    timeout_seconds: float = 3600.0
    parameters: dict[str, str] = field(default_factory=dict)


def bucket_name(account: str, region: str) -> str:
    """Return the assets bucket's name for an account and region."""
    return f"sre-workshop-assets-{account}-{region}"


def ensure_bucket(s3, name: str, region: str) -> None:
    """Create the private, encrypted assets bucket unless it exists."""
    try:
        s3.head_bucket(Bucket=name)
        return
    except ClientError as exc:
        if exc.response["Error"]["Code"] not in ("404", "NoSuchBucket", "NotFound"):
            raise AwsError(f"cannot use bucket {name}: {exc.response['Error'].get('Message') or exc}") from exc
    kwargs: dict[str, Any] = {"Bucket": name}
    if region != "us-east-1":
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
    s3.create_bucket(**kwargs)
    s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration={
        "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True})
    s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={
        "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})


def upload(s3, bucket: str, prefix: str, artifacts: list[package.Artifact]) -> None:
    """Upload the zips under `prefix`, which names their content, so a deploy never replaces another's zips."""
    for artifact in artifacts:
        s3.put_object(Bucket=bucket, Key=prefix + artifact.name, Body=artifact.path.read_bytes(),
                      Metadata={"sha256": artifact.sha256})


def expires_at(ttl_hours: float, now: datetime | None = None) -> str:
    """Return the cost guard's deletion time for a TTL (empty for none)."""
    if ttl_hours <= 0:
        return ""
    return ((now or datetime.now(UTC)) + timedelta(hours=ttl_hours)).strftime("%Y-%m-%dT%H:%M:%S")


def stack_status(cfn, name: str) -> str | None:
    """Return the stack's status, or None if there is no such stack."""
    try:
        return cfn.describe_stacks(StackName=name)["Stacks"][0]["StackStatus"]
    except ClientError as exc:
        if _no_such_stack(exc):
            return None
        raise


def _no_such_stack(exc: ClientError) -> bool:
    """True if CloudFormation refused because the stack does not exist (it has no error code of its own)."""
    return "does not exist" in exc.response["Error"].get("Message", "")


def deploy(settings: Settings, options: DeployOptions, progress: Progress, build_dir: Path) -> dict[str, str]:
    """Package, upload and create or update the stack; return its outputs."""
    sess = session(options.region)
    region = sess.region_name
    cfn, s3 = sess.client("cloudformation"), sess.client("s3")
    status = stack_status(cfn, options.stack_name)
    if status in STUCK:
        raise StackStuck(f"stack {options.stack_name} is {status}: {STUCK[status]}. Run `sre-workshop destroy "
                         f"--stack-name {options.stack_name}`, then deploy again")
    if status and not status.endswith(TERMINAL_SUFFIXES):
        raise StackStuck(f"stack {options.stack_name} is busy ({status}); wait for it to finish, then try again")
    bucket = bucket_name(account_id(sess), region)
    artifacts = package.build(settings, build_dir)
    prefix = package.content_prefix(artifacts)
    progress(f"assets: s3://{bucket}/{prefix} ({', '.join(a.name for a in artifacts)})")
    ensure_bucket(s3, bucket, region)
    upload(s3, bucket, prefix, artifacts)
    expiry = expires_at(options.ttl_hours)
    parameters = {"AssetsBucketName": bucket, "AssetsPrefix": prefix, "ExpiresAt": expiry, **options.parameters}
    template = (settings.infra_dir / "cloudformation" / "sre-workshop.yaml").read_text()
    started = datetime.now(UTC) - timedelta(seconds=5)
    if not submit(cfn, options.stack_name, template, parameters, exists=status is not None, progress=progress):
        return outputs(cfn, options.stack_name)
    final = watch(cfn, options.stack_name, started, progress, options)
    if final not in ("CREATE_COMPLETE", "UPDATE_COMPLETE"):
        reason = first_failure(cfn, options.stack_name, started)
        raise StackFailed(f"stack {options.stack_name} ended {final}: {reason}")
    if expiry:
        progress(f"cost guard: the stack deletes itself at {expiry} UTC (change with --ttl HOURS, 0 for never)")
    return outputs(cfn, options.stack_name)


def submit(cfn, name: str, template: str, parameters: dict[str, str], exists: bool, progress: Progress) -> bool:
    """Create or update the stack; False when an update has nothing to change."""
    kwargs = {"StackName": name, "TemplateBody": template, "Capabilities": ["CAPABILITY_IAM"],
              "Parameters": [{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
              "Tags": [{"Key": "Project", "Value": "sre-workshop"}]}
    if not exists:
        progress(f"creating stack {name}")
        cfn.create_stack(OnFailure="ROLLBACK", **kwargs)
        return True
    progress(f"updating stack {name}")
    try:
        cfn.update_stack(**kwargs)
    except ClientError as exc:
        if "No updates are to be performed" in exc.response["Error"].get("Message", ""):
            progress("the stack is already up to date")
            return False
        raise
    return True


def watch(cfn, name: str, since: datetime, progress: Progress, options: DeployOptions) -> str:
    """Print the stack's events as they come, with a count of finished resources; return its final status."""
    seen: set[str] = set()
    done: set[str] = set()
    deadline = time.monotonic() + options.timeout_seconds
    while True:
        events = [e for e in paginate_events(cfn, name) if e["Timestamp"] >= since and e["EventId"] not in seen]
        for event in sorted(events, key=lambda e: e["Timestamp"]):
            seen.add(event["EventId"])
            if event["ResourceStatus"].endswith("_COMPLETE") and event["LogicalResourceId"] != name:
                done.add(event["LogicalResourceId"])
            reason = f" - {event['ResourceStatusReason']}" if event.get("ResourceStatusReason") else ""
            progress(f"[{len(done):>2} done] {event['LogicalResourceId']:<36} {event['ResourceStatus']}{reason}")
        status = stack_status(cfn, name) or "DELETE_COMPLETE"
        if status.endswith(TERMINAL_SUFFIXES):
            return status
        if time.monotonic() > deadline:
            raise StackFailed(f"stack {name} still {status} after {options.timeout_seconds:.0f}s")
        time.sleep(options.poll_seconds)


def paginate_events(cfn, name: str) -> list[dict[str, Any]]:
    """Return the stack's events, newest first (all pages)."""
    try:
        return [e for page in cfn.get_paginator("describe_stack_events").paginate(StackName=name)
                for e in page["StackEvents"]]
    except ClientError as exc:
        if _no_such_stack(exc):
            return []
        raise


def first_failure(cfn, name: str, since: datetime) -> str:
    """Name the first resource that failed since `since`, with its reason."""
    failed = [e for e in paginate_events(cfn, name) if e["Timestamp"] >= since
              and e["ResourceStatus"].endswith("_FAILED") and e["LogicalResourceId"] != name
              and "cancelled" not in e.get("ResourceStatusReason", "")]
    if not failed:
        return "no resource reported a failure (see the stack's events in the console)"
    first = min(failed, key=lambda e: e["Timestamp"])
    return f"{first['LogicalResourceId']} ({first['ResourceType']}) {first['ResourceStatus']}: " \
           f"{first.get('ResourceStatusReason', 'no reason given')}"


def outputs(cfn, name: str) -> dict[str, str]:
    """Return the stack's outputs by key."""
    stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def destroy(options: DeployOptions, progress: Progress) -> list[str]:
    """Empty and delete the assets bucket, delete the stack, wait; return billable leftovers (none is good)."""
    sess = session(options.region)
    cfn, s3 = sess.client("cloudformation"), sess.client("s3")
    bucket = bucket_name(account_id(sess), sess.region_name)
    empty_and_delete_bucket(s3, bucket, progress)
    if stack_status(cfn, options.stack_name) is None:
        progress(f"no stack named {options.stack_name}")
    else:
        started = datetime.now(UTC) - timedelta(seconds=5)
        progress(f"deleting stack {options.stack_name}")
        try:
            cfn.delete_stack(StackName=options.stack_name)
        except ClientError as exc:
            raise StackFailed(f"cannot delete stack {options.stack_name}: {exc.response['Error']['Message']}") from exc
        final = watch(cfn, options.stack_name, started, progress, options)
        if final != "DELETE_COMPLETE":
            raise StackFailed(f"stack {options.stack_name} ended {final}: "
                              f"{first_failure(cfn, options.stack_name, started)}")
    delete_expiry_role(sess.client("iam"), f"{options.stack_name}-expiry-{sess.region_name}", progress)
    return leftovers(sess, options.stack_name)


def delete_expiry_role(iam, name: str, progress: Progress) -> None:
    """Delete the cost guard's retained role (the template keeps it so that it outlives the deletion)."""
    try:
        for policy in iam.list_role_policies(RoleName=name)["PolicyNames"]:
            iam.delete_role_policy(RoleName=name, PolicyName=policy)
        iam.delete_role(RoleName=name)
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "NoSuchEntity":
            return
        raise
    progress(f"deleted role {name}")


def empty_and_delete_bucket(s3, bucket: str, progress: Progress) -> None:
    """Delete every object version of the bucket, then the bucket (nothing to do if it is gone)."""
    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError:
        return
    deleted = 0
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        keys = [{"Key": v["Key"], "VersionId": v["VersionId"]}
                for v in page.get("Versions", []) + page.get("DeleteMarkers", [])]
        if keys:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
            deleted += len(keys)
    s3.delete_bucket(Bucket=bucket)
    progress(f"deleted bucket {bucket} ({deleted} objects)")


def leftovers(sess, stack_name: str) -> list[str]:
    """List billable resources still tagged with the stack: instances, NAT gateways, addresses, ALBs."""
    ec2, elbv2 = sess.client("ec2"), sess.client("elbv2")
    tag = [{"Name": "tag:aws:cloudformation:stack-name", "Values": [stack_name]}]
    found = [f"instance {i['InstanceId']}" for r in ec2.describe_instances(Filters=tag)["Reservations"]
             for i in r["Instances"] if i["State"]["Name"] not in ("terminated", "shutting-down")]
    found += [f"NAT gateway {n['NatGatewayId']}" for n in ec2.describe_nat_gateways(Filters=tag)["NatGateways"]
              if n["State"] not in ("deleted", "deleting")]
    found += [f"elastic IP {a['PublicIp']}" for a in ec2.describe_addresses(Filters=tag)["Addresses"]]
    names = ["sre-workshop-public-alb", "sre-workshop-private-alb"]
    try:
        found += [f"load balancer {lb['LoadBalancerName']}"
                  for lb in elbv2.describe_load_balancers(Names=names)["LoadBalancers"]]
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "LoadBalancerNotFound":
            raise
    return found
