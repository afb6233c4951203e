"""CloudWatch metrics of the stack with GetMetricData: the ALBs' requests, 5xx and response time per target
group, DynamoDB's throttles and user errors, the app instance's CPU (the CloudWatch agent's, else EC2's).

Sums over the window feed the rules (Observations.metrics); the per-minute series feed the report's charts.
Percentiles (p99) are asked for separately, for the charts only, and their absence is not an error (moto
cannot compute them).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from botocore.exceptions import BotoCoreError, ClientError

from ...aws.control import AwsControl
from ..model import METRIC_THROTTLE_EVENTS, METRIC_THROTTLED, METRIC_USER_ERRORS

Series = list[tuple[float, float]]
PERIOD = 60
ELB, DDB = "AWS/ApplicationELB", "AWS/DynamoDB"
TABLES = ("CRMCustomersTable", "CRMDealsTable", "CRMActivitiesTable", "ApplicationMetricsTable")
# ThrottledRequests has the operation as a dimension: every call the apps make.
OPERATIONS = ("GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "Scan", "BatchWriteItem")
CPU_AGENT, CPU_EC2 = "app instance CPU % (CWAgent)", "app instance CPU % (EC2)"


@dataclass(frozen=True)
class Query:
    """One metric of the stack, named as the rules and charts know it."""

    key: str
    namespace: str
    metric: str
    dimensions: tuple[tuple[str, str], ...]
    stat: str = "Sum"


def full_name(arn: str) -> str:
    """Return the name CloudWatch's dimensions use: app/NAME/ID of a load balancer, targetgroup/NAME/ID."""
    return arn.split(":loadbalancer/", 1)[1] if ":loadbalancer/" in arn else arn.rsplit(":", 1)[-1]


def queries(ctl: AwsControl) -> list[Query]:
    """Return the metrics doctor reads, with the stack's dimensions."""
    public, private = full_name(ctl.physical("PublicALB")), full_name(ctl.physical("PrivateALB"))
    groups = {"app": (public, "PublicALBTargetGroup"), "crm": (public, "CRMAppTargetGroup"),
              "private": (private, "PrivateALBTargetGroup")}
    found = [Query("public ALB 5xx", ELB, "HTTPCode_ELB_5XX_Count", (("LoadBalancer", public),))]
    for name, (lb, group) in groups.items():
        dims = (("LoadBalancer", lb), ("TargetGroup", full_name(ctl.physical(group))))
        found += [Query(f"{name} requests", ELB, "RequestCount", dims),
                  Query(f"{name} target 5xx", ELB, "HTTPCode_Target_5XX_Count", dims),
                  Query(f"{name} response time (s)", ELB, "TargetResponseTime", dims, "Average")]
    instance = (("InstanceId", ctl.instance("sre-app")),)
    found += [Query(CPU_AGENT, "CWAgent", "cpu_usage_active", (*instance, ("cpu", "cpu-total")), "Average"),
              Query(CPU_EC2, "AWS/EC2", "CPUUtilization", instance, "Average"),
              Query(METRIC_USER_ERRORS, DDB, "UserErrors", ())]
    for logical in TABLES:
        table = (("TableName", ctl.physical(logical)),)
        found += [Query(f"{METRIC_THROTTLED} {logical} {op}", DDB, "ThrottledRequests", (*table, ("Operation", op)))
                  for op in OPERATIONS]
        found += [Query(f"{METRIC_THROTTLE_EVENTS} {logical} {kind}", DDB, f"{kind}ThrottleEvents", table)
                  for kind in ("Read", "Write")]
    return found


def fetch(ctl: AwsControl, wanted: list[Query], start: float, end: float, period: int = PERIOD) -> dict[str, Series]:
    """Return each query's (epoch s, value) datapoints of `period` s between two times, oldest first
    (CloudWatch rounds StartTime down to the minute: periods from there on that end before `start` are left
    out)."""
    client, found = ctl.client("cloudwatch"), {q.key: [] for q in wanted}
    for first in range(0, len(wanted), 500):  # GetMetricData takes at most 500 queries
        chunk = wanted[first:first + 500]
        kwargs = {"MetricDataQueries": [_request(f"m{i}", q, period) for i, q in enumerate(chunk)],
                  "StartTime": datetime.fromtimestamp(start, UTC), "EndTime": datetime.fromtimestamp(end, UTC)}
        while True:
            page = client.get_metric_data(**kwargs)
            for result in page["MetricDataResults"]:
                key = chunk[int(result["Id"][1:])].key
                found[key] += [(t.timestamp(), v) for t, v in zip(result["Timestamps"], result["Values"], strict=True)
                               if t.timestamp() + period > start]
            if not page.get("NextToken"):
                break
            kwargs["NextToken"] = page["NextToken"]
    return {k: sorted(v) for k, v in found.items()}


def _request(query_id: str, q: Query, period: int = PERIOD) -> dict:
    metric = {"Namespace": q.namespace, "MetricName": q.metric,
              "Dimensions": [{"Name": n, "Value": v} for n, v in q.dimensions]}
    return {"Id": query_id, "MetricStat": {"Metric": metric, "Period": period, "Stat": q.stat}, "ReturnData": True}


def percentiles(ctl: AwsControl, wanted: list[Query], start: float, end: float) -> dict[str, Series]:
    """Return p99 of the response-time queries, or nothing where CloudWatch cannot compute it."""
    p99 = [Query(q.key.replace("response time", "p99 response time"), q.namespace, q.metric, q.dimensions, "p99")
           for q in wanted if q.metric == "TargetResponseTime"]
    try:
        return fetch(ctl, p99, start, end)
    except (ClientError, BotoCoreError):
        return {}


def totals(series: dict[str, Series]) -> dict[str, float]:
    """Return the sums over the window that the rules read, and each series' own sum (or latest average)."""
    found = {key: (values[-1][1] if "CPU" in key or "(s)" in key else sum(v for _, v in values))
             for key, values in series.items() if values}
    for prefix in (METRIC_THROTTLED, METRIC_THROTTLE_EVENTS):
        found[prefix] = sum(v for k, v in found.items() if k.startswith(prefix + " "))
    found.setdefault(METRIC_USER_ERRORS, 0.0)
    return found


def host_cpu(found: dict[str, float]) -> float | None:
    """Return the app instance's latest CPU reading: the CloudWatch agent's, else EC2's (None: no datapoint)."""
    return found.get(CPU_AGENT, found.get(CPU_EC2))
