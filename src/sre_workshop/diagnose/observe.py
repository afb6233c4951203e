"""Gather one round of observations of a stack, the same way in both worlds (world.py says what differs).

Everything is read through the AWS API (AWS's, or the local stack's twin): the three instances from inside
through SSM Run Command (aws/hosts.py), the public entry points over HTTP, target health, the log groups,
CloudWatch metrics, the role and the security groups against the deployed template, the tables and their
indexes, sre-app's interval metrics. The readers run side by side under the world's deadline
(deadline.Readers): one that has not answered by then is noted in Observations.unknown, as is whatever AWS
refuses; neither is a finding, nor healthy.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from ..aws.control import INSTANCES, AwsControl
from ..errors import WorkshopError
from ..settings import TABLE_NAMES
from ..tables import table_definitions
from . import appsettings
from .aws import appmetrics, hosts, logs, metrics, network, policy, targets, template
from .deadline import Readers
from .local.probes import probe
from .local.readers import changed_lines
from .model import Observations
from .world import MEMORY_WINDOW_S, World

T = TypeVar("T")


def observe(world: World) -> Observations:
    """Return what the stack shows now: instances, probes, targets, logs, metrics, configs and resources."""
    obs = Observations(checked_at=datetime.now(UTC).isoformat(timespec="seconds"), world=world.name)
    run = Readers(world.deadline_s, obs.unknown)
    finish = world.extras(run, obs) if world.extras else None
    ctl, now = world.ctl, time.time()
    # The stack's outputs and its instances first, under the deadline too (a frozen API hangs the first call);
    # the readers make their clients as they start, while the instances' commands run.
    if world.api_required:
        _connect(ctl)
    else:
        run.start("AWS API", lambda: _connect(ctl))
    if world.api_required or run.result("AWS API", False):
        # Each reader notes what it could not read in a dict of its own, merged when it is collected: one
        # still running after the deadline never writes into a report already made.
        run.start("instances", lambda: _noting(hosts.read_all, ctl))
        run.start("public probes", lambda: public_probes(ctl))
        run.start("logs", lambda: _noting(logs.read, ctl, now - world.log_window_s, now))
        run.start("metrics", lambda: metrics.totals(metrics.fetch(
            ctl, metrics.queries(ctl), now - world.metrics_window_s, now, world.metrics_period_s)))
        run.start("targets", lambda: _noting(targets.read, ctl))
        run.start("template", lambda: _noting(_drift, ctl))
        run.start("tables", lambda: _tables(ctl))
        read = _merged(run, "instances", {})
        _hosts(obs, ctl, read, world)
        obs.probes.update(run.result("public probes", {}))
        (obs.logs, obs.missing_log_groups), obs.targets = _merged(run, "logs", ({}, {})), _merged(run, "targets", [])
        obs.metrics = run.result("metrics", {})
        obs.policy_drift, obs.network_drift = _merged(run, "template", ([], []))
        obs.tables, obs.template_tables, obs.missing_indexes = run.result("tables", ([], [], {}))
        workers = hosts.worker_metric_ids(read["sre-app"]) if "sre-app" in read else []
        run.start("interval metrics", lambda: appmetrics.series(ctl, workers, now - MEMORY_WINDOW_S))
        series = run.result("interval metrics", {})
        obs.memory = {worker: [p[:3] for p in points] for worker, points in series.items()}
    if finish:
        finish()
    return obs


def _connect(ctl: AwsControl) -> bool:
    ctl.outputs()  # no such stack, or not one of ours: one AwsError, and nothing else is read
    for component in INSTANCES:
        ctl.instance(component)
    ctl.client("ssm")
    return True


def _noting(read: Callable[..., T], *args: Any) -> tuple[T, dict[str, str]]:
    unknown: dict[str, str] = {}
    return read(*args, unknown), unknown


def _merged(run: Readers, name: str, default: T) -> T:
    """Return a _noting reader's value and note what it could not read."""
    value, unknown = run.result(name, (default, {}))
    run.unknown.update(unknown)
    return value


def guard(unknown: dict[str, str], what: str, read: Callable[..., T], default: T, *args: Any) -> T:
    """Return read(*args); when AWS refuses or fails, note why under `what` in `unknown` and return `default`."""
    try:
        return read(*args)
    except ClientError as exc:
        error = exc.response.get("Error", {})
        unknown[what] = f"{error.get('Code', 'error')}: {error.get('Message', exc)}"
    except (BotoCoreError, WorkshopError) as exc:
        unknown[what] = str(exc)
    return default


def public_probes(ctl: AwsControl) -> dict[str, Any]:
    """Probe the public ALB's two entry points over HTTP, as a user would."""
    found = [probe("public-alb", "public-alb :80 /", ctl.url("app", "/")),
             probe("public-alb", "public-alb :8080 /api/customers", ctl.url("crm", "/api/customers?limit=1"))]
    return {p.name: p for p in found}


