"""The components of the local stack: how each is started, on which ports, and how its health is read.

Start order follows the architecture from the data tier up; every component is a real process:
    dynamodb           moto's server (the DynamoDB emulator), unless --dynamodb-endpoint is given
    dynamodb-endpoint  HAProxy in front of it: the apps' AWS_ENDPOINT_URL, where faults will be injected
    sre-app, crm-app   the two apps under Gunicorn, with the settings they have on AWS
    private-alb        HAProxy: sre-workshop-private-alb
    nginx              the web tier, from the same nginx.conf template as on AWS
    public-alb         HAProxy: sre-workshop-public-alb, listeners :8000 (for 80) and :8080
"""

from __future__ import annotations

import secrets
import shutil
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from ..settings import LOOPBACK, TABLE_NAMES, Settings
from .process import ProcessSpec

ORDER = ["dynamodb", "dynamodb-endpoint", "sre-app", "crm-app", "private-alb", "nginx", "public-alb"]
# nginx and haproxy live in sbin, which a non-root user's PATH often lacks.
SBIN_DIRS = ("/usr/sbin", "/sbin")
# Fake credentials for the emulator; boto3 refuses to sign requests without some.
LOCAL_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "sre-workshop-local", "AWS_SECRET_ACCESS_KEY": "sre-workshop-local"}


class MissingProgram(RuntimeError):
    """A program the local stack needs is not installed."""


@dataclass(frozen=True)
class Component:
    """One component: its process spec, the URL people use, and the URL that tells its health."""

    name: str
    spec: ProcessSpec
    url: str
    health_url: str | None  # None: healthy when its ports accept connections


def require_program(name: str, package: str) -> str:
    """Return the path of `name`, or raise MissingProgram saying how to install it."""
    path = shutil.which(name) or next((f"{d}/{name}" for d in SBIN_DIRS if Path(f"{d}/{name}").exists()), None)
    if not path:
        raise MissingProgram(f"{name} is not installed: run `sudo apt-get install -y {package}`")
    return path


def fault_token(settings: Settings) -> str:
    """Return the stack's fault-control token, created once and kept private in the state directory."""
    path = settings.run_dir / "fault-token"
    if not path.exists():
        settings.run_dir.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(32))
    return path.read_text().strip()


def dynamodb_address(settings: Settings) -> str:
    """Return host:port of the DynamoDB engine behind the endpoint proxy."""
    if not settings.dynamodb_endpoint:
        return f"{LOOPBACK}:{settings.port('dynamodb')}"
    parts = urlsplit(settings.dynamodb_endpoint)
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError(f"--dynamodb-endpoint must be an http://host:port URL, not {settings.dynamodb_endpoint!r}")
    return f"{parts.hostname}:{parts.port or 80}"


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
                   FAULT_CONTROL_TOKEN=fault_token(settings))
    else:
        env.update({k: TABLE_NAMES[k] for k in ("CUSTOMERS_TABLE", "DEALS_TABLE", "ACTIVITIES_TABLE")})
    return env


def gunicorn_spec(settings: Settings, name: str, package: str) -> ProcessSpec:
    """Return the spec of an app under Gunicorn, run from the apps directory."""
    argv = [sys.executable, "-m", "gunicorn", "--chdir", str(settings.apps_dir),
            "-c", str(settings.apps_dir / package / "gunicorn.conf.py"), f"{package}.wsgi:app"]
    return ProcessSpec(name, argv, settings.logs_dir / f"{name}.log", app_env(settings, name),
                       ports=[settings.port(name)], stop_timeout=25)


def components(settings: Settings) -> dict[str, Component]:
    """Return every component of the stack, in start order."""
    haproxy = require_program("haproxy", "haproxy")
    nginx = require_program("nginx", "nginx")
    run, logs = settings.run_dir, settings.logs_dir
    found = {}

    def add(name: str, argv: list[str], ports: list[str], health: str | None = None, **kwargs) -> None:
        spec = kwargs.pop("spec", None) or ProcessSpec(name, argv, logs / f"{name}.log",
                                                         ports=[settings.port(p) for p in ports], **kwargs)
        found[name] = Component(name, spec, settings.url(ports[0]) if ports else "", health)

    if not settings.dynamodb_endpoint:
        add("dynamodb", [sys.executable, "-m", "moto.server", "-H", LOOPBACK, "-p", str(settings.port("dynamodb"))],
            ["dynamodb"], env={"MOTO_ALLOW_NONEXISTENT_REGION": "true"})
    add("dynamodb-endpoint", [haproxy, "-db", "-f", str(run / "dynamodb-endpoint.cfg")], ["dynamodb-endpoint"])
    add("sre-app", [], ["sre-app"], settings.url("sre-app") + "/health",
        spec=gunicorn_spec(settings, "sre-app", "sre_app"))
    add("crm-app", [], ["crm-app"], settings.url("crm-app") + "/health",
        spec=gunicorn_spec(settings, "crm-app", "crm_app"))
    add("private-alb", [haproxy, "-db", "-f", str(run / "private-alb.cfg")], ["private-alb"])
    add("nginx", [nginx, "-c", str(run / "nginx.conf"), "-e", str(logs / "nginx-error.log"),
                  "-g", "daemon off;"], ["nginx"], settings.url("nginx") + "/health")
    add("public-alb", [haproxy, "-db", "-f", str(run / "public-alb.cfg")], ["public-alb", "public-alb-crm"])
    return found


def http_ok(url: str, timeout: float = 1.0) -> bool:
    """True if GET url answers 200."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - loopback URLs we built
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False
