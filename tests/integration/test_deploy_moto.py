"""`sre-workshop deploy` and `destroy` against moto's server (endpoint override), checked by describe calls.

moto reports CREATE_COMPLETE even for resources it skips, so nothing here trusts the stack status: every
claim is read back from the service that should hold it. What moto ignores (an instance's security groups,
target registration) is checked statically in tests/unit/test_template_static.py.
"""

from __future__ import annotations

import ast
import contextlib
import io
import json
import urllib.parse
from pathlib import Path

import boto3
import pytest

from sre_workshop.cli.main import ExitStatus, main
from sre_workshop.tables import table_definitions

from conftest import moto_spec, start_server

REGION = "us-east-1"


@contextlib.contextmanager
def fresh_aws(tmp: Path):
    """A moto server of its own, with every boto3 client of this process pointed at it."""
    server = start_server(moto_spec(tmp))
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("AWS_ENDPOINT_URL", server.url)
            mp.setenv("AWS_ACCESS_KEY_ID", "testing")
            mp.setenv("AWS_SECRET_ACCESS_KEY", "testing")
            mp.delenv("AWS_PROFILE", raising=False)
            session = boto3.session.Session(region_name=REGION)
            yield lambda service: session.client(service)
    finally:
        server.stop()


@pytest.fixture
def aws(tmp_path):
    with fresh_aws(tmp_path) as clients:
        yield clients


@pytest.fixture(scope="module")
def deployed(tmp_path_factory):
    """One deploy of the whole stack into moto, shared by the read-only checks below."""
    with fresh_aws(tmp_path_factory.mktemp("deploy")) as clients:
        err, out = io.StringIO(), io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            assert main(["deploy", "--region", REGION, "--stack-name", "wk", "--ttl", "2"]) == 0
        outputs = dict(line.split(": ", 1) for line in out.getvalue().splitlines() if ": " in line)
        yield clients, outputs, err.getvalue()


def stack_resources(aws) -> dict[str, str]:
    pages = aws("cloudformation").get_paginator("list_stack_resources").paginate(StackName="wk")
    return {r["LogicalResourceId"]: r["PhysicalResourceId"] for page in pages for r in page["StackResourceSummaries"]}


def test_outputs_are_printed(deployed):
    _, outputs, err = deployed
    assert outputs["AppURL"].startswith("http://") and outputs["CRMURL"].endswith(":8080/")
    assert "billable" in err and "deletes itself at" in err


def test_network(deployed):
    aws, outputs, _ = deployed
    ec2 = aws("ec2")
    ids = stack_resources(aws)
    assert ec2.describe_vpcs(VpcIds=[outputs["VpcId"]])["Vpcs"][0]["CidrBlock"] == "10.0.0.0/16"
    subnets = {s["SubnetId"]: s for s in ec2.describe_subnets(Filters=[
        {"Name": "vpc-id", "Values": [outputs["VpcId"]]}])["Subnets"]}
    cidrs = {name: subnets[ids[name]]["CidrBlock"] for name in
             ("PublicSubnet1", "PublicSubnet2", "PrivateSubnet1", "PrivateSubnet2")}
    assert cidrs == {"PublicSubnet1": "10.0.1.0/24", "PublicSubnet2": "10.0.2.0/24",
                     "PrivateSubnet1": "10.0.10.0/24", "PrivateSubnet2": "10.0.11.0/24"}
    assert subnets[ids["PublicSubnet1"]]["AvailabilityZone"] != subnets[ids["PublicSubnet2"]]["AvailabilityZone"]
    (nat,) = ec2.describe_nat_gateways(Filters=[{"Name": "vpc-id", "Values": [outputs["VpcId"]]}])["NatGateways"]
    assert nat["SubnetId"] == ids["PublicSubnet1"]
    tables = {t["RouteTableId"]: t for t in ec2.describe_route_tables(Filters=[
        {"Name": "vpc-id", "Values": [outputs["VpcId"]]}])["RouteTables"]}
    private = tables[ids["PrivateRouteTable"]]
    default = [r for r in private["Routes"] if r.get("DestinationCidrBlock") == "0.0.0.0/0"]
    assert default and default[0].get("NatGatewayId") == nat["NatGatewayId"]
    public = [r for r in tables[ids["PublicRouteTable"]]["Routes"] if r.get("DestinationCidrBlock") == "0.0.0.0/0"]
    assert public and public[0]["GatewayId"] == ids["InternetGateway"]
    # moto does not apply SubnetRouteTableAssociation: the associations are checked in the static tests.


