"""The tool's deploy and destroy against moto's server (endpoint override), checked by describe calls.

moto reports CREATE_COMPLETE even for resources it skips, so nothing here trusts the stack status: every
claim is read back from the service that should hold it. What moto ignores (an instance's security groups,
target registration, capabilities, IAM permissions, metric math) is checked statically in
tests/unit/test_template_static.py. The library functions are called directly (the CLI is a thin layer
over them); one test goes through the CLI for its one-line errors.
"""

from __future__ import annotations

import ast
import contextlib
import json
import sys
import urllib.parse
from pathlib import Path

import boto3
import pytest

from sre_workshop.aws import deploy, guard, names
from sre_workshop.aws.status import aws_status
from sre_workshop.cli.main import ExitStatus, main
from sre_workshop.local.process import ProcessSpec, free_port
from sre_workshop.settings import Settings
from sre_workshop.tables import table_definitions

from conftest import start_server

REGION = "us-east-1"
# moto's server with the target-group attribute the template uses and moto lacks (see that file).
MOTO_SERVER = Path(__file__).resolve().parents[1] / "moto_server.py"
ACCOUNT = "123456789012"
EMAIL = "ops@example.com"


def options(**changes) -> deploy.DeployOptions:
    """Deploy options for a quick run against moto."""
    return deploy.DeployOptions(**{"stack_name": "wk", "region": REGION, "poll_seconds": 0.2,
                                   "iam_settle_seconds": 0, **changes})


def run_deploy(tmp: Path, **changes) -> tuple[dict, list[str]]:
    said: list[str] = []
    report = deploy.deploy(Settings.from_env(), options(**changes), said.append, tmp)
    json.dumps(report)  # JSON-ready for the CLI's --json
    return report, said


@contextlib.contextmanager
def fresh_aws(tmp: Path):
    """A moto server of its own, with every boto3 client of this process pointed at it."""
    port = free_port()
    server = start_server(ProcessSpec("moto", [sys.executable, str(MOTO_SERVER), "-H", "127.0.0.1", "-p", str(port)],
                                      tmp / f"moto-{port}.log", ports=[port]))
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


@contextlib.contextmanager
def recorded_calls():
    """Record the parameters of the tool's CloudFormation and SSM calls (moto echoes neither Capabilities nor
    a command's instance faithfully)."""
    calls: list[tuple[str, dict]] = []
    real = deploy.session

    def recording(region):
        sess = real(region)
        for service in ("cloudformation", "ssm"):
            sess.events.register(f"provide-client-params.{service}.*",
                                 lambda params, model, **_: calls.append((model.name, dict(params))))
        return sess

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(deploy, "session", recording)
        yield calls


@pytest.fixture(scope="module")
def deployed(tmp_path_factory):
    """One deploy of the whole stack into moto, shared by the read-only checks below."""
    with fresh_aws(tmp_path_factory.mktemp("deploy")) as clients, recorded_calls() as calls:
        report, said = run_deploy(tmp_path_factory.mktemp("build"), ttl_hours=2, alarm_email=EMAIL)
        report["calls"] = calls
        yield clients, report["outputs"], "\n".join(said), report


def stack_resources(aws) -> dict[str, str]:
    pages = aws("cloudformation").get_paginator("list_stack_resources").paginate(StackName="wk")
    return {r["LogicalResourceId"]: r["PhysicalResourceId"] for page in pages for r in page["StackResourceSummaries"]}


def test_outputs_are_reported(deployed):
    _, outputs, said, report = deployed
    assert outputs["AppURL"].startswith("http://") and outputs["CRMURL"].endswith(":8080/")
    assert "deletes itself at" in said and report["expires_at"] and report["changed"] is True
    assert report["installed"] == []  # a new stack's instances install their zips at boot


