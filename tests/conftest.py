"""Fixtures that start real processes on free loopback ports: moto's server and the apps under Gunicorn."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from string import Template

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from inprocess import aws, crm_client, crm_in_process, crm_log, sre_client, sre_in_process  # noqa: F401 - unit tier
from sre_workshop.cli.main import main
from sre_workshop.faults.backends import LocalBackend
from sre_workshop.local.components import LOCAL_CREDENTIALS
from sre_workshop.local.lbstats import target_health
from sre_workshop.local.process import (
    ProcessRecord,
    ProcessSpec,
    free_port,
    group_members,
    proc_stat,
    spawn,
    stop,
    tail,
    wait_ready,
)
from sre_workshop.local.stack import Stack
from sre_workshop.mcp.server import BASE_PORT as MCP_BASE_PORT
from sre_workshop.settings import TABLE_NAMES, Settings
from sre_workshop.tables import create_tables

ROOT = Path(__file__).resolve().parents[1]
APPS = ROOT / "apps"
REGION = "us-east-1"

# A test module's stack uses ports from its offset + 8000 up to offset + 8766 (BASE_PORTS, and the MCP
# server a scenario's agent run starts on 8765 + 1); modules add steps of up to 1000 to the offset. Each
# pytest-xdist worker gets a band of ports wider than that, and all must stay below the kernel's ephemeral
# ports, where a server may find its port taken by some client: three workers fit from the default 19000.
TOP_BASE_PORT = MCP_BASE_PORT + 1
WORKER_BAND = 1800
EPHEMERAL_PORTS = 32768


def port_offset(step: int) -> int:
    """Return SRE_WORKSHOP_PORT_OFFSET for a test module's stack: SRE_WORKSHOP_TEST_PORT_OFFSET (default
    19000, clear of a developer's own stack) plus the module's `step` (modules never share ports) plus the
    band of this xdist worker (parallel workers never share ports)."""
    base = int(os.environ.get("SRE_WORKSHOP_TEST_PORT_OFFSET", "19000"))
    worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw"))
    offset = base + WORKER_BAND * worker + step
    if offset + TOP_BASE_PORT >= EPHEMERAL_PORTS:
        raise RuntimeError(f"test ports would reach {offset + TOP_BASE_PORT}, in the kernel's ephemeral range: "
                           f"lower SRE_WORKSHOP_TEST_PORT_OFFSET ({base}) or the number of workers")
    return offset


# doctor's own tests, and the ones that burn CPU on purpose, run on one worker one after another: doctor
# shows another stack's busy processes as context only, but burners on every core slow this stack too, and
# test_doctor.py judges its timings. (Scenarios, labs and MCP, which take doctor's top finding, run beside.)
DOCTOR_GROUP = ("tests/integration/test_doctor.py::",
                "tests/integration/test_faults.py::test_a_fault_breaks_the_system_and_clears[cpu-burn]",
                "tests/integration/test_faults.py::test_a_cpu_burn_that_runs_its_course_is_recorded_as_expired")


# Units of work handed out first, longest first (seconds of a full run with -n 3 on 2 cores, 2026-12-07): a
# long unit started last would run alone at the end while the other workers idle. The rest follow in
# collection order.
LONGEST_FIRST = (DOCTOR_GROUP,  # ~740
                 ("tests/integration/test_faults.py::",),  # ~720
                 ("tests/integration/test_scenarios.py::",),  # ~570
                 ("tests/integration/test_local_stack.py::",))  # ~140


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """With --dist loadgroup: each module is one unit of work (its stack starts once, on one worker), and
    DOCTOR_GROUP is one unit; LONGEST_FIRST go out first. (xdist's own loadgroup reads xdist_group marks from
    node ids, which pytest 9's node ids no longer carry, so the groups are named here.)"""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    config.option.loadscopereorder = False  # units go out in collection order, LONGEST_FIRST's first

    class ByModule(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return "doctor" if nodeid.startswith(DOCTOR_GROUP) else nodeid.split("::", 1)[0]

    return ByModule(config, log)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On an xdist worker with --dist loadgroup, collect LONGEST_FIRST first (see pytest_xdist_make_scheduler)."""
    if config.getoption("loadgroup", False):
        def rank(item: pytest.Item) -> int:
            return next((i for i, unit in enumerate(LONGEST_FIRST) if item.nodeid.startswith(unit)),
                        len(LONGEST_FIRST))

        items.sort(key=rank)


@contextlib.contextmanager
def slow_senders(port: int, count: int, headers: bytes = b"") -> Iterator[None]:
    """`count` clients of 127.0.0.1:port that send a POST's headers, then its 100-byte body a byte a second,
    for as long as the block runs."""
    stop = threading.Event()

    def trickle() -> None:
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(b"POST /api/customers HTTP/1.1\r\nHost: crm\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 100\r\n" + headers + b"\r\n")
            while not stop.wait(1.0):
                sock.sendall(b" ")

    for _ in range(count):
        threading.Thread(target=trickle, daemon=True).start()
    try:
        yield
    finally:
        stop.set()


@dataclass
class Server:
    """A real process listening on a loopback port."""

    record: ProcessRecord
    port: int
    log: Path
    spec: ProcessSpec

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        stop(self.record, timeout=self.spec.stop_timeout)


def start_server(spec: ProcessSpec, timeout: float = 30) -> Server:
    """Spawn `spec` and wait until its port accepts connections."""
    record = spawn(spec)
    if not wait_ready(record, spec.ports, timeout):
        stop(record)
        raise RuntimeError(f"{spec.name} did not start:\n{tail(spec.log_path, 30)}")
    return Server(record, spec.ports[0], spec.log_path, spec)


def moto_spec(tmp: Path, port: int | None = None) -> ProcessSpec:
    """Return the spec of a moto server on a free (or given) port."""
    port = port or free_port()
    # tests/moto_server.py: moto's server plus the CloudFormation attribute the template needs that moto lacks.
    argv = [sys.executable, str(ROOT / "tests" / "moto_server.py"), "-H", "127.0.0.1", "-p", str(port)]
    return ProcessSpec("moto", argv,
                       tmp / f"moto-{port}.log", ports=[port])


def dynamodb(endpoint: str):
    """Return a DynamoDB client for a local endpoint."""
    return boto3.session.Session(aws_access_key_id="test", aws_secret_access_key="test").client(
        "dynamodb", region_name=REGION, endpoint_url=endpoint, config=Config(retries={"max_attempts": 2}))


@pytest.fixture(scope="session")
def moto(tmp_path_factory) -> Iterator[Server]:
    """One moto server for the session, with the five tables."""
    server = start_server(moto_spec(tmp_path_factory.mktemp("moto")))
    create_tables(dynamodb(server.url))
    yield server
    server.stop()


@pytest.fixture
def own_moto(tmp_path) -> Iterator[Server]:
    """A moto server of this test alone (for tests that stop it), with the five tables."""
    server = start_server(moto_spec(tmp_path))
    create_tables(dynamodb(server.url))
    yield server
    server.stop()


def app_spec(package: str, tmp: Path, endpoint: str, **env: str) -> ProcessSpec:
    """Return the spec of an app under real Gunicorn on a free port, logging into `tmp`."""
    port = free_port()
    full_env = {
        **LOCAL_CREDENTIALS, "AWS_REGION": REGION, "AWS_ENDPOINT_URL": endpoint, "PORT": str(port),
        "BIND_ADDRESS": "127.0.0.1", "LOG_FILE": str(tmp / f"{package}-{port}.json.log"),
        **{k: v for k, v in TABLE_NAMES.items()},
        # Runtime files (leak control, Prometheus) in the test's own directory, as the stack keeps them in its own.
        **({"SRE_APP_RUNTIME_DIR": str(tmp / f"sre-app-run-{port}")} if package == "sre_app" else {}), **env,
    }
    argv = [sys.executable, "-m", "gunicorn", "--chdir", str(APPS), "-c", str(APPS / package / "gunicorn.conf.py"),
            f"{package}.wsgi:app"]
    return ProcessSpec(package, argv, tmp / f"{package}-{port}.log", full_env, ports=[port], stop_timeout=25)


@pytest.fixture
def start_app(tmp_path) -> Iterator[Callable[..., Server]]:
    """Start apps under Gunicorn for a test; all are stopped afterwards."""
    started: list[Server] = []

    def start(package: str, endpoint: str, **env: str) -> Server:
        server = start_server(app_spec(package, tmp_path, endpoint, **env))
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def public_alb_spec(tmp: Path, crm_app_port: int) -> ProcessSpec:
    """Return the spec of HAProxy as the public ALB, rendered from the committed template, in front of a CRM
    on `crm_app_port` (its nginx target group points at a closed port). The runtime socket is tmp/public-alb.sock."""
    tmp.mkdir(parents=True, exist_ok=True)
    page = (ROOT / "infra" / "haproxy" / "lb-503.http").read_text()
    (tmp / "lb-503.http").write_bytes(page.replace("\r\n", "\n").replace("\n", "\r\n").encode())
    port = free_port()
    values = {"run_dir": tmp, "app_port": free_port(), "crm_port": port, "nginx_port": free_port(),
              "crm_app_port": crm_app_port, "check_path": "/health", "check_interval": "1000ms",
              # AWS's shortest HealthCheckTimeoutSeconds (the template's is 5 s): a check is not failed
              # by a loaded test machine's pause of a second, only by a target that stops answering.
              "check_timeout": "2000ms", "healthy_threshold": 2, "unhealthy_threshold": 3}
    conf = tmp / "public-alb.cfg"
    conf.write_text(Template((ROOT / "infra" / "haproxy" / "public-alb.cfg").read_text()).substitute(values))
    haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
    return ProcessSpec("public-alb", [haproxy, "-db", "-f", str(conf)],
                       tmp / "public-alb.log", ports=[port], cwd=tmp)


@pytest.fixture
def start_public_alb(tmp_path) -> Iterator[Callable[[Server], Server]]:
    """Start the public ALB (HAProxy) in front of a CRM server; wait until it reports the CRM target healthy."""
    started: list[Server] = []

    def start(crm: Server) -> Server:
        server = start_server(public_alb_spec(tmp_path / f"alb-{len(started)}", crm.port))
        started.append(server)
        sock = server.log.parent / "public-alb.sock"
        eventually(lambda: sock.exists() and any(t.target == "CRMAppInstance" and t.state == "healthy"
                                                 for t in target_health(sock)), timeout=15)
        return server

    yield start
    for server in started:
        server.stop()


# wrk script: counts answers by status, and 503s without Retry-After (the load balancer's, not the app's),
# over all of wrk's threads; prints them as one JSON line at the end.
WRK_STATUS_SCRIPT = """
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) statuses = {} end
function response(status, headers, body)
  local key = tostring(status)
  if status == 503 and headers["retry-after"] == nil and headers["Retry-After"] == nil then key = "503-lb" end
  statuses[key] = (statuses[key] or 0) + 1
end
function done(summary, latency, requests)
  local total = {}
  for _, thread in ipairs(threads) do
    for key, count in pairs(thread:get("statuses")) do total[key] = (total[key] or 0) + count end
  end
  local parts = {}
  for key, count in pairs(total) do table.insert(parts, string.format('"%s": %d', key, count)) end
  io.write("STATUSES {" .. table.concat(parts, ", ") .. "}\\n")
end
"""


def wrk_statuses(url: str, connections: int, seconds: int, tmp: Path) -> dict:
    """Run wrk against `url`; return requests/s, p50 and p99 (as wrk prints them) and the answers by status."""
    script = tmp / "wrk-statuses.lua"
    script.write_text(WRK_STATUS_SCRIPT)
    wrk = shutil.which("wrk") or pytest.fail("wrk is not installed: scripts/install --test installs it")
    out = subprocess.run([wrk, "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url],
                         capture_output=True, text=True, check=True).stdout
    fields = dict(line.split(None, 1) for line in out.splitlines() if line.strip().startswith(("50%", "99%", "Req")))
    return {"rps": float(fields["Requests/sec:"]), "p50": fields["50%"].strip(), "p99": fields["99%"].strip(),
            "statuses": json.loads(out.split("STATUSES ", 1)[1].splitlines()[0])}


@dataclass
class Reply:
    """An HTTP answer: status, headers and body."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self):
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode()


def http(method: str, url: str, body=None, headers: dict[str, str] | None = None, timeout: float = 10) -> Reply:
    """Send one real HTTP request and return the answer, whatever its status (0 when nothing answered)."""
    data = json.dumps(body).encode() if body is not None and not isinstance(body, bytes) else body
    request = urllib.request.Request(url, data=data, method=method, headers={
        **({"Content-Type": "application/json"} if data is not None else {}), **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return Reply(response.status, {k.lower(): v for k, v in response.headers.items()}, response.read())
    except urllib.error.HTTPError as exc:
        return Reply(exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read())
    except (urllib.error.URLError, ConnectionError) as exc:  # nothing answered: status 0, like a browser's
        return Reply(0, {}, str(exc).encode())


def eventually(check: Callable[[], object], timeout: float = 10, interval: float = 0.1):
    """Return check()'s first truthy result, failing after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last result: {result!r})")
        time.sleep(interval)



def run_command(ssm, instance: str, *commands: str, timeout: int = 60) -> dict:
    """Send AWS-RunShellScript (SSM Run Command, here through the twin) and return the finished invocation."""
    command_id = ssm.send_command(InstanceIds=[instance], DocumentName="AWS-RunShellScript",
                                  Parameters={"commands": list(commands)})["Command"]["CommandId"]

    def done() -> dict | None:
        try:
            invocation = ssm.get_command_invocation(CommandId=command_id, InstanceId=instance)
        except ClientError as exc:
            assert exc.response["Error"]["Code"] == "InvocationDoesNotExist"
            return None
        return invocation if invocation["Status"] not in ("Pending", "InProgress") else None

    return eventually(done, timeout=timeout, interval=0.2)


def seed(endpoint: str, *args: str) -> subprocess.CompletedProcess:
    """Run crm-app's init_sample_data.py against `endpoint` with `args`, as the CRM instance's user data does."""
    env = {**LOCAL_CREDENTIALS, "AWS_REGION": REGION, "AWS_ENDPOINT_URL": endpoint, **TABLE_NAMES, "PATH": "/usr/bin"}
    return subprocess.run([sys.executable, "-m", "crm_app.init_sample_data", *args], cwd=APPS, env=env,
                          capture_output=True, text=True, check=False)


def wait_for_leak_settings(url: str, token: str, workers: int = 2, **expected) -> None:
    """Wait until each of sre-app's `workers` reports leak settings that include `expected` (the workers
    pick up a change on their next tick). Four concurrent clients, so that every sync worker answers."""
    def applied() -> bool:
        with ThreadPoolExecutor(4) as pool:
            replies = list(pool.map(lambda _: http("GET", url + "/admin/leak", headers={"X-Fault-Token": token}),
                                    range(8)))
        by_worker = {r.json()["worker"]["pid"]: r.json()["settings"] for r in replies if r.status == 200}
        return len(by_worker) == workers and all(
            all(settings[key] == value for key, value in expected.items()) for settings in by_worker.values())

    eventually(applied, timeout=10)


def scan_all(client, table: str) -> list[dict]:
    """Return every item of a table."""
    items, kwargs = [], {"TableName": table}
    while True:
        response = client.scan(**kwargs)
        items.extend(response["Items"])
        if "LastEvaluatedKey" not in response:
            return items
        kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def children_of(pid: int) -> list[int]:
    """Return the pids of a process's live children."""
    try:
        tasks = Path(f"/proc/{pid}/task").iterdir()
        return [int(c) for t in tasks for c in (t / "children").read_text().split()]
    except OSError:
        return []


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """Headless Chromium for the module (Debian's chromium and chromedriver)."""
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1280,900",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium')}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # CSP violations are reported there
    driver = webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))
    driver.set_page_load_timeout(20)
    driver.implicitly_wait(5)  # links load the next page after click() returns
    yield driver
    driver.quit()


