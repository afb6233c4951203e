"""doctor: observe, apply the rules, report. It diagnoses from symptoms only (see model.py)."""

from __future__ import annotations

import time

from ..local.stack import Stack
from .local.observe import observe
from .model import Report
from .rules import diagnose


def run_local(stack: Stack) -> Report:
    """Diagnose the local stack once."""
    started = time.monotonic()
    obs = observe(stack)
    return Report(obs.checked_at, diagnose(obs), obs, time.monotonic() - started)
