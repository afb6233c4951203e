"""The AWS API twin (`aws-api`) of a running local stack, driven as an operator would: boto3 and the aws CLI
pointed at it by `sre-workshop aws-env`. Resources are the template's, state is live and survives a restart,
changes show in CloudTrail, and bad calls get AWS's errors."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError

from sre_workshop.diagnose.aws.template import parse

from conftest import cli, cli_json, eventually, local_stack, port_offset

OFFSET = port_offset(400)
TEMPLATE = Path(__file__).resolve().parents[2] / "infra" / "cloudformation" / "sre-workshop.yaml"
AWS = str(Path(sys.executable).with_name("aws"))


# Seconds per datapoint: short, so that a fault shows in the metrics and alarms within seconds.
PERIOD = 2


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SRE_WORKSHOP_METRICS_PERIOD", str(PERIOD))
        with local_stack(tmp_path_factory, "twin", OFFSET) as state:
            yield state


@pytest.fixture(scope="module")
def env(stack, tmp_path_factory):
    """The variables `aws-env --json` gives, as a dict."""
    capture = tmp_path_factory.mktemp("env") / "env.json"
    result = subprocess.run([str(Path(sys.executable).with_name("sre-workshop")), "--state-dir", str(stack),
                             "aws-env", "--json"], capture_output=True, text=True, check=True,
                            env={**os.environ, "SRE_WORKSHOP_PORT_OFFSET": str(OFFSET)})
    capture.write_text(result.stdout)
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def aws(env):
    session = boto3.session.Session(aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                                    aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"], region_name=env["AWS_REGION"])
    return lambda service: session.client(service, endpoint_url=env["AWS_ENDPOINT_URL"])


def aws_cli(env: dict, *args: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return subprocess.run([AWS, *args, "--output", "json"], capture_output=True, text=True, timeout=60,
                          env={**clean, **env}, check=False)


def role_name(aws) -> str:
    (name,) = [r["RoleName"] for r in aws("iam").list_roles()["Roles"] if "-EC2InstanceRole-" in r["RoleName"]]
    return name


def test_aws_env_points_at_the_twin(env):
    assert env["AWS_ENDPOINT_URL"] == f"http://127.0.0.1:{8007 + OFFSET}"
    assert env["AWS_REGION"] == "us-east-1" and env["AWS_ACCESS_KEY_ID"]


def test_the_instances_are_the_templates_and_the_ssm_parameters_name_them(aws):
    tags = {t["Value"]: i["InstanceId"] for r in aws("ec2").describe_instances()["Reservations"]
            for i in r["Instances"] for t in i.get("Tags", []) if t["Key"] == "Name"}
    assert set(tags) == {"sre-workshop-nginx", "sre-workshop-app", "sre-workshop-crm-app"}
    ssm = aws("ssm")
    assert ssm.get_parameter(Name="/sre-workshop/ec2/nginx-instance-id")["Parameter"]["Value"] == tags[
        "sre-workshop-nginx"]
    assert ssm.get_parameter(Name="/sre-workshop/ec2/app-instance-id")["Parameter"]["Value"] == tags[
        "sre-workshop-app"]
    names = {p["Name"] for p in ssm.get_parameters_by_path(Path="/sre-workshop", Recursive=True)["Parameters"]}
    assert {"/sre-workshop/dynamodb/crm-customers-table-name", "/sre-workshop/vpc/vpc-id",
            "/sre-workshop/alb/public-dns", "/sre-workshop/alb/private-dns"} <= names


def test_the_security_group_chain_is_the_templates(aws):
    groups = {g["GroupId"]: g for g in aws("ec2").describe_security_groups()["SecurityGroups"]}
    by_name = {g["GroupName"].split("-")[2] if g["GroupName"].startswith("sre-workshop-") else g["GroupName"]: g
               for g in groups.values()}

    def sources(name: str, port: int) -> set[str]:
        rules = [p for p in by_name[name]["IpPermissions"] if p.get("FromPort") == port]
        return {groups[pair["GroupId"]]["GroupName"].split("-")[2] for p in rules for pair in p["UserIdGroupPairs"]}

    assert sources("NginxSecurityGroup", 80) == {"PublicALBSecurityGroup"}
    assert sources("PrivateALBSecurityGroup", 80) == {"NginxSecurityGroup"}
    assert sources("AppServerSecurityGroup", 8080) == {"PrivateALBSecurityGroup"}
    assert sources("CRMAppSecurityGroup", 8080) == {"PublicALBSecurityGroup"}


def test_the_instance_role_has_the_templates_dynamodb_policy(aws):
    iam = aws("iam")
    document = iam.get_role_policy(RoleName=role_name(aws), PolicyName="DynamoDBAccess")["PolicyDocument"]
    document = json.loads(document) if isinstance(document, str) else document
    expected = parse(TEMPLATE.read_text())["Resources"]["EC2InstanceRole"]["Properties"]["Policies"][0]
    assert document["Statement"][0]["Action"] == expected["PolicyDocument"]["Statement"][0]["Action"]
    resources = document["Statement"][0]["Resource"]
    assert "arn:aws:dynamodb:us-east-1:123456789012:table/CRMDealsTable/index/customer-index" in resources
    assert len(resources) == 7


def test_load_balancers_listeners_and_registered_targets(aws):
    elb = aws("elbv2")
    names = {lb["LoadBalancerName"]: lb for lb in elb.describe_load_balancers()["LoadBalancers"]}
    assert set(names) == {"sre-workshop-public-alb", "sre-workshop-private-alb"}
    ports = sorted(listener["Port"] for listener in
                   elb.describe_listeners(LoadBalancerArn=names["sre-workshop-public-alb"]["LoadBalancerArn"])[
                       "Listeners"])
    assert ports == [80, 8080]
    for group in elb.describe_target_groups()["TargetGroups"]:
        (target,) = elb.describe_target_health(TargetGroupArn=group["TargetGroupArn"])["TargetHealthDescriptions"]
        assert target["Target"]["Id"].startswith("i-")
        assert target["TargetHealth"]["State"] == "healthy"


def test_target_health_is_live_with_the_albs_reason(stack, aws):
    elb = aws("elbv2")
    (group,) = [g for g in elb.describe_target_groups()["TargetGroups"] if g["Port"] == 80 and
                g["LoadBalancerArns"] and "public" in g["LoadBalancerArns"][0]]

    def health() -> dict:
        return elb.describe_target_health(TargetGroupArn=group["TargetGroupArn"])["TargetHealthDescriptions"][0][
            "TargetHealth"]

    assert cli(stack, "service", "stop", "nginx") == 0
    try:
        down = eventually(lambda: (h := health())["State"] == "unhealthy" and h, timeout=20)
        assert down["Reason"] in ("Target.FailedHealthChecks", "Target.Timeout")
    finally:
        assert cli(stack, "service", "start", "nginx") == 0
    eventually(lambda: health()["State"] == "healthy", timeout=20)


def test_deregistering_a_target_takes_it_out_of_its_load_balancer_even_across_a_restart(stack, aws):
    """DeregisterTargets is enforced as an ALB does it: the balancer sends the target nothing, a restart of the
    balancer from its configuration does not bring it back, and RegisterTargets does."""
    from sre_workshop.settings import BASE_PORTS

    elb, crm = aws("elbv2"), f"http://127.0.0.1:{BASE_PORTS['public-alb-crm'] + OFFSET}/health"
    (group,) = [g for g in elb.describe_target_groups()["TargetGroups"] if g["Port"] == 8080 and
                g["LoadBalancerArns"] and "public" in g["LoadBalancerArns"][0]]
    arn = group["TargetGroupArn"]
    (described,) = elb.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]
    target = described["Target"]

    def status() -> int:
        try:
            with urllib.request.urlopen(crm, timeout=3) as answer:
                return answer.status
        except urllib.error.HTTPError as exc:
            return exc.code

    elb.deregister_targets(TargetGroupArn=arn, Targets=[target])
    try:
        assert status() == 503  # at once: the API's answer comes after the balancer took it out
        assert elb.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"] == []
        assert cli(stack, "service", "restart", "public-alb") == 0
        time.sleep(1.5)  # the twin's enforcement runs every 0.5 s; a restarted balancer first sends traffic
        assert status() == 503
    finally:
        elb.register_targets(TargetGroupArn=arn, Targets=[target])
    assert eventually(lambda: status() == 200, timeout=10)
    eventually(lambda: elb.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"][0][
        "TargetHealth"]["State"] == "healthy", timeout=20)


def test_dynamodb_through_the_twin_is_the_engines(aws):
    tables = aws("dynamodb").list_tables()["TableNames"]
    assert {"CRMCustomersTable", "CRMDealsTable", "CRMActivitiesTable", "ApplicationMetricsTable",
            "IncidentHistoryTable"} <= set(tables)
    described = aws("dynamodb").describe_table(TableName="CRMDealsTable")["Table"]
    assert [i["IndexName"] for i in described["GlobalSecondaryIndexes"]] == ["customer-index"]
    # the twin's account, which the role's policy names (the engine makes ARNs with an account of its own)
    account = aws("sts").get_caller_identity()["Account"]
    assert described["TableArn"] == f"arn:aws:dynamodb:us-east-1:{account}:table/CRMDealsTable"
    assert described["GlobalSecondaryIndexes"][0]["IndexArn"] == described["TableArn"] + "/index/customer-index"
    customers = aws("dynamodb").describe_table(TableName="CRMCustomersTable")["Table"]
    assert customers["ItemCount"] == aws("dynamodb").scan(TableName="CRMCustomersTable", Select="COUNT")["Count"] > 0


def test_a_change_is_in_cloudtrail_and_survives_a_restart_of_the_twin(stack, aws, env):
    iam, role = aws("iam"), role_name(aws)
    deny = {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "dynamodb:Scan", "Resource": "*"}]}
    iam.put_role_policy(RoleName=role, PolicyName="TwinTest", PolicyDocument=json.dumps(deny))
    try:
        found = aws_cli(env, "cloudtrail", "lookup-events", "--lookup-attributes",
                        "AttributeKey=EventName,AttributeValue=PutRolePolicy")
        assert found.returncode == 0, found.stderr
        (event,) = [e for e in json.loads(found.stdout)["Events"]
                    if {"ResourceType": "AWS::IAM::Role", "ResourceName": role} in e["Resources"]][:1]
        assert event["EventSource"] == "iam.amazonaws.com" and event["Username"] == env["AWS_ACCESS_KEY_ID"]
        assert "why" not in event["CloudTrailEvent"]
        assert cli(stack, "service", "restart", "aws-api") == 0
        assert "TwinTest" in iam.list_role_policies(RoleName=role)["PolicyNames"]
    finally:
        iam.delete_role_policy(RoleName=role, PolicyName="TwinTest")


def test_status_lists_the_twin_and_the_agent(stack, capsys):
    _, status = cli_json(stack, capsys, "status")
    rows = {row["name"]: row for row in status["components"]}
    assert rows["aws-api"]["healthy"] and rows["aws-api"]["ports"] == [8007 + OFFSET, 8009 + OFFSET]  # its own, scoped
    assert rows["cloudwatch-agent"]["state"] == "running"
    # An earlier test restarted aws-api: the agent's error of that moment goes once it ships again.
    shipping = eventually(lambda: (found := cli_json(stack, capsys, "status")[1]["log_shipping"])
                          and not found["errors"] and found, timeout=30, interval=1)
    assert shipping["backlog_bytes"] >= 0 and shipping["dropped_events"] == 0


@pytest.mark.parametrize(("args", "code"), [
    (("ec2", "describe-security-groups", "--group-ids", "sg-0123456789abcdef0"), "InvalidGroup.NotFound"),
    (("iam", "get-role", "--role-name", "NoSuchRole"), "NoSuchEntity"),
    (("logs", "filter-log-events", "--log-group-name", "/aws/sre-workshop/none"), "ResourceNotFoundException"),
    (("cloudtrail", "lookup-events", "--max-results", "500"), "InvalidMaxResultsException"),
    (("dynamodb", "describe-table", "--table-name", "NoSuchTable"), "ResourceNotFoundException"),
])
def test_bad_calls_get_aws_errors(env, args, code):
    result = aws_cli(env, *args)
    assert result.returncode != 0 and f"({code})" in result.stderr, result.stderr


@pytest.mark.parametrize(("headers", "body"), [
    ({"X-Amz-Target": "Logs_20140328.NoSuchOperation"}, b"{}"),
    ({"X-Amz-Target": "Logs_20140328.FilterLogEvents"}, b"{not json"),
    ({"Content-Type": "application/x-www-form-urlencoded"}, b"Action=NoSuchAction&Version=2015-12-01"),
    ({}, b""),
])
def test_malformed_calls_get_a_4xx_and_the_twin_stays_up(env, aws, headers, body):
    credential = "AWS4-HMAC-SHA256 Credential=x/20260101/us-east-1/{}/aws4_request, SignedHeaders=host, Signature=0"
    service = "logs" if "X-Amz-Target" in headers else "elasticloadbalancing"
    request = urllib.request.Request(env["AWS_ENDPOINT_URL"], data=body, method="POST",
                                     headers={"Authorization": credential.format(service), **headers})
    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(request, timeout=10)
    assert 400 <= raised.value.code < 500
    assert aws("iam").list_roles()["Roles"]


def test_an_unknown_boto3_call_is_an_aws_error(aws):
    with pytest.raises(ClientError) as raised:
        aws("logs").filter_log_events(logGroupName="/aws/sre-workshop/application", limit=20000)
    assert raised.value.response["Error"]["Code"] in ("InvalidParameterException", "ValidationException")


def test_service_actions_on_an_instance_are_in_cloudtrail_as_run_commands(stack, aws):
    nginx = aws("ssm").get_parameter(Name="/sre-workshop/ec2/nginx-instance-id")["Parameter"]["Value"]
    assert cli(stack, "service", "restart", "nginx") == 0
    events = aws("cloudtrail").lookup_events(LookupAttributes=[{"AttributeKey": "ResourceName",
                                                                "AttributeValue": nginx}])["Events"]
    latest = json.loads(events[0]["CloudTrailEvent"])
    assert events[0]["EventName"] == "SendCommand" and events[0]["EventSource"] == "ssm.amazonaws.com"
    assert latest["requestParameters"]["parameters"]["commands"] == ["systemctl restart nginx"]


# --- the original workshop's investigation, during faults -------------------------------------------------


def statistic(aws, namespace: str, metric: str, dimensions: dict[str, str], stat: str, seconds: int = 120) -> list:
    """Return the datapoints' `stat` values of the last `seconds`, oldest first."""
    now = datetime.now(UTC)
    points = aws("cloudwatch").get_metric_statistics(
        Namespace=namespace, MetricName=metric, Dimensions=[{"Name": k, "Value": v} for k, v in dimensions.items()],
        StartTime=now - timedelta(seconds=seconds), EndTime=now + timedelta(seconds=5), Period=PERIOD,
        Statistics=[stat])["Datapoints"]
    return [p[stat] for p in sorted(points, key=lambda p: p["Timestamp"])]


