"""Every fault on the local stack, end to end: steady state -> inject -> the symptom at the public entry
points -> a second inject refused -> clear from a fresh CLI process -> steady state, nothing lost."""

from __future__ import annotations

import json
import os
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from sre_workshop.cli.main import ExitStatus
from sre_workshop.cli.twin import aws_environment
from sre_workshop.faults.catalogue import catalogue
from sre_workshop.faults.model import Probe
from sre_workshop.local.lbstats import target_health
from sre_workshop.local.process import ProcessRecord, group_members
from sre_workshop.settings import BASE_PORTS, TABLE_NAMES, Settings

from conftest import (
    REGION,
    Reply,
    cli,
    cli_json,
    cpu_share,
    dynamodb,
    eventually,
    http,
    local_stack,
    port_offset,
    run_command,
    scan_all,
    settle,
)

OFFSET = port_offset(800)
METRICS_PERIOD = 2
APP = f"http://127.0.0.1:{BASE_PORTS['public-alb'] + OFFSET}"
CRM = f"http://127.0.0.1:{BASE_PORTS['public-alb-crm'] + OFFSET}"
ENGINE = f"http://127.0.0.1:{BASE_PORTS['dynamodb'] + OFFSET}"
ENDPOINT = f"http://127.0.0.1:{BASE_PORTS['dynamodb-endpoint'] + OFFSET}"  # what the apps call
CRM_TABLES = [TABLE_NAMES[k] for k in ("CUSTOMERS_TABLE", "DEALS_TABLE", "ACTIVITIES_TABLE")]




def fresh_cli(state: Path, *args: str) -> subprocess.CompletedProcess:
    """Run the CLI in a new process, as another shell would."""
    env = {**os.environ, "SRE_WORKSHOP_PORT_OFFSET": str(OFFSET)}
    return subprocess.run([sys.executable, "-m", "sre_workshop.cli.main", "--state-dir", str(state), *args],
                          env=env, capture_output=True, text=True, timeout=180)


def item_counts() -> dict[str, int]:
    client = dynamodb(ENGINE)
    return {table: len(scan_all(client, table)) for table in CRM_TABLES}


def record(state: Path, name: str) -> ProcessRecord:
    return ProcessRecord.load(state / "run" / "pids" / f"{name}.json")


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SRE_WORKSHOP_METRICS_PERIOD", str(METRICS_PERIOD))  # the twin's metrics within seconds
        with local_stack(tmp_path_factory, "faults", OFFSET) as state:
            yield state


@pytest.fixture
def steady(stack, monkeypatch, capsys):
    """Start each test from steady state (no fault, the pre-baked leak included), and check nothing was lost."""
    monkeypatch.setenv("SRE_WORKSHOP_PORT_OFFSET", str(OFFSET))
    if cli_json(stack, capsys, "fault", "status")[1] != {"faults": []}:  # the pre-baked leak, on the first test
        assert cli(stack, "fault", "clear", "--all") == 0
    assert cli_json(stack, capsys, "fault", "status")[1] == {"faults": []}
    before = item_counts()
    yield stack
    settle(stack, capsys)
    after = item_counts()
    assert all(after[t] >= before[t] for t in CRM_TABLES), (before, after)


def test_up_starts_with_the_pre_baked_leak(stack, monkeypatch, capsys):
    monkeypatch.setenv("SRE_WORKSHOP_PORT_OFFSET", str(OFFSET))
    _code, status = cli_json(stack, capsys, "fault", "status")
    rows = [r for r in status["faults"] if r["fault"] == "memory-leak"]
    if rows:  # unless an earlier test of this module cleared it already
        assert rows[0]["state"] == "active" and rows[0]["pre_baked"] and rows[0]["params"]["mode"] == "request"


def test_the_catalogue_lists_parameters_and_ground_truth(capsys):
    code, listed = cli_json(Path("/nonexistent"), capsys, "fault", "list")
    assert code == 0
    faults = {f["name"]: f for f in listed["faults"]}
    assert {"memory-leak", "nginx-crash", "app-crash", "nginx-timeout", "nginx-bad-upstream",
            "bad-config-deploy"} <= set(faults)
    assert all(f["ground_truth"]["component"] and f["ground_truth"]["category"] for f in faults.values())
    assert any(p["intensity"] for p in faults["memory-leak"]["params"])