def test_security_group_chain_rule_by_rule(deployed):
    aws, _, _ = deployed
    ids = stack_resources(aws)
    groups = {g["GroupId"]: g for g in aws("ec2").describe_security_groups()["SecurityGroups"]}

    def rules(name: str) -> set[tuple]:
        found = set()
        for permission in groups[ids[name]]["IpPermissions"]:
            for source in permission.get("IpRanges", []):
                found.add((permission["FromPort"], permission["ToPort"], source["CidrIp"]))
            for source in permission.get("UserIdGroupPairs", []):
                found.add((permission["FromPort"], permission["ToPort"], source["GroupId"]))
        return found

    public, nginx, private = ids["PublicALBSecurityGroup"], ids["NginxSecurityGroup"], ids["PrivateALBSecurityGroup"]
    assert rules("PublicALBSecurityGroup") == {(80, 80, "0.0.0.0/0"), (443, 443, "0.0.0.0/0"),
                                               (8080, 8080, "0.0.0.0/0")}
    assert rules("NginxSecurityGroup") == {(80, 80, public)}
    assert rules("PrivateALBSecurityGroup") == {(80, 80, nginx)}
    assert rules("AppServerSecurityGroup") == {(8080, 8080, private)}
    assert rules("CRMAppSecurityGroup") == {(8080, 8080, public)}


def test_load_balancers_listeners_and_health_checks(deployed):
    aws, _, _ = deployed
    elb = aws("elbv2")
    lbs = {lb["LoadBalancerName"]: lb for lb in elb.describe_load_balancers()["LoadBalancers"]}
    assert lbs["sre-workshop-public-alb"]["Scheme"] == "internet-facing"
    assert lbs["sre-workshop-private-alb"]["Scheme"] == "internal"
    groups = {g["TargetGroupArn"]: g for g in elb.describe_target_groups()["TargetGroups"]}
    ids = stack_resources(aws)

    def listeners(lb: str) -> dict[int, str]:
        found = elb.describe_listeners(LoadBalancerArn=lbs[lb]["LoadBalancerArn"])["Listeners"]
        return {li["Port"]: li["DefaultActions"][0]["TargetGroupArn"] for li in found}

    assert listeners("sre-workshop-public-alb") == {80: ids["PublicALBTargetGroup"], 8080: ids["CRMAppTargetGroup"]}
    assert listeners("sre-workshop-private-alb") == {80: ids["PrivateALBTargetGroup"]}
    ports = {"PublicALBTargetGroup": 80, "CRMAppTargetGroup": 8080, "PrivateALBTargetGroup": 8080}
    for name, port in ports.items():
        group = groups[ids[name]]
        assert (group["Port"], group["HealthCheckPath"]) == (port, "/health")
        assert (group["HealthCheckIntervalSeconds"], group["UnhealthyThresholdCount"]) == (30, 3)


def test_tables_match_the_spec(deployed):
    aws, outputs, _ = deployed
    dynamodb = aws("dynamodb")
    expected = {d["TableName"]: d for d in table_definitions()}
    by_output = {"MetricsTableName": "ApplicationMetricsTable", "CustomersTableName": "CRMCustomersTable",
                 "DealsTableName": "CRMDealsTable", "ActivitiesTableName": "CRMActivitiesTable",
                 "IncidentsTableName": "IncidentHistoryTable"}
    for output, spec_name in by_output.items():
        table = dynamodb.describe_table(TableName=outputs[output])["Table"]
        want = expected[spec_name]
        assert table["KeySchema"] == want["KeySchema"], spec_name
        assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
        gsis = [(g["IndexName"], g["KeySchema"]) for g in table.get("GlobalSecondaryIndexes", [])]
        assert gsis == [(g["IndexName"], g["KeySchema"]) for g in want.get("GlobalSecondaryIndexes", [])]


def test_log_groups_keep_seven_days(deployed):
    aws, _, _ = deployed
    groups = {g["logGroupName"]: g for g in aws("logs").describe_log_groups(
        logGroupNamePrefix="/aws/sre-workshop/")["logGroups"]}
    assert set(groups) == {"/aws/sre-workshop/application", "/aws/sre-workshop/nginx/access",
                           "/aws/sre-workshop/nginx/error", "/aws/sre-workshop/crm-application"}
    assert {g["retentionInDays"] for g in groups.values()} == {7}


def policy_document(iam, role: str, name: str) -> dict:
    """Return an inline policy as data.

    AWS answers with the decoded document; moto, for a role made by CloudFormation, with the Python repr
    of the template's dict as a string.
    """
    document = iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
    if not isinstance(document, str):
        return document
    try:
        return json.loads(urllib.parse.unquote(document))
    except ValueError:
        return ast.literal_eval(document)