def test_nginx_down_shows_as_an_unhealthy_host_and_its_alarm_fires(stack, aws):
    elb = aws("elbv2")
    balancer = elb.describe_load_balancers(Names=["sre-workshop-public-alb"])["LoadBalancers"][0]
    (group,) = [g for g in elb.describe_target_groups(LoadBalancerArn=balancer["LoadBalancerArn"])["TargetGroups"]
                if g["Port"] == 80]
    dimensions = {"LoadBalancer": balancer["LoadBalancerArn"].split(":loadbalancer/")[1],
                  "TargetGroup": group["TargetGroupArn"].split(":")[-1]}
    alarm = "sre-workshop-PublicUnhealthyHostsAlarm"
    assert cli(stack, "fault", "inject", "nginx-crash") == 0
    try:
        eventually(lambda: 1 in statistic(aws, "AWS/ApplicationELB", "UnHealthyHostCount", dimensions,
                                          "Maximum", 30), timeout=30, interval=1)
        eventually(lambda: aws("cloudwatch").describe_alarms(AlarmNames=[alarm])["MetricAlarms"][0][
            "StateValue"] == "ALARM", timeout=30, interval=1)
    finally:
        assert cli(stack, "fault", "clear", "nginx-crash") == 0
    history = aws("cloudwatch").describe_alarm_history(AlarmName=alarm, HistoryItemType="StateUpdate")
    assert any("to ALARM" in item["HistorySummary"] for item in history["AlarmHistoryItems"])


