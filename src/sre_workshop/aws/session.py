"""The AWS session of the tool, with the plain-language errors a user meets first."""

from __future__ import annotations

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from ..errors import AwsError


class NoCredentials(AwsError):
    """No credentials could be found."""


class UnsupportedRegion(AwsError):
    """The region does not exist or lacks a service the stack needs."""


# Services the stack uses; a region must offer every one.
REQUIRED_SERVICES = ("cloudformation", "ec2", "elbv2", "dynamodb", "scheduler", "ssm", "logs")


def session(region: str | None) -> boto3.session.Session:
    """Return a session for `region` (or the configured default), with credentials and region checked."""
    result = boto3.session.Session(region_name=region) if region else boto3.session.Session()
    if not result.region_name:
        raise UnsupportedRegion("no region: pass --region or set AWS_REGION")
    for service in REQUIRED_SERVICES:
        if result.region_name not in result.get_available_regions(service):
            raise UnsupportedRegion(f"region {result.region_name!r} does not offer {service}, which the stack needs")
    if result.get_credentials() is None:
        raise NoCredentials("no AWS credentials found: run `aws configure` or `aws sso login`, or set AWS_PROFILE")
    return result


def account_id(sess: boto3.session.Session) -> str:
    """Return the account the credentials belong to (and prove they work)."""
    try:
        return sess.client("sts").get_caller_identity()["Account"]
    except ClientError as exc:
        raise NoCredentials(f"the AWS credentials do not work: {exc.response['Error']['Message']}") from exc
    except BotoCoreError as exc:
        raise NoCredentials(f"cannot reach AWS STS to check the credentials: {exc}") from exc
