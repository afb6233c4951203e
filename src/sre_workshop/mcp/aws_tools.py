"""AWS-shaped read tools: the calls an agent would make on AWS (CloudWatch Logs, Logs Insights, CloudWatch
metrics and alarms, ELBv2 target health, CloudTrail), as thin boto3 calls.

Locally they go to the stack's AWS API twin (the endpoint and credentials `sre-workshop aws-env` prints);
with `mcp --aws` to real AWS through the stack's own session. Each answers a JSON-ready dict; AWS's
refusals and an endpoint that does not answer become one-line AwsErrors (tool errors).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import mcp_types as types
from pydantic import Field

from ..errors import AwsError, UsageError

READ_ONLY = types.ToolAnnotations(read_only_hint=True, destructive_hint=False, open_world_hint=False)
RELATIVE = re.compile(r"^(\d+)([smhd])$")
UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
QUERY_WAIT_S = 30.0
Clients = Callable[[str], Any]  # service name -> boto3 client


def local_clients(settings: Any) -> Clients:
    """Return a client factory for the local stack's twin (what `aws-env` prints), clients made on first use."""
    from ..local.components import LOCAL_CREDENTIALS

    made: dict[str, Any] = {}

    def client(service: str) -> Any:
        if service not in made:
            import boto3

            session = boto3.session.Session(aws_access_key_id=LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                                            aws_secret_access_key=LOCAL_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
                                            region_name=settings.region)
            made[service] = session.client(service, endpoint_url=settings.url("aws-api"))
        return made[service]

    return client


EXAMINEE_ENV = "SRE_WORKSHOP_EXAMINEE_AWS"  # an evaluated run's identity: {endpoint, access_key, secret_key, region}


def identity_clients(identity: dict[str, str]) -> Clients:
    """Return a client factory that calls as an evaluated agent's identity (the twin's scoped endpoint)."""
    made: dict[str, Any] = {}

    def client(service: str) -> Any:
        if service not in made:
            import boto3

            session = boto3.session.Session(aws_access_key_id=identity["access_key"],
                                            aws_secret_access_key=identity["secret_key"],
                                            region_name=identity["region"])
            made[service] = session.client(service, endpoint_url=identity["endpoint"])
        return made[service]

    return client


def clients_for(world: Any) -> Clients:
    """Return the client factory of an MCP world: the twin for the local stack, the stack's session on AWS."""
    if world.name == "aws":
        return world.backend.ctl.client
    return local_clients(world.stack.settings)


def when(value: str | None, default: datetime) -> datetime:
    """Return a time from ISO 8601 or a span back from now ('15m', '2h', '1d'); `default` if None."""
    if not value:
        return default
    relative = RELATIVE.match(value.strip())
    if relative:
        return datetime.now(UTC) - timedelta(**{UNITS[relative.group(2)]: int(relative.group(1))})
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"not a time: {value!r} (ISO 8601, or a span back like 15m, 2h, 1d)") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def window(start: str | None, end: str | None) -> tuple[datetime, datetime]:
    """Return (start, end): the last hour unless given."""
    now = datetime.now(UTC)
    return when(start, now - timedelta(hours=1)), when(end, now)


