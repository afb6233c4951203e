"""What the MCP tools act on: the local stack, or an AWS stack made by `sre-workshop deploy`.

Each method returns JSON-ready data or raises a WorkshopError; the server turns the error into its
to_dict() with isError set. The AWS world reads the same things from AWS: doctor's AWS observations,
CloudWatch Logs and metrics, ELBv2 target health, the ledger in IncidentHistoryTable; it makes the same changes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..diagnose.doctor import run_aws, run_local
from ..errors import StackBusy, UsageError
from ..faults import runner
from ..faults.aws_backend import AwsBackend
from ..faults.backends import LocalBackend
from ..local.stack import Stack
from ..settings import Settings
from ..state import lab_running
from . import architecture, logs, metrics

OPEN = ("injecting", "active")


class LocalWorld:
    """The local stack's signals and remediations."""

    name = "local"

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.backend = LocalBackend(stack)

    def architecture(self) -> dict[str, Any]:
        """Describe the live stack."""
        return architecture.describe(self.stack)

    def health(self) -> dict[str, Any]:
        """Say whether every component, target and public entry point is healthy."""
        problems = self.backend.problems()
        rows = self.stack.status()["components"]
        return {"healthy": not problems, "problems": problems,
                "components": [{"name": r["name"], "state": r["state"], "healthy": r["healthy"]} for r in rows]}

    def target_health(self) -> dict[str, Any]:
        """Return each target group's targets and their health, with the health check's settings."""
        return architecture.describe(self.stack)["target_groups"]

    def logs(self, group: str, pattern: str | None, window_s: float, limit: int) -> dict[str, Any]:
        """Return one log group's lines over the window, summarised."""
        return logs.read(self.stack, group, pattern, window_s, limit)

    def metrics(self, name: str, window_s: float, statistic: str) -> dict[str, Any]:
        """Return a metric over the window."""
        return metrics.read(self.stack, name, window_s, statistic)

    def diagnose(self) -> dict[str, Any]:
        """Run doctor once (refused while a lab runs: it would give the learner the answer)."""
        no_lab(self.backend, "diagnose")
        return run_local(self.stack).to_dict()

    def restart(self, component: str) -> dict[str, Any]:
        """Restart one component (start it if it is down), as `systemctl restart` would."""
        self.stack.service("restart", component)
        return {"restarted": component, "health": self.health()}

    def service(self, action: str, component: str) -> dict[str, Any]:
        """Start, stop, restart or reload a component as `systemctl` would (nginx's reload reads its file as
        it is on the instance)."""
        if action == "reload":
            self.stack.reload(component, render=False)
        else:
            self.stack.service(action, component)
        return {"action": action, "name": component, "health": self.health()}


class AwsWorld:
    """An AWS stack: health, targets and incidents, and the same changes through the fault runner."""

    name = "aws"

    def __init__(self, backend: AwsBackend, infra_dir: Path | None = None) -> None:
        self.backend = backend
        self.infra_dir = infra_dir or Settings.from_env().infra_dir  # doctor compares nginx.conf with its template

    def architecture(self) -> dict[str, Any]:
        """Describe the stack from its CloudFormation outputs and its target groups."""
        return {"world": "aws", "outputs": self.backend.ctl.outputs(), "target_groups": self.target_health()}

    def health(self) -> dict[str, Any]:
        """Say whether targets and public entry points are healthy."""
        problems = self.backend.problems()
        return {"healthy": not problems, "problems": problems}

    def target_health(self) -> dict[str, Any]:
        """Return the target groups' targets and their health (ELBv2 DescribeTargetHealth)."""
        return {"targets": self.backend.ctl.target_health()}

    def logs(self, group: str, pattern: str | None, window_s: float, limit: int) -> dict[str, Any]:
        """Return one of the stack's CloudWatch log groups over the window, summarised."""
        return logs.read_aws(self.backend.ctl, group, pattern, window_s, limit)

    def metrics(self, name: str, window_s: float, statistic: str) -> dict[str, Any]:
        """Return a metric of the stack over the window (CloudWatch and the interval metrics)."""
        return metrics.read_aws(self.backend.ctl, name, window_s, statistic)

    def diagnose(self) -> dict[str, Any]:
        """Run doctor once on the stack."""
        return run_aws(self.backend.ctl, self.infra_dir).to_dict()

    def restart(self, component: str) -> dict[str, Any]:
        """Restart a component's systemd unit through SSM Run Command."""
        self.backend.ctl.restart(component)
        return {"restarted": component, "health": self.health()}

    def service(self, action: str, component: str) -> dict[str, Any]:
        """Restart a component (the only action offered on AWS here; run_command does the others)."""
        if action != "restart":
            raise UsageError(f"on AWS, service {action} is run_command's `systemctl {action} UNIT`")
        self.backend.ctl.restart(component)
        return {"action": action, "name": component, "health": self.health()}


def no_lab(backend: LocalBackend | AwsBackend, tool: str) -> None:
    """Refuse a tool that would name the fault (or undo it for the learner) while a lab runs on the local stack."""
    if isinstance(backend, LocalBackend) and lab_running(backend.stack.settings):
        raise StackBusy(f"a lab is running on this stack: {tool} would give the answer away (`sre-workshop lab "
                        "hint`; `sre-workshop lab giveup` ends the lab)")


def incidents(backend: LocalBackend | AwsBackend, limit: int, hide_open: bool) -> list[dict[str, Any]]:
    """Return the newest incidents without what clear restores; with `hide_open`, none still open (an agent
    under evaluation must not read the answer from the ledger)."""
    no_lab(backend, "list_incidents")
    shown = []
    for incident in backend.ledger.incidents(limit):
        if hide_open and incident["status"] in OPEN:
            continue
        detail = {k: v for k, v in incident["detail"].items() if k != "saved"}
        shown.append({**incident, "detail": detail})
    return shown


def inject(backend: LocalBackend | AwsBackend, name: str, params: dict[str, str]) -> dict[str, Any]:
    """Inject a fault of the catalogue with `key=value` parameters."""
    no_lab(backend, "inject_fault")
    record = runner.inject(backend, name, [f"{k}={v}" for k, v in params.items()], injected_by="mcp")
    return {k: v for k, v in record.items() if k != "saved"}


def clear(backend: LocalBackend | AwsBackend, name: str) -> dict[str, Any]:
    """Clear one fault and verify steady state."""
    no_lab(backend, "clear_fault")
    return {"cleared": runner.clear(backend, name, timeout=getattr(backend, "steady_timeout", 60.0)), "steady": True}
