"""One component of the local stack at a time: spawn, stop, start, restart and reload it, as systemctl would.

A component is spawned from its spec with the overlays in effect (a config or environment change a fault
made is kept across restarts until it is removed), after its ports and its rendered config are checked.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from dataclasses import replace

from ..errors import ComponentFailed, PortInUse
from ..tables import create_tables
from ..twin import trail
from ..twin.instances import IN_VIEW, env_file, instance_of
from . import configs, snapshot
from .components import ENV_FILE_SETTINGS, LOCAL_CREDENTIALS, create_fault_token, dynamodb_address, read_env_file
from .data import StackData
from .process import find_program, group_members, port_open, spawn, stop, tail, wait_ready


class StackServices(StackData):
    """The stack's components, one at a time."""

    def service(self, action: str, name: str, timeout: float = 30.0) -> None:
        """Stop, start or restart one component, as `systemctl ACTION` would."""
        component = self.component(name)
        with self._locked(f"service {action} {name}", wait=30):
            if action in ("stop", "restart"):
                if name == "dynamodb" and self.running(name):  # saved, or for a durable engine backed up
                    self.save_data(required=component.data)
                self._stop(name)
            if action in ("start", "restart") and not self.running(name):
                self._start_one(name, timeout)
        self._record(action, name)

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
        self._record("reload", name)
        self.progress(f"reloaded {component.name}")

    def _record(self, action: str, name: str) -> None:
        """Record the action in the twin's CloudTrail, as the Run Command an operator would send for it."""
        instance = instance_of(name)
        # From an instance's view (Run Command, `shell`), the call that reached the instance is in the trail.
        if instance and not os.environ.get(IN_VIEW):
            trail.record_service_action(self.settings.data_dir, self.settings.region, action, name, instance,
                                        LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"])

    def _start_one(self, name: str, timeout: float) -> None:
        dead = self.record(name)
        if dead is not None:  # what is left of a process that died (a group still exiting) goes first
            stop(dead, timeout=5)
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
            snapshot.restore(client, snapshot.latest(self.snapshot_path))

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
        if name in ENV_FILE_SETTINGS and (deployed := read_env_file(env_file(self.settings, name))):
            for key in ENV_FILE_SETTINGS[name]:  # as systemd's EnvironmentFile, at each start
                if key in deployed:
                    env[key] = deployed[key]
                else:
                    env.pop(key, None)
        if component.fault_control:
            env["FAULT_CONTROL_TOKEN"] = create_fault_token(self.settings)
        if component.runtime_dir:  # a fresh start forgets run-time changes (the leak's control file)
            shutil.rmtree(component.runtime_dir, ignore_errors=True)
        record = spawn(replace(component.spec, env=env, stamped=True))  # as journald stamps a unit's output
        record.save(self.pid_dir / f"{name}.json")
        self.progress(f"started {name} (pid {record.pid})")

    def _wait_started(self, name: str, timeout: float) -> None:
        record = self.record(name)
        component = self.components[name]
        if record is None or not wait_ready(record, component.spec.ports, timeout):
            last = tail(component.spec.log_path, 1) or "no output"
            raise ComponentFailed(f"{name} did not start ({last}); see {component.spec.log_path}")

    def _stop(self, name: str) -> bool:
        record = self.record(name)
        if record is None:
            return False
        stop(record, self.components[name].spec.stop_timeout if name in self.components else 15)
        (self.pid_dir / f"{name}.json").unlink(missing_ok=True)
        self.progress(f"stopped {name}")
        return True
