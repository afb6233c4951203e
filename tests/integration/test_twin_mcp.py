"""Investigating a fault through MCP servers pointed at the AWS API twin: the AWS Labs CloudWatch and CloudTrail
servers (from PyPI, in .venv-mcp, each started as a real stdio server with the variables `sre-workshop aws-env`
prints), and our own server's AWS-shaped tools, all driven by the official SDK's client. (The AWS API server's
check is bench/bench_aws_api_mcp.py: its install does not fit CI's time.) nginx is crashed; the evidence (the
unhealthy target, the alarm, an error line, the trail event) must show through each. The cloudwatch-agent's
shipping is made certain within the test's time by PutLogEvents and PutMetricData of its own."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from conftest import cli, eventually, local_stack, port_offset

OFFSET = port_offset(500)
ROOT = Path(__file__).resolve().parents[2]
MCP_VENV = ROOT / ".venv-mcp" / "bin"
ERROR_GROUP = "/aws/sre-workshop/nginx/error"
ERROR_LINE = ("{when} [error] 4242#4242: *17 connect() failed (111: Connection refused) while connecting to "
              "upstream, client: 127.0.0.1, server: _, request: \"GET / HTTP/1.1\"")
AWS_TOOLS = {"filter_log_events", "logs_insights_query", "get_metric_data", "describe_alarms",
             "describe_target_health", "lookup_events"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with local_stack(tmp_path_factory, "twinmcp", OFFSET) as state:
        yield state


@pytest.fixture(scope="module")
def env(stack):
    """The variables `aws-env --json` gives."""
    result = subprocess.run([str(Path(sys.executable).with_name("sre-workshop")), "--state-dir", str(stack),
                             "aws-env", "--json"], capture_output=True, text=True, check=True,
                            env={**os.environ, "SRE_WORKSHOP_PORT_OFFSET": str(OFFSET)})
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def aws(env):
    session = boto3.session.Session(aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                                    aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"], region_name=env["AWS_REGION"])
    return lambda service: session.client(service, endpoint_url=env["AWS_ENDPOINT_URL"])


@pytest.fixture(scope="module")
def incident(stack, aws):
    """nginx crashed, with what an operator's AWS account would show of it: the ALB's UnHealthyHostCount
    (and the alarm on it), nginx's error lines in CloudWatch Logs, and an IAM change in CloudTrail."""
    assert cli(stack, "fault", "inject", "nginx-crash") == 0
    try:
        alarm = public_alarm(aws)
        ship_evidence(aws, alarm)
        role = next(r["RoleName"] for r in aws("iam").list_roles()["Roles"] if "-EC2InstanceRole-" in r["RoleName"])
        aws("iam").put_role_policy(RoleName=role, PolicyName="TwinMcpTest", PolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "dynamodb:Scan", "Resource": "*"}]}))
        yield {"alarm": alarm, "role": role}
        aws("iam").delete_role_policy(RoleName=role, PolicyName="TwinMcpTest")
        aws("cloudwatch").set_alarm_state(AlarmName=alarm["AlarmName"], StateValue="OK", StateReason="cleared")
    finally:
        # Not the exit status: nginx back behind the ALB is what this module needs.
        cli(stack, "fault", "clear", "nginx-crash")
        elb = aws("elbv2")
        arns = [g["TargetGroupArn"] for g in elb.describe_target_groups()["TargetGroups"]]
        eventually(lambda: all(elb.describe_target_health(TargetGroupArn=a)["TargetHealthDescriptions"][0][
            "TargetHealth"]["State"] == "healthy" for a in arns), timeout=30, interval=1)


def public_alarm(aws) -> dict:
    (alarm,) = [a for a in aws("cloudwatch").describe_alarms()["MetricAlarms"]
                if a["AlarmDescription"].startswith("The nginx target of the public ALB")]
    return alarm


def ship_evidence(aws, alarm: dict) -> None:
    """What the cloudwatch-agent and the ALB send, made certain within the test's time (the agent's periods are
    60 s here): error lines, and UnHealthyHostCount over two periods; the alarm goes to ALARM (set as the
    twin's evaluator would, if it has not yet)."""
    now = datetime.now(UTC)
    logs = aws("logs")
    logs.create_log_stream(logGroupName=ERROR_GROUP, logStreamName="i-twinmcp")
    logs.put_log_events(logGroupName=ERROR_GROUP, logStreamName="i-twinmcp", logEvents=[
        {"timestamp": int((now - timedelta(seconds=s)).timestamp() * 1000),
         "message": ERROR_LINE.format(when=(now - timedelta(seconds=s)).strftime("%Y/%m/%d %H:%M:%S"))}
        for s in (90, 30)])
    cloudwatch = aws("cloudwatch")
    cloudwatch.put_metric_data(Namespace=alarm["Namespace"], MetricData=[
        {"MetricName": alarm["MetricName"], "Dimensions": alarm["Dimensions"], "Value": 1.0,
         "Timestamp": now - timedelta(seconds=s)} for s in (150, 90, 30)])
    time.sleep(1.5)  # the twin's evaluator, once it lands, runs every ~second or so
    if public_alarm(aws)["StateValue"] != "ALARM":
        cloudwatch.set_alarm_state(AlarmName=alarm["AlarmName"], StateValue="ALARM",
                                   StateReason="Threshold Crossed: 2 datapoints [1.0, 1.0] were greater than the "
                                               "threshold (0.0).")


async def session(params: StdioServerParameters, calls: list[tuple[str, dict]]) -> tuple[set[str], list]:
    """Start a stdio server, list its tools, make `calls`; return (tool names, results)."""
    async with Client(params) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        results = [await client.call_tool(tool, arguments) for tool, arguments in calls]
    return names, results