def call(client: Any, operation: str, **params: Any) -> dict[str, Any]:
    """Make one AWS call; AWS's refusal or an unreachable endpoint is one AwsError line."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return getattr(client, operation)(**params)
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise AwsError(f"{error.get('Code', 'Error')}: {error.get('Message', '')}".strip()) from None
    except BotoCoreError as exc:
        raise AwsError(str(exc)) from None


def iso(value: Any) -> str:
    """Return a time (datetime or epoch ms) as ISO 8601 UTC."""
    if isinstance(value, (int, float)):
        value = datetime.fromtimestamp(value / 1000, UTC)
    return value.astimezone(UTC).isoformat(timespec="seconds")


Start = Annotated[str | None, Field(description="From when: ISO 8601, or a span back like 15m, 2h (default 1h).")]
End = Annotated[str | None, Field(description="Until when: ISO 8601, or a span back (default now).")]


def tools(clients: Clients) -> dict[str, tuple]:
    """Return the AWS-shaped read tools: name -> (function, description, annotations)."""
    def filter_log_events(
            log_group: Annotated[str, Field(description="A log group, e.g. /aws/sre-workshop/nginx/error.")],
            filter_pattern: Annotated[str, Field(description="A CloudWatch Logs filter pattern ('' = all).")] = "",
            start: Start = None, end: End = None,
            limit: Annotated[int, Field(ge=1, le=500, description="At most this many events.")] = 50,
    ) -> dict[str, Any]:
        begin, until = window(start, end)
        answer = call(clients("logs"), "filter_log_events", logGroupName=log_group, filterPattern=filter_pattern,
                      startTime=int(begin.timestamp() * 1000), endTime=int(until.timestamp() * 1000), limit=limit)
        return {"events": [{"time": iso(e["timestamp"]), "stream": e["logStreamName"], "message": e["message"]}
                           for e in answer.get("events", [])], "more": bool(answer.get("nextToken"))}

    def logs_insights_query(
            log_groups: Annotated[list[str], Field(min_length=1, description="The log groups to query.")],
            query: Annotated[str, Field(description="A Logs Insights query, e.g. 'fields @timestamp, @message "
                                        "| filter @message like /error/ | sort @timestamp desc | limit 20'.")],
            start: Start = None, end: End = None,
    ) -> dict[str, Any]:
        return insights(clients("logs"), log_groups, query, *window(start, end))

    def get_metric_data(
            namespace: Annotated[str, Field(description="e.g. AWS/ApplicationELB, CWAgent.")],
            metric: Annotated[str, Field(description="e.g. UnHealthyHostCount, RequestCount.")],
            dimensions: Annotated[dict[str, str] | None, Field(description="Dimension name -> value.")] = None,
            stat: Annotated[str, Field(description="Average, Sum, Minimum, Maximum, SampleCount, or p99.")] = "Average",
            period: Annotated[int, Field(ge=1, le=86400, description="Seconds per datapoint.")] = 60,
            start: Start = None, end: End = None,
    ) -> dict[str, Any]:
        begin, until = window(start, end)
        stat_metric = {"Metric": {"Namespace": namespace, "MetricName": metric, "Dimensions": [
            {"Name": k, "Value": v} for k, v in (dimensions or {}).items()]}, "Period": period, "Stat": stat}
        answer = call(clients("cloudwatch"), "get_metric_data", StartTime=begin, EndTime=until,
                      MetricDataQueries=[{"Id": "m", "MetricStat": stat_metric}])
        (result,) = answer.get("MetricDataResults") or [{}]
        points = sorted(zip(result.get("Timestamps", []), result.get("Values", []), strict=False))
        return {"metric": metric, "namespace": namespace, "stat": stat, "period": period,
                "points": [[iso(t), v] for t, v in points]}

    def describe_alarms(
            state: Annotated[str | None, Field(description="OK, ALARM or INSUFFICIENT_DATA (default: all).")] = None,
    ) -> dict[str, Any]:
        answer = call(clients("cloudwatch"), "describe_alarms", **({"StateValue": state} if state else {}))
        return {"alarms": [alarm_row(a) for a in answer.get("MetricAlarms", [])]}

    def describe_target_health(
            target_group: Annotated[str | None, Field(description="A target group's name or ARN (default: all).")]
            = None,
    ) -> dict[str, Any]:
        return target_health(clients("elbv2"), target_group)

    def lookup_events(
            attribute: Annotated[str | None, Field(description="EventName, EventSource, Username, ReadOnly, "
                                                   "EventId or AccessKeyId.")] = None,
            value: Annotated[str | None, Field(description="The attribute's value, e.g. PutRolePolicy.")] = None,
            start: Start = None, end: End = None,
            limit: Annotated[int, Field(ge=1, le=50, description="At most this many events, newest first.")] = 20,
    ) -> dict[str, Any]:
        if bool(attribute) != bool(value):
            raise UsageError("give both attribute and value, or neither")
        begin, until = window(start, end)
        lookup = {"LookupAttributes": [{"AttributeKey": attribute, "AttributeValue": value}]} if attribute else {}
        answer = call(clients("cloudtrail"), "lookup_events", StartTime=begin, EndTime=until, MaxResults=limit,
                      **lookup)
        return {"events": [{"time": iso(e["EventTime"]), "name": e["EventName"], "source": e.get("EventSource"),
                            "username": e.get("Username"), "resources": e.get("Resources", [])}
                           for e in answer.get("Events", [])]}

    return {
        "filter_log_events": (filter_log_events, FILTER, READ_ONLY),
        "logs_insights_query": (logs_insights_query, INSIGHTS, READ_ONLY),
        "get_metric_data": (get_metric_data, METRIC_DATA, READ_ONLY),
        "describe_alarms": (describe_alarms, ALARMS, READ_ONLY),
        "describe_target_health": (describe_target_health, TARGET_HEALTH, READ_ONLY),
        "lookup_events": (lookup_events, LOOKUP, READ_ONLY),
    }


def insights(logs: Any, groups: list[str], query: str, begin: datetime, until: datetime) -> dict[str, Any]:
    """Run a Logs Insights query and wait (up to QUERY_WAIT_S) for its rows."""
    query_id = call(logs, "start_query", logGroupNames=groups, queryString=query,
                    startTime=int(begin.timestamp()), endTime=int(until.timestamp()))["queryId"]
    deadline = time.monotonic() + QUERY_WAIT_S
    while True:
        answer = call(logs, "get_query_results", queryId=query_id)
        if answer.get("status") not in ("Scheduled", "Running") or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    rows = [{f["field"]: f["value"] for f in row if f["field"] != "@ptr"} for row in answer.get("results", [])]
    return {"status": answer.get("status"), "rows": rows, "statistics": answer.get("statistics", {})}


def target_health(elb: Any, target_group: str | None) -> dict[str, Any]:
    """Return each target group's targets with their state and reason."""
    if target_group and target_group.startswith("arn:"):
        groups = call(elb, "describe_target_groups", TargetGroupArns=[target_group])["TargetGroups"]
    elif target_group:
        groups = call(elb, "describe_target_groups", Names=[target_group])["TargetGroups"]
    else:
        groups = call(elb, "describe_target_groups")["TargetGroups"]
    rows = []
    for group in groups:
        for target in call(elb, "describe_target_health", TargetGroupArn=group["TargetGroupArn"])[
                "TargetHealthDescriptions"]:
            health = target["TargetHealth"]
            rows.append({"target_group": group["TargetGroupName"], "target": target["Target"]["Id"],
                         "port": target["Target"].get("Port"), "state": health.get("State"),
                         "reason": health.get("Reason"), "description": health.get("Description")})
    return {"targets": rows}


