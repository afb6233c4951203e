"""Gather one round of observations of the local stack (about a second, the readers run side by side)."""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from ...local.components import engine_url
from ...local.control import LocalControl
from ...local.process import group_members
from ...local.stack import Stack
from ..aws import network
from ..aws.observe import guard, role_drift
from ..aws.template import resources as deployed
from ..model import Observations
from . import probes, readers

WINDOW_S = 20.0  # logs: what is happening now (a cleared fault stops counting within this)
MEMORY_WINDOW_S = 300.0  # the leak's trend: the last five minutes of interval metrics


def observe(stack: Stack, window_s: float = WINDOW_S) -> Observations:
    """Return what the local stack shows now: processes, probes, targets, logs, configs and metrics."""
    obs = Observations(checked_at=datetime.now(UTC).isoformat(timespec="seconds"), world="local")
    since = time.time() - window_s
    logs = stack.settings.logs_dir
    with ThreadPoolExecutor(5) as pool:
        components = pool.submit(readers.components, stack)
        probed = pool.submit(probes.probe_all, stack.settings, engine_url(stack.settings))
        cpu = pool.submit(readers.host_cpu, _stack_pids(stack), host=str(stack.settings.state_dir.resolve()))
        twin = pool.submit(_twin_drift, stack, obs.unknown)
        obs.logs = {"nginx-access": readers.json_log("nginx-access", logs / "nginx-access.log", since),
                    "nginx-error": readers.nginx_error_log(logs / "nginx-error.log", since),
                    "sre-app": readers.json_log("sre-app", logs / "sre-app.json.log", since),
                    "crm-app": readers.json_log("crm-app", logs / "crm-app.json.log", since)}
        obs.config_drift = readers.config_drift(stack)
        obs.app_tables = readers.app_tables(stack)
        obs.targets = [t.to_dict() for t in stack.targets()]
        obs.tables, obs.memory = _data(stack)
        obs.components, obs.probes = components.result(), probed.result()
        obs.host_cpu_percent, obs.top_processes = cpu.result()
        obs.policy_drift, obs.network_drift = twin.result()
    return obs


def _twin_drift(stack: Stack, unknown: dict[str, str]) -> tuple[list[str], list[str]]:
    """Return how the instances' role and the security-group chain in the AWS API twin differ from the
    template (the DynamoDB endpoint enforces that role, the twin those rules on the load balancers' hops);
    a stack without the twin has neither."""
    if "aws-api" not in stack.components:
        return [], []
    if not stack.running("aws-api"):
        unknown["role policy"] = unknown["security groups"] = "aws-api is not running"
        return [], []
    ctl = LocalControl(stack).twin()
    resources = guard(unknown, "template", lambda: deployed(ctl), None)
    if resources is None:
        return [], []
    return (guard(unknown, "role policy", lambda: role_drift(ctl, resources), []),
            guard(unknown, "security groups", lambda: network.drift(ctl, resources), []))


def _stack_pids(stack: Stack) -> set[int]:
    """The stack's processes, and doctor's own (its CPU is not the host's problem)."""
    pids = {os.getpid(), os.getppid()}
    for name in stack.components:
        record = stack.record(name)
        if record:
            pids.update(group_members(record.pid))
            pids.add(record.unit_pid)
    return pids


def _data(stack: Stack) -> tuple[list[str], dict]:
    """Return the tables that exist and the sre-app workers' memory series (empty if the engine is down)."""
    if not stack.running("dynamodb") and "dynamodb" in stack.components:
        return [], {}
    client = stack.dynamodb_client()
    try:
        tables = client.list_tables()["TableNames"]
    except Exception:
        return [], {}
    record = stack.record("sre-app")
    workers = [p for p in group_members(record.pid) if p != record.pid] if record else []
    return tables, readers.memory_series(client, workers, MEMORY_WINDOW_S)