def test_stack_runs_under_the_tools_service_role_with_capability_iam(deployed):
    """Issue 9.1/9.2: CAPABILITY_IAM suffices (no named IAM resource) and CloudFormation uses the service role."""
    aws, _, _, report = deployed
    described = aws("cloudformation").describe_stacks(StackName="wk")["Stacks"][0]
    (create,) = [params for name, params in report["calls"] if name == "CreateStack"]
    assert create["Capabilities"] == ["CAPABILITY_IAM"]
    service_role = f"arn:aws:iam::{ACCOUNT}:role/sre-workshop/wk-us-east-1-cfn"
    assert create["RoleARN"] == described["RoleARN"] == report["service_role"] == service_role
    role = aws("iam").get_role(RoleName="wk-us-east-1-cfn")["Role"]
    assert role["Path"] == "/sre-workshop/" and "cloudformation.amazonaws.com" in json.dumps(
        role["AssumeRolePolicyDocument"])
    policy = policy_document(aws("iam"), "wk-us-east-1-cfn", "StackResources")
    assert "logs:DeleteMetricFilter" in json.dumps(policy) and "${" not in json.dumps(policy)
    assert {"Key": "Project", "Value": "sre-workshop"} in described["Tags"]


def test_the_template_is_sent_by_url_from_the_assets_bucket(deployed):
    """Issue 20.12: a TemplateBody may hold 51,200 bytes; the template goes to the private assets bucket and
    CloudFormation gets its TemplateURL, for the validation and the create alike."""
    aws, _, _, report = deployed
    sent = [params for name, params in report["calls"] if name in ("ValidateTemplate", "CreateStack")]
    assert len(sent) == 2 and all("TemplateBody" not in p for p in sent)
    url = sent[1]["TemplateURL"]
    assert sent[0]["TemplateURL"] == url
    bucket = report["assets"]["bucket"]
    assert url.startswith(f"https://{bucket}.s3.{REGION}.amazonaws.com/templates/")
    body = aws("s3").get_object(Bucket=bucket, Key=url.split(".amazonaws.com/", 1)[1])["Body"].read()
    assert body == (Settings.from_env().infra_dir / "cloudformation" / "sre-workshop.yaml").read_bytes()
    deployed_body = aws("cloudformation").get_template(StackName="wk")["TemplateBody"]
    assert "PublicDenyAdmin80" in str(deployed_body)


def test_expiry_role_may_only_delete_this_stack(deployed):
    """Issue 9.2/9.9: the schedule's role allows exactly cloudformation:DeleteStack on this stack's id."""
    aws, _, _, report = deployed
    stack_id = aws("cloudformation").describe_stacks(StackName="wk")["Stacks"][0]["StackId"]
    (statement,) = policy_document(aws("iam"), "wk-us-east-1-expiry", "DeleteThisStack")["Statement"]
    assert (statement["Action"], statement["Resource"]) == ("cloudformation:DeleteStack", stack_id)
    assert aws("iam").list_role_policies(RoleName="wk-us-east-1-expiry")["PolicyNames"] == ["DeleteThisStack"]
    trust = aws("iam").get_role(RoleName="wk-us-east-1-expiry")["Role"]["AssumeRolePolicyDocument"]
    assert "scheduler.amazonaws.com" in json.dumps(trust) and ACCOUNT in json.dumps(trust)
    # moto skips AWS::Scheduler::Schedule: the schedule's use of these two is checked statically.
    parameters = deploy.stack.parameters_of(aws("cloudformation").describe_stacks(StackName="wk")["Stacks"][0])
    assert parameters["ExpiryRoleArn"] == report["expiry_role"] and parameters["ExpiresAt"] == report["expires_at"]


def test_a_failed_self_delete_is_sent_to_the_email(deployed):
    """Issue 9.2: EventBridge sends the stack's DELETE_FAILED to a topic outside the stack, which mails EMAIL."""
    aws, _, _, report = deployed
    stack_id = report["stack_id"]
    rule = aws("events").describe_rule(Name="wk-stack-events")
    pattern = json.loads(rule["EventPattern"])
    assert pattern["detail"]["stack-id"] == [stack_id]
    assert "DELETE_FAILED" in pattern["detail"]["status-details"]["status"]
    (target,) = aws("events").list_targets_by_rule(Rule="wk-stack-events")["Targets"]
    assert target["Arn"] == report["stack_events_topic"]
    subscriptions = aws("sns").list_subscriptions_by_topic(TopicArn=target["Arn"])["Subscriptions"]
    assert [(s["Protocol"], s["Endpoint"]) for s in subscriptions] == [("email", EMAIL)]
    alarm_topic = stack_resources(aws)["AlarmTopic"]
    alarm_subscriptions = aws("sns").list_subscriptions_by_topic(TopicArn=alarm_topic)["Subscriptions"]
    assert EMAIL in [s["Endpoint"] for s in alarm_subscriptions]


