"""The components of the local stack: how each is started, on which ports, and how its health is read.

Start order follows the architecture from the data tier up; every component is a real process:
    dynamodb           the DynamoDB engine (dynalite, or moto's server; engines.py), unless --dynamodb-endpoint
    dynamodb-endpoint  in front of it (twin/endpoint.py): the apps' AWS_ENDPOINT_URL, enforcing the role's
                       policies and the tables' capacity from the twin, metering each call
    sre-app, crm-app   the two apps under Gunicorn, with the settings they have on AWS
    private-alb        HAProxy: sre-workshop-private-alb
    nginx              the web tier, from the same nginx.conf template as on AWS
    public-alb         HAProxy: sre-workshop-public-alb, listeners :8000 (for 80) and :8080
    aws-api            the AWS API twin (twin/server.py): the stack's AWS resources, answered live
    cloudwatch-agent   the CloudWatch agent's stand-in: ships the instances' logs and metrics to aws-api

Building these definitions has no side effects: programs are looked up when a process is spawned, and
the fault-control token is added to sre-app's environment by the stack when it starts it.
"""

from __future__ import annotations

import os
import secrets
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from ..errors import UsageError
from ..settings import LOOPBACK, TABLE_NAMES, Settings
from ..twin.instances import STACK_NAME as TWIN_STACK
from .engines import engine_launch
from .process import ProcessSpec

ORDER = ["dynamodb", "aws-api", "dynamodb-endpoint", "sre-app", "crm-app", "private-alb", "nginx", "public-alb",
         "cloudwatch-agent"]
# Fake credentials for the emulator; boto3 refuses to sign requests without some.
LOCAL_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "sre-workshop-local", "AWS_SECRET_ACCESS_KEY": "sre-workshop-local"}


@dataclass(frozen=True)
class Component:
    """One component: its process, the URL people use, how its health is told, and what it reads."""

    name: str
    spec: ProcessSpec
    url: str
    health_url: str | None  # None: healthy when its ports accept connections
    configs: tuple[str, ...] = ()  # rendered files in run/ that it reads (overlays apply to these)
    logs: tuple[Path, ...] = ()  # its own log files, besides the process output in spec.log_path
    check_argv: tuple[str, ...] = ()  # a command that validates its config before a start
    fault_control: bool = False  # gets the stack's fault-control token in FAULT_CONTROL_TOKEN
    data: bool = False  # an engine that keeps its tables in memory: saved before it stops, restored after it starts
    runtime_dir: Path | None = None  # made afresh at each start, as systemd's RuntimeDirectory

    @property
    def log_paths(self) -> list[Path]:
        """Every log file of the component, its process output first."""
        return [self.spec.log_path, *self.logs]


def token_path(settings: Settings) -> Path:
    """Where the stack's fault-control token is kept (mode 0600)."""
    return settings.run_dir / "fault-token"


def create_fault_token(settings: Settings) -> str:
    """Return the stack's fault-control token, creating it (private to this user) on the first `up`."""
    path = token_path(settings)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(32))
    return path.read_text().strip()


def dynamodb_address(settings: Settings) -> str:
    """Return host:port of the DynamoDB engine behind the endpoint proxy."""
    if not settings.dynamodb_endpoint:
        return f"{LOOPBACK}:{settings.port('dynamodb')}"
    parts = urlsplit(settings.dynamodb_endpoint)
    try:
        port = parts.port or 80
    except ValueError:
        port = None
    if parts.scheme != "http" or not parts.hostname or port is None:
        raise UsageError(f"--dynamodb-endpoint must be an http://host:port URL, not {settings.dynamodb_endpoint!r}")
    return f"{parts.hostname}:{port}"


def engine_url(settings: Settings) -> str:
    """Return the URL of the DynamoDB engine itself (the tool's own traffic goes there, not through the
    endpoint proxy where faults are injected)."""
    return f"http://{dynamodb_address(settings)}"


