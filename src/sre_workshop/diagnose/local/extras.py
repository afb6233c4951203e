"""What only the local world runs as processes, read from this machine (world.py says why).

On AWS the load balancers, DynamoDB, the AWS API and its agents are managed services; here each is a process
that can exit, freeze or be slow, and the ALBs' configuration is files; and the engine's store has a disk that
can fill up. The machine is shared: its busy processes that run on no instance of this stack (another stack's, a build)
are context, never a finding.

And the instances are processes of this machine too: when an instance's own reading (SSM Run Command through
the twin) has not come back by the deadline, as on a saturated machine, what it would have said is read from
the machine instead (its unit's state, descriptors and busy processes, the hops it probes, nginx.conf, the
apps' tables and settings), so a crash, a config edit or a CPU hog is still found, and the instance is not
unknown. An instance that did answer is never overridden. sre-app's interval metrics are queried by its
workers' ids, which the app instance's reading gives: when that comes late, so would they, and they are
queried at once for the workers the machine shows instead.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable

from ...aws.control import INSTANCES, AwsControl
from ...local import configs
from ...local.components import engine_url
from ...local.process import group_members
from ...local.stack import Stack
from ..aws import appmetrics
from ..deadline import Readers
from ..model import Observations
from . import probes, procs, readers, resources

SAMPLE_S = 0.4  # as observe-host.sh samples the instances
_NEXT = {"nginx": ("private-alb",)}  # the hop an instance probes besides its own component's


def start(stack: Stack, ctl: AwsControl, run: Readers, obs: Observations,
          memory_window_s: float) -> Callable[[], None]:
    """Start the local readers; return what fills `obs` in from them once the world's readers are collected."""
    settings, engine = stack.settings, engine_url(stack.settings)
    context: list = []
    run.start("processes", lambda: _processes(stack, context))
    since = time.time() - memory_window_s
    run.start("workers' interval metrics", lambda: appmetrics.series(ctl, _worker_ids(stack), since))
    run.start("engine probes", lambda: probes.probe_each(probes.engine_targets(settings, engine)))
    run.start("dependency samples", lambda: probes.samples(settings, engine))
    run.start("load balancer configs", lambda: readers.balancer_drift(stack))
    run.start("app settings", lambda: resources.app_settings(stack))
    # The instances' own hops, probed from the machine too: what a late instance reading would have said.
    run.start("hop probes", lambda: probes.probe_each(
        [t for t in probes.hops(settings) if t[0] in (*INSTANCES, "private-alb")]))

    def finish() -> None:
        states, descriptors, ours = run.result("processes", ({}, {}, []))
        unread = [c for c in INSTANCES if c not in obs.components]  # their instance did not answer in time
        obs.components.update({n: s for n, s in states.items() if n not in INSTANCES or n in unread})
        obs.descriptors.update({n: d for n, d in descriptors.items() if n not in INSTANCES or n in unread})
        if unread:
            _busy(obs, ours)
            _instances(stack, obs, unread, run.result("hop probes", None), run.result("app settings", None))
        obs.host_context = list(context)
        obs.probes.update(run.result("engine probes", {}))
        obs.dependency_samples = run.result("dependency samples", {})
        obs.config_drift.update(run.result("load balancer configs", {}))
        # The apps' settings as their instance read them; from the machine for an app whose reading is late.
        _tables, template, drift = run.result("app settings", ({}, {}, {}))
        for app in set(drift) - set(obs.settings_drift):
            obs.template_settings[app], obs.settings_drift[app] = template[app], drift[app]
        obs.disk_free.update(resources.disk_free(stack.settings.data_dir))
        series = run.result("workers' interval metrics", None)
        if "interval metrics" in obs.unknown and series is not None:
            obs.unknown.pop("interval metrics")
            obs.memory = {worker: [p[:3] for p in points] for worker, points in series.items() if points}

    return finish


def _worker_ids(stack: Stack) -> list[str]:
    """sre-app's workers' ids in ApplicationMetricsTable (sre-app#HOSTNAME#PID, hosts.worker_metric_ids), from
    the machine's processes: its unit's processes but the one systemd started (gunicorn's master)."""
    record = stack.record("sre-app")
    if record is None:
        return []
    return [f"sre-app#{socket.gethostname()}#{pid}" for pid in group_members(record.pid) if pid != record.pid]


def _processes(stack: Stack, context: list) -> tuple[dict, dict, list]:
    """Read every process twice, SAMPLE_S apart: each component's state and descriptors, the busy processes
    on the stack's instances ((pid, command, % of a core wanted, instance)), and those of no instance into
    `context`."""
    before, after = procs.pair(SAMPLE_S)
    instances: dict[int, str] = {}
    cpu, busy = readers.host_cpu(_stack_pids(stack, after), host=str(stack.settings.state_dir.resolve()),
                                 context=context, snaps=(before, after), instances=instances)
    ours = [(pid, name, share, instances.get(pid, "")) for pid, name, share in busy]
    return readers.components(stack, before, after), resources.descriptors(stack, after), [cpu, ours]


def _instances(stack: Stack, obs: Observations, unread: list[str], hops: dict | None, settings: tuple | None) -> None:
    """Fill in, for the instances that did not answer in time, what their reading says, from the machine: the
    hops they probe, nginx.conf against its template, the apps' tables. An instance so read is no longer
    unknown; one whose process could not be read either stays unknown."""
    planned = {p.name: p for p in (hops or {}).values()}
    for component in unread:
        mine = {n: p for n, p in planned.items() if n.split(" ", 1)[0] in (component, *_NEXT.get(component, ()))}
        obs.probes.update({n: p for n, p in mine.items() if n not in obs.probes})
        if component == "nginx":
            conf = stack.settings.run_dir / "nginx.conf"
            if conf.exists():
                expected = configs.render(stack.settings, "nginx.conf", "").splitlines()
                if changed := readers.changed_lines(expected, conf.read_text().splitlines()):
                    obs.config_drift["nginx.conf"] = changed
        elif settings and component in settings[0]:
            obs.app_tables[component] = settings[0][component]
        if component in obs.components and mine and (component == "nginx" or settings):
            obs.unknown.pop(f"{component} instance", None)
    if all(c in obs.components for c in INSTANCES) and hops is not None:
        obs.unknown.pop("instances", None)


def _busy(obs: Observations, reading: list) -> None:
    """Fill in the busy processes from the machine's reading (some instance did not answer in time)."""
    if not reading:
        return
    cpu, ours = reading
    obs.host_cpu_percent = max(obs.host_cpu_percent, cpu)
    for pid, name, share, instance in ours:
        if pid not in obs.process_instances:
            obs.top_processes.append((pid, name, share))
            if instance:
                obs.process_instances[pid] = instance


def _stack_pids(stack: Stack, snap: procs.Snapshot) -> set[int]:
    """The stack's processes, and doctor's own (its CPU is not the host's problem)."""
    pids = {os.getpid(), os.getppid()}
    for name in stack.components:
        record = stack.record(name)
        if record:
            pids.update(snap.members(record.pid))
            pids.add(record.unit_pid)
    return pids
