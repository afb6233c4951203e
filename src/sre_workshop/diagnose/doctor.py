"""doctor: observe, apply the rules, report. It diagnoses from symptoms only (see model.py), with the same
readers and the same rules in both worlds (world.py holds what differs)."""

from __future__ import annotations

import time
from pathlib import Path

from ..aws.control import AwsControl
from ..local.stack import Stack
from . import world
from .model import Report
from .observe import observe
from .rules import diagnose


def run(where: world.World) -> Report:
    """Diagnose a stack once."""
    started = time.monotonic()
    obs = observe(where)
    return Report(obs.checked_at, diagnose(obs), obs, time.monotonic() - started)


def run_local(stack: Stack) -> Report:
    """Diagnose the local stack once (through its AWS API twin)."""
    return run(world.local(stack))


def run_aws(ctl: AwsControl, infra_dir: Path) -> Report:
    """Diagnose an AWS stack once (`infra_dir`: where the nginx.conf template is)."""
    return run(world.aws(ctl, infra_dir))
