"""The twin's dynamodb-endpoint (src/sre_workshop/twin/endpoint.py) against dynalite directly, in one run.

Setup: dynalite with the CRM's sample data (100 customers); a moto server standing for the twin (IAM: the role
with the template's DynamoDBAccess policy; CloudWatch); the endpoint enforcing both (policies and tables read
every second, metrics sent every 10 s); two CRMs under Gunicorn (2 sync workers), one on dynalite, one on the
endpoint; the former HAProxy endpoint (a plain proxy) on dynalite, for comparison; a CRM on each of the three
paths. Measured, the paths taking turns (ABBA):
- the added latency of one call: GetItem, Query on customer-index, Scan of 100 items, one at a time on a
  kept-alive connection (p50, p99 of each path; the difference is the endpoint's cost);
- wrk at concurrency 8 sending the three calls in turn, straight to DynamoDB: calls/s of each path and the
  endpoint's CPU time per call;
- wrk at concurrency 8 on the CRM's /api/customers: requests/s with the endpoint / without any proxy / with
  HAProxy, and the proxies' CPU time per request.

Goal: the endpoint costs at most 10 % of /api/customers' throughput (ratio >= 0.90). On a busy machine the
ratio is noise; the endpoint's CPU time per call (less what it spends idle: the twin's polls) is not, and gives
the projected share: its CPU per /api/customers request times the ~342 rps the CRM does through the public
ALB at c=8, plus the idle rate, over the machine's cores.

    .venv/bin/python bench/bench_endpoint.py [--seconds 5] [--rounds 4] [--calls 300]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from string import Template

from bench_crm_scaling import timed_seed

from sre_workshop.local.engines import engine_launch, wait_engine_ready
from sre_workshop.local.process import ProcessSpec, free_port
from sre_workshop.tables import create_tables

from common import ROOT, cpu_seconds, machine, wrk
from conftest import REGION, app_spec, dynamodb, moto_spec, start_server

OUT = ROOT / "bench" / "out" / "endpoint.json"
ALB_RPS = 342  # /api/customers through the public ALB at c=8 on this machine (the baseline of the goal)
ACCOUNT = "123456789012"
HEADERS = {"Content-Type": "application/x-amz-json-1.0", "X-Amz-Date": "20250101T000000Z",
           "Authorization": "AWS4-HMAC-SHA256 Credential=sre-workshop-local/20250101/us-east-1/dynamodb/aws4_request, "
                            "SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=" + "0" * 64}
CALLS = {  # CRM-like calls: a customer, a customer's deals, a page of 100 customers
    "GetItem": {"TableName": "CRMCustomersTable", "Key": {"customer_id": {"S": "cust-000001"}}},
    "Query": {"TableName": "CRMDealsTable", "IndexName": "customer-index",
              "KeyConditionExpression": "customer_id = :c", "ExpressionAttributeValues": {":c": {"S": "cust-000001"}}},
    "Scan": {"TableName": "CRMCustomersTable", "Limit": 100},
}
WRK_SCRIPT = """
local calls = {%s}
local i = 0
request = function()
  i = i %% #calls + 1
  wrk.headers["X-Amz-Target"] = "DynamoDB_20120810." .. calls[i][1]
  return wrk.format("POST", "/", nil, calls[i][2])
end
"""


def wrk_script(tmp: Path) -> Path:
    """Write the wrk script that sends the three calls in turn."""
    entries = ", ".join(f"{{{json.dumps(op)}, {json.dumps(json.dumps(body))}}}" for op, body in CALLS.items())
    headers = "".join(f'wrk.headers["{k}"] = {json.dumps(v)}\n' for k, v in HEADERS.items())
    path = tmp / "calls.lua"
    path.write_text(headers + WRK_SCRIPT % entries)
    return path


def timed_calls(port: int, operation: str, count: int) -> list[float]:
    """Send `count` calls one at a time on one connection; return their latencies in ms."""
    connection = http.client.HTTPConnection("127.0.0.1", port)
    body = json.dumps(CALLS[operation])
    headers = {**HEADERS, "X-Amz-Target": f"DynamoDB_20120810.{operation}"}
    found = []
    for _ in range(count):
        started = time.perf_counter()
        connection.request("POST", "/", body, headers)
        answer = connection.getresponse()
        answer.read()
        found.append((time.perf_counter() - started) * 1000)
        assert answer.status == 200, answer.status
    connection.close()
    return found


def percentile(values: list[float], share: float) -> float:
    """Return a percentile of `values`."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def template_policy() -> dict:
    """Return the template's DynamoDBAccess document with the local table ARNs."""
    from cfn import load

    document = next(p for p in load()["Resources"]["EC2InstanceRole"]["Properties"]["Policies"]
                    if p["PolicyName"] == "DynamoDBAccess")["PolicyDocument"]
    arn = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/"
    for statement in document["Statement"]:
        statement["Resource"] = [arn + r["Fn::GetAtt"][0] if "Fn::GetAtt" in r
                                 else arn + r["Fn::Sub"].removeprefix("${").replace(".Arn}", "")
                                 for r in statement["Resource"]]
    return document