def alarm_row(alarm: dict[str, Any]) -> dict[str, Any]:
    """Return the part of a metric alarm an investigator reads."""
    return {"name": alarm["AlarmName"], "state": alarm.get("StateValue"), "reason": alarm.get("StateReason"),
            "updated": iso(alarm["StateUpdatedTimestamp"]) if alarm.get("StateUpdatedTimestamp") else None,
            "description": alarm.get("AlarmDescription"), "namespace": alarm.get("Namespace"),
            "metric": alarm.get("MetricName"), "statistic": alarm.get("Statistic"),
            "dimensions": {d["Name"]: d["Value"] for d in alarm.get("Dimensions", [])},
            "threshold": alarm.get("Threshold"), "comparison": alarm.get("ComparisonOperator")}


FILTER = ("CloudWatch Logs FilterLogEvents: a log group's events matching a filter pattern (terms, \"quoted "
          "phrases\", -exclusions, JSON {$.field = value}, [space-delimited] fields) in a time window, oldest first: "
          "{events: [{time, stream, message}], more}. Groups: /aws/sre-workshop/application, "
          "/aws/sre-workshop/crm-application, /aws/sre-workshop/nginx/access, /aws/sre-workshop/nginx/error.")
INSIGHTS = ("CloudWatch Logs Insights: run a query over log groups in a time window and wait for it: {status, rows: "
            "[{field: value}], statistics}.")
METRIC_DATA = ("CloudWatch GetMetricData for one metric: {metric, namespace, stat, period, points: [[time, value]]}, "
               "oldest first. The ALB metrics (AWS/ApplicationELB) take LoadBalancer and TargetGroup dimensions, "
               "as the alarms name them (describe_alarms).")
ALARMS = ("CloudWatch DescribeAlarms: {alarms: [{name, state, reason, updated, description, namespace, metric, "
          "statistic, dimensions, threshold, comparison}]}, optionally only those in one state.")
TARGET_HEALTH = ("ELBv2 DescribeTargetHealth for one target group or all: {targets: [{target_group, target, port, "
                 "state, reason, description}]} (state: healthy, unhealthy, initial, draining, unused).")
LOOKUP = ("CloudTrail LookupEvents: management events (API calls, service starts and stops) in a time window, "
          "newest first, optionally by one attribute: {events: [{time, name, source, username, resources}]}.")
