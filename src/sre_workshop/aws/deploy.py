"""Deploy the workshop stack and take it down again, showing progress and naming what failed.

deploy:  check the name (one workshop stack per region) -> build the zips -> assets bucket and upload ->
         the guard's roles (guard.py) -> create or update the stack under the service role, keeping every
         parameter the user did not change -> scope the expiry role and the stack-events rule to the stack's
         id -> follow the events -> on an update, install the new zips on the instances (rollout.py).
destroy: delete the stack (with its service role) -> wait -> delete the assets bucket and the guard ->
         list anything billable still tagged with the stack.
Both return a JSON-ready dict of what they did.
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from ..errors import UsageError
from ..settings import Settings
from . import guard, names, package, rollout, stack
from .session import AwsError, account_id, session
from .stack import STUCK, TERMINAL_SUFFIXES, Progress, StackFailed, StackStuck

__all__ = ["DeployOptions", "StackFailed", "StackStuck", "deploy", "destroy"]

DEFAULT_TTL_HOURS = 8.0
LATEST_IMAGE = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
STACK_TAGS = [names.PROJECT_TAG]


@dataclass
class DeployOptions:
    """What the user chose for one deploy or destroy.

    None means "as before" on an update and the default on a create: ttl_hours (8 h), alarm_email (none),
    image_id (the latest Amazon Linux 2023 image, resolved once and then kept).
    """

    stack_name: str = "sre-workshop"
    region: str | None = None
    ttl_hours: float | None = None       # 0: never delete by itself
    alarm_email: str | None = None       # "" removes the subscription parameter
    image_id: str | None = None          # pin this AMI (replaces the instances if it differs)
    refresh_image: bool = False          # pin the latest AL2023 AMI again (replaces the instances if newer)
    poll_seconds: float = 5.0
    timeout_seconds: float = 3600.0
    iam_settle_seconds: float = 10.0     # after making a role, before CloudFormation or Scheduler must see it
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


def upload(s3, bucket: str, prefix: str, artifacts: list[package.Artifact]) -> list[str]:
    """Upload the zips under `prefix`, which names their content; skip those already there; return the new keys."""
    uploaded = []
    for artifact in artifacts:
        key = prefix + artifact.name
        if uploaded_sha(s3, bucket, key) == artifact.sha256:
            continue
        s3.put_object(Bucket=bucket, Key=key, Body=artifact.path.read_bytes(), Metadata={"sha256": artifact.sha256})
        uploaded.append(key)
    return uploaded


def uploaded_sha(s3, bucket: str, key: str) -> str | None:
    """Return the sha256 an uploaded zip was stored with, or None if it is not there."""
    try:
        return s3.head_object(Bucket=bucket, Key=key)["Metadata"].get("sha256")
    except ClientError:
        return None


def template_url(bucket: str, region: str, key: str) -> str:
    """Return the virtual-hosted S3 URL CloudFormation reads an uploaded template from (the regional form)."""
    suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"https://{bucket}.s3.{region}.{suffix}/{key}"


def upload_template(s3, bucket: str, region: str, template: str) -> str:
    """Upload the template under its content hash (once) and return its TemplateURL.

    A TemplateBody may hold 51,200 bytes and the template is near that; a TemplateURL may name 1 MB. The object
    stays private: CloudFormation reads it with the deploying identity's access, as with the zips.
    """
    digest = hashlib.sha256(template.encode()).hexdigest()
    key = f"templates/{digest}.yaml"
    if uploaded_sha(s3, bucket, key) != digest:
        s3.put_object(Bucket=bucket, Key=key, Body=template.encode(), ContentType="application/x-yaml",
                      Metadata={"sha256": digest})
    return template_url(bucket, region, key)


def expires_at(ttl_hours: float, now: datetime | None = None) -> str:
    """Return the cost guard's deletion time for a TTL (empty for none)."""
    if ttl_hours <= 0:
        return ""
    return ((now or datetime.now(UTC)) + timedelta(hours=ttl_hours)).strftime("%Y-%m-%dT%H:%M:%S")


