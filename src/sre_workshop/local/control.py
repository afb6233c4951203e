"""What a fault may do to the local stack: the local twin of SSM Run Command, systemctl and the AWS APIs.

Faults act on components by their pid records (never by a process name or a glob), change configs
through overlays kept in the stack's state, and reach the apps' fault controls on the apps' own loopback
ports with the stack's token, never through the public entry points. DynamoDB faults answer at the
`dynamodb-endpoint` proxy in DynamoDB's own error shape; processes a fault starts (a blackhole listener)
are recorded by pid under run/helpers/ and stopped by that record.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from ..aws.control import AwsControl
from ..errors import ComponentFailed, UsageError
from ..settings import LOOPBACK
from ..state import Overlay
from ..steps import STEPS_DIR
from ..twin.instances import STACK_NAME as TWIN_STACK
from . import configs
from .components import LOCAL_CREDENTIALS, dynamodb_address, token_path
from .process import HOST_ENV, ProcessRecord, ProcessSpec, is_alive, spawn, stop
from .stack import Stack

SCRIPTS_DIR = STEPS_DIR

ENDPOINT = "dynamodb-endpoint"
# A probe of what the apps get from the endpoint: one attempt, no retries, short timeouts.
PROBE_CONFIG = Config(retries={"total_max_attempts": 1, "mode": "standard"}, connect_timeout=2, read_timeout=5)


class LocalControl:
    """The local stack, as a fault sees it."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.settings = stack.settings

    # --- processes, as systemctl and kill would ---------------------------------------------------

    def running(self, name: str) -> bool:
        """True if the component's main process is alive."""
        return self.stack.running(name)

    def kill(self, name: str, signum: int = signal.SIGKILL) -> int:
        """Send a signal to a component's whole process group (`pkill -9 nginx`); return the main pid."""
        record = self.stack.record(name)
        if record is None or not self.stack.running(name):
            raise ComponentFailed(f"{name} is not running")
        os.killpg(record.pid, signum)
        return record.pid

    def start(self, name: str) -> None:
        """Start a component if it is not running (`systemctl start`)."""
        self.stack.service("start", name)

    def restart(self, name: str) -> None:
        """Restart a component (`systemctl restart`)."""
        self.stack.service("restart", name)

    # --- configs: overlays kept in the state, so restarts carry them ----------------------------------

    def overlays(self, owner: str) -> list[Overlay]:
        """Return the overlays `owner` has in effect."""
        return [o for o in self.stack.store.read().overlays if o.owner == owner]

    def add_overlay(self, owner: str, target: str, replace: dict[str, str]) -> None:
        """Record a change to a config made by `owner`."""
        with self.stack.store.update() as state:
            state.overlays = [o for o in state.overlays if not (o.owner == owner and o.target == target)]
            state.overlays.append(Overlay(owner, target, replace))

    def remove_overlays(self, owner: str) -> list[str]:
        """Remove every change `owner` made; return the targets it had changed."""
        with self.stack.store.update() as state:
            targets = [o.target for o in state.overlays if o.owner == owner]
            state.overlays = [o for o in state.overlays if o.owner != owner]
        return targets

    def reload(self, name: str) -> None:
        """Have a component read its configs again (nginx: reload; others: restart)."""
        self.stack.reload(name)

    def refresh(self, name: str) -> None:
        """Render the configs again with the overlays in effect; have `name` read them if it runs (a
        stopped component reads them when it starts, and `rendered` tells the truth meanwhile)."""
        configs.write_configs(self.settings, dynamodb_address(self.settings), self.stack.store.read().overlays)
        if self.running(name):
            self.reload(name)

    def rendered(self, target: str) -> str:
        """Return a rendered config as the component reads it now ("" if it was never rendered)."""
        path = self.settings.run_dir / target
        return path.read_text() if path.exists() else ""

    # --- the apps' fault controls, on their own ports ---------------------------------------------------

    def token_file(self) -> Path:
        """The file holding the stack's fault-control token."""
        return token_path(self.settings)

    def app_admin(self, app: str, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """Call an app's /admin API on its own port with the stack's token; return the JSON answer."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"{self.settings.url(app)}/admin{path}", data=data, method=method, headers={  # noqa: S310
            "X-Fault-Token": self.token_file().read_text().strip(), "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - loopback URL we built
                return json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            raise ComponentFailed(f"{app} refused {method} /admin{path}: {exc.code} {exc.read()[:200]!r}") from exc
        except OSError as exc:
            raise ComponentFailed(f"{app} does not answer on its own port: {exc}") from exc

    # --- shell steps: the same scripts SSM runs on an instance -------------------------------------------

    def script(self, name: str, *args: str) -> str:
        """Run one of sre_workshop/steps/ with local arguments; return its output or raise with its message."""
        path = SCRIPTS_DIR / name
        if not path.exists():
            raise UsageError(f"no fault script {name}")
        env = {**os.environ, HOST_ENV: str(self.settings.state_dir.resolve())}  # it runs on the stack's host
        result = subprocess.run(["sh", str(path), *args], capture_output=True, text=True, timeout=60, check=False,
                                env=env)
        if result.returncode != 0:
            raise ComponentFailed(f"{name} failed: {(result.stderr or result.stdout).strip()[-300:]}")
        return result.stdout

    # --- the stack's AWS resources, in the AWS API twin ----------------------------------------------

    def twin(self) -> AwsControl:
        """Return the stack's AWS resources (its role, tables, security groups) in the AWS API twin, as a fault
        on AWS acts on them: the same calls, which the DynamoDB endpoint enforces on the apps' requests."""
        session = boto3.session.Session(region_name=self.settings.region,
                                        **{k.lower(): v for k, v in LOCAL_CREDENTIALS.items()})
        # The private ALB's DNS name is, on the local network, its loopback listener (nginx.conf names it).
        private_alb = f"{LOOPBACK}:{self.settings.port('private-alb')}"
        return AwsControl(session, TWIN_STACK, public=self.settings.endpoints,
                          endpoint_url=self.settings.url("aws-api"), addresses={"PrivateALBDNSName": private_alb},
                          ports={c: self.settings.port(c) for c in ("nginx", "sre-app", "crm-app")})

    def endpoint_client(self):
        """Return a DynamoDB client that goes through the endpoint as the apps do, with one attempt."""
        session = boto3.session.Session(**{k.lower(): v for k, v in LOCAL_CREDENTIALS.items()})
        return session.client("dynamodb", region_name=self.settings.region, endpoint_url=self.settings.url(ENDPOINT),
                              config=PROBE_CONFIG)

    # --- processes a fault starts, recorded by pid as the components are ---------------------------------

    def helper_path(self, name: str) -> Path:
        """Where a fault's helper process is recorded: a neutral folder, since files beside the record (a
        port file) are named in the helper's command line, which the process table shows to anyone."""
        return self.settings.run_dir / "helpers" / f"{name}.json"

    def start_helper(self, name: str, argv: list[str]) -> ProcessRecord:
        """Start a process a fault needs under dumb-init, in a session of its own; record it by pid at once."""
        path = self.helper_path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        record = spawn(ProcessSpec(name, argv, self.settings.logs_dir / f"{name}.log"))
        record.save(path)
        return record

    def helper(self, name: str) -> ProcessRecord | None:
        """Return the record of a fault's helper process if that very process still runs."""
        record = ProcessRecord.load(self.helper_path(name))
        return record if record is not None and is_alive(record) else None

    def stop_helper(self, name: str) -> None:
        """Stop a fault's helper process (and its process group) by its record, then forget it."""
        record = self.helper(name)
        if record is not None:  # a dead record's pid may belong to someone else by now: never signal it
            stop(record, timeout=5)
        self.helper_path(name).unlink(missing_ok=True)
