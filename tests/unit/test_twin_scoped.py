"""The scoped endpoint's decisions without a server (twin/scoped.py, twin/sigv4.py): a SigV4 signature made by
botocore verifies only with its secret over the same request; each call maps to the IAM authorizations the
on-call policy (infra/iam/oncall-policy.json) decides on. Over HTTP: tests/integration/test_twin_ssm.py."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from sre_workshop.twin import protocol, sigv4
from sre_workshop.twin.enforce.iam import compile_policies
from sre_workshop.twin.scoped import authorizations

ROOT = Path(__file__).resolve().parents[2]
POLICY = json.loads((ROOT / "infra" / "iam" / "oncall-policy.json").read_text())
ACCOUNT, REGION = "123456789012", "us-east-1"
ROLE = "sre-workshop-EC2InstanceRole-ABC123"


def signed_environ(body: bytes, secret: str = "s3cret", url: str = "http://127.0.0.1:8009/",
                   target: str = "DynamoDB_20120810.ListTables") -> dict:
    """Return the WSGI environ of a request botocore signed with AKIDTEST / `secret`."""
    request = AWSRequest(method="POST", url=url, data=body,
                         headers={"X-Amz-Target": target, "Content-Type": "application/x-amz-json-1.0"})
    SigV4Auth(Credentials("AKIDTEST", secret), "dynamodb", REGION).add_auth(request)
    parts = urlsplit(url)
    environ = {"REQUEST_METHOD": "POST", "PATH_INFO": parts.path, "QUERY_STRING": parts.query,
               "HTTP_HOST": parts.netloc, "CONTENT_LENGTH": str(len(body)), "wsgi.input": io.BytesIO(body)}
    for name, value in request.headers.items():
        key = name.upper().replace("-", "_")
        environ[key if key == "CONTENT_TYPE" else f"HTTP_{key}"] = value
    return environ


def test_a_signature_verifies_only_with_its_secret_over_the_same_request():
    body = b"{}"
    environ = signed_environ(body)
    signed = sigv4.parse(environ)
    assert signed and signed.access_key == "AKIDTEST" and signed.service == "dynamodb"
    assert sigv4.verify(signed, environ, body, "s3cret")
    assert not sigv4.verify(signed, environ, body, "another")
    assert not sigv4.verify(signed, environ, b'{"Limit": 1}', "s3cret"), "the body is signed"
    tampered = {**environ, "HTTP_X_AMZ_TARGET": "DynamoDB_20120810.Scan"}
    assert not sigv4.verify(signed, tampered, body, "s3cret"), "the operation is signed"
    assert sigv4.parse({"HTTP_AUTHORIZATION": "Bearer x"}) is None


def test_a_request_signed_long_ago_is_skewed():
    environ = signed_environ(b"{}")
    assert not sigv4.skewed(environ, now=time.time())
    assert sigv4.skewed(environ, now=time.time() + 3600)
    assert sigv4.skewed({}, now=0)


TARGET_GROUP = f"arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:targetgroup/tg-private/0123456789abcdef"


def call(service: str, operation: str, **params) -> protocol.Call:
    return protocol.Call(service, operation, "json", "AKIDTEST", REGION, b"", params)


@pytest.mark.parametrize(("made", "allowed"), [
    (call("dynamodb", "DescribeTable", TableName="CRMDealsTable"), True),
    (call("dynamodb", "UpdateTable", TableName="CRMCustomersTable"), True),
    (call("dynamodb", "ListTables"), True),
    (call("dynamodb", "Scan", TableName="IncidentHistoryTable"), False),
    (call("dynamodb", "DescribeTable", TableName="IncidentHistoryTable"), False),
    (call("dynamodb", "Query", TableName="IncidentHistoryTable", IndexName="by-status"), False),
    (call("dynamodb", "GetItem", TableName="CRMCustomersTable"), False),
    (call("dynamodb", "DeleteTable", TableName="CRMDealsTable"), False),
    (call("iam", "PutRolePolicy", RoleName=ROLE), True),
    (call("iam", "GetRolePolicy", RoleName=ROLE), True),
    (call("iam", "PutRolePolicy", RoleName="SomeOtherRole"), False),
    (call("iam", "PutUserPolicy", UserName="sre-workshop-oncall"), False),
    (call("iam", "CreateAccessKey", UserName="sre-workshop-oncall"), False),
    (call("ec2", "AuthorizeSecurityGroupIngress", GroupId="sg-0123"), True),
    (call("ec2", "RevokeSecurityGroupIngress", GroupId="sg-0123"), False),
    (call("ec2", "DescribeSecurityGroups"), True),
    (call("ssm", "SendCommand", InstanceIds=["i-1", "i-2"], DocumentName="AWS-RunShellScript"), True),
    (call("ssm", "SendCommand", InstanceIds=["i-1"], DocumentName="AWS-RunPowerShellScript"), False),
    (call("monitoring", "GetMetricData"), True),
    (call("monitoring", "PutMetricAlarm"), False),
    (call("logs", "FilterLogEvents"), True),
    (call("logs", "DeleteLogGroup", logGroupName="/aws/sre-workshop/nginx/error"), False),
    (call("logs", "CreateLogGroup", logGroupName="/aws/sre-workshop/nginx/error"), True),
    (call("logs", "PutRetentionPolicy", logGroupName="/aws/sre-workshop/nginx/error"), True),
    (call("logs", "CreateLogGroup", logGroupName="/aws/other-team/app"), False),
    (call("cloudtrail", "LookupEvents"), True),
    (call("elasticloadbalancing", "DescribeTargetHealth", TargetGroupArn=TARGET_GROUP), True),
    (call("elasticloadbalancing", "RegisterTargets", TargetGroupArn=TARGET_GROUP), True),
    (call("elasticloadbalancing", "DeregisterTargets", TargetGroupArn=TARGET_GROUP), False),
])
def test_the_oncall_policy_allows_the_on_call_reads_and_repairs_only(made, allowed):
    policies = compile_policies([POLICY], {"aws:PrincipalType": "User"})
    assert policies.authorize(authorizations(made, REGION, ACCOUNT)).allowed is allowed


def test_each_call_names_its_resources():
    assert authorizations(call("iam", "GetRolePolicy", RoleName=ROLE), REGION, ACCOUNT) == [
        ("iam:GetRolePolicy", f"arn:aws:iam::{ACCOUNT}:role/{ROLE}")]
    assert authorizations(call("monitoring", "DescribeAlarms"), REGION, ACCOUNT) == [("cloudwatch:DescribeAlarms", "*")]
    sent = authorizations(call("ssm", "SendCommand", InstanceIds=["i-1"], DocumentName="AWS-RunShellScript"),
                          REGION, ACCOUNT)
    assert sent == [("ssm:SendCommand", f"arn:aws:ec2:{REGION}:{ACCOUNT}:instance/i-1"),
                    ("ssm:SendCommand", f"arn:aws:ssm:{REGION}::document/AWS-RunShellScript")]