def start(tmp: Path) -> dict:
    """Start dynalite (seeded), the twin, the endpoint and two CRMs; return the servers."""
    import boto3

    port = free_port()
    launch = engine_launch("dynalite", port, tmp / "data", ROOT)
    engine = start_server(ProcessSpec("dynalite", launch.argv, tmp / "dynalite.log", launch.env, ports=[port]))
    assert wait_engine_ready(engine.record, engine.url, 30)
    create_tables(dynamodb(engine.url))
    timed_seed(engine.url, 100)
    twin = start_server(moto_spec(tmp))
    iam = boto3.session.Session(aws_access_key_id="t", aws_secret_access_key="t").client(
        "iam", region_name=REGION, endpoint_url=twin.url)
    iam.create_role(RoleName="EC2InstanceRole", AssumeRolePolicyDocument="{}")
    iam.put_role_policy(RoleName="EC2InstanceRole", PolicyName="DynamoDBAccess",
                        PolicyDocument=json.dumps(template_policy()))
    port = free_port()
    argv = [sys.executable, "-m", "sre_workshop.twin.endpoint", "--listen", f"127.0.0.1:{port}", "--engine",
            engine.url, "--iam-endpoint", twin.url, "--role-name", "EC2InstanceRole", "--cloudwatch-endpoint",
            twin.url, "--metrics-period", "10", "--stats-file", str(tmp / "stats.json")]
    endpoint = start_server(ProcessSpec("dynamodb-endpoint", argv, tmp / "endpoint.log", ports=[port]))
    haproxy = start_haproxy(tmp, engine.port)
    crm_direct = start_server(app_spec("crm_app", tmp, engine.url))
    crm_endpoint = start_server(app_spec("crm_app", tmp, endpoint.url))
    crm_haproxy = start_server(app_spec("crm_app", tmp, haproxy.url))
    return {"engine": engine, "twin": twin, "endpoint": endpoint, "haproxy": haproxy, "crm_direct": crm_direct,
            "crm_endpoint": crm_endpoint, "crm_haproxy": crm_haproxy}


# The dynamodb-endpoint before the twin's (infra/haproxy/dynamodb-endpoint.cfg until session 5): a plain HTTP
# proxy, one thread, the baseline a proxy in that place costs.
HAPROXY_ENDPOINT = """global
    maxconn 4096
    nbthread 1
defaults
    mode http
    option http-server-close
    timeout connect 2s
    timeout client 30s
    timeout server 30s
frontend dynamodb
    bind 127.0.0.1:${endpoint_port}
    default_backend emulator
backend emulator
    server dynamodb ${dynamodb_address}
"""


def start_haproxy(tmp: Path, engine_port: int):
    """Start the former dynamodb-endpoint, a plain HAProxy HTTP proxy, for comparison."""
    port = free_port()
    config = tmp / "dynamodb-endpoint.cfg"
    config.write_text(Template(HAPROXY_ENDPOINT).substitute(endpoint_port=port,
                                                            dynamodb_address=f"127.0.0.1:{engine_port}"))
    return start_server(ProcessSpec("haproxy", ["haproxy", "-db", "-f", str(config)], tmp / "haproxy.log",
                                    cwd=tmp, ports=[port]))


def latency(servers: dict, calls: int, rounds: int) -> dict:
    """Per-call latency of each operation, direct and through the endpoint, in ABBA rounds."""
    paths = {"direct": servers["engine"].port, "endpoint": servers["endpoint"].port}
    found: dict = {op: {path: [] for path in paths} for op in CALLS}
    for r in range(rounds):
        order = list(paths) if r % 2 == 0 else list(reversed(paths))
        for op in CALLS:
            for path in order:
                found[op][path] += timed_calls(paths[path], op, calls)
    result = {}
    for op, sides in found.items():
        stats = {path: {"p50_ms": round(percentile(v, 0.5), 3), "p99_ms": round(percentile(v, 0.99), 3)}
                 for path, v in sides.items()}
        stats["added_p50_ms"] = round(stats["endpoint"]["p50_ms"] - stats["direct"]["p50_ms"], 3)
        stats["added_p99_ms"] = round(stats["endpoint"]["p99_ms"] - stats["direct"]["p99_ms"], 3)
        result[op] = stats
    return result


