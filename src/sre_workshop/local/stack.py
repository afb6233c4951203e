"""Bring the local stack up, take it down, restart or reload one component, and report its state.

State lives in one directory (Settings.state_dir): run/ holds pid records, sockets, rendered configs and
the stack's state (state.py), logs/ every log, data/ the DynamoDB snapshot. One stack per state
directory: a command that changes it holds run/stack.lock. Processes are not supervised after start:
like systemd units without Restart=, a component that dies stays down until `service start|restart NAME`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from ..errors import ComponentFailed, PortInUse, StackBusy, StateError, UsageError
from ..settings import Settings
from ..state import StackLock, StateStore, ensure_dir
from ..tables import create_tables
from . import configs, lbstats, snapshot
from .components import (
    LOCAL_CREDENTIALS,
    ORDER,
    Component,
    app_env,
    components,
    create_fault_token,
    dynamodb_address,
    engine_url,
    http_ok,
)
from .engines import wait_engine_ready
from .process import (
    ProcessRecord,
    find_program,
    group_members,
    is_alive,
    port_open,
    spawn,
    start_time,
    stop,
    tail,
    wait_ready,
)

logger = logging.getLogger(__name__)

Progress = Callable[[str], None]
# The component each target group's target is (the ALBs' targets are the stack's own components).
TARGET_COMPONENTS = {"PublicALBTargetGroup": "nginx", "CRMAppTargetGroup": "crm-app",
                     "PrivateALBTargetGroup": "sre-app"}
# The tool's own DynamoDB calls: a few quick attempts, never an unbounded wait.
TOOL_CLIENT_CONFIG = Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=2, read_timeout=10)


@dataclass(frozen=True)
class Problem:
    """One thing that keeps the stack from being healthy."""

    component: str
    kind: str  # not-running | exited | unhealthy | target-unhealthy
    detail: str

    def __str__(self) -> str:
        return f"{self.component}: {self.detail}"

    def to_dict(self) -> dict[str, str]:
        """Return the problem as JSON-ready data."""
        return {"component": self.component, "kind": self.kind, "detail": self.detail}


class Stack:
    """The local stack described by `settings`. Creating one reads nothing and writes nothing."""

    def __init__(self, settings: Settings, progress: Progress | None = None) -> None:
        self.settings = settings
        self.progress = progress or (lambda message: None)
        self.components: dict[str, Component] = components(settings)
        self.pid_dir = settings.run_dir / "pids"
        self.store = StateStore(settings)
        self.lock = StackLock(settings)

    @classmethod
    def open(cls, settings: Settings, progress: Progress | None = None) -> Stack:
        """Return the stack as the last `up` made it (its DynamoDB engine included)."""
        state = StateStore(settings).read()
        return cls(replace(settings, dynamodb_endpoint=state.dynamodb_endpoint,
                           engine=state.engine or settings.engine), progress)

    # --- records -----------------------------------------------------------------------------------

    def record(self, name: str) -> ProcessRecord | None:
        """Return the pid record of a component, or None if it was never started or was stopped."""
        return ProcessRecord.load(self.pid_dir / f"{name}.json")

    def running(self, name: str) -> bool:
        """True if the component's recorded process is alive."""
        record = self.record(name)
        return record is not None and is_alive(record)

    def component(self, name: str) -> Component:
        """Return a component by name, or raise UsageError naming the valid ones."""
        if name not in self.components:
            raise UsageError(f"no component named {name!r}; components: {', '.join(self.components)}")
        return self.components[name]

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
        """Start every component, create and fill the tables, wait for health. On any failure or
        interruption, stop what was started and keep the previous choices."""
        started_at = time.monotonic()
        engine = dynamodb_address(self.settings)  # a bad --dynamodb-endpoint fails before anything starts
        ensure_dir(self.settings.state_dir)
        with self._locked("up"):
            self._refuse_if_running()
            before = self.store.read()
            try:
                unhealthy = self._start_all(engine, timeout, started_at)
            except BaseException:
                self.progress("stopping what was started")
                self._stop_all(save=False)
                with self.store.update() as state:
                    state.dynamodb_endpoint, state.engine = before.dynamodb_endpoint, before.engine
                raise
        for problem in unhealthy:
            self.progress(f"up, but {problem.detail}: `sre-workshop doctor` tells why")
        if not unhealthy:
            self.progress(f"all targets healthy in {time.monotonic() - started_at:.1f}s")

    def _refuse_if_running(self) -> None:
        stale = self.recover_stale()
        if stale:
            self.progress(f"recovered from a previous run that did not stop cleanly ({', '.join(stale)})")
        running = [n for n in ORDER if self.running(n)]
        if running:
            raise StackBusy(f"this stack is already running ({len(running)} of {len(self.components)} "
                            f"components: {', '.join(running)}): `sre-workshop status` shows it, "
                            "`sre-workshop down` stops it, `service start NAME` starts one component")

    def _start_all(self, engine: str, timeout: float, started_at: float) -> list[Problem]:
        names = [n for n in ORDER if n in self.components]
        for program in {"dumb-init", *(self.components[n].spec.argv[0] for n in names)}:
            find_program(program)  # a missing program is named before anything starts
        self._check_ports(names)
        for directory in (self.settings.logs_dir, self.pid_dir, self.settings.data_dir):
            directory.mkdir(parents=True, exist_ok=True)
        create_fault_token(self.settings)
        with self.store.update() as state:  # later commands (status, service, down) use the same engine
            state.dynamodb_endpoint = self.settings.dynamodb_endpoint
            state.engine = None if self.settings.dynamodb_endpoint else self.settings.engine
        configs.write_configs(self.settings, engine, state.overlays)
        for name in names:
            self._check_config(name)
            self._spawn(name)
        self._prepare_data(timeout)
        return self.wait_healthy(timeout - (time.monotonic() - started_at))

    def _check_ports(self, names: list[str]) -> None:
        for name in names:
            for port in self.components[name].spec.ports:
                if port_open(port):
                    raise PortInUse(f"port {port} ({name}) is in use by another program: stop it, "
                                    f"or set SRE_WORKSHOP_PORT_OFFSET to move the whole stack")

    def _check_config(self, name: str) -> None:
        """Run the component's config check (`nginx -t`), so a bad config names itself before a start."""
        argv = self.components[name].check_argv
        if not argv:
            return
        result = subprocess.run([find_program(argv[0]), *argv[1:]], capture_output=True, text=True, check=False)
        if result.returncode != 0:
            last = (result.stderr.strip().splitlines() or ["no output"])[-1]
            raise ComponentFailed(f"{name}: rendered config is invalid: {last}")

    def _spawn(self, name: str) -> None:
        component = self.components[name]
        env = dict(component.spec.env)
        for overlay in self.store.read().overlays_for(f"env:{name}"):
            env.update(overlay.replace)
        if component.fault_control:
            env["FAULT_CONTROL_TOKEN"] = create_fault_token(self.settings)
        if component.runtime_dir:  # a fresh start forgets run-time changes (the leak's control file)
            shutil.rmtree(component.runtime_dir, ignore_errors=True)
        record = spawn(replace(component.spec, env=env))
        record.save(self.pid_dir / f"{name}.json")
        self.progress(f"started {name} (pid {record.pid})")

    def _prepare_data(self, timeout: float) -> None:
        """Create the five tables; on a new store, restore the snapshot (moto's, or one left from moto before
        a durable engine took over: imported once) or seed sample data on a first run."""
        if "dynamodb" in self.components:
            self._wait_engine(timeout)
        client = self.dynamodb_client()
        try:
            created = create_tables(client)
        except (BotoCoreError, ClientError) as exc:
            raise ComponentFailed(f"the DynamoDB engine at {engine_url(self.settings)} does not work: {exc}") from exc
        if not created:
            return
        restored = snapshot.restore(client, self.snapshot_path)
        if restored:
            self.progress(f"restored {sum(restored.values())} items from {self.snapshot_path}")
            engine = self.components.get("dynamodb")
            if engine is not None and not engine.data:  # a durable engine keeps them from now on
                self.snapshot_path.rename(self.snapshot_path.with_suffix(".json.imported"))
            return
        self.seed()

    def _wait_engine(self, timeout: float) -> None:
        """Wait until the engine answers a DynamoDB call (an open port is not enough for dynalite)."""
        record = self.record("dynamodb")
        if record is None or not wait_engine_ready(record, self.settings.url("dynamodb"), timeout):
            log = self.components["dynamodb"].spec.log_path
            raise ComponentFailed(f"the DynamoDB engine ({self.settings.engine}) did not start "
                                  f"({tail(log, 1) or 'no output'}); see {log}")

    def seed(self, count: int = 50) -> None:
        """Run the CRM's init_sample_data against the stack's tables (straight to the engine)."""
        argv = [sys.executable, "-m", "crm_app.init_sample_data", "--count", str(count)]
        env = {**app_env(self.settings, "crm-app"), "AWS_ENDPOINT_URL": engine_url(self.settings),
               "PATH": "/usr/bin:/bin"}
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

    def wait_healthy(self, timeout: float) -> list[Problem]:
        """Wait until every component answers and every target is healthy. A component that exits or does not
        answer in time fails; a target still unhealthy once its checks had time to pass (a config or network
        change kept across restarts can do that, as on AWS) is returned as a warning with the stack up."""
        deadline = time.monotonic() + max(timeout, 1.0)
        targets_due = None
        while True:
            problems = self.problems()
            if not problems:
                return []
            now = time.monotonic()
            if any(p.kind != "target-unhealthy" for p in problems):
                if any(p.kind == "exited" for p in problems) or now > deadline:
                    raise ComponentFailed("; ".join(map(str, problems)))
            else:
                targets_due = targets_due or now + self._targets_grace()
                if now > min(targets_due, deadline):
                    return problems
            time.sleep(0.1)

    def _targets_grace(self) -> float:
        """Seconds a healthy target needs to pass its checks: the healthy threshold, one more interval and
        the check timeout, plus a margin for a busy machine."""
        check = self.settings.health_check
        return (check.healthy_threshold + 1) * check.interval_seconds + check.timeout_seconds + 3

    def problems(self) -> list[Problem]:
        """Return what keeps the stack from being healthy (empty when it is)."""
        problems = []
        for name, component in self.components.items():
            record = self.record(name)
            if record is None:
                problems.append(Problem(name, "not-running", "is not running"))
            elif not is_alive(record):
                last = tail(component.spec.log_path, 1) or "no output"
                problems.append(Problem(name, "exited", f"exited (see {component.spec.log_path}): {last}"))
            elif not self.component_healthy(component):
                problems.append(Problem(name, "unhealthy", "does not answer its health check"))
        if not problems:
            problems = [Problem(TARGET_COMPONENTS.get(t.target_group, t.target), "target-unhealthy",
                                f"target {t.target} of {t.target_group} is {t.state}")
                        for t in self.targets() if t.state not in ("healthy", "unused")]
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

    # --- down, services and reloads ----------------------------------------------------------------

    @property
    def snapshot_path(self) -> Path:
        """Where the DynamoDB data is kept between runs."""
        return self.settings.data_dir / "dynamodb.json"

    def down(self, discard_data: bool = False) -> list[str]:
        """Stop everything this stack started, keeping the data; return the names stopped. Idempotent.

        A foreground `up` that owns the stack is asked to stop (SIGTERM) and does the stopping itself.
        `discard_data` stops the engine even if its data cannot be saved (the data since the last save is lost).
        """
        if not self.settings.run_dir.exists():
            return []
        self._stop_foreground_up()
        with self._locked("down", wait=30):
            return self._stop_all(save=not discard_data)

    def _stop_all(self, save: bool) -> list[str]:
        """Stop every component, the engine last; never stop the engine if its data could not be saved."""
        stopped = self._stop_fault_helpers()
        for name in reversed(ORDER):
            if save and name in self.components and self.components[name].data and self.running(name):
                self.save_data()  # raises, leaving the engine running, when the data cannot be saved
            if self._stop(name):
                stopped.append(name)
        return stopped

    def _stop_fault_helpers(self) -> list[str]:
        """Stop the processes faults started for this stack (recorded by pid under run/faults/)."""
        stopped = []
        for path in sorted((self.settings.run_dir / "faults").glob("*.json")):
            record = ProcessRecord.load(path)
            if record is not None and is_alive(record):
                stop(record, timeout=5)
                stopped.append(f"fault helper {record.name}")
        return stopped

    def _stop_foreground_up(self) -> None:
        """Ask a foreground `up` of this stack to stop it, and wait until it has (bounded)."""
        owner = foreground_path(self.settings)
        record = ProcessRecord.load(owner)
        if record is None or not is_alive(record) or record.pid == os.getpid():
            return
        self.progress(f"asking the foreground `sre-workshop up` (pid {record.pid}) to stop the stack")
        os.kill(record.pid, signal.SIGTERM)
        deadline = time.monotonic() + 90
        while is_alive(record) and time.monotonic() < deadline:
            time.sleep(0.1)

    def save_data(self) -> None:
        """Dump the emulator's tables to the snapshot file; raise StateError if that is impossible."""
        try:
            counts = snapshot.dump(self.dynamodb_client(), self.snapshot_path)
        except (OSError, BotoCoreError, ClientError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise StateError(f"could not save DynamoDB data to {self.snapshot_path} ({reason}); the engine keeps "
                             "running with it: fix that and run `down` again, or `down --discard-data`") from exc
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
        component = self.component(name)
        with self._locked(f"service {action} {name}", wait=30):
            if action in ("stop", "restart"):
                if component.data and self.running(name):
                    self.save_data()
                self._stop(name)
            if action in ("start", "restart") and not self.running(name):
                self._start_one(name, timeout)

    def _start_one(self, name: str, timeout: float) -> None:
        (self.pid_dir / f"{name}.json").unlink(missing_ok=True)
        self._check_ports([name])
        # Render again, overlays included: a restart keeps a change made to a config until it is removed.
        configs.write_configs(self.settings, dynamodb_address(self.settings), self.store.read().overlays)
        self._check_config(name)
        self._spawn(name)
        if name == "dynamodb":
            self._wait_engine(timeout)
        else:
            self._wait_started(name, timeout)
        if self.components[name].data:  # an engine that forgot its tables gets them back
            client = self.dynamodb_client()
            create_tables(client)
            snapshot.restore(client, self.snapshot_path)

    def reload(self, name: str, render: bool = True) -> None:
        """Have a running component read its configs again: nginx by a reload (SIGHUP to its master, as
        `systemctl reload nginx`), others by a restart. `render` writes the configs from the templates and
        overlays first; without it, nginx reads the file as it is (a hand edit, as on the instance)."""
        component = self.component(name)
        if name != "nginx" or not self.running(name):
            self.service("restart", name)
            return
        if render:
            configs.write_configs(self.settings, dynamodb_address(self.settings), self.store.read().overlays)
        self._check_config(name)
        master = self.record(name).pid
        old_workers = {pid for pid in group_members(master) if pid != master}
        os.kill(master, signal.SIGHUP)
        # Done when the workers of the old config are gone: until then, a kept-alive connection from the
        # load balancer can still be served with the old settings.
        deadline = time.monotonic() + 15
        while old_workers & set(group_members(master)) and time.monotonic() < deadline:
            time.sleep(0.05)
        self.progress(f"reloaded {component.name}")

    def dynamodb_client(self):
        """Return a DynamoDB client for the engine itself: the tool's own calls (tables, snapshot, seeding)
        never pass the endpoint proxy, where faults are injected."""
        return boto3.session.Session(**{k.lower(): v for k, v in LOCAL_CREDENTIALS.items()}).client(
            "dynamodb", region_name=self.settings.region, endpoint_url=engine_url(self.settings),
            config=TOOL_CLIENT_CONFIG)

    @contextlib.contextmanager
    def _locked(self, command: str, wait: float = 0.0) -> Iterator[None]:
        ensure_dir(self.settings.run_dir)
        self.lock.acquire(command, wait)
        try:
            yield
        finally:
            self.lock.release()

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
        return self.component(name).log_paths


def foreground_path(settings: Settings) -> Path:
    """Where a foreground `up` records itself, so that `down` from another shell can ask it to stop."""
    return settings.run_dir / "foreground.json"


def mark_foreground(settings: Settings) -> Path:
    """Record this process as the foreground `up` of the stack; return the record's path."""
    path = foreground_path(settings)
    pid = os.getpid()
    ProcessRecord("up", pid, start_time(pid) or 0, sys.argv).save(path)
    return path