def test_bad_names_and_parameters_are_one_line_usage_errors(stack, capsys):
    for args, named in ((("fault", "inject", "disk-full"), "nginx-crash"),
                        (("fault", "inject", "memory-leak", "--set", "mb_per_minute=9999"), "from 0.1 to 600"),
                        (("fault", "inject", "memory-leak", "--set", "rate=1"), "mb_per_minute"),
                        (("fault", "clear",), "--all")):
        capsys.readouterr()
        assert cli(stack, *args) == ExitStatus.USAGE, args
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and named in err, err


def status_of(url: str) -> int:
    return http("GET", url, timeout=10).status


def leak_grows() -> Callable[[], bool]:
    sizes = [http("GET", APP + "/").json()["memory_leak_size_mb"] for _ in range(4)]

    def grown() -> bool:
        return max(http("GET", APP + "/").json()["memory_leak_size_mb"] for _ in range(4)) > max(sizes) + 1
    return grown


def slow_app_gives_504(state: Path) -> bool:
    """Stop sre-app for a moment: nginx times out on the private ALB after the fault's 1 s."""
    gunicorn = record(state, "sre-app").pid
    os.killpg(gunicorn, signal.SIGSTOP)
    try:
        started = time.monotonic()
        reply = http("GET", APP + "/", timeout=30)
        return reply.status == 504 and time.monotonic() - started < 5
    finally:
        os.killpg(gunicorn, signal.SIGCONT)


def endpoint_client():
    """A DynamoDB client that calls through the endpoint as the apps do, with one attempt (no retries)."""
    return boto3.session.Session(aws_access_key_id="test", aws_secret_access_key="test").client(
        "dynamodb", region_name=REGION, endpoint_url=ENDPOINT, config=Config(retries={"total_max_attempts": 1}))


def under_load(url: str, seen: Callable[[Reply], bool], clients: int = 4, timeout: float = 30) -> Counter:
    """GET url from `clients` concurrent clients until one reply is `seen` (or time runs out); count the
    answers by status."""
    found, counts, lock = threading.Event(), Counter(), threading.Lock()

    def client() -> None:
        deadline = time.monotonic() + timeout
        while not found.is_set() and time.monotonic() < deadline:
            reply = http("GET", url, timeout=30)
            with lock:
                counts[reply.status] += 1
            if seen(reply):
                found.set()

    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(lambda _: client(), range(clients)))
    assert found.is_set(), f"not seen under load within {timeout}s: {dict(counts)}"
    return counts


def log_since(path: Path, offset: int) -> str:
    return path.read_bytes()[offset:].decode(errors="replace") if path.exists() else ""


def crm_throttled_under_load(state: Path) -> bool:
    """boto3 parses the endpoint's answer as DynamoDB's throttling error; the metrics table is never
    throttled; under load the CRM answers 503s that name it, and logs it."""
    client = endpoint_client()
    # PROVISIONED 1/1 with DynamoDB's burst capacity (300 s of unused units): the first few hundred reads pass.
    for _ in range(3000):
        try:
            client.get_item(TableName=TABLE_NAMES["CUSTOMERS_TABLE"], Key={"customer_id": {"S": "probe"}})
        except ClientError as exc:
            meta = exc.response["ResponseMetadata"]
            assert exc.response["Error"]["Code"] == "ProvisionedThroughputExceededException", exc.response
            assert meta["HTTPStatusCode"] == 400 and meta["RequestId"], meta
            break
    else:
        raise AssertionError("3000 reads of a CRM table through the endpoint, none throttled")
    for _ in range(30):  # its capacity is its own: the app's table answers
        client.get_item(TableName=TABLE_NAMES["METRICS_TABLE"], Key={"metric_id": {"S": "probe"},
                                                                     "timestamp": {"N": "0"}})
    counts = under_load(CRM + "/api/customers?limit=1",
                        lambda r: r.status == 503 and b"ProvisionedThroughputExceededException" in r.body)
    assert counts[503], counts
    return "ProvisionedThroughputExceededException" in (state / "logs" / "crm-app.json.log").read_text()