def check_options(options: DeployOptions) -> None:
    """Refuse bad input before anything is made."""
    names.check_stack_name(options.stack_name)
    if options.alarm_email and not EMAIL.match(options.alarm_email):
        raise UsageError(f"--alarm-email {options.alarm_email!r} is not an e-mail address")
    if options.ttl_hours is not None and options.ttl_hours < 0:
        raise UsageError("--ttl must be 0 (never) or a number of hours")


def refuse_stuck(current: dict[str, Any] | None, name: str) -> None:
    """Refuse to deploy over a stack that is failed or busy, saying what to do."""
    status = current["StackStatus"] if current else None
    if status in STUCK:
        raise StackStuck(f"stack {name} is {status}: {STUCK[status]}. Run `sre-workshop destroy "
                         f"--stack-name {name}`, then deploy again")
    if status and not status.endswith(TERMINAL_SUFFIXES):
        raise StackStuck(f"stack {name} is busy ({status}); wait for it to finish, then try again")


def latest_image(ssm) -> str:
    """Resolve the latest Amazon Linux 2023 AMI once (the stack then keeps it)."""
    return ssm.get_parameter(Name=LATEST_IMAGE)["Parameter"]["Value"]


def running_image(ec2, current: dict[str, Any]) -> str | None:
    """Return the AMI a stack made before ImageId existed runs, so that pinning it replaces nothing."""
    outs = {o["OutputKey"]: o["OutputValue"] for o in current.get("Outputs", [])}
    if "AppServerInstanceId" not in outs:
        return None
    reservations = ec2.describe_instances(InstanceIds=[outs["AppServerInstanceId"]])["Reservations"]
    return reservations[0]["Instances"][0]["ImageId"] if reservations else None


def image_parameter(sess, options: DeployOptions, current: dict[str, Any] | None) -> str | None:
    """Return the ImageId to pass, or None to keep the stack's (UsePreviousValue)."""
    if options.image_id:
        return options.image_id
    if current is None or options.refresh_image:
        return latest_image(sess.client("ssm"))
    if "ImageId" in stack.parameters_of(current):
        return None
    return running_image(sess.client("ec2"), current)


def choose_parameters(sess, options: DeployOptions, current: dict[str, Any] | None, assets: dict[str, str],
                      expiry_role: str) -> dict[str, str]:
    """Return the parameters this deploy sets; every other one keeps its value on an update."""
    given = {"AssetsBucketName": assets["bucket"], "AssetsPrefix": assets["prefix"], "ExpiryRoleArn": expiry_role}
    ttl = options.ttl_hours if options.ttl_hours is not None else (None if current else DEFAULT_TTL_HOURS)
    if ttl is not None:
        given["ExpiresAt"] = expires_at(ttl)
    if options.alarm_email is not None:
        given["AlarmEmail"] = options.alarm_email
    image = image_parameter(sess, options, current)
    if image:
        given["ImageId"] = image
    return {**given, **options.parameters}


def publish(sess, account: str, settings: Settings, build_dir: Path, progress: Progress) -> tuple[list, dict]:
    """Build the zips and upload them under their content hash; return them and where they are."""
    region = sess.region_name
    artifacts = package.build(settings, build_dir)
    assets = {"bucket": bucket_name(account, region), "prefix": package.content_prefix(artifacts)}
    s3 = sess.client("s3")
    ensure_bucket(s3, assets["bucket"], region)
    new = upload(s3, assets["bucket"], assets["prefix"], artifacts)
    progress(f"assets: s3://{assets['bucket']}/{assets['prefix']} ({len(new)} of {len(artifacts)} zips uploaded)")
    return artifacts, assets


