"""Bring the local stack up, take it down, restart one component, and report its state.

State lives in one directory (Settings.state_dir): run/ holds pid records, sockets and rendered configs,
logs/ every log, data/ the DynamoDB snapshot. Processes are not supervised after start: like systemd
units without Restart=, a component that dies stays down until `service start|restart NAME`.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from ..settings import Settings
from ..tables import create_tables
from . import configs, lbstats, snapshot
from .components import (
    LOCAL_CREDENTIALS,
    ORDER,
    Component,
    app_env,
    components,
    dynamodb_address,
    http_ok,
)
from .process import ProcessRecord, is_alive, port_open, spawn, stop, tail, wait_ready

logger = logging.getLogger(__name__)

Progress = Callable[[str], None]


def choices_path(settings: Settings) -> Path:
    """Where `up` records the choices that shape the stack (today: an external DynamoDB endpoint)."""
    return settings.run_dir / "stack.json"


def recorded_endpoint(settings: Settings) -> str | None:
    """Return the external DynamoDB endpoint the last `up` used, if any."""
    try:
        return json.loads(choices_path(settings).read_text()).get("dynamodb_endpoint")
    except (OSError, ValueError):
        return None


class StackError(Exception):
    """Root of the local stack's expected failures; the message is one line for the user."""


class PortInUse(StackError):
    """A port the stack needs is taken by another program."""


class ComponentFailed(StackError):
    """A component did not start or did not become healthy."""


class UnknownComponent(StackError):
    """No component has that name."""


