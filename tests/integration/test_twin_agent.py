"""The cloudwatch-agent as a real process against a real moto server (standing for the twin): log lines arrive
within seconds and survive the twin's and the agent's restarts without loss or repeats; an instance's CPU and
memory and a real HAProxy's ALB metrics arrive as the counters say."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest

from sre_workshop.local.process import ProcessRecord, ProcessSpec, free_port, start_time
from sre_workshop.twin.agent_host import CLK_TCK, PAGE_SIZE

from conftest import ROOT, Server, eventually, moto_spec, start_server

GROUPS = ["/aws/sre-workshop/application", "/aws/sre-workshop/crm-application", "/aws/sre-workshop/nginx/access",
          "/aws/sre-workshop/nginx/error"]
CONFIG = ROOT / "infra" / "cloudwatch" / "amazon-cloudwatch-agent.json"
CREDENTIALS = {"aws_access_key_id": "test", "aws_secret_access_key": "test"}
# A target for HAProxy: /health and / answer 200, /err answers 500.
TARGET = """
import http.server, sys
class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        self.send_response(500 if self.path.startswith("/err") else 200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
"""


def client(server: Server, service: str):
    """Return a client of the moto server."""
    return boto3.session.Session(region_name="us-east-1", **CREDENTIALS).client(service, endpoint_url=server.url)


def create_groups(server: Server) -> None:
    """Create the four log groups, as the template does (an agent already running may make one first)."""
    logs = client(server, "logs")
    for group in GROUPS:
        with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
            logs.create_log_group(logGroupName=group)


def write_plan(tmp: Path, server: Server, **parts) -> Path:
    """Write a plan for the agent (period 2 s) and return its path."""
    plan = {"endpoint": server.url, "region": "us-east-1", "credentials": CREDENTIALS, "config": str(CONFIG),
            "period_s": 2, "spool_dir": str(tmp / "spool"), "instances": {}, "files": {}, "load_balancers": [],
            **parts}
    path = tmp / "plan.json"
    path.write_text(json.dumps(plan))
    return path


class AgentProcess:
    """The agent run as `python -m sre_workshop.twin.agent --plan PATH`."""

    def __init__(self, plan: Path) -> None:
        self.plan, self.spool = plan, Path(json.loads(plan.read_text())["spool_dir"])
        self.log = plan.parent / "agent.log"
        self.proc: subprocess.Popen | None = None

    def start(self, wait: bool = True) -> None:
        (self.spool / "status.json").unlink(missing_ok=True)
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "sre_workshop.twin.agent", "--plan", str(self.plan)],
                                         stdout=log, stderr=subprocess.STDOUT)
        if wait:
            self.wait_running()

    def wait_running(self) -> None:
        eventually(lambda: (self.spool / "status.json").exists(), timeout=30)

    def stop(self) -> int:
        """SIGTERM, and return its exit status."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise

    def status(self) -> dict:
        return json.loads((self.spool / "status.json").read_text())


@pytest.fixture(scope="module")
def twin(tmp_path_factory) -> Iterator[Server]:
    """A moto server with the four log groups, for the module (a test may restart it on its port)."""
    server = start_server(moto_spec(tmp_path_factory.mktemp("twin")))
    create_groups(server)
    yield server
    server.stop()


@pytest.fixture
def agents() -> Iterator[list[AgentProcess]]:
    """Agents a test started; any still running is stopped afterwards."""
    started: list[AgentProcess] = []
    yield started
    for agent in started:
        if agent.proc and agent.proc.poll() is None:
            agent.stop()


def messages(server: Server, group: str, stream: str) -> list[str]:
    """Return every message of a stream, oldest first ([] if the stream does not exist yet)."""
    logs, found, kwargs = client(server, "logs"), [], {"startFromHead": True}
    try:
        while True:
            page = logs.get_log_events(logGroupName=group, logStreamName=stream, **kwargs)
            found += [e["message"] for e in page["events"]]
            if not page["events"]:
                return found
            kwargs["nextToken"] = page["nextForwardToken"]
    except logs.exceptions.ResourceNotFoundException:
        return found


def append(path: Path, *lines: str) -> None:
    with path.open("a") as f:
        f.writelines(line + "\n" for line in lines)


def test_lines_arrive_within_seconds_and_survive_restarts_without_loss_or_repeats(tmp_path, twin, agents):
    app_log, access_log = tmp_path / "app.json.log", tmp_path / "access.log"
    plan = write_plan(tmp_path, twin, instances={"i-0app": {"logical_id": "AppServerInstance1"},
                                                 "i-0web": {"logical_id": "NginxInstance1"}},
                      files={"i-0app": {"/var/log/sre-app/app.log": str(app_log)},
                             "i-0web": {"/var/log/nginx/access.log": str(access_log)}})
    agent = AgentProcess(plan)
    agents.append(agent)
    agent.start()
    group = "/aws/sre-workshop/application"
    latencies = []
    for i in range(3):
        stamp = datetime.now(UTC).isoformat(timespec="milliseconds")
        append(app_log, json.dumps({"time": stamp, "level": "INFO", "message": f"first {i}"}))
        written = time.monotonic()
        eventually(lambda i=i: f"first {i}" in "".join(messages(twin, group, "i-0app")), timeout=10, interval=0.1)
        latencies.append(time.monotonic() - written)
    append(access_log, json.dumps({"time": datetime.now(UTC).isoformat(timespec="seconds"), "status": 200}))
    eventually(lambda: messages(twin, "/aws/sre-workshop/nginx/access", "i-0web"), timeout=10)
    assert max(latencies) < 5, latencies

    twin.stop()  # the twin goes away: lines wait in the file
    during = [f"during outage {i}" for i in range(50)]
    append(app_log, *during)
    time.sleep(1)
    assert agent.stop() == 0  # SIGTERM with the twin away: offsets saved, clean exit
    assert agent.status()["files"]["i-0app:/var/log/sre-app/app.log"]["backlog_bytes"] > 0
    while_stopped = [f"agent stopped {i}" for i in range(5)]
    append(app_log, *while_stopped)
    agent.start(wait=False)
    restarted = start_server(twin.spec)  # same port; moto starts empty, as a twin rebuilt from the template
    twin.record = restarted.record
    create_groups(twin)
    agent.wait_running()
    eventually(lambda: len(messages(twin, group, "i-0app")) >= 55, timeout=30, interval=0.3)
    time.sleep(1.5)  # a repeat would come now
    assert messages(twin, group, "i-0app") == during + while_stopped
    assert agent.status()["files"]["i-0app:/var/log/sre-app/app.log"]["backlog_bytes"] == 0


def burner() -> subprocess.Popen:
    """Start a busy loop leading its own process group."""
    return subprocess.Popen(["sh", "-c", "while :; do :; done"], start_new_session=True)


def cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def statistics(server: Server, namespace: str, metric: str, dims: dict[str, str], stat: str,
               since: float = 0.0, until: float = float("inf")) -> list[float]:
    """Return one value per datapoint of the last 10 minutes stamped from `since` to `until` (epoch s), oldest
    first (the agent stamps each 2 s period with its start)."""
    now = datetime.now(UTC)
    answer = client(server, "cloudwatch").get_metric_statistics(
        Namespace=namespace, MetricName=metric, Dimensions=[{"Name": k, "Value": v} for k, v in dims.items()],
        StartTime=now - timedelta(minutes=10), EndTime=now + timedelta(minutes=1), Period=1, Statistics=[stat])
    points = sorted((d["Timestamp"].timestamp(), d[stat]) for d in answer["Datapoints"])
    return [value for stamp, value in points if since <= stamp <= until]


def get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_instance_and_alb_metrics_arrive_as_measured(tmp_path, twin, agents, start_public_alb):
    target_port = free_port()
    (tmp_path / "target.py").write_text(TARGET)
    target = start_server(ProcessSpec("target", [sys.executable, str(tmp_path / "target.py"), str(target_port)],
                                      tmp_path / "target.log", ports=[target_port]))
    busy = burner()
    try:
        alb = start_public_alb(target)
        app_port = int(re.search(r"bind 127\.0\.0\.1:(\d+)", (alb.log.parent / "public-alb.cfg").read_text())[1])
        ProcessRecord("burner", busy.pid, start_time(busy.pid), ["sh"]).save(tmp_path / "burner.json")
        lb = {"dimension": "app/sre-workshop-public-alb/50dc", "socket": str(alb.log.parent / "public-alb.sock"),
              "frontends": ["listener_80", "listener_8080"],
              "target_groups": {"PublicALBTargetGroup": "targetgroup/pub/1", "CRMAppTargetGroup": "targetgroup/crm/2"}}
        plan = write_plan(tmp_path, twin, load_balancers=[lb], instances={"i-0burn": {
            "logical_id": "AppServerInstance1", "pid_records": [str(tmp_path / "burner.json")], "vcpus": 1,
            "memory_mib": 16}})
        agent = AgentProcess(plan)
        agents.append(agent)
        agent.start()
        time.sleep(2.5)  # the agent's first reading of HAProxy is its baseline
        ticks, wall, since = cpu_ticks(busy.pid), time.monotonic(), time.time()
        statuses = [get(f"http://127.0.0.1:{alb.port}/") for _ in range(5)]
        statuses += [get(f"http://127.0.0.1:{alb.port}/err") for _ in range(3)]
        statuses += [get(f"http://127.0.0.1:{app_port}/") for _ in range(2)]  # nginx's target is down: 503
        assert statuses == [200] * 5 + [500] * 3 + [503] * 2
        time.sleep(7.5)  # at least two whole 2 s periods between since and until, on a busy machine too
        share = 100 * (cpu_ticks(busy.pid) - ticks) / CLK_TCK / (time.monotonic() - wall)
        until = time.time() - 2  # the last period that ended before the burner's reading
        rss = int(Path(f"/proc/{busy.pid}/stat").read_text().rsplit(")", 1)[1].split()[21]) * PAGE_SIZE
        crm = {"TargetGroup": "targetgroup/crm/2", "LoadBalancer": lb["dimension"]}

        def settled() -> bool:
            return sum(statistics(twin, "AWS/ApplicationELB", "RequestCount", crm, "Sum")) >= 8

        eventually(settled, timeout=10)
    finally:
        busy.kill()
        busy.wait()
        target.stop()
    instance = {"InstanceId": "i-0burn"}
    cpu = statistics(twin, "AWS/EC2", "CPUUtilization", instance, "Average", since, until)
    assert len(cpu) >= 2 and abs(sum(cpu) / len(cpu) - share) < 15, (cpu, share)
    agent_cpu = statistics(twin, "CWAgent", "cpu_usage_active", {**instance, "cpu": "cpu-total"}, "Average", since,
                           until)
    assert agent_cpu == pytest.approx(cpu)
    memory = statistics(twin, "CWAgent", "mem_used_percent", instance, "Average", since, until)
    assert memory and all(abs(m - 100 * rss / (16 * 1024 * 1024)) < 2 for m in memory), (memory, rss)

    alb_stat = lambda metric, dims, stat="Sum": statistics(twin, "AWS/ApplicationELB", metric, dims, stat)  # noqa: E731
    public = {"LoadBalancer": lb["dimension"]}
    pub_tg = {"TargetGroup": "targetgroup/pub/1", **public}
    assert sum(alb_stat("RequestCount", crm)) == 8
    assert sum(alb_stat("HTTPCode_Target_5XX_Count", crm)) == 3
    assert sum(alb_stat("HTTPCode_ELB_5XX_Count", public)) == 2  # published for the load balancer only
    assert alb_stat("TargetResponseTime", crm, "SampleCount")
    healthy = statistics(twin, "AWS/ApplicationELB", "HealthyHostCount", crm, "Average", since, until)
    unhealthy = statistics(twin, "AWS/ApplicationELB", "UnHealthyHostCount", pub_tg, "Average", since, until)
    assert set(healthy) == {1.0} and set(unhealthy) == {1.0}  # the CRM's target is up, nginx's is not
    assert agent.stop() == 0
    assert os.path.exists(agent.spool / "status.json")
