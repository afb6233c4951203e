"""doctor: observe, apply the rules, report. It diagnoses from symptoms only (see model.py)."""

from __future__ import annotations

import time
from pathlib import Path

from ..aws.control import AwsControl
from ..local.stack import Stack
from .aws import observe as aws_observe
from .local.observe import observe
from .model import Report
from .rules import diagnose


def run_local(stack: Stack) -> Report:
    """Diagnose the local stack once."""
    started = time.monotonic()
    obs = observe(stack)
    return Report(obs.checked_at, diagnose(obs), obs, time.monotonic() - started)


def run_aws(ctl: AwsControl, infra_dir: Path) -> Report:
    """Diagnose an AWS stack once (`infra_dir`: where the nginx.conf template is)."""
    started = time.monotonic()
    obs = aws_observe.observe(ctl, infra_dir)
    return Report(obs.checked_at, diagnose(obs), obs, time.monotonic() - started)