def _drift(ctl: AwsControl, unknown: dict[str, str]) -> tuple[list[str], list[str]]:
    """Return how the role and the security-group chain differ from the deployed template."""
    resources = guard(unknown, "template", template.resources, None, ctl)
    if resources is None:
        return [], []
    return (guard(unknown, "role policy", policy.drift, [], ctl, resources, template.Resolver(ctl)),
            guard(unknown, "security groups", network.drift, [], ctl, resources))


def _tables(ctl: AwsControl) -> tuple[list[str], list[str], dict[str, list[str]]]:
    """Return the region's DynamoDB tables (what exists, whatever the apps are told), the template's tables
    (by the names the stack gave them) and, per template table that exists, the template's global secondary
    indexes it lacks."""
    client, names = ctl.client("dynamodb"), []
    for page in client.get_paginator("list_tables").paginate():
        names += page["TableNames"]
    wanted, missing = [], {}
    for definition in table_definitions():  # named by the template's logical ids
        name = ctl.physical(definition["TableName"])
        wanted.append(name)
        indexes = [g["IndexName"] for g in definition.get("GlobalSecondaryIndexes", [])]
        if not indexes or name not in names:
            continue
        table = client.describe_table(TableName=name)["Table"]
        have = {g["IndexName"] for g in table.get("GlobalSecondaryIndexes", [])}
        if lost := [index for index in indexes if index not in have]:
            missing[name] = lost
    return names, wanted, missing


def _hosts(obs: Observations, ctl: AwsControl, read: dict[str, dict[str, Any]], world: World) -> None:
    """Fill in what the instances said: units, hop probes, nginx.conf, the apps' tables and settings, the busy
    processes."""
    component_of = {name: component for planned in hosts.hops(ctl).values() for component, name, _ in planned}
    for component, answer in read.items():
        _host(obs, component, answer, component_of)
        if isinstance(answer.get("settings"), dict) and "error" not in answer["settings"]:
            obs.template_settings[component] = world.expected_settings(component)
            running = {k: v for k, v in answer["settings"].items() if k in appsettings.POINTING}  # secrets digested
            obs.settings_drift[component] = appsettings.drift(obs.template_settings[component], running)
    if "nginx" in read:
        _nginx_conf(obs, read["nginx"].get("nginx_conf"), world.expected_nginx)
    # Each instance's busy processes count for that instance (the app host's first: locally the instances
    # share one machine, and a process that names no instance is seen from each of them).
    for component in sorted(read, key=lambda c: c != "sre-app"):
        for pid, name, cpu in read[component].get("top", []):
            if pid not in obs.process_instances:
                obs.process_instances[pid] = INSTANCES[component]
                obs.top_processes.append((pid, name, float(cpu)))
    readings = [float(a["host_cpu_percent"]) for a in read.values() if a.get("host_cpu_percent") is not None]
    # The instances' own readings are current; CloudWatch's are minutes old, for when none could be read.
    obs.host_cpu_percent = max(readings) if readings else float(metrics.host_cpu(obs.metrics) or 0.0)


def _host(obs: Observations, component: str, answer: dict[str, Any], component_of: dict[str, str]) -> None:
    """Fill in one instance's unit state, hop probes and table settings."""
    state = hosts.component_state(component, answer)
    if state is None:
        obs.unknown[f"{component} unit"] = f"systemd's ActiveState was {answer.get('state')!r}"
    else:
        obs.components[component] = state
    obs.probes.update({p.name: p for p in hosts.probes(component_of, answer)})
    _resources(obs, component, answer)
    settings = answer.get("tables")
    if isinstance(settings, dict) and "error" not in settings:
        obs.app_tables[component] = {k: v for k, v in settings.items() if k in TABLE_NAMES}
    elif settings is not None:
        error = settings.get("error") if isinstance(settings, dict) else settings
        obs.unknown[f"{component} settings"] = str(error)


def _resources(obs: Observations, component: str, answer: dict[str, Any]) -> None:
    """Fill in one instance's finite resources: its unit's descriptors, the connections that hold an app's
    workers (each serves one request at a time, or its threads), the free space where its logs go."""
    if isinstance(answer.get("descriptors"), list):
        obs.descriptors[component] = tuple(answer["descriptors"])
    connections, workers = answer.get("connections"), answer.get("workers")
    if component in hosts.THREADS and isinstance(connections, list) and isinstance(workers, int):
        variable, default = hosts.THREADS[component]
        settings = answer.get("tables") if isinstance(answer.get("tables"), dict) else {}
        threads = int(settings.get(variable, default)) if variable and str(settings.get(variable, default)).isdigit() \
            else default
        obs.connections[component] = (int(connections[1]), workers * threads)
    for path, free in (answer.get("disk_free") or {}).items():
        if free is not None:
            obs.disk_free[f"{INSTANCES[component]}:{path}"] = float(free)


def _nginx_conf(obs: Observations, conf: Any, expected_nginx: Callable[[], str]) -> None:
    """Compare nginx.conf on the instance with the template as it renders on the instance."""
    if not isinstance(conf, str):
        obs.unknown["nginx.conf"] = str(conf.get("error") if isinstance(conf, dict) else "not read")
        return
    changed = changed_lines(expected_nginx().splitlines(), conf.splitlines())
    if changed:
        obs.config_drift["nginx.conf"] = changed