def app_env(settings: Settings, name: str) -> dict[str, str]:
    """Return the environment an app gets: the spec's variables plus local plumbing."""
    env = {
        "AWS_REGION": settings.region,
        "AWS_ENDPOINT_URL": settings.url("dynamodb-endpoint"),
        **LOCAL_CREDENTIALS,
        "PORT": str(settings.port(name)),
        "BIND_ADDRESS": LOOPBACK,
        "LOG_FILE": str(settings.logs_dir / f"{name}.json.log"),
        "PYTHONUNBUFFERED": "1",
    }
    if name == "sre-app":
        env.update(METRICS_TABLE=TABLE_NAMES["METRICS_TABLE"], SRE_APP_RUNTIME_DIR=str(settings.run_dir / "sre-app"),
                   **DEPLOYED_LEAK)
    else:
        env.update({k: TABLE_NAMES[k] for k in ("CUSTOMERS_TABLE", "DEALS_TABLE", "ACTIVITIES_TABLE")},
                   CRM_APP_RUNTIME_DIR=str(settings.run_dir / "crm-app"))
    return env


# DELIBERATE: the workshop's app is deployed leaking (the pre-baked memory-leak fault): these lines of its env
# file, as infra/sre-app/install.sh writes them. A restart of sre-app brings this leak back whatever was
# changed at run time; changing them on the instance (LEAK_MODE=off) and restarting is the lasting repair.
DEPLOYED_LEAK = {"LEAK_MODE": "request", "LEAK_KB_PER_REQUEST": "16", "LEAK_MB_PER_MINUTE": "1",
                 "LEAK_CAP_MB": "200"}


# The settings an app takes from its env file (/etc/sre-workshop/NAME.env on its instance, as systemd's
# EnvironmentFile): the spec's. The file's other lines (PORT, LOG_FILE, the runtime dir) name AWS paths and
# ports; locally those stay the stack's (app_env).
ENV_FILE_SETTINGS = {"sre-app": ("AWS_REGION", "METRICS_TABLE", *DEPLOYED_LEAK),
                     "crm-app": ("AWS_REGION", "CUSTOMERS_TABLE", "DEALS_TABLE", "ACTIVITIES_TABLE")}