class AccessDenied:
    """The CRM answers 503 naming AccessDeniedException; the endpoint gives AWS's message for the call's
    action and table; sre-app still answers, but its metric writes fail and say so in its log."""

    def before(self, state: Path) -> None:
        self.log = state / "logs" / "sre-app.json.log"
        self.offset = self.log.stat().st_size

    def __call__(self, state: Path) -> bool:
        reply = http("GET", CRM + "/api/customers?limit=1")
        assert reply.status == 503 and b"AccessDeniedException" in reply.body, reply
        with pytest.raises(ClientError) as denied:
            endpoint_client().batch_write_item(RequestItems={TABLE_NAMES["METRICS_TABLE"]: [
                {"PutRequest": {"Item": {"metric_id": {"S": "probe"}, "timestamp": {"N": "0"}}}}]})
        assert re.fullmatch(
            r"User: arn:aws:sts::123456789012:assumed-role/sre-workshop-EC2InstanceRole-\w+/i-[0-9a-f]+ is not "
            r"authorized to perform: dynamodb:BatchWriteItem on resource: arn:aws:dynamodb:us-east-1:123456789012:"
            r"table/ApplicationMetricsTable with an explicit deny in an identity-based policy",
            denied.value.response["Error"]["Message"])
        assert status_of(APP + "/") == 200
        # sre-app writes its metrics every 10 s: the first write after the fault fails.
        return eventually(lambda: "metrics write failed (AccessDeniedException)" in log_since(self.log, self.offset),
                          timeout=40, interval=1)


def target(state: Path, balancer: str, name: str):
    return next(t for t in target_health(state / "run" / f"{balancer}.sock") if t.target == name)


def nginx_times_out(state: Path) -> bool:
    """The public ALB's checks of nginx time out (not refused): the target is unhealthy, :8000 answers 503."""
    health = eventually(lambda: (t := target(state, "public-alb", "NginxInstance1")).state == "unhealthy" and t,
                        timeout=15)
    return health.reason == "Layer4 timeout" and status_of(APP + "/") == 503 and \
        status_of(CRM + "/api/customers") == 200


def median_ms(url: str, count: int = 30) -> float:
    """The median time of `count` sequential GETs (one slow answer on a busy machine does not decide)."""
    times = []
    for _ in range(count):
        started = time.perf_counter()
        assert http("GET", url).status == 200
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


class Slower:
    """GET / takes longer than just before the fault, the burners really use CPU, and the app server's
    CPUUtilization in the twin (what the cloudwatch-agent measured) shows it."""

    def before(self, state: Path) -> None:
        self.baseline = min(median_ms(APP + "/") for _ in range(2))

    def __call__(self, state: Path) -> bool:
        eventually(lambda: median_ms(APP + "/") > 1.5 * self.baseline, timeout=20, interval=0)
        burners = state / "run" / "hosts" / "AppServerInstance1" / "jobs" / "processes.pids"
        pids = [int(line.split()[0]) for line in burners.read_text().splitlines()]
        # The burners' share of the instance's two vCPUs, as /proc counts it: near 100 % alone, less on a
        # shared CI machine. The twin's metric, which counts the app's processes too, shows at least about that.
        share = cpu_share(pids, vcpus=2)
        assert share >= 20, f"the burners use {share:.0f} % of two vCPUs"
        eventually(lambda: max(app_server_cpu(state), default=0) >= 0.6 * share, timeout=6 * METRICS_PERIOD + 10,
                   interval=1)
        return len(pids) == BURNERS and all(Path(f"/proc/{pid}").exists() for pid in pids)


def twin(state: Path, service: str):
    """A client of the stack's AWS API twin, with the variables `aws-env` gives."""
    env = aws_environment(Settings.from_env(port_offset=OFFSET, state_dir=state))
    session = boto3.session.Session(aws_access_key_id=env["AWS_ACCESS_KEY_ID"], region_name=env["AWS_REGION"],
                                    aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])
    return session.client(service, endpoint_url=env["AWS_ENDPOINT_URL"])


def instance_id(state: Path, name: str) -> str:
    """The id of the instance tagged Name=`name` in the twin."""
    reservations = twin(state, "ec2").describe_instances(Filters=[{"Name": "tag:Name", "Values": [name]}])
    (instance,) = [i for r in reservations["Reservations"] for i in r["Instances"]]
    return instance["InstanceId"]


def app_server_cpu(state: Path) -> list[float]:
    """The app server's AWS/EC2 CPUUtilization (Average per period) of the last 10 s, from the twin."""
    app = instance_id(state, "sre-workshop-app")
    now = datetime.now(UTC)
    points = twin(state, "cloudwatch").get_metric_statistics(
        Namespace="AWS/EC2", MetricName="CPUUtilization", Dimensions=[{"Name": "InstanceId", "Value": app}],
        StartTime=now - timedelta(seconds=10), EndTime=now, Period=METRICS_PERIOD, Statistics=["Average"])
    return [p["Average"] for p in points["Datapoints"]]