def server(command: Path, env: dict, *args: str, **extra: str) -> StdioServerParameters:
    """A stdio server with the twin's variables (and no profile or token from the caller's environment)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return StdioServerParameters(command=str(command), args=list(args),
                                 env={**clean, **env, "FASTMCP_LOG_LEVEL": "ERROR", **extra})


def text(result) -> str:
    assert not result.is_error, result.content
    return "".join(getattr(c, "text", "") for c in result.content)


def iso(delta_s: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=delta_s)).isoformat(timespec="seconds")


def test_the_cloudwatch_server_finds_the_alarm_the_metric_and_the_error_lines(incident, env):
    alarm = incident["alarm"]
    dimensions = [{"name": d["Name"], "value": d["Value"]} for d in alarm["Dimensions"]]
    query = "fields @timestamp, @message | filter @message like /connect\\(\\) failed/ | sort @timestamp desc"
    names, (alarms, metric, groups, found, analysed) = asyncio.run(session(server(
        MCP_VENV / "awslabs.cloudwatch-mcp-server", env), [
        ("get_active_alarms", {}),
        ("get_metric_data", {"namespace": "AWS/ApplicationELB", "metric_name": "UnHealthyHostCount",
                             "dimensions": dimensions, "statistic": "Maximum", "start_time": iso(-600),
                             "end_time": iso(60)}),
        ("describe_log_groups", {"log_group_name_prefix": "/aws/sre-workshop"}),
        ("execute_log_insights_query", {"log_group_names": [ERROR_GROUP], "query_string": query,
                                        "start_time": iso(-600), "end_time": iso(60)}),
        ("analyze_log_group", {"log_group_arn": f"arn:aws:logs:us-east-1:123456789012:log-group:{ERROR_GROUP}",
                               "start_time": iso(-600), "end_time": iso(60)}),
    ]))
    assert {"get_active_alarms", "get_metric_data", "execute_log_insights_query"} <= names
    assert alarm["AlarmName"] in text(alarms) and "ALARM" in text(alarms)
    assert 1.0 in [p["value"] for p in json.loads(text(metric))["metricDataResults"][0]["datapoints"]]
    assert {g["logGroupName"] for g in json.loads(text(groups))["log_group_metadata"]} >= {
        ERROR_GROUP, "/aws/sre-workshop/application"}
    rows = json.loads(text(found))
    assert rows["status"] == "Complete" and len(rows["results"]) == 2
    assert "connect() failed (111: Connection refused)" in rows["results"][0]["@message"]
    assert "connect() failed" in text(analysed), "the error pattern among the group's top patterns"


def test_the_cloudtrail_server_finds_the_iam_change(incident, env):
    _, (events,) = asyncio.run(session(server(MCP_VENV / "awslabs.cloudtrail-mcp-server", env), [
        ("lookup_events", {"attribute_key": "EventName", "attribute_value": "PutRolePolicy",
                           "start_time": iso(-900)})]))
    found = json.loads(text(events))["events"]
    assert any(r.get("ResourceName") == incident["role"] for e in found for r in e.get("Resources", []))


def test_our_server_answers_the_same_calls_from_the_twin(stack, incident):
    alarm = incident["alarm"]
    params = StdioServerParameters(command=sys.executable, args=[
        "-m", "sre_workshop.cli.main", "--state-dir", str(stack), "mcp"],
        env={**os.environ, "SRE_WORKSHOP_PORT_OFFSET": str(OFFSET)})
    group = next(d["Value"] for d in alarm["Dimensions"] if d["Name"] == "TargetGroup").split("/")[1]
    names, results = asyncio.run(session(params, [
        ("describe_alarms", {"state": "ALARM"}),
        ("get_metric_data", {"namespace": alarm["Namespace"], "metric": alarm["MetricName"], "stat": "Maximum",
                             "dimensions": {d["Name"]: d["Value"] for d in alarm["Dimensions"]}, "start": "10m"}),
        ("filter_log_events", {"log_group": ERROR_GROUP, "filter_pattern": '"connect() failed"', "start": "10m"}),
        ("logs_insights_query", {"log_groups": [ERROR_GROUP], "start": "10m",
                                 "query": "stats count(*) as errors by bin(5m)"}),
        ("describe_target_health", {"target_group": group}),
        ("lookup_events", {"attribute": "EventName", "value": "PutRolePolicy", "start": "15m"}),
        ("filter_log_events", {"log_group": "/aws/sre-workshop/none"}),
        ("lookup_events", {"attribute": "EventName"}),
    ]))
    assert names >= AWS_TOOLS
    alarms, metric, lines, query, targets, trail, missing, half = results
    assert [a["name"] for a in alarms.structured_content["alarms"]] == [alarm["AlarmName"]]
    assert [v for _, v in metric.structured_content["points"]] == [1.0, 1.0, 1.0]
    assert len(lines.structured_content["events"]) == 2
    assert "Connection refused" in lines.structured_content["events"][-1]["message"]
    assert query.structured_content["status"] == "Complete"
    assert sum(int(r["errors"]) for r in query.structured_content["rows"]) == 2
    (target,) = targets.structured_content["targets"]
    assert target["state"] == "unhealthy" and target["reason"]
    assert any(r["ResourceName"] == incident["role"] for e in trail.structured_content["events"]
               for r in e["resources"])
    assert missing.is_error and missing.structured_content["message"].startswith("ResourceNotFoundException")
    assert half.is_error and half.structured_content["error"] == "usage"

