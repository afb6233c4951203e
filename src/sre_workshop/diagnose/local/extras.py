"""What only the local world runs as processes, read from this machine (world.py says why).

On AWS the load balancers, DynamoDB, the AWS API and its agents are managed services; here each is a process
that can exit, freeze or be slow, and the ALBs' configuration is files. Besides those, this reads what
observe-host.sh does not read yet (in either world): the apps' settings against the template, the
connections that hold their workers, file descriptors and disk space. And the machine is shared: its busy
processes that run on no instance of this stack (another stack's, a build) are context, never a finding.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from ...aws.control import INSTANCES
from ...local.components import engine_url
from ...local.stack import Stack
from ..deadline import Readers
from ..model import Observations
from . import probes, procs, readers, resources

SAMPLE_S = 0.4  # as observe-host.sh samples the instances


def start(stack: Stack, run: Readers, obs: Observations) -> Callable[[], None]:
    """Start the local readers; return what fills `obs` in from them once the world's readers are collected."""
    settings, engine = stack.settings, engine_url(stack.settings)
    context: list = []
    run.start("processes", lambda: _processes(stack, context))
    run.start("engine probes", lambda: {p.name: p for p in probes.side_by_side(
        lambda t: probes.probe(*t), [t for t in probes.hops(settings) if t[0] == "dynamodb-endpoint"]
        + [("dynamodb", "dynamodb ListTables", engine + "/")])})
    run.start("dependency samples", lambda: probes.samples(settings, engine))
    run.start("load balancer configs", lambda: readers.balancer_drift(stack))
    run.start("app settings", lambda: resources.app_settings(stack))

    def finish() -> None:
        states, obs.connections, obs.descriptors = run.result("processes", ({}, {}, {}))
        obs.components.update(states)
        obs.host_context = list(context)
        obs.probes.update(run.result("engine probes", {}))
        obs.dependency_samples = run.result("dependency samples", {})
        obs.config_drift.update(run.result("load balancer configs", {}))
        _tables, obs.template_settings, obs.settings_drift = run.result("app settings", ({}, {}, {}))
        obs.disk_free = resources.disk_free(stack)

    return finish


def _processes(stack: Stack, context: list) -> tuple[dict, dict, dict]:
    """Read every process twice, SAMPLE_S apart: the managed services' states (the instances' units are
    read on the instances), connections and descriptors, and the busy processes of no instance into `context`."""
    before, after = procs.pair(SAMPLE_S)
    states = {name: state for name, state in readers.components(stack, before, after).items()
              if name not in INSTANCES}
    readers.host_cpu(_stack_pids(stack, after), host=str(stack.settings.state_dir.resolve()), context=context,
                     snaps=(before, after))
    return states, resources.connections(stack, after), resources.descriptors(stack, after)


def _stack_pids(stack: Stack, snap: procs.Snapshot) -> set[int]:
    """The stack's processes, and doctor's own (its CPU is not the host's problem)."""
    pids = {os.getpid(), os.getppid()}
    for name in stack.components:
        record = stack.record(name)
        if record:
            pids.update(snap.members(record.pid))
            pids.add(record.unit_pid)
    return pids