# cpu-burn's default (2, a t3.micro's vCPUs) is raised to this machine's cores, so that it shows here too.
BURNERS = min(8, os.cpu_count() or 2)
# Parameters other than the defaults, per fault.
INJECT_ARGS: dict[str, list[str]] = {"cpu-burn": ["--set", f"workers={BURNERS}"]}

# What each fault looks like beyond its fault.toml's [[probes]] (what a public entry point answers): what
# probes cannot say (a log line, the load it needs, a process). A symptom with a before(state) method measures
# the stack just before the fault.
SYMPTOMS: dict[str, Callable[[Path], bool]] = {
    # inject returns once /health answers 503 on the instance; the load balancer needs its unhealthy threshold
    "health-check-fail": lambda state: eventually(lambda: status_of(APP + "/") == 503, timeout=15) and http(
        "GET", f"http://127.0.0.1:{BASE_PORTS['sre-app'] + OFFSET}/").status == 200,
    "memory-leak": lambda state: eventually(leak_grows(), timeout=20),
    "nginx-timeout": slow_app_gives_504,
    "dynamodb-throttling": crm_throttled_under_load,
    "dynamodb-access-denied": AccessDenied(),
    "security-group-block": nginx_times_out,
    "cpu-burn": Slower(),
}
URLS = {"app": APP, "crm": CRM}


def answers(probe: Probe) -> list[tuple[int, bytes, float]]:
    """GET the probe's URL as many times as it asks; return (status, body, seconds) of each answer."""
    found = []
    for _ in range(probe.tries):
        started = time.monotonic()
        reply = http("GET", URLS[probe.entry] + probe.path, timeout=30)
        found.append((reply.status, reply.body, time.monotonic() - started))
    return found


def probes_hold(name: str, params: dict) -> bool:
    """True if every probe of the fault's fault.toml holds (each given its within_s to show)."""
    for probe in catalogue()[name].probes_for(params):
        deadline = time.monotonic() + probe.within_s
        while not probe.holds(found := answers(probe)):
            assert time.monotonic() < deadline, f"{name}: {probe} does not hold: {found}"
            time.sleep(0.5)
    return True


def test_every_fault_has_a_symptom_to_check():
    assert all(catalogue()[name].probes or name in SYMPTOMS for name in catalogue())


@pytest.mark.parametrize("name", sorted(catalogue()))
def test_a_fault_breaks_the_system_and_clears(steady, capsys, name):
    symptom = SYMPTOMS.get(name, lambda state: True)
    getattr(symptom, "before", lambda state: None)(steady)
    args = INJECT_ARGS.get(name, [])
    code, injected = cli_json(steady, capsys, "fault", "inject", name, *args)
    assert code == 0, injected
    params = catalogue()[name].parse(args[1::2])
    assert injected["ground_truth"] == catalogue()[name].ground_truth(params).to_dict()
    assert probes_hold(name, params) and symptom(steady), f"{name}: symptom not seen"
    capsys.readouterr()
    assert cli(steady, "fault", "inject", name) == ExitStatus.BUSY
    assert "already active" in capsys.readouterr().err
    code, status = cli_json(steady, capsys, "fault", "status")
    assert [(r["fault"], r["state"]) for r in status["faults"]] == [(name, "active")]

    cleared = fresh_cli(steady, "fault", "clear", name, "--json")
    assert cleared.returncode == 0, cleared.stderr
    assert json.loads(cleared.stdout)["cleared"] == [{"fault": name, "incident_id": injected["incident_id"],
                                                     "ended": "cleared"}]
    assert status_of(APP + "/") == 200 and status_of(CRM + "/api/customers") == 200
    events = [e["event"] for e in _incident(steady, capsys, injected["incident_id"])["events"]]
    assert events == ["injected", "cleared"]


def _incident(state: Path, capsys, incident_id: str) -> dict:
    _code, listed = cli_json(state, capsys, "incidents", "--limit", "200")
    return next(i for i in listed["incidents"] if i["incident_id"] == incident_id)


