"""The signals over a scenario run, for the scorecard's page: the local series doctor's report draws, from a
minute before the injection to now. The page draws them under the run's timeline; `--json` leaves them out."""

from __future__ import annotations

import logging
import time

from ..diagnose.local import series
from ..local.stack import Stack
from .result import Result

logger = logging.getLogger(__name__)
LEAD_S = 60.0  # the steady minute before the injection, to compare with
CHANGES = ("clear_fault", "restart_service", "inject_fault")  # the agent's tools that act on the system


def collect(stack: Stack, result: Result) -> None:
    """Attach the run's signals to `result` (none if they cannot be read: the page then says "no data")."""
    if result.injected_at is None:
        return
    try:
        result.signals = series.collect(stack, time.time() - result.injected_at + LEAD_S)
    except Exception as exc:  # the score stands without its pictures
        logger.warning("the run's signals could not be read: %s", exc)


def mark_calls(result: Result, calls: list[dict]) -> None:
    """Put the agent's tool calls on the run's timeline: the ones that change the system as actions."""
    for call in calls:
        tool = str(call.get("tool", "?"))
        args = ", ".join(f"{k}={v}" for k, v in (call.get("arguments") or {}).items())
        failed = "" if call.get("ok", True) else " (failed)"
        result.mark("action" if tool in CHANGES else "tool call", f"{tool}({args}){failed}", at=call.get("at"))