def test_access_denied_lines_are_found_by_the_workshops_filter(stack, aws):
    assert cli(stack, "fault", "inject", "dynamodb-access-denied") == 0
    try:
        crm = f"http://127.0.0.1:{8080 + OFFSET}/api/customers?limit=1"

        def denied() -> list[str]:
            with contextlib.suppress(urllib.error.URLError):
                urllib.request.urlopen(crm, timeout=10)
            events = aws("logs").filter_log_events(logGroupName="/aws/sre-workshop/crm-application",
                                                   filterPattern="?error ?throttle",
                                                   startTime=int((time.time() - 60) * 1000))["events"]
            return [e["message"] for e in events if "AccessDeniedException" in e["message"]]

        assert eventually(denied, timeout=20, interval=1)
    finally:
        assert cli(stack, "fault", "clear", "dynamodb-access-denied") == 0


def test_the_leak_shows_in_the_app_servers_memory_and_its_cpu_is_published(stack, aws):
    app = aws("ssm").get_parameter(Name="/sre-workshop/ec2/app-instance-id")["Parameter"]["Value"]
    cli(stack, "fault", "clear", "memory-leak")  # the pre-baked leak, at its slow rate, may have reached its cap
    started = time.time()
    assert cli(stack, "fault", "inject", "memory-leak", "--set", "mb_per_minute=300") == 0
    try:
        def rising() -> bool:
            values = statistic(aws, "CWAgent", "mem_used_percent", {"InstanceId": app}, "Average",
                               int(time.time() - started) + PERIOD)
            return len(values) >= 3 and values[-1] > values[0] + 1
        eventually(rising, timeout=40, interval=1)
        assert statistic(aws, "AWS/EC2", "CPUUtilization", {"InstanceId": app}, "Average", 60)
    finally:
        assert cli(stack, "fault", "clear", "memory-leak") == 0


