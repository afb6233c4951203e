"""The AWS API twin and the CloudWatch agent's stand-in: what they cost and how fresh their data is.

1. `up --detach` to healthy with the twin (goal <= 6 s): a first start in a new state dir (the twin's
   deployment from the per-user cache; one run with an empty cache shows moto's own deployment), then
   restarts (the twin restores its saved state).
2. RSS of aws-api and cloudwatch-agent at rest, after 30 s (goal: <= 200 MB together).
3. Log latency: a request through the CRM's listener, then FilterLogEvents on its request id until the line is
   there (goal: p95 <= 5 s).
4. Metric latency: nginx stopped, then GetMetricStatistics of UnHealthyHostCount until a datapoint says 1
   (goal: <= one period; the run uses --metrics-period 10).

    .venv/bin/python bench/bench_twin.py [--starts 3] [--requests 20]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3

from sre_workshop.cli.main import main as cli
from sre_workshop.cli.twin import aws_environment
from sre_workshop.local.process import ProcessRecord, group_members
from sre_workshop.settings import Settings

from common import machine, memory_kb

OFFSET = 22000
PERIOD = 10


def up(state: Path) -> float:
    started = time.monotonic()
    assert cli(["--state-dir", str(state), "up", "--detach", "--metrics-period", str(PERIOD)]) == 0
    return time.monotonic() - started


def down(state: Path) -> None:
    cli(["--state-dir", str(state), "down"])


def rss_mb(state: Path, name: str) -> float:
    record = ProcessRecord.load(state / "run" / "pids" / f"{name}.json")
    return sum(memory_kb(pid)[0] for pid in group_members(record.pid)) / 1024 if record else 0.0


def clients(state: Path):
    env = aws_environment(Settings.from_env(port_offset=OFFSET, state_dir=state))
    session = boto3.session.Session(aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                                    aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"], region_name=env["AWS_REGION"])
    return lambda service: session.client(service, endpoint_url=env["AWS_ENDPOINT_URL"])


def log_latency(aws, requests: int) -> list[float]:
    """Seconds from a request to its line being found by FilterLogEvents, per request."""
    found = []
    for n in range(requests):
        request_id = f"bench{os.getpid()}n{n}"
        sent = time.monotonic()
        req = urllib.request.Request(f"http://127.0.0.1:{8080 + OFFSET}/api/customers?limit=1",
                                     headers={"X-Request-ID": request_id})
        with contextlib.suppress(OSError):
            urllib.request.urlopen(req, timeout=10).read()
        while time.monotonic() - sent < 30:
            events = aws("logs").filter_log_events(logGroupName="/aws/sre-workshop/crm-application",
                                                   filterPattern=f'"{request_id}"',
                                                   startTime=int((time.time() - 60) * 1000))["events"]
            if events:
                found.append(time.monotonic() - sent)
                break
            time.sleep(0.1)
        time.sleep(0.5)
    return found


def metric_latency(state: Path, aws) -> float:
    """Seconds from nginx stopping to a datapoint of UnHealthyHostCount = 1 for its target group."""
    elb = aws("elbv2")
    balancer = elb.describe_load_balancers(Names=["sre-workshop-public-alb"])["LoadBalancers"][0]
    (group,) = [g for g in elb.describe_target_groups(LoadBalancerArn=balancer["LoadBalancerArn"])["TargetGroups"]
                if g["Port"] == 80]
    dimensions = [{"Name": "LoadBalancer", "Value": balancer["LoadBalancerArn"].split(":loadbalancer/")[1]},
                  {"Name": "TargetGroup", "Value": group["TargetGroupArn"].split(":")[-1]}]
    stopped = time.monotonic()
    cli(["--state-dir", str(state), "service", "stop", "nginx"])
    try:
        while time.monotonic() - stopped < 5 * PERIOD:
            now = datetime.now(UTC)
            points = aws("cloudwatch").get_metric_statistics(
                Namespace="AWS/ApplicationELB", MetricName="UnHealthyHostCount", Dimensions=dimensions,
                StartTime=now - timedelta(seconds=60), EndTime=now, Period=PERIOD, Statistics=["Maximum"])
            if any(p["Maximum"] >= 1 for p in points["Datapoints"]):
                return time.monotonic() - stopped
            time.sleep(0.5)
        return float("nan")
    finally:
        cli(["--state-dir", str(state), "service", "start", "nginx"])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--starts", type=int, default=3)
    parser.add_argument("--requests", type=int, default=20)
    args = parser.parse_args()
    os.environ["SRE_WORKSHOP_PORT_OFFSET"] = str(OFFSET)
    report: dict = {"machine": machine(), "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")}
    with tempfile.TemporaryDirectory(prefix="bench-twin-") as tmp:
        state = Path(tmp) / "state"
        times = []
        try:
            for _ in range(args.starts):
                times.append(round(up(state), 2))
                if len(times) < args.starts:
                    down(state)
            report["up_to_healthy_s"] = times
            time.sleep(30)
            report["rss_mb"] = {name: round(rss_mb(state, name), 1) for name in ("aws-api", "cloudwatch-agent")}
            aws = clients(state)
            latencies = sorted(log_latency(aws, args.requests))
            report["log_latency_s"] = {"n": len(latencies), "p50": round(statistics.median(latencies), 2),
                                       "p95": round(latencies[int(0.95 * (len(latencies) - 1))], 2),
                                       "max": round(latencies[-1], 2)}
            report["metric_latency_s"] = {"period": PERIOD, "unhealthy_host_seen_after": round(
                metric_latency(state, aws), 1)}
        finally:
            down(state)
    json.dump(report, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