def test_a_cpu_burn_that_runs_its_course_is_recorded_as_expired(steady, capsys):
    _code, injected = cli_json(steady, capsys, "fault", "inject", "cpu-burn", "--set", "workers=1",
                               "--set", "duration_s=10")
    burners = steady / "run" / "hosts" / "AppServerInstance1" / "jobs" / "processes.pids"
    pids = [line.split()[0] for line in burners.read_text().splitlines()]
    eventually(lambda: not any(Path(f"/proc/{pid}").exists() for pid in pids), timeout=20)
    _code, status = cli_json(steady, capsys, "fault", "status")
    assert [f["state"] for f in status["faults"]] == ["expired"], "the burners ended by themselves: nobody fixed it"
    assert [e["event"] for e in _incident(steady, capsys, injected["incident_id"])["events"]] == \
        ["injected", "expired"]


def test_a_fault_fixed_by_hand_is_recorded_as_remediated(steady, capsys):
    _code, injected = cli_json(steady, capsys, "fault", "inject", "nginx-crash")
    assert cli(steady, "service", "start", "nginx") == 0  # the real fix, as `systemctl start nginx`
    _code, status = cli_json(steady, capsys, "fault", "status")
    assert status["faults"] == [] or status["faults"][0]["state"] == "remediated"
    assert [e["event"] for e in _incident(steady, capsys, injected["incident_id"])["events"]] == \
        ["injected", "remediated"]


def test_a_bad_deploy_repaired_on_the_instance_is_recorded_as_remediated(steady, capsys):
    """bad-config-deploy is an edit of crm-app's env file on its instance: an operator puts the line back
    there (Run Command through the twin; `sre-workshop shell` gives the same view) and restarts crm-app."""
    _code, injected = cli_json(steady, capsys, "fault", "inject", "bad-config-deploy", "--set",
                               "variable=DEALS_TABLE")
    crm = instance_id(steady, "sre-workshop-crm-app")
    seen = run_command(twin(steady, "ssm"), crm, "grep DEALS_TABLE /etc/sre-workshop/crm-app.env")
    assert seen["StandardOutputContent"].strip() == "DEALS_TABLE=CRMDealsTable-v2", seen
    fixed = run_command(twin(steady, "ssm"), crm, "sed -i 's/^DEALS_TABLE=.*/DEALS_TABLE=CRMDealsTable/' "
                                     "/etc/sre-workshop/crm-app.env", "systemctl restart crm-app")
    assert fixed["Status"] == "Success", fixed
    eventually(lambda: status_of(CRM + "/api/deals?limit=1") == 200, timeout=30)
    _code, status = cli_json(steady, capsys, "fault", "status")
    assert status["faults"] == [] or status["faults"][0]["state"] == "remediated"
    assert [e["event"] for e in _incident(steady, capsys, injected["incident_id"])["events"]] == \
        ["injected", "remediated"]


def test_a_config_fault_survives_a_restart_until_cleared(steady, capsys):
    assert cli(steady, "fault", "inject", "nginx-bad-upstream") == 0
    assert cli(steady, "service", "restart", "nginx") == 0
    eventually(lambda: status_of(CRM + "/health") == 200 and status_of(APP + "/") == 502, timeout=15)
    assert cli(steady, "fault", "clear", "nginx-bad-upstream") == 0
    assert status_of(APP + "/") == 200