def idle_rate(pid: int, seconds: float = 5.0) -> float:
    """Return the CPU ms per second a process spends with no calls (the endpoint: its polls of the twin)."""
    before = cpu_seconds([pid])
    time.sleep(seconds)
    return (cpu_seconds([pid]) - before) * 1000 / seconds


def abba(targets: dict[str, tuple[str, list[int]]], seconds: int, rounds: int, script: Path | None,
         idle_ms_per_s: float = 0.0) -> dict:
    """wrk -c8 on each target in ABBA order; return rps per round and CPU ms per request of the pids given
    (less `idle_ms_per_s`, which is the endpoint's: HAProxy's idle CPU is nil)."""
    found: dict = {name: {"rps": [], "cpu_ms": []} for name in targets}
    for r in range(rounds):
        for name in list(targets) if r % 2 == 0 else list(reversed(targets)):
            url, pids = targets[name]
            before, started = cpu_seconds(pids), time.monotonic()
            result = wrk(url, seconds=seconds, connections=8, **({"script": str(script)} if script else {}))
            assert result["non_2xx"] == 0, (name, result)
            idle = idle_ms_per_s * (time.monotonic() - started) if name == "endpoint" else 0.0
            found[name]["rps"].append(result["rps"])
            found[name]["cpu_ms"].append(((cpu_seconds(pids) - before) * 1000 - idle) / max(1, result["requests"]))
    return {name: {"rps_median": round(statistics.median(v["rps"]), 1), "rps": v["rps"],
                   "cpu_ms_per_request": round(statistics.median(v["cpu_ms"]), 3)} for name, v in found.items()}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="endpoint-bench-") as name:
        tmp = Path(name)
        servers = start(tmp)
        try:
            report = measure(servers, tmp, args)
        finally:
            for server in servers.values():
                server.stop()
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))
    return 0 if report["goal_met"] else 1


def measure(servers: dict, tmp: Path, args: argparse.Namespace) -> dict:
    """Run the three measurements."""
    engine, endpoint = servers["engine"], servers["endpoint"]
    time.sleep(2)  # the endpoint has read the policies and the tables
    idle = idle_rate(endpoint.record.pid)
    haproxy = servers["haproxy"]
    calls = abba({"direct": (engine.url + "/", [engine.record.pid]),
                  "haproxy": (haproxy.url + "/", [haproxy.record.pid]),
                  "endpoint": (endpoint.url + "/", [endpoint.record.pid])}, args.seconds, args.rounds,
                 wrk_script(tmp), idle)
    crm = abba({"direct": (servers["crm_direct"].url + "/api/customers", []),
                "haproxy": (servers["crm_haproxy"].url + "/api/customers", [haproxy.record.pid]),
                "endpoint": (servers["crm_endpoint"].url + "/api/customers", [endpoint.record.pid])},
               args.seconds, args.rounds, None, idle)
    ratio = round(crm["endpoint"]["rps_median"] / crm["direct"]["rps_median"], 3)
    vs_haproxy = round(crm["endpoint"]["rps_median"] / crm["haproxy"]["rps_median"], 3)
    per_request = crm["endpoint"]["cpu_ms_per_request"]
    share = round((per_request * ALB_RPS + idle) / (1000 * os.cpu_count()), 3)
    stats = json.loads((tmp / "stats.json").read_text())
    return {"machine": machine(), "load": os.getloadavg()[0], "latency": latency(servers, args.calls, args.rounds),
            "idle_cpu_ms_per_s": round(idle, 1), "calls_c8": calls, "crm_api_customers_c8": crm, "crm_ratio": ratio,
            "crm_ratio_vs_haproxy": vs_haproxy,
            "projected_share_at_342_rps": share, "goal": "share <= 0.10 (ratio >= 0.90 on a quiet machine)",
            "goal_met": share <= 0.10, "endpoint_metrics": stats["metrics"], "endpoint_iam": stats["iam"]}


if __name__ == "__main__":
    sys.exit(main())