def test_metric_reads_over_the_stacks_own_data_answer_as_cloudwatch(stack, aws):
    """GetMetricData over what the stack publishes, beside a datapoint sent without a Timestamp (as the apps
    send theirs), and the exact-dimensions rule: cpu_usage_active is published with InstanceId and cpu, so
    InstanceId alone finds nothing, as on CloudWatch (moto found it, and failed GetMetricData once the
    agent's timestamps and server-stamped ones met)."""
    app = aws("ssm").get_parameter(Name="/sre-workshop/ec2/app-instance-id")["Parameter"]["Value"]
    both = {"InstanceId": app, "cpu": "cpu-total"}
    eventually(lambda: statistic(aws, "CWAgent", "cpu_usage_active", both, "Average", 60), timeout=3 * PERIOD + 5)
    assert statistic(aws, "CWAgent", "cpu_usage_active", {"InstanceId": app}, "Average", 60) == []
    aws("cloudwatch").put_metric_data(Namespace="TwinTest", MetricData=[{"MetricName": "Stamped", "Value": 1.0}])
    now = datetime.now(UTC)
    (result,) = aws("cloudwatch").get_metric_data(
        StartTime=now - timedelta(seconds=60), EndTime=now, MetricDataQueries=[{"Id": "cpu", "MetricStat": {
            "Metric": {"Namespace": "CWAgent", "MetricName": "cpu_usage_active",
                       "Dimensions": [{"Name": k, "Value": v} for k, v in both.items()]},
            "Period": PERIOD, "Stat": "Average"}}])["MetricDataResults"]
    assert result["StatusCode"] == "Complete" and result["Values"]
    assert all(t.timestamp() % PERIOD == 0 for t in result["Timestamps"])