def test_instance_role_policy_statements(deployed):
    aws, outputs, _ = deployed
    iam = aws("iam")
    role = stack_resources(aws)["EC2InstanceRole"]
    # moto ignores a role's ManagedPolicyArns: they are checked in the static tests.
    (statement,) = policy_document(iam, role, "DynamoDBAccess")["Statement"]
    arns = {aws("dynamodb").describe_table(TableName=outputs[k])["Table"]["TableArn"]
            for k in ("MetricsTableName", "CustomersTableName", "DealsTableName", "ActivitiesTableName",
                      "IncidentsTableName")}
    indexes = {a for a in statement["Resource"] if a.endswith("/index/customer-index")}
    assert set(statement["Resource"]) - arns == indexes and len(indexes) == 2
    assert arns <= set(statement["Resource"]) and "*" not in statement["Resource"]
    s3 = policy_document(iam, role, "S3AssetsRead")["Statement"]
    assert all("sre-workshop-assets-" in str(s["Resource"]) for s in s3)


def test_ssm_parameters_and_uploaded_assets(deployed):
    aws, outputs, _ = deployed
    ssm = aws("ssm")
    assert ssm.get_parameter(Name="/sre-workshop/vpc/vpc-id")["Parameter"]["Value"] == outputs["VpcId"]
    assert ssm.get_parameter(Name="/sre-workshop/ec2/app-instance-id")["Parameter"]["Value"] == outputs[
        "AppServerInstanceId"]
    assert ssm.get_parameter(Name="/sre-workshop/alb/public-dns")["Parameter"]["Value"] == outputs["PublicALBDNSName"]
    bucket = "sre-workshop-assets-123456789012-us-east-1"
    keys = {o["Key"].rsplit("/", 1)[1] for o in aws("s3").list_objects_v2(Bucket=bucket)["Contents"]}
    assert keys == {"sre-app.zip", "crm-app.zip", "nginx-assets.zip"}
    blocks = aws("s3").get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert all(blocks.values())


def test_destroy_removes_the_stack_and_the_bucket(aws, capsys):
    # moto cannot delete the full stack (it deletes the VPC before its dependants and answers
    # DependencyViolation), so destroy is exercised on a small stack and a real assets bucket.
    aws("s3").create_bucket(Bucket="sre-workshop-assets-123456789012-us-east-1")
    aws("s3").put_object(Bucket="sre-workshop-assets-123456789012-us-east-1", Key="assets/x/sre-app.zip", Body=b"z")
    aws("cloudformation").create_stack(StackName="wk", TemplateBody=json.dumps({"Resources": {"T": {
        "Type": "AWS::DynamoDB::Table", "Properties": {
            "BillingMode": "PAY_PER_REQUEST", "KeySchema": [{"AttributeName": "k", "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": "k", "AttributeType": "S"}]}}}}))
    assert main(["destroy", "--region", REGION, "--stack-name", "wk"]) == 0
    assert "nothing billable is left" in capsys.readouterr().out
    assert not [s for s in aws("cloudformation").list_stacks()["StackSummaries"]
                if s["StackName"] == "wk" and s["StackStatus"] != "DELETE_COMPLETE"]
    assert "sre-workshop-assets-123456789012-us-east-1" not in {
        b["Name"] for b in aws("s3").list_buckets()["Buckets"]}
    assert main(["destroy", "--region", REGION, "--stack-name", "wk"]) == 0  # idempotent
    assert "no stack named wk" in capsys.readouterr().err


def test_a_second_deploy_updates_in_place(deployed):
    assert main(["deploy", "--region", REGION, "--stack-name", "wk"]) == 0


def test_bad_region_is_one_line(aws, capsys):
    assert main(["deploy", "--region", "mars-north-1"]) == ExitStatus.AWS
    err = capsys.readouterr().err
    assert "mars-north-1" in err and "Traceback" not in err


def test_destroy_removes_the_retained_expiry_role(aws, capsys):
    iam = aws("iam")
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                      "Principal": {"Service": "scheduler.amazonaws.com"}}]}
    allow = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "cloudformation:DeleteStack",
                                                      "Resource": "*"}]}
    iam.create_role(RoleName="wk-expiry-us-east-1", AssumeRolePolicyDocument=json.dumps(trust))
    iam.put_role_policy(RoleName="wk-expiry-us-east-1", PolicyName="DeleteThisStack", PolicyDocument=json.dumps(allow))
    assert main(["destroy", "--region", REGION, "--stack-name", "wk"]) == 0
    assert "deleted role wk-expiry-us-east-1" in capsys.readouterr().err
    assert "wk-expiry-us-east-1" not in {r["RoleName"] for r in iam.list_roles()["Roles"]}
