"""Bring the local stack up and take it down; the `Stack` every command works with.

State lives in one directory (Settings.state_dir): run/ holds pid records, sockets, rendered configs and
the stack's state (state.py), logs/ every log, data/ the DynamoDB snapshot. One stack per state
directory: a command that changes it holds run/stack.lock. Processes are not supervised after start:
like systemd units without Restart=, a component that dies stays down until `service start|restart NAME`.

`Stack` is put together by job, each in its own module:
    records.py   components, pid records, the lock            (StackRecords, the base)
    health.py    problems, waiting for health, status         (StackHealth)
    data.py      the tool's DynamoDB client, tables, snapshot (StackData)
    services.py  one component: spawn, stop, restart, reload  (StackServices)
    stack.py     the whole stack: up and down                 (Stack)
"""

from __future__ import annotations

import os
import signal
import sys
import time
from dataclasses import replace
from pathlib import Path

from ..errors import StackBusy
from ..settings import Settings
from ..state import StateStore, ensure_dir
from ..twin.hostview import write_etc
from ..twin.instances import APPS
from . import configs
from .components import ORDER, create_fault_token, dynamodb_address
from .health import Problem, StackHealth
from .process import ProcessRecord, find_program, is_alive, start_time, stop
from .records import Progress
from .services import StackServices


class Stack(StackServices, StackHealth):
    """The local stack described by `settings`. Creating one reads nothing and writes nothing."""

    @classmethod
    def open(cls, settings: Settings, progress: Progress | None = None) -> Stack:
        """Return the stack as the last `up` made it (its DynamoDB engine included)."""
        state = StateStore(settings).read()
        return cls(replace(settings, dynamodb_endpoint=state.dynamodb_endpoint,
                           engine=state.engine or settings.engine,
                           metrics_period=state.metrics_period or settings.metrics_period), progress)

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
            state.metrics_period = self.settings.metrics_period
        configs.write_configs(self.settings, engine, state.overlays)
        for logical in APPS:  # each app's env file, which it reads at every start (kept if it exists)
            write_etc(self.settings, logical)
        for name in names:
            self._check_config(name)
            self._spawn(name)
        self._prepare_data(timeout)
        return self.wait_healthy(timeout - (time.monotonic() - started_at))

    # --- down --------------------------------------------------------------------------------------

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
            if save and name == "dynamodb" and name in self.components and self.running(name):
                # An in-memory engine's data must be saved (this raises, leaving it running, when it cannot be);
                # a durable one's snapshot is a backup, from which a deleted table is recreated.
                self.save_data(required=self.components[name].data)
            if self._stop(name):
                stopped.append(name)
        return stopped

    def _stop_fault_helpers(self) -> list[str]:
        """Stop the processes faults started for this stack (recorded by pid under run/helpers/; run/faults/
        held them before, and a stack upgraded with a fault active may still have one there)."""
        stopped = []
        run = self.settings.run_dir
        for path in sorted([*(run / "helpers").glob("*.json"), *(run / "faults").glob("*.json")]):
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


def foreground_path(settings: Settings) -> Path:
    """Where a foreground `up` records itself, so that `down` from another shell can ask it to stop."""
    return settings.run_dir / "foreground.json"


def mark_foreground(settings: Settings) -> Path:
    """Record this process as the foreground `up` of the stack; return the record's path."""
    path = foreground_path(settings)
    pid = os.getpid()
    ProcessRecord("up", pid, start_time(pid) or 0, sys.argv).save(path)
    return path