def read_env_file(path: Path) -> dict[str, str]:
    """Return the NAME=value lines of an env file (comments and blank lines skipped; {} if it is missing)."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    found = {}
    for line in text.splitlines():
        name, sep, value = line.strip().partition("=")
        if sep and name and not name.startswith("#"):
            found[name.strip()] = value.strip()
    return found


def gunicorn_spec(settings: Settings, name: str, package: str) -> ProcessSpec:
    """Return the spec of an app under Gunicorn, run from the apps directory."""
    argv = [sys.executable, "-m", "gunicorn", "--chdir", str(settings.apps_dir),
            "-c", str(settings.apps_dir / package / "gunicorn.conf.py"), f"{package}.wsgi:app"]
    return ProcessSpec(name, argv, settings.logs_dir / f"{name}.log", app_env(settings, name),
                       ports=[settings.port(name)], stop_timeout=25)


def components(settings: Settings) -> dict[str, Component]:
    """Return every component of the stack, in start order."""
    run, logs = settings.run_dir, settings.logs_dir
    found: dict[str, Component] = {}

    def proc(name: str, argv: list[str], ports: list[str], **kwargs) -> ProcessSpec:
        return ProcessSpec(name, argv, logs / f"{name}.log", ports=[settings.port(p) for p in ports], **kwargs)

    def haproxy(name: str, ports: list[str]) -> Component:
        return Component(name, proc(name, ["haproxy", "-db", "-f", str(run / f"{name}.cfg")], ports, cwd=run),
                         settings.url(ports[0]), None, configs=(f"{name}.cfg",))

    if not settings.dynamodb_endpoint:
        launch = engine_launch(settings.engine, settings.port("dynamodb"), settings.data_dir, settings.home, LOOPBACK)
        found["dynamodb"] = Component("dynamodb", proc("dynamodb", launch.argv, ["dynamodb"], env=launch.env,
                                                       stop_timeout=10),
                                      settings.url("dynamodb"), None, data=not launch.durable)
    found["dynamodb-endpoint"] = endpoint(settings)
    for name, package in (("sre-app", "sre_app"), ("crm-app", "crm_app")):
        found[name] = Component(name, gunicorn_spec(settings, name, package), settings.url(name),
                                settings.url(name) + "/health", logs=(logs / f"{name}.json.log",),
                                fault_control=True, runtime_dir=run / name)
    found["private-alb"] = haproxy("private-alb", ["private-alb"])
    nginx_conf = ["-c", str(run / "nginx.conf"), "-e", str(logs / "nginx-error.log")]
    found["nginx"] = Component(
        "nginx", proc("nginx", ["nginx", *nginx_conf, "-g", "daemon off;"], ["nginx"]), settings.url("nginx"),
        settings.url("nginx") + "/health", configs=("nginx.conf",),
        logs=(logs / "nginx-access.log", logs / "nginx-error.log"), check_argv=("nginx", "-t", *nginx_conf))
    found["public-alb"] = haproxy("public-alb", ["public-alb", "public-alb-crm"])
    found.update(twin_components(settings))
    return found


def endpoint(settings: Settings) -> Component:
    """Return `dynamodb-endpoint`: the apps' DynamoDB (twin/endpoint.py). It authorizes each call against the
    instance role's policies in the twin and the tables' capacity, forwards it to the engine, and publishes the
    AWS/DynamoDB metrics to the twin; its port opens once the twin has given it the role."""
    twin = settings.url("aws-api")
    argv = [sys.executable, "-m", "sre_workshop.twin.endpoint",
            "--listen", f"{LOOPBACK}:{settings.port('dynamodb-endpoint')}", "--engine", engine_url(settings),
            "--iam-endpoint", twin, "--stack-name", TWIN_STACK, "--cloudwatch-endpoint", twin,
            "--metrics-period", str(settings.metrics_period), "--region", settings.region,
            "--stats-file", str(settings.run_dir / "dynamodb-endpoint.stats.json")]
    env = {**LOCAL_CREDENTIALS, "PYTHONUNBUFFERED": "1"}
    spec = ProcessSpec("dynamodb-endpoint", argv, settings.logs_dir / "dynamodb-endpoint.log", env,
                       ports=[settings.port("dynamodb-endpoint")], stop_timeout=10)
    return Component("dynamodb-endpoint", spec, settings.url("dynamodb-endpoint"), None)


def cache_home() -> str:
    """Return the user's cache directory (the twin keeps fresh deployments of the template there)."""
    return os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")


def twin_components(settings: Settings) -> dict[str, Component]:
    """Return the AWS API twin and the CloudWatch agent's stand-in (Python programs of this package)."""
    env = {"SRE_WORKSHOP_STATE_DIR": str(settings.state_dir), "SRE_WORKSHOP_HOME": str(settings.home),
           "SRE_WORKSHOP_PORT_OFFSET": str(settings.port_offset), "PYTHONUNBUFFERED": "1",
           "AWS_REGION": settings.region, "XDG_CACHE_HOME": cache_home()}
    twin = [sys.executable, "-m", "sre_workshop.twin.server", "--port", str(settings.port("aws-api")),
            "--metrics-period", str(settings.metrics_period), "--engine-url", engine_url(settings),
            "--scoped-port", str(settings.port("aws-api-scoped"))]
    agent = [sys.executable, "-m", "sre_workshop.twin.agentplan", "--metrics-period", str(settings.metrics_period)]
    logs = settings.logs_dir
    return {
        "aws-api": Component("aws-api", ProcessSpec("aws-api", twin, logs / "aws-api.log", env,
                                                    ports=[settings.port("aws-api"), settings.port("aws-api-scoped")],
                                                    stop_timeout=15),
                             settings.url("aws-api"), None),
        "cloudwatch-agent": Component("cloudwatch-agent", ProcessSpec("cloudwatch-agent", agent,
                                                                      logs / "cloudwatch-agent.log", env,
                                                                      stop_timeout=10),
                                      "", None),
    }


def http_ok(url: str, timeout: float = 1.0) -> bool:
    """True if GET url answers 200."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - loopback URLs we built
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False
