"""Gather one round of observations of the local stack (about a second, the readers run side by side)."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime

import boto3
from botocore.config import Config

from ...local.components import LOCAL_CREDENTIALS, engine_url
from ...local.control import LocalControl
from ...local.process import group_members
from ...local.stack import Stack
from ...tables import table_definitions
from ..aws import network
from ..aws.observe import guard, role_drift
from ..aws.template import resources as deployed
from ..deadline import Readers
from ..model import Observations
from . import probes, procs, readers, resources

WINDOW_S = 20.0  # logs: what is happening now (a cleared fault stops counting within this)
MEMORY_WINDOW_S = 300.0  # the leak's trend: the last five minutes of interval metrics
# One run's readers all answer by then, or are noted unknown: a probe's own timeout (probes.TIMEOUT, 2 s)
# fits, with a margin, and a whole doctor run stays within 3 s whatever hangs.
DEADLINE_S = 2.5
# The tool's reads of the engine (tables, interval metrics) fail fast: a silent engine is the probes' finding.
ENGINE_READS = Config(connect_timeout=1, read_timeout=2, retries={"total_max_attempts": 1})


def observe(stack: Stack, window_s: float = WINDOW_S, deadline_s: float = DEADLINE_S) -> Observations:
    """Return what the local stack shows now: processes, probes, targets, logs, configs and metrics. Every
    reader runs at once under one deadline: one that has not answered by then is noted unknown."""
    obs = Observations(checked_at=datetime.now(UTC).isoformat(timespec="seconds"), world="local")
    since = time.time() - window_s
    logs = stack.settings.logs_dir
    run = Readers(deadline_s, obs.unknown)
    context: list = []  # the machine's busy processes that are not on the stack's hosts
    run.start("processes", lambda: _processes(stack, context, obs.process_instances))
    run.start("probes", lambda: probes.probe_all(stack.settings, engine_url(stack.settings)))
    run.start("dependency samples", lambda: probes.samples(stack.settings, engine_url(stack.settings)))
    run.start("twin", lambda: _twin_drift(stack, obs.unknown))
    run.start("logs", lambda: {
        "nginx-access": readers.json_log("nginx-access", logs / "nginx-access.log", since),
        "nginx-error": readers.nginx_error_log(logs / "nginx-error.log", since),
        "sre-app": readers.json_log("sre-app", logs / "sre-app.json.log", since),
        "crm-app": readers.json_log("crm-app", logs / "crm-app.json.log", since)})
    run.start("configs", lambda: readers.config_drift(stack))
    run.start("app settings", lambda: resources.app_settings(stack))
    run.start("targets", lambda: [t.to_dict() for t in stack.targets()])
    run.start("tables", lambda: _data(stack))
    (obs.components, (obs.host_cpu_percent, obs.top_processes), obs.connections,
     obs.descriptors) = run.result("processes", ({}, (0.0, []), {}, {}))
    obs.host_context = list(context)
    obs.probes = run.result("probes", {})
    obs.policy_drift, obs.network_drift = run.result("twin", ([], []))
    obs.dependency_samples = run.result("dependency samples", {})
    obs.logs = run.result("logs", {})
    obs.config_drift = run.result("configs", {})
    obs.app_tables, obs.template_settings, obs.settings_drift = run.result("app settings", ({}, {}, {}))
    obs.disk_free = resources.disk_free(stack)
    obs.template_tables = [d["TableName"] for d in table_definitions()]
    obs.targets = run.result("targets", [])
    obs.tables, obs.memory, obs.missing_indexes = run.result("tables", ([], {}, {}))
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


def _processes(stack: Stack, context: list, instances: dict[int, str]) -> tuple:
    """Read every process twice, half a second apart: the components' states, CPU and memory, the host's CPU
    and its busy processes (those off the stack's hosts into `context`), connections and descriptors."""
    before, after = procs.pair(0.5)
    host = str(stack.settings.state_dir.resolve())
    cpu = readers.host_cpu(_stack_pids(stack, after), host=host, context=context, snaps=(before, after),
                           instances=instances)
    return (readers.components(stack, before, after), cpu, resources.connections(stack, after),
            resources.descriptors(stack, after))


def _stack_pids(stack: Stack, snap: procs.Snapshot) -> set[int]:
    """The stack's processes, and doctor's own (its CPU is not the host's problem)."""
    pids = {os.getpid(), os.getppid()}
    for name in stack.components:
        record = stack.record(name)
        if record:
            pids.update(snap.members(record.pid))
            pids.add(record.unit_pid)
    return pids


def _data(stack: Stack) -> tuple[list[str], dict, dict]:
    """Return the tables that exist, the sre-app workers' memory series and the template's indexes each table
    lacks (all empty if the engine is down)."""
    if not stack.running("dynamodb") and "dynamodb" in stack.components:
        return [], {}, {}
    client = boto3.session.Session(**{k.lower(): v for k, v in LOCAL_CREDENTIALS.items()}).client(
        "dynamodb", region_name=stack.settings.region, endpoint_url=engine_url(stack.settings), config=ENGINE_READS)
    tables = client.list_tables()["TableNames"]  # an engine that refuses or is silent: the tables are unknown
    record = stack.record("sre-app")
    workers = [p for p in group_members(record.pid) if p != record.pid] if record else []
    return tables, readers.memory_series(client, workers, MEMORY_WINDOW_S), missing_indexes(client, tables)


def missing_indexes(client, tables: list[str]) -> dict[str, list[str]]:
    """Return, per table of the template that exists, the global secondary indexes of the template it lacks."""
    found = {}
    for definition in table_definitions():
        wanted = [g["IndexName"] for g in definition.get("GlobalSecondaryIndexes", [])]
        if not wanted or definition["TableName"] not in tables:
            continue
        table = client.describe_table(TableName=definition["TableName"])["Table"]
        have = {g["IndexName"] for g in table.get("GlobalSecondaryIndexes", [])}
        if missing := [name for name in wanted if name not in have]:
            found[definition["TableName"]] = missing
    return found