def test_clear_works_after_the_cli_was_killed_mid_inject(steady, capsys):
    env = {**os.environ, "SRE_WORKSHOP_PORT_OFFSET": str(OFFSET)}
    proc = subprocess.Popen([sys.executable, "-m", "sre_workshop.cli.main", "--state-dir", str(steady),
                             "fault", "inject", "bad-config-deploy"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # Killed once the fault is recorded (before its effect is verified): the record is durable first.
    eventually(lambda: "bad-config-deploy" in (steady / "examiner" / "faults.json").read_text(), timeout=30,
               interval=0.02)
    proc.kill()
    proc.wait()
    cleared = fresh_cli(steady, "fault", "clear", "--all")
    assert cleared.returncode == 0, cleared.stderr
    assert status_of(CRM + "/api/customers") == 200
    assert b"CUSTOMERS_TABLE=CRMCustomersTable\0" in \
        Path(f"/proc/{record(steady, 'crm-app').pid}/environ").read_bytes()


def test_clear_works_after_down_and_up(steady, capsys):
    assert cli(steady, "fault", "inject", "nginx-bad-upstream") == 0
    assert cli(steady, "down") == 0
    assert cli(steady, "up", "--detach") == 0
    assert status_of(APP + "/") == 502, "the edited nginx.conf survives down and up, as on an instance"
    assert cli(steady, "fault", "clear", "--all") == 0
    assert status_of(APP + "/") == 200


def test_clear_all_returns_a_crashed_stack_to_steady_state(steady, capsys):
    assert cli(steady, "fault", "inject", "app-crash", "--set", "target=crm-app") == 0
    assert cli(steady, "fault", "inject", "nginx-crash") == 0
    assert not list(group_members(record(steady, "nginx").pid))
    assert cli(steady, "fault", "clear", "--all") == 0
    assert status_of(APP + "/") == 200 and status_of(CRM + "/api/customers") == 200


def configs_and_pids(state: Path) -> tuple[dict[str, str], dict[str, int]]:
    """The stack's rendered configs and its components' pids: what a revoked rule must not change."""
    configs = {p.name: p.read_text() for p in (state / "run").iterdir() if p.suffix in (".cfg", ".conf")}
    pids = {p.stem: ProcessRecord.load(p).pid for p in (state / "run" / "pids").glob("*.json")}
    return configs, pids


@pytest.mark.parametrize(("hop", "url", "status"), [("nginx->private-alb", APP + "/", 504),
                                                   ("private-alb->sre-app", APP + "/", 503),
                                                   ("public-alb->crm-app", CRM + "/api/customers", 503)],
                         ids=["nginx->private-alb", "private-alb->sre-app", "public-alb->crm-app"])
def test_each_hop_of_the_chain_can_be_cut(steady, capsys, hop, url, status):
    """The fault is the AWS call made in the twin; the twin's security groups drop the hop's SYNs. No config
    changes, nothing restarts, no process is started that an examinee could spot."""
    before = configs_and_pids(steady)
    assert cli(steady, "fault", "inject", "security-group-block", "--set", f"hop={hop}") == 0
    assert configs_and_pids(steady) == before
    helpers = steady / "run" / "helpers"
    assert not helpers.exists() or not list(helpers.glob("*.json")), "no process of the fault's"
    started = time.monotonic()
    assert status_of(url) == status
    other = CRM + "/api/customers" if url.startswith(APP) else APP + "/"
    assert status_of(other) == 200, "the other flow is untouched"
    if hop == "nginx->private-alb":  # nginx waited for its 5 s connect timeout: dropped, not refused
        assert time.monotonic() - started >= 4.5
        assert "upstream timed out (110: Connection timed out) while connecting" in \
            (steady / "logs" / "nginx-error.log").read_text()
    else:
        source, server = ("private-alb", "AppServerInstance1") if hop == "private-alb->sre-app" else \
            ("public-alb", "CRMAppInstance")
        assert target(steady, source, server).reason == "Layer4 timeout"
    assert cli(steady, "fault", "clear", "security-group-block") == 0
    assert configs_and_pids(steady) == before


def test_a_revoked_rule_repaired_with_the_aws_cli_is_recorded_as_remediated(steady, capsys):
    """The on-call engineer's repair: authorize the template's rule again with the aws CLI (through
    aws-env); the hop opens within a couple of seconds, and the fault is recorded as remediated."""
    _code, injected = cli_json(steady, capsys, "fault", "inject", "security-group-block", "--set",
                               "hop=nginx->private-alb")
    cfn = twin(steady, "cloudformation")
    private, nginx = (cfn.describe_stack_resource(StackName="sre-workshop", LogicalResourceId=logical)
                      ["StackResourceDetail"]["PhysicalResourceId"]
                      for logical in ("PrivateALBSecurityGroup", "NginxSecurityGroup"))
    env = {**os.environ, **aws_environment(Settings.from_env(port_offset=OFFSET, state_dir=steady))}
    started = time.monotonic()
    subprocess.run([str(Path(sys.executable).parent / "aws"), "ec2", "authorize-security-group-ingress",
                    "--group-id", private, "--protocol", "tcp", "--port", "80", "--source-group", nginx],
                   env=env, check=True, capture_output=True)
    eventually(lambda: status_of(APP + "/") == 200, timeout=10, interval=0.2)
    assert time.monotonic() - started < 4, "open within about a second (and one request)"
    _code, status = cli_json(steady, capsys, "fault", "status")
    assert status["faults"] == [] or status["faults"][0]["state"] == "remediated"
    assert [e["event"] for e in _incident(steady, capsys, injected["incident_id"])["events"]] == \
        ["injected", "remediated"]


def test_a_revoked_rule_outlives_restarts_of_both_ends_and_of_the_stack(steady, capsys):
    """As on AWS a revoked rule stays revoked: the load balancer restarted, the twin restarted, or the
    whole stack down and up, the hop is closed again."""
    assert cli(steady, "fault", "inject", "security-group-block", "--set", "hop=public-alb->crm-app") == 0
    for component in ("public-alb", "aws-api"):
        assert cli(steady, "service", "restart", component) == 0
        eventually(lambda: target(steady, "public-alb", "CRMAppInstance").reason == "Layer4 timeout", timeout=30)
    assert cli(steady, "down") == 0
    assert cli(steady, "up", "--detach") == 0, "a target the rules keep unhealthy does not fail up"
    # (HAProxy's first check at its start can pass before the twin closes the hop, 0.1 s later.)
    eventually(lambda: target(steady, "public-alb", "CRMAppInstance").reason == "Layer4 timeout", timeout=30)
    assert cli(steady, "fault", "clear", "--all") == 0
    assert status_of(CRM + "/api/customers") == 200


def test_a_clear_while_the_engine_is_down_is_recorded_once_it_is_back(steady, capsys):
    _code, injected = cli_json(steady, capsys, "fault", "inject", "nginx-crash")
    assert cli(steady, "service", "stop", "dynamodb") == 0
    try:
        capsys.readouterr()
        assert cli(steady, "fault", "clear", "nginx-crash") == ExitStatus.UNHEALTHY  # not steady: no engine
        assert "dynamodb" in capsys.readouterr().err
    finally:
        assert cli(steady, "service", "start", "dynamodb") == 0
    assert [e["event"] for e in _incident(steady, capsys, injected["incident_id"])["events"]] == \
        ["injected", "cleared"]


# --- the instance-shell faults, run locally as on AWS (Run Command through the twin), repaired by hand ----------

def sent_steps(state: Path, since: float) -> list[str]:
    """The texts of the Run Commands sent to the twin since `since` (epoch seconds), oldest first."""
    listed = twin(state, "ssm").list_commands()["Commands"]
    return [c["Parameters"]["commands"][0] for c in sorted(listed, key=lambda c: c["RequestedDateTime"])
            if c["RequestedDateTime"].timestamp() >= since]


@pytest.mark.parametrize("name", ["app-crash", "nginx-crash"])
def test_a_crash_is_a_systemctl_kill_through_run_command_and_its_hand_repair_is_systemctl_start(steady, capsys,
                                                                                                 name):
    """The same code as on AWS: `systemctl kill --signal=SIGKILL UNIT` sent to the instance; the unit then
    reads `failed` on the instance, and the operator's reset-failed and start there is recorded as remediated."""
    unit, instance = ("sre-app", "sre-workshop-app") if name == "app-crash" else ("nginx", "sre-workshop-nginx")
    started = time.time() - 1
    _code, injected = cli_json(steady, capsys, "fault", "inject", name)
    assert any(f"systemctl kill --signal=SIGKILL {unit}" in text for text in sent_steps(steady, started))
    host = instance_id(steady, instance)
    seen = run_command(twin(steady, "ssm"), host, f"systemctl is-active {unit} || true")
    assert seen["StandardOutputContent"] == "failed\n", seen
    fixed = run_command(twin(steady, "ssm"), host, f"systemctl reset-failed {unit}", f"systemctl start {unit}",
                        f"systemctl is-active {unit}")
    assert fixed["Status"] == "Success" and fixed["StandardOutputContent"] == "active\n", fixed
    eventually(lambda: status_of(APP + "/") == 200, timeout=20)
    _code, status = cli_json(steady, capsys, "fault", "status")
    assert status["faults"] == [] or status["faults"][0]["state"] == "remediated"
    assert [e["event"] for e in _incident(steady, capsys, injected["incident_id"])["events"]] == \
        ["injected", "remediated"]


def test_cpu_burn_runs_on_the_app_instance_named_as_any_job_and_its_hand_repair_is_a_kill(steady, capsys):
    """busy.sh through Run Command: the processes outlive the command, are the app instance's (its ps, and the
    instance in their environment), say nothing of the fault, and killing them there is a remediation."""
    _code, injected = cli_json(steady, capsys, "fault", "inject", "cpu-burn", "--set", "workers=1")
    pidfile = steady / "run" / "hosts" / "AppServerInstance1" / "jobs" / "processes.pids"
    (pid,) = [int(line.split()[0]) for line in pidfile.read_text().splitlines()]
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    assert "burn" not in argv and argv.startswith("timeout 300 sh -c while :; do :; done worker"), argv
    assert b"SRE_WORKSHOP_INSTANCE=AppServerInstance1" in environ
    assert not any(b"burn" in variable for variable in environ)
    ssm, app = twin(steady, "ssm"), instance_id(steady, "sre-workshop-app")
    # (with a header: the view's ps keeps the instance's lines by the PID column)
    seen = run_command(ssm, app, "ps -eo pid,args")
    assert f"{pid} timeout 300 sh -c while" in seen["StandardOutputContent"], seen
    nginx_ps = run_command(ssm, instance_id(steady, "sre-workshop-nginx"), "ps -eo pid,args")
    assert f"{pid} timeout" not in nginx_ps["StandardOutputContent"], "not the nginx instance's"
    fixed = run_command(ssm, app, "kill $(ps -eo pid,args | awk '$2 == \"timeout\" && /worker$/ {print $1}')")
    assert fixed["Status"] == "Success", fixed
    eventually(lambda: (proc_state(pid) or "Z") == "Z", timeout=10)
    _code, status = cli_json(steady, capsys, "fault", "status")
    assert status["faults"] == [] or status["faults"][0]["state"] == "remediated"
    assert [e["event"] for e in _incident(steady, capsys, injected["incident_id"])["events"]] == \
        ["injected", "remediated"]


def proc_state(pid: int) -> str | None:
    """A process's state letter (None once it is gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


@pytest.mark.parametrize(("name", "args"), [("latency", ["--set", "latency_ms=300"]), ("error-rate", []),
                                            ("health-check-fail", [])])
def test_an_app_fault_is_set_on_the_instance_and_a_restart_there_repairs_it(steady, capsys, name, args):
    """app-faults.sh through Run Command, with the instance's token, on the app's own port; a run-time
    setting ends with the process, so `systemctl restart sre-app` on the instance is a remediation."""
    started = time.time() - 1
    _code, injected = cli_json(steady, capsys, "fault", "inject", name, *args)
    texts = sent_steps(steady, started)
    assert any("app-faults.sh" in t and f" {BASE_PORTS['sre-app'] + OFFSET} /etc/sre-workshop/fault-token put" in t
               for t in texts), texts
    fixed = run_command(twin(steady, "ssm"), instance_id(steady, "sre-workshop-app"), "systemctl restart sre-app")
    assert fixed["Status"] == "Success", fixed
    eventually(lambda: status_of(APP + "/") == 200, timeout=30)
    _code, status = cli_json(steady, capsys, "fault", "status")
    assert status["faults"] == [] or status["faults"][0]["state"] == "remediated"
    assert [e["event"] for e in _incident(steady, capsys, injected["incident_id"])["events"]] == \
        ["injected", "remediated"]


def test_the_leak_is_set_on_the_instance_and_ended_for_good_in_its_env_file(steady, capsys):
    """memory-leak through Run Command (app-leak.sh); a restart alone brings the deployed leak back (still
    active), LEAK_MODE=off in the instance's env file and a restart ends it: remediated."""
    ssm, app = twin(steady, "ssm"), instance_id(steady, "sre-workshop-app")
    original = run_command(ssm, app, "grep '^LEAK_MODE=' /etc/sre-workshop/sre-app.env")["StandardOutputContent"]
    _code, injected = cli_json(steady, capsys, "fault", "inject", "memory-leak", "--set", "mb_per_minute=6")
    assert run_command(ssm, app, "systemctl restart sre-app")["Status"] == "Success"
    _code, status = cli_json(steady, capsys, "fault", "status")
    assert [(r["fault"], r["state"]) for r in status["faults"]] == [("memory-leak", "active")], "the deployed leak"
    fixed = run_command(ssm, app, "sed -i 's/^LEAK_MODE=.*/LEAK_MODE=off/' /etc/sre-workshop/sre-app.env",
                        "systemctl restart sre-app")
    try:
        assert fixed["Status"] == "Success", fixed
        _code, status = cli_json(steady, capsys, "fault", "status")
        assert status["faults"] == [] or status["faults"][0]["state"] == "remediated"
        assert [e["event"] for e in _incident(steady, capsys, injected["incident_id"])["events"]] == \
            ["injected", "remediated"]
    finally:  # the deployed configuration as it was: the workshop's leak (the steady fixture clears it)
        put_back = run_command(ssm, app, f"sed -i 's/^LEAK_MODE=.*/{original.strip()}/' "
                               "/etc/sre-workshop/sre-app.env", "systemctl restart sre-app")
        assert put_back["Status"] == "Success", put_back
