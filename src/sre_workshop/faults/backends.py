"""The backends faults act on: the local stack here; an AWS stack in aws_backend.py."""

from __future__ import annotations

import contextlib
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ..errors import ComponentFailed
from ..incidents import Ledger
from ..local.control import LocalControl
from ..local.stack import Stack
from ..state import StackLock

# What steady state means at the public entry points: each answers 200 within this many seconds.
PROBE_TIMEOUT = 2.0


class LocalBackend:
    """The local stack: faults' records in its state file, the ledger in its DynamoDB engine."""

    name = "local"

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.ctl = LocalControl(stack)
        self.ledger = LocalLedger(stack)
        self._lock = StackLock(stack.settings, name="faults")

    def recorded(self) -> dict[str, dict[str, Any]]:
        """Return the faults this tool injected and has not cleared."""
        return self.stack.store.read().faults

    def remember(self, name: str, record: dict[str, Any]) -> None:
        """Record an active fault with what clearing it must restore (before anything changes)."""
        with self.stack.store.update() as state:
            state.faults[name] = record

    def forget(self, name: str) -> None:
        """Drop a cleared fault's record."""
        with self.stack.store.update() as state:
            state.faults.pop(name, None)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the faults lock: one inject or clear at a time on this stack."""
        self._lock.acquire("fault", wait=120)
        try:
            yield
        finally:
            self._lock.release()

    def check_up(self) -> None:
        """Refuse to act on a stack that is not up (a fault's restart must never start a stack that is down)."""
        if not any(self.stack.record(name) for name in self.stack.components):
            raise ComponentFailed(f"the local stack in {self.stack.settings.state_dir} is not up: "
                                  "`sre-workshop up` first")

    def stopped(self) -> list[str]:
        """Return the components that are not running (stopped, or exited on their own)."""
        return [p.component for p in self.stack.problems() if p.kind in ("not-running", "exited")]

    def problems(self) -> list[str]:
        """Return what keeps the stack from steady state: component and target problems, then the public
        entry points (each must answer 200 quickly)."""
        problems = [str(p) for p in self.stack.problems()]
        if problems:
            return problems
        endpoints = self.stack.settings.endpoints
        for url in (endpoints["app"] + "/", endpoints["crm"] + "/health", endpoints["crm"] + "/api/customers?limit=1"):
            problem = probe(url)
            if problem:
                problems.append(problem)
        return problems


class LocalLedger(Ledger):
    """The ledger in the local engine. An event that cannot be written (the engine is down) is kept in the
    stack's state and written before the next one, so that clearing never fails for want of a ledger."""

    def __init__(self, stack: Stack) -> None:
        super().__init__(stack.dynamodb_client(), source="local")
        self.store = stack.store

    def event(self, incident_id: str, event: str, fault: str = "", at_ms: int | None = None, **detail: Any) -> int:
        """Write the event (after any kept earlier), or keep it when the engine cannot be reached."""
        at_ms = at_ms or int(time.time() * 1000)
        try:
            self.flush()
            return super().event(incident_id, event, fault, at_ms, **detail)
        except (BotoCoreError, ClientError):
            with self.store.update() as state:
                state.pending_events.append({"incident_id": incident_id, "event": event, "fault": fault,
                                             "at_ms": at_ms, "detail": detail})
            return at_ms

    def flush(self) -> None:
        """Write the events kept while the engine was down, oldest first."""
        pending = self.store.read().pending_events
        for kept in pending:
            super().event(kept["incident_id"], kept["event"], kept["fault"], kept["at_ms"], **kept["detail"])
        if pending:
            with self.store.update() as state:
                state.pending_events = state.pending_events[len(pending):]

    def incidents(self, limit: int = 50) -> list[dict[str, Any]]:
        """Return the newest incidents, kept events written first."""
        self.flush()
        return super().incidents(limit)


def probe(url: str) -> str | None:
    """GET url; return None if it answered 200 within PROBE_TIMEOUT, else what went wrong."""
    started = time.monotonic()
    try:
        with urllib.request.urlopen(url, timeout=PROBE_TIMEOUT) as response:  # noqa: S310 - loopback URLs
            response.read()
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except OSError as exc:
        return f"{url}: {exc}"
    elapsed = time.monotonic() - started
    if status != 200:
        return f"{url} answered {status}"
    return f"{url} took {elapsed:.1f}s" if elapsed > PROBE_TIMEOUT else None