def test_status_reads_the_stack_and_its_guard(deployed):
    _, _, _, report = deployed
    status = aws_status(options())
    assert status["exists"] and status["status"] == "CREATE_COMPLETE" and status["problems"] == []
    assert status["expires_at"] == report["expires_at"] and status["guard"]["notified"] == [EMAIL]
    assert status["guard"]["service_role"] == report["service_role"]
    json.dumps(status)


def test_the_instances_run_a_pinned_image(deployed):
    """Issue 9.5: the tool resolves the latest AL2023 image once and passes it, so updates keep it."""
    aws, outputs, _, _ = deployed
    parameters = {p["ParameterKey"]: p["ParameterValue"] for p in
                  aws("cloudformation").describe_stacks(StackName="wk")["Stacks"][0]["Parameters"]}
    assert parameters["ImageId"].startswith("ami-")
    (reservation,) = aws("ec2").describe_instances(InstanceIds=[outputs["AppServerInstanceId"]])["Reservations"]
    assert reservation["Instances"][0]["ImageId"] == parameters["ImageId"]


def load_balancer(aws, name: str, stack_name: str) -> None:
    """An ALB tagged as CloudFormation tags its resources (moto's CloudFormation does not tag them)."""
    ec2 = aws("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.9.{i}.0/24", AvailabilityZone=f"us-east-1{z}")["Subnet"]
               ["SubnetId"] for i, z in ((1, "a"), (2, "b"))]
    aws("elbv2").create_load_balancer(Name=name, Subnets=subnets, Tags=[
        {"Key": "aws:cloudformation:stack-name", "Value": stack_name}])


def test_leftovers_are_found_by_the_stacks_tags(aws):
    """Issue 9.13: destroy's check names what is tagged with its stack, not whatever holds the fixed names."""
    load_balancer(aws, "sre-workshop-public-alb", "wk")
    session = boto3.session.Session(region_name=REGION)
    assert deploy.tagged_load_balancers(session.client("elbv2"), "wk") == ["sre-workshop-public-alb"]
    assert deploy.leftovers(session, "other") == []
    assert deploy.leftovers(session, "wk") == ["load balancer sre-workshop-public-alb"]
    assert names.other_stack(session.client("cloudformation"), session.client("elbv2"), "other") == "wk"


def test_network(deployed):
    aws, outputs, _, _ = deployed
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
    aws, _, _, _ = deployed
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
    aws, _, _, _ = deployed
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


def test_the_public_listeners_answer_403_for_admin(deployed):
    """Issue 20.4: on both public listeners a rule before the forward answers /admin with a fixed 403."""
    aws, _, _, _ = deployed
    elb = aws("elbv2")
    (public,) = elb.describe_load_balancers(Names=["sre-workshop-public-alb"])["LoadBalancers"]
    for listener in elb.describe_listeners(LoadBalancerArn=public["LoadBalancerArn"])["Listeners"]:
        rules = [r for r in elb.describe_rules(ListenerArn=listener["ListenerArn"])["Rules"] if not r["IsDefault"]]
        (rule,) = rules
        assert rule["Priority"] == "1", listener["Port"]
        (condition,) = rule["Conditions"]
        assert condition["Field"] == "path-pattern"
        assert {"/admin", "/admin/*", "//*"} <= set(condition["PathPatternConfig"]["Values"])
        (action,) = rule["Actions"]
        assert action["Type"] == "fixed-response" and action["FixedResponseConfig"]["StatusCode"] == "403"