def deploy(settings: Settings, options: DeployOptions, progress: Progress, build_dir: Path) -> dict[str, Any]:
    """Create or update the stack and install its code; return what was deployed (outputs, ids, expiry)."""
    check_options(options)
    sess = session(options.region)
    cfn, name = sess.client("cloudformation"), options.stack_name
    current = stack.describe(cfn, name)
    refuse_stuck(current, name)
    names.ensure_only_stack(cfn, sess.client("elbv2"), name, sess.region_name)
    account = account_id(sess)
    keeper = guard.Guard(name, sess.region_name, account, sess.get_partition_for_region(sess.region_name))
    artifacts, assets = publish(sess, account, settings, build_dir, progress)
    if guard.ensure_roles(sess.client("iam"), keeper, settings.infra_dir, progress):
        time.sleep(options.iam_settle_seconds)  # IAM is eventually consistent; CloudFormation retries too
    stack_id, changed = submit(sess, settings, options, current, assets, keeper, progress)
    outs = stack.outputs(cfn, name)
    installed = rollout.rollout(sess.client("ssm"), rollout.plan(outs, artifacts), progress,
                                options.poll_seconds) if current else []
    final = stack.describe(cfn, name) or {}
    expiry = stack.parameters_of(final).get("ExpiresAt", "")
    if expiry:
        progress(f"cost guard: the stack deletes itself at {expiry} UTC (change with --ttl HOURS, 0 for never)")
    return {"stack_name": name, "stack_id": stack_id, "region": sess.region_name,
            "status": final.get("StackStatus"), "changed": changed, "outputs": outs, "assets": assets,
            "service_role": keeper.role_arn(keeper.service_role), "expiry_role": keeper.role_arn(keeper.expiry_role),
            "expires_at": expiry or None, "stack_events_topic": guard.topic_arn(keeper), "installed": installed}


def submit(sess, settings: Settings, options: DeployOptions, current: dict[str, Any] | None, assets: dict[str, str],
           keeper: guard.Guard, progress: Progress) -> tuple[str, bool]:
    """Submit the create or update, wire the guard to the stack's id, wait; return (stack id, changed)."""
    cfn, name = sess.client("cloudformation"), options.stack_name
    template = (settings.infra_dir / "cloudformation" / "sre-workshop.yaml").read_text()
    url = upload_template(sess.client("s3"), assets["bucket"], sess.region_name, template)
    cfn.validate_template(TemplateURL=url)  # a template error is named before anything changes
    keys = stack.template_parameters(template)
    given = choose_parameters(sess, options, current, assets, keeper.role_arn(keeper.expiry_role))
    previous = stack.parameters_of(current) if current else None
    request = {"StackName": name, "TemplateURL": url, "Capabilities": stack.CAPABILITIES,
               "RoleARN": keeper.role_arn(keeper.service_role), "Tags": STACK_TAGS,
               "Parameters": stack.parameter_list(keys, given, previous)}
    started = datetime.now(UTC) - timedelta(seconds=5)
    stack_id = stack.submit(cfn, request, exists=current is not None, progress=progress)
    wired_id = stack_id or current["StackId"]
    guard.scope_expiry_role(sess.client("iam"), keeper, wired_id)
    guard.ensure_notices(sess.client("sns"), sess.client("events"), keeper, wired_id, options.alarm_email, progress)
    if stack_id is None:
        return wired_id, False
    final = stack.watch(cfn, name, started, progress, options.poll_seconds, options.timeout_seconds)
    if final not in ("CREATE_COMPLETE", "UPDATE_COMPLETE"):
        raise StackFailed(f"stack {name} ended {final}: {stack.first_failure(cfn, name, started)}")
    return wired_id, True


def destroy(options: DeployOptions, progress: Progress) -> dict[str, Any]:
    """Delete the stack, then its assets bucket and guard; return what was done and what is left (none is good)."""
    names.check_stack_name(options.stack_name)
    sess = session(options.region)
    cfn, name, region = sess.client("cloudformation"), options.stack_name, sess.region_name
    account = account_id(sess)
    keeper = guard.Guard(name, region, account, sess.get_partition_for_region(region))
    report: dict[str, Any] = {"stack_name": name, "region": region, **delete_stack(cfn, name, options, progress)}
    other = names.other_stack(cfn, sess.client("elbv2"), name)
    report["other_stack"] = other
    if other:  # the assets bucket is per account and region: the other stack's instances still need it
        progress(f"stack {other} is the workshop stack in {region}: its assets bucket is kept")
        report["bucket_deleted"] = False
    else:
        report["bucket_deleted"] = empty_and_delete_bucket(sess.client("s3"), bucket_name(account, region), progress)
    report["guard_removed"] = guard.remove(sess.client("iam"), sess.client("sns"), sess.client("events"),
                                           keeper, progress)
    report["leftovers"] = leftovers(sess, name)
    return report