class Stack:
    """The local stack described by `settings`."""

    def __init__(self, settings: Settings, progress: Progress | None = None) -> None:
        self.settings = settings
        self.progress = progress or (lambda message: None)
        self.components: dict[str, Component] = components(settings)
        self.pid_dir = settings.run_dir / "pids"

    # --- records -----------------------------------------------------------------------------------

    def record(self, name: str) -> ProcessRecord | None:
        """Return the pid record of a component, or None if it was never started or was stopped."""
        return ProcessRecord.load(self.pid_dir / f"{name}.json")

    def running(self, name: str) -> bool:
        """True if the component's recorded process is alive."""
        record = self.record(name)
        return record is not None and is_alive(record)

    def recover_stale(self) -> list[str]:
        """Forget records of processes that died (a crashed or killed run); return their names."""
        stale = []
        for name in ORDER:
            record = self.record(name)
            if record is not None and not is_alive(record):
                stop(record, timeout=5)  # its children (workers) may have outlived it
                (self.pid_dir / f"{name}.json").unlink(missing_ok=True)
                stale.append(name)
        return stale

    # --- up ----------------------------------------------------------------------------------------

    def up(self, timeout: float = 60.0) -> None:
        """Start every component that is not running, create and fill the tables, wait for health."""
        started_at = time.monotonic()
        engine = dynamodb_address(self.settings)  # a bad --dynamodb-endpoint fails before anything starts
        stale = self.recover_stale()
        if stale:
            self.progress(f"recovered from a previous run that did not stop cleanly ({', '.join(stale)})")
        to_start = [n for n in ORDER if n in self.components and not self.running(n)]
        self._check_ports(to_start)
        for directory in (self.settings.logs_dir, self.pid_dir, self.settings.data_dir):
            directory.mkdir(parents=True, exist_ok=True)
        # Later commands (status, service, down) must know which engine this stack runs on.
        choices_path(self.settings).write_text(json.dumps({"dynamodb_endpoint": self.settings.dynamodb_endpoint}))
        configs.write_configs(self.settings, engine)
        self._check_nginx_config()
        for name in to_start:
            self._spawn(name)
        self._prepare_data(timeout)
        self.wait_healthy(timeout - (time.monotonic() - started_at))
        self.progress(f"all targets healthy in {time.monotonic() - started_at:.1f}s")

    def _check_ports(self, names: list[str]) -> None:
        for name in names:
            for port in self.components[name].spec.ports:
                if port_open(port):
                    raise PortInUse(f"port {port} ({name}) is in use by another program: stop it, "
                                    f"or set SRE_WORKSHOP_PORT_OFFSET to move the whole stack")

    def _check_nginx_config(self) -> None:
        """Run `nginx -t` on the rendered config, so a bad template names itself before start."""
        nginx = self.components["nginx"].spec
        result = subprocess.run([nginx.argv[0], "-t", *nginx.argv[1:5]], capture_output=True, text=True,
                                check=False)
        if result.returncode != 0:
            raise ComponentFailed(f"nginx: rendered config is invalid: {result.stderr.strip().splitlines()[-1]}")

    def _spawn(self, name: str) -> None:
        record = spawn(self.components[name].spec)
        record.save(self.pid_dir / f"{name}.json")
        self.progress(f"started {name} (pid {record.pid})")

    def _prepare_data(self, timeout: float) -> None:
        """Create the five tables; restore the snapshot, or seed sample data on a first run."""
        if "dynamodb" in self.components:
            self._wait_started("dynamodb", timeout)
        self._wait_started("dynamodb-endpoint", timeout)
        client = self.dynamodb_client()
        created = create_tables(client)
        if not created:
            return
        restored = snapshot.restore(client, self.snapshot_path)
        if restored:
            self.progress(f"restored {sum(restored.values())} items from {self.snapshot_path}")
            return
        self.seed()

    def seed(self, count: int = 50) -> None:
        """Run the CRM's init_sample_data against the stack's tables."""
        argv = [sys.executable, "-m", "crm_app.init_sample_data", "--count", str(count)]
        env = {**app_env(self.settings, "crm-app"), "PATH": "/usr/bin:/bin"}
        result = subprocess.run(argv, cwd=self.settings.apps_dir, env=env, capture_output=True, text=True,
                                check=False)
        if result.returncode != 0:
            raise ComponentFailed(f"init_sample_data failed: {(result.stderr or result.stdout).strip()[-300:]}")
        self.progress(f"seeded sample data: {result.stdout.strip()}")

    def _wait_started(self, name: str, timeout: float) -> None:
        record = self.record(name)
        component = self.components[name]
        if record is None or not wait_ready(record, component.spec.ports, timeout):
            last = tail(component.spec.log_path, 1) or "no output"
            raise ComponentFailed(f"{name} did not start ({last}); see {component.spec.log_path}")

    def wait_healthy(self, timeout: float) -> None:
        """Wait until every component is healthy and every target is; name what is not on time-out."""
        deadline = time.monotonic() + max(timeout, 1.0)
        while True:
            problems = self.problems()
            if not problems:
                return
            dead = [p for p in problems if p.startswith("exited")]
            if dead or time.monotonic() > deadline:
                raise ComponentFailed("; ".join(problems))
            time.sleep(0.1)

    def problems(self) -> list[str]:
        """Return what keeps the stack from being healthy (empty when it is)."""
        problems = []
        for name, component in self.components.items():
            record = self.record(name)
            if record is None:
                problems.append(f"{name} is not running")
            elif not is_alive(record):
                problems.append(f"exited: {name} (see {component.spec.log_path}): "
                                f"{tail(component.spec.log_path, 1)}")
            elif not self.component_healthy(component):
                problems.append(f"{name} is not healthy yet")
        if not problems:
            problems = [f"target {t.target} of {t.target_group} is {t.state}" for t in self.targets()
                        if t.state not in ("healthy", "unused")]
        return problems

    def component_healthy(self, component: Component) -> bool:
        """True if the component answers: its health URL returns 200, or its ports accept connections."""
        if component.health_url:
            return http_ok(component.health_url)
        return all(port_open(p) for p in component.spec.ports)

    def targets(self) -> list[lbstats.TargetHealth]:
        """Return target health of the two ALBs (empty for an ALB that is down)."""
        found = []
        for name in ("public-alb", "private-alb"):
            if self.running(name):
                try:
                    found.extend(lbstats.target_health(self.settings.run_dir / f"{name}.sock"))
                except OSError:
                    continue
        return found

    # --- down and services -------------------------------------------------------------------------

    @property
    def snapshot_path(self) -> Path:
        """Where the DynamoDB data is kept between runs."""
        return self.settings.data_dir / "dynamodb.json"

    def down(self) -> list[str]:
        """Stop everything this stack started, keeping the data; return the names stopped. Idempotent."""
        stopped = []
        for name in reversed(ORDER):
            if name == "dynamodb" and self.running(name):
                self.save_data()
            if self._stop(name):
                stopped.append(name)
        return stopped

    def save_data(self) -> None:
        """Dump the emulator's tables to the snapshot file."""
        try:
            counts = snapshot.dump(self.dynamodb_client(direct=True), self.snapshot_path)
        except Exception as exc:  # the data may be gone with the emulator; say so, keep stopping
            self.progress(f"could not save DynamoDB data: {exc}")
            return
        self.progress(f"saved {sum(counts.values())} DynamoDB items to {self.snapshot_path}")

    def _stop(self, name: str) -> bool:
        record = self.record(name)
        if record is None:
            return False
        stop(record, self.components[name].spec.stop_timeout if name in self.components else 15)
        (self.pid_dir / f"{name}.json").unlink(missing_ok=True)
        self.progress(f"stopped {name}")
        return True

    def service(self, action: str, name: str, timeout: float = 30.0) -> None:
        """Stop, start or restart one component, as `systemctl ACTION` would."""
        if name not in self.components:
            raise UnknownComponent(f"no component named {name!r}; components: {', '.join(self.components)}")
        if action in ("stop", "restart"):
            if name == "dynamodb" and self.running(name):
                self.save_data()
            self._stop(name)
        if action in ("start", "restart") and not self.running(name):
            (self.pid_dir / f"{name}.json").unlink(missing_ok=True)
            self._check_ports([name])
            # Render again: a restart picks up edited templates, as a reload on the instance would.
            configs.write_configs(self.settings, dynamodb_address(self.settings))
            self._spawn(name)
            self._wait_started(name, timeout)
            if name == "dynamodb":
                client = self.dynamodb_client()
                create_tables(client)
                snapshot.restore(client, self.snapshot_path)

    def dynamodb_client(self, direct: bool = False):
        """Return a DynamoDB client for the stack's endpoint (or the engine itself when `direct`)."""
        if direct and "dynamodb" in self.components:
            endpoint = self.settings.url("dynamodb")
        else:
            endpoint = self.settings.url("dynamodb-endpoint")
        return boto3.session.Session(**{k.lower(): v for k, v in LOCAL_CREDENTIALS.items()}).client(
            "dynamodb", region_name=self.settings.region, endpoint_url=endpoint,
            config=Config(retries={"max_attempts": 5, "mode": "standard"}, connect_timeout=2, read_timeout=10))

    # --- status ------------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """Return every component with pid, ports, state and health, and target health."""
        rows = []
        for name, component in self.components.items():
            record = self.record(name)
            alive = record is not None and is_alive(record)
            state = "running" if alive else ("exited" if record else "stopped")
            rows.append({"name": name, "state": state, "pid": record.pid if alive else None,
                         "ports": component.spec.ports, "url": component.url,
                         "healthy": alive and self.component_healthy(component),
                         "log": str(component.spec.log_path)})
        return {"components": rows, "targets": [t.to_dict() for t in self.targets()],
                "endpoints": self.settings.endpoints, "state_dir": str(self.settings.state_dir)}

    def log_paths(self, name: str) -> list[Path]:
        """Return the log files of a component: its process output, then its own logs."""
        if name not in self.components:
            raise UnknownComponent(f"no component named {name!r}; components: {', '.join(self.components)}")
        extra = {"sre-app": ["sre-app.json.log"], "crm-app": ["crm-app.json.log"],
                 "nginx": ["nginx-access.log", "nginx-error.log"]}.get(name, [])
        return [self.components[name].spec.log_path, *(self.settings.logs_dir / f for f in extra)]