def test_a_provisioned_table_answers_an_idle_stack_throttles_under_load_and_is_counted(stack, aws, env):
    """CRMCustomersTable set to PROVISIONED 1/1 with the aws CLI: single requests through the CRM answer; load
    is refused with ProvisionedThroughputExceededException; the twin's ThrottledRequests count exactly the
    endpoint's refusals; back on demand, the load is served."""
    table, crm = "CRMCustomersTable", f"http://127.0.0.1:{8080 + OFFSET}/api/customers?limit=1"
    stats_path = stack / "run" / "dynamodb-endpoint.stats.json"

    def refusals() -> int:
        totals = json.loads(stats_path.read_text())["totals"]
        return sum(t["count"] for t in totals if t["table"] == table and t["outcome"] == "throttled")

    def throttled_metric(since: datetime) -> float:
        cloudwatch, total = aws("cloudwatch"), 0.0
        for metric in cloudwatch.list_metrics(Namespace="AWS/DynamoDB", MetricName="ThrottledRequests",
                                              Dimensions=[{"Name": "TableName", "Value": table}])["Metrics"]:
            total += sum(p["Sum"] for p in cloudwatch.get_metric_statistics(
                Namespace="AWS/DynamoDB", MetricName="ThrottledRequests", Dimensions=metric["Dimensions"],
                StartTime=since, EndTime=datetime.now(UTC) + timedelta(seconds=PERIOD), Period=PERIOD,
                Statistics=["Sum"])["Datapoints"])
        return total

    result = aws_cli(env, "dynamodb", "update-table", "--table-name", table, "--billing-mode", "PROVISIONED",
                     "--provisioned-throughput", "ReadCapacityUnits=1,WriteCapacityUnits=1")
    assert result.returncode == 0, result.stderr
    try:
        time.sleep(2)  # the endpoint reads the tables' capacity every second
        since, before = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=PERIOD), refusals()
        for _ in range(3):
            with urllib.request.urlopen(crm, timeout=10) as answer:
                assert answer.status == 200
            time.sleep(1.5)
        assert refusals() == before
        out = subprocess.run([str(Path(sys.executable).with_name("sre-workshop")), "--state-dir", str(stack), "load",
                              "--target", "crm", "--users", "10", "--rate", "50", "--duration", "6s", "--json"],
                             capture_output=True, text=True, timeout=90,
                             env={**os.environ, "SRE_WORKSHOP_PORT_OFFSET": str(OFFSET)})
        assert out.returncode in (0, 1), out.stderr
        assert refusals() > before, out.stdout
        # the CRM's retries still in flight when the load ends are refused too: compare once both settle
        eventually(lambda: throttled_metric(since) == refusals() - before, timeout=5 * PERIOD + 10, interval=1)
    finally:
        result = aws_cli(env, "dynamodb", "update-table", "--table-name", table, "--billing-mode", "PAY_PER_REQUEST")
        assert result.returncode == 0, result.stderr