def test_tables_match_the_spec(deployed):
    aws, outputs, _, _ = deployed
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
    aws, _, _, _ = deployed
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
    aws, outputs, _, _ = deployed
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
    aws, outputs, _, _ = deployed
    ssm = aws("ssm")
    assert ssm.get_parameter(Name="/sre-workshop/vpc/vpc-id")["Parameter"]["Value"] == outputs["VpcId"]
    assert ssm.get_parameter(Name="/sre-workshop/ec2/app-instance-id")["Parameter"]["Value"] == outputs[
        "AppServerInstanceId"]
    assert ssm.get_parameter(Name="/sre-workshop/alb/public-dns")["Parameter"]["Value"] == outputs["PublicALBDNSName"]
    bucket = "sre-workshop-assets-123456789012-us-east-1"
    keys = {o["Key"] for o in aws("s3").list_objects_v2(Bucket=bucket)["Contents"]}
    zips = {k.rsplit("/", 1)[1] for k in keys if not k.startswith("templates/")}
    assert zips == {"sre-app.zip", "crm-app.zip", "nginx-assets.zip"} and len(keys) == 4  # and the template
    blocks = aws("s3").get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert all(blocks.values())


def small_stack(aws, name: str = "wk") -> str:
    """A one-table stack tagged as the tool tags it (moto cannot delete the full stack: it deletes the VPC
    before its dependants and answers DependencyViolation)."""
    return aws("cloudformation").create_stack(StackName=name, Tags=[names.PROJECT_TAG], TemplateBody=json.dumps(
        {"Resources": {"T": {"Type": "AWS::DynamoDB::Table", "Properties": {
            "BillingMode": "PAY_PER_REQUEST", "KeySchema": [{"AttributeName": "k", "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": "k", "AttributeType": "S"}]}}}}))["StackId"]


def make_guard(aws, stack_id: str) -> guard.Guard:
    """What a deploy leaves outside the stack: roles, topic and rule."""
    keeper = guard.Guard("wk", REGION, ACCOUNT)
    guard.ensure_roles(aws("iam"), keeper, Settings.from_env().infra_dir, lambda _: None)
    guard.scope_expiry_role(aws("iam"), keeper, stack_id)
    guard.ensure_notices(aws("sns"), aws("events"), keeper, stack_id, EMAIL, lambda _: None)
    return keeper


def test_destroy_removes_the_stack_the_bucket_and_the_guard(aws):
    bucket = f"sre-workshop-assets-{ACCOUNT}-us-east-1"
    aws("s3").create_bucket(Bucket=bucket)
    aws("s3").put_object(Bucket=bucket, Key="assets/x/sre-app.zip", Body=b"z")
    make_guard(aws, small_stack(aws))
    trust = guard.trust("scheduler.amazonaws.com")  # the retained role of a stack made before the guard
    aws("iam").create_role(RoleName="wk-expiry-us-east-1", AssumeRolePolicyDocument=trust)
    said: list[str] = []
    report = deploy.destroy(options(), said.append)
    json.dumps(report)
    assert report["stack"] == "deleted" and report["bucket_deleted"] and report["leftovers"] == []
    assert sorted(report["guard_removed"]) == ["role wk-expiry-us-east-1", "role wk-us-east-1-cfn",
                                               "role wk-us-east-1-expiry", "rule wk-stack-events",
                                               "topic wk-stack-events"]
    assert not [s for s in aws("cloudformation").list_stacks()["StackSummaries"]
                if s["StackName"] == "wk" and s["StackStatus"] != "DELETE_COMPLETE"]
    assert bucket not in {b["Name"] for b in aws("s3").list_buckets()["Buckets"]}
    assert not [r for r in aws("iam").list_roles()["Roles"] if r["RoleName"].startswith("wk-")]
    assert aws("sns").list_topics()["Topics"] == [] and aws("events").list_rules()["Rules"] == []
    again = deploy.destroy(options(), said.append)  # idempotent
    assert again["stack"] == "absent" and again["guard_removed"] == [] and "no stack named wk" in said


def test_destroy_under_another_name_leaves_the_workshop_stack_and_its_bucket(aws):
    """Issue 9.13: destroy --stack-name B does not report or remove stack A's things."""
    bucket = f"sre-workshop-assets-{ACCOUNT}-us-east-1"
    aws("s3").create_bucket(Bucket=bucket)
    small_stack(aws, "wk")
    report = deploy.destroy(options(stack_name="other"), lambda _: None)
    assert report["stack"] == "absent" and report["other_stack"] == "wk" and not report["bucket_deleted"]
    assert report["leftovers"] == []
    assert bucket in {b["Name"] for b in aws("s3").list_buckets()["Buckets"]}


