"""The local stack's health: what keeps it from being healthy, waiting until it is, and `status`.

A component is healthy when its health URL answers 200 (or its ports accept connections) and it does its
job (deep.py: the engine answers a DynamoDB call in time and has every table, each app reaches every table it
uses); once every component is, the ALBs' target health (read from HAProxy's stats socket, lbstats.py) must
be too.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ComponentFailed
from . import deep, lbstats
from .components import Component, engine_url, http_ok
from .process import is_alive, port_open, tail
from .records import StackRecords

# The component each target group's target is (the ALBs' targets are the stack's own components).
TARGET_COMPONENTS = {"PublicALBTargetGroup": "nginx", "CRMAppTargetGroup": "crm-app",
                     "PrivateALBTargetGroup": "sre-app"}


@dataclass(frozen=True)
class Problem:
    """One thing that keeps the stack from being healthy."""

    component: str
    kind: str  # not-running | exited | unhealthy | data-path | target-unhealthy
    detail: str

    def __str__(self) -> str:
        return f"{self.component}: {self.detail}"

    def to_dict(self) -> dict[str, str]:
        """Return the problem as JSON-ready data."""
        return {"component": self.component, "kind": self.kind, "detail": self.detail}


class StackHealth(StackRecords):
    """The stack's health and status, read from its processes, health URLs and the ALBs' target health."""

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
            # A data path still failing once the processes answer (a table gone, a DynamoDB fault kept across
            # restarts) is the stack's state to report, like an unhealthy target: not a failed start.
            if any(p.kind not in ("target-unhealthy", deep.KIND) for p in problems):
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
        problems += self._data_path_problems({p.component for p in problems})
        if not problems:
            problems = [Problem(TARGET_COMPONENTS.get(t.target_group, t.target), "target-unhealthy",
                                f"target {t.target} of {t.target_group} is {t.out_of_service or t.state}"
                                + (f" ({t.reason})" if t.out_of_service else ""))
                        for t in self.targets() if t.state not in ("healthy", "unused") or t.out_of_service]
        return problems

    def _data_path_problems(self, failing: set[str]) -> list[Problem]:
        """Check, at once and each with a deadline, that the engine and the apps that answer do their job."""
        checks = []
        if "dynamodb" not in failing:
            checks.append(lambda: deep.engine_problems(engine_url(self.settings)))
        for name in ("sre-app", "crm-app"):
            if name in self.components and name not in failing:
                checks.append(lambda c=self.components[name]: deep.app_problems(c))
        return [Problem(name, deep.KIND, detail) for name, detail in deep.run_all(checks)]

    def component_healthy(self, component: Component) -> bool:
        """True if the component answers: its health URL returns 200, or its ports accept connections."""
        if component.health_url:
            return http_ok(component.health_url)
        return all(port_open(p) for p in component.spec.ports)

    def targets(self) -> list[lbstats.TargetHealth]:
        """Return target health of the two ALBs (empty for an ALB that is down), with each target that was
        taken out of service (in maintenance, draining, or deregistered: one its configuration registers that
        the ALB no longer has)."""
        found = []
        for name in ("public-alb", "private-alb"):
            if self.running(name):
                try:
                    config = (self.settings.run_dir / f"{name}.cfg").read_text()
                    found.extend(lbstats.target_health(self.settings.run_dir / f"{name}.sock",
                                                       lbstats.registered(config)))
                except OSError:
                    continue
        return found

    def status(self, problems: list[Problem] | None = None) -> dict[str, Any]:
        """Return every component with pid, ports, state and health, and target health; a component that
        `problems` (from problems()) says fails at its job is not healthy."""
        failing = {p.component for p in problems or [] if p.kind == deep.KIND}
        rows = []
        for name, component in self.components.items():
            record = self.record(name)
            alive = record is not None and is_alive(record)
            state = "running" if alive else ("exited" if record else "stopped")
            rows.append({"name": name, "state": state, "pid": record.pid if alive else None,
                         "ports": component.spec.ports, "url": component.url,
                         "healthy": alive and name not in failing and self.component_healthy(component),
                         "log": str(component.spec.log_path)})
        return {"components": rows, "targets": [t.to_dict() for t in self.targets()],
                "log_shipping": self.log_shipping(),
                "endpoints": self.settings.endpoints, "state_dir": str(self.settings.state_dir)}

    def log_shipping(self) -> dict[str, Any] | None:
        """Return what cloudwatch-agent has not shipped yet (its backlog), what it dropped, and its errors
        (None before it first reported)."""
        from ..twin.agent import read_status

        status = read_status(self.settings.run_dir / "cloudwatch-agent")
        if status is None:
            return None
        files = status.get("files", {}).values()
        return {"backlog_bytes": sum(f.get("backlog_bytes", 0) for f in files),
                "dropped_events": sum(f.get("dropped_events", 0) for f in files),
                "errors": sorted({f["last_error"] for f in files if f.get("last_error")}),
                "updated": status.get("updated")}

    def log_paths(self, name: str) -> list[Path]:
        """Return the log files of a component: its process output, then its own logs."""
        return self.component(name).log_paths