def delete_stack(cfn, name: str, options: DeployOptions, progress: Progress) -> dict[str, Any]:
    """Delete the stack (again, if a deletion failed before) and wait; fail naming what could not go."""
    current = stack.describe(cfn, name)
    if current is None:
        progress(f"no stack named {name}")
        return {"stack": "absent", "earlier_delete_failed": []}
    earlier = stack.failures(cfn, name) if current["StackStatus"] == "DELETE_FAILED" else []
    if earlier:
        progress(f"an earlier deletion of {name} failed ({earlier[-1]['resource']}: {earlier[-1]['reason']}); retrying")
    started = datetime.now(UTC) - timedelta(seconds=5)
    progress(f"deleting stack {name}")
    try:
        cfn.delete_stack(StackName=name)
    except ClientError as exc:
        raise StackFailed(f"cannot delete stack {name}: {exc.response['Error']['Message']}") from exc
    final = stack.watch(cfn, name, started, progress, options.poll_seconds, options.timeout_seconds)
    if final != "DELETE_COMPLETE":
        raise StackFailed(f"stack {name} ended {final}: {stack.first_failure(cfn, name, started)}. Its service "
                          "role is kept so that `destroy` can retry; or delete what is named in the console")
    return {"stack": "deleted", "earlier_delete_failed": earlier}


def empty_and_delete_bucket(s3, bucket: str, progress: Progress) -> bool:
    """Delete every object version of the bucket, then the bucket; False if there was none."""
    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError:
        return False
    deleted = 0
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        keys = [{"Key": v["Key"], "VersionId": v["VersionId"]}
                for v in page.get("Versions", []) + page.get("DeleteMarkers", [])]
        if keys:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
            deleted += len(keys)
    s3.delete_bucket(Bucket=bucket)
    progress(f"deleted bucket {bucket} ({deleted} objects)")
    return True


def leftovers(sess, stack_name: str) -> list[str]:
    """List billable resources still tagged with the stack: instances, NAT gateways, addresses, ALBs."""
    ec2 = sess.client("ec2")
    tag = [{"Name": "tag:aws:cloudformation:stack-name", "Values": [stack_name]}]
    found = [f"instance {i['InstanceId']}" for r in ec2.describe_instances(Filters=tag)["Reservations"]
             for i in r["Instances"] if i["State"]["Name"] not in ("terminated", "shutting-down")]
    found += [f"NAT gateway {n['NatGatewayId']}" for n in ec2.describe_nat_gateways(Filters=tag)["NatGateways"]
              if n["State"] not in ("deleted", "deleting")]
    found += [f"elastic IP {a['PublicIp']}" for a in ec2.describe_addresses(Filters=tag)["Addresses"]]
    return found + [f"load balancer {lb}" for lb in tagged_load_balancers(sess.client("elbv2"), stack_name)]


def tagged_load_balancers(elbv2, stack_name: str) -> list[str]:
    """Return the names of the load balancers CloudFormation tagged with this stack."""
    lbs = {lb["LoadBalancerArn"]: lb["LoadBalancerName"] for page in
           elbv2.get_paginator("describe_load_balancers").paginate() for lb in page["LoadBalancers"]}
    arns, found = list(lbs), []
    for start in range(0, len(arns), 20):  # DescribeTags takes at most 20 ARNs
        for described in elbv2.describe_tags(ResourceArns=arns[start:start + 20])["TagDescriptions"]:
            tags = {t["Key"]: t["Value"] for t in described["Tags"]}
            if tags.get("aws:cloudformation:stack-name") == stack_name:
                found.append(lbs[described["ResourceArn"]])
    return sorted(found)
