"""Gather one round of observations of an AWS stack: the same Observations the local stack gives, from AWS
signals. The readers run side by side; the SSM reads of the instances take the longest (a few seconds).

Whatever cannot be read is noted in Observations.unknown with the reason, and is neither a finding nor
healthy: an instance whose SSM command does not run, a target group without targets, a log group that is
missing. (Against moto's server that is always the case for the instances and the targets.)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from ...aws.control import AwsControl
from ...errors import WorkshopError
from ...local.configs import render_nginx
from ...settings import TABLE_NAMES
from ..local.probes import probe
from ..local.readers import changed_lines
from ..model import Observations
from . import appmetrics, hosts, logs, metrics, network, policy, targets, template

WINDOW_S = 60.0  # logs: the last minute, as locally
METRICS_WINDOW_S = 300.0  # CloudWatch's one-minute datapoints arrive a minute or two late
MEMORY_WINDOW_S = 300.0  # the leak's trend: the last five minutes of interval metrics
SERVICES = ("ssm", "logs", "cloudwatch", "elbv2", "cloudformation", "iam", "ec2", "dynamodb")
T = TypeVar("T")


def observe(ctl: AwsControl, infra_dir: Path, window_s: float = WINDOW_S) -> Observations:
    """Return what the AWS stack shows now: instances, probes, targets, logs, metrics and configs."""
    obs = Observations(checked_at=datetime.now(UTC).isoformat(timespec="seconds"), world="aws")
    ctl.outputs()  # no such stack, or not one of ours: one AwsError now, before anything runs
    ctl.instance("nginx")
    for service in SERVICES:  # made here, once: a session is not safe to make clients from in threads
        ctl.client(service)
    now, unknown = time.time(), obs.unknown
    with ThreadPoolExecutor(7) as pool:
        answers = pool.submit(hosts.read_all, ctl, unknown)
        public = pool.submit(public_probes, ctl)
        summaries = pool.submit(guard, unknown, "logs", logs.read, {}, ctl, now - window_s, now, unknown)
        totals = pool.submit(guard, unknown, "metrics", _metrics, {}, ctl, now - METRICS_WINDOW_S, now)
        health = pool.submit(guard, unknown, "targets", targets.read, [], ctl, unknown)
        resources = guard(unknown, "template", template.resources, None, ctl)
        role = pool.submit(guard, unknown, "role policy", role_drift, [], ctl, resources)
        groups = pool.submit(guard, unknown, "security groups", _network, [], ctl, resources)
        tables = pool.submit(guard, unknown, "tables", _tables, [], ctl)
        obs.logs, obs.metrics, obs.targets = summaries.result(), totals.result(), health.result()
        obs.policy_drift, obs.network_drift = role.result(), groups.result()
        obs.tables = tables.result()
        read = answers.result()
    _hosts(obs, ctl, read, infra_dir)
    obs.probes.update(public.result())
    series = guard(unknown, "interval metrics", appmetrics.series, {}, ctl,
                   hosts.worker_metric_ids(read["sre-app"]) if "sre-app" in read else [], now - MEMORY_WINDOW_S)
    obs.memory = {worker: [p[:3] for p in points] for worker, points in series.items()}
    return obs


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


def _metrics(ctl: AwsControl, start: float, end: float) -> dict[str, float]:
    return metrics.totals(metrics.fetch(ctl, metrics.queries(ctl), start, end))


def role_drift(ctl: AwsControl, resources: dict[str, Any] | None) -> list[str]:
    """Return how the role differs from the deployed template (nothing to compare without the template)."""
    return policy.drift(ctl, resources, template.Resolver(ctl)) if resources else []


def _network(ctl: AwsControl, resources: dict[str, Any] | None) -> list[str]:
    """Return the template's ingress rules that the security groups lack."""
    return network.drift(ctl, resources) if resources else []


def _tables(ctl: AwsControl) -> list[str]:
    """Return the region's DynamoDB tables (what exists, whatever the apps are told)."""
    names: list[str] = []
    for page in ctl.client("dynamodb").get_paginator("list_tables").paginate():
        names += page["TableNames"]
    return names


def _hosts(obs: Observations, ctl: AwsControl, read: dict[str, dict[str, Any]], infra_dir: Path) -> None:
    """Fill in what the instances said: units, hop probes, nginx.conf, the apps' tables, the app host's CPU."""
    component_of = {name: component for planned in hosts.hops(ctl).values() for component, name, _ in planned}
    for component, answer in read.items():
        _host(obs, component, answer, component_of)
    if "nginx" in read:
        _nginx_conf(obs, ctl, read["nginx"].get("nginx_conf"), infra_dir)
    if "sre-app" in read:
        obs.top_processes = [tuple(t) for t in read["sre-app"].get("top", [])]
    cpu = read["sre-app"].get("host_cpu_percent") if "sre-app" in read else metrics.host_cpu(obs.metrics)
    obs.host_cpu_percent = float(cpu or 0.0)  # the instance's own reading is current; CloudWatch's is minutes old


def _host(obs: Observations, component: str, answer: dict[str, Any], component_of: dict[str, str]) -> None:
    """Fill in one instance's unit state, hop probes and table settings."""
    state = hosts.component_state(component, answer)
    if state is None:
        obs.unknown[f"{component} unit"] = f"systemctl is-active answered {answer.get('state')!r}"
    else:
        obs.components[component] = state
    obs.probes.update({p.name: p for p in hosts.probes(component_of, answer)})
    settings = answer.get("tables")
    if isinstance(settings, dict) and "error" not in settings:
        obs.app_tables[component] = {k: v for k, v in settings.items() if k in TABLE_NAMES}
    elif settings is not None:
        error = settings.get("error") if isinstance(settings, dict) else settings
        obs.unknown[f"{component} settings"] = str(error)


def _nginx_conf(obs: Observations, ctl: AwsControl, conf: Any, infra_dir: Path) -> None:
    """Compare nginx.conf on the instance with the template rendered as user data renders it."""
    if not isinstance(conf, str):
        obs.unknown["nginx.conf"] = str(conf.get("error") if isinstance(conf, dict) else "not read")
        return
    expected = render_nginx((infra_dir / "nginx" / "nginx.conf").read_text(), ctl.outputs()["PrivateALBDNSName"])
    changed = changed_lines(expected.splitlines(), conf.splitlines())
    if changed:
        obs.config_drift["nginx.conf"] = changed