def test_a_second_workshop_stack_is_refused_before_anything_is_made(aws, tmp_path):
    """Issue 9.13: the spec's fixed names allow one workshop stack per account and region."""
    small_stack(aws, "wk")
    with pytest.raises(names.NamesTaken, match="stack wk already holds the workshop's fixed names"):
        deploy.deploy(Settings.from_env(), options(stack_name="other"), lambda _: None, tmp_path)
    assert aws("s3").list_buckets()["Buckets"] == [] and aws("iam").list_roles()["Roles"] == []


def test_a_half_present_stack_holding_one_alb_name_is_found(aws):
    """Issue 20.7: a stack (or leftover) that holds only sre-workshop-private-alb still owns a fixed name."""
    ec2, elb = aws("ec2"), aws("elbv2")
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.9.{i}.0/24", AvailabilityZone=f"{REGION}{z}")["Subnet"]
               ["SubnetId"] for i, z in ((1, "a"), (2, "b"))]
    elb.create_load_balancer(Name="sre-workshop-private-alb", Subnets=subnets, Scheme="internal",
                             Tags=[{"Key": "aws:cloudformation:stack-name", "Value": "half"}])
    assert names.other_stack(aws("cloudformation"), elb, "wk") == "half"
    with pytest.raises(names.NamesTaken, match="stack half already holds"):
        names.ensure_only_stack(aws("cloudformation"), elb, "wk", REGION)


def test_a_bad_stack_name_is_a_usage_error(tmp_path):
    from sre_workshop.errors import UsageError

    with pytest.raises(UsageError, match="--stack-name"):
        deploy.deploy(Settings.from_env(), options(stack_name="9-lives"), lambda _: None, tmp_path)
    with pytest.raises(UsageError, match="--alarm-email"):
        deploy.deploy(Settings.from_env(), options(alarm_email="nobody"), lambda _: None, tmp_path)


def test_a_second_deploy_updates_in_place_keeps_what_it_does_not_set_and_installs_the_code(deployed, tmp_path):
    """Issue 9.5: parameters not given keep their values (UsePreviousValue), and every instance is sent the
    update script with its zip's hash through SSM Run Command."""
    aws, _, _, first = deployed
    cfn = aws("cloudformation")
    before = deploy.stack.parameters_of(cfn.describe_stacks(StackName="wk")["Stacks"][0])
    with recorded_calls() as calls:
        report, _ = run_deploy(tmp_path)
    after = deploy.stack.parameters_of(cfn.describe_stacks(StackName="wk")["Stacks"][0])
    for key in ("ExpiresAt", "AlarmEmail", "ImageId", "InstanceType"):
        assert after[key] == before[key], key
    assert report["expires_at"] == first["expires_at"]
    sent = {c["InstanceIds"][0]: c for name, c in calls if name == "SendCommand"}
    outputs = report["outputs"]  # moto's update makes some resources anew; AWS would keep the instances
    expected = {outputs["NginxInstanceId"]: "nginx-assets.zip", outputs["AppServerInstanceId"]: "sre-app.zip",
                outputs["CRMAppInstanceId"]: "crm-app.zip"}
    assert set(sent) == set(expected)
    for instance, zip_name in expected.items():
        (line,) = sent[instance]["Parameters"]["commands"]
        assert line.startswith("/usr/local/sbin/sre-workshop-update-assets ") and sent[instance]["DocumentName"] == (
            "AWS-RunShellScript")
        assert zip_name in sent[instance]["Comment"] and line.endswith(next(
            i["sha256"] for i in report["installed"] if i["zip"] == zip_name))
    assert sorted((i["zip"], i["status"]) for i in report["installed"]) == [
        ("crm-app.zip", "Success"), ("nginx-assets.zip", "Success"), ("sre-app.zip", "Success")]


def test_bad_region_is_one_line(aws, capsys):
    assert main(["deploy", "--region", "mars-north-1"]) == ExitStatus.AWS
    err = capsys.readouterr().err
    assert "mars-north-1" in err and "Traceback" not in err