def cli(state: Path, *args: str) -> int:
    """Run `sre-workshop --state-dir STATE ARGS` in process; return its exit status."""
    return main(["--state-dir", str(state), *args])


def cli_json(state: Path, capsys, *args: str) -> tuple[int, dict]:
    """Run a command with --json; return its exit status and what it printed ({} if nothing)."""
    capsys.readouterr()
    code = cli(state, *args, "--json")
    return code, json.loads(capsys.readouterr().out or "{}")


def cpu_share(pids: list[int], vcpus: int, seconds: float = 2.0) -> float:
    """The CPU the processes and their process groups use over `seconds`, in percent of `vcpus` (utime + stime
    of /proc/PID/stat; each burner is `timeout` leading a group around its busy loop)."""
    def ticks() -> int:
        members = {member for pid in pids for member in group_members(pid)}
        return sum(int(fields[11]) + int(fields[12]) for fields in map(proc_stat, members) if fields)

    before, started = ticks(), time.monotonic()
    time.sleep(seconds)
    used = (ticks() - before) / os.sysconf("SC_CLK_TCK")
    return 100.0 * used / (time.monotonic() - started) / vcpus


def settle(state: Path, capsys) -> None:
    """Return the stack to steady state: `fault clear --all` (which then waits for 3 s of green) when a fault is
    in effect or recorded, or anything keeps the stack from steady state; otherwise nothing, since it is there
    (a clear with nothing to clear costs its 3-5 s between each pair of tests)."""
    faults = cli_json(state, capsys, "fault", "status")[1]
    if faults == {"faults": []} and not LocalBackend(Stack(Settings.from_env(state_dir=state))).problems():
        return
    assert cli(state, "fault", "clear", "--all") == 0


@contextlib.contextmanager
def local_stack(tmp_path_factory, name: str, offset: int) -> Iterator[Path]:
    """A whole local stack on ports moved by `offset`, for one test module; cleared and stopped afterwards."""
    state = tmp_path_factory.mktemp(name)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SRE_WORKSHOP_PORT_OFFSET", str(offset))
        assert cli(state, "up", "--detach") == 0
        yield state
        cli(state, "fault", "clear", "--all")
        cli(state, "down")


def examinee_python() -> str:
    """Return a Python the evaluated agent's user can run: ours, or as root (the agent then runs as nobody,
    who cannot reach /root's interpreters) the system's, given our packages by PYTHONPATH (agent_env_args)."""
    if os.geteuid() != 0:
        return sys.executable
    return "/usr/bin/python3.11" if Path("/usr/bin/python3.11").exists() else "/usr/bin/python3"


def agent_env_args(monkeypatch) -> list[str]:
    """Set PYTHONPATH to our packages and return the `--agent-env` arguments that pass it to the agent."""
    import site

    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT / "src"), *site.getsitepackages()]))
    return ["--agent-env", "PYTHONPATH"]
