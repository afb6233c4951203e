"""One scenario's live part: load, the injected fault, and the promise to put everything back.

A Session starts load and injects the scenario's fault (or, for the control, opens an incident without
one). Leaving it always stops load and clears the fault, on success, on an error and on Ctrl-C; if the
process itself dies, the fault's record stays in the stack's state, so `sre-workshop fault clear --all`
still clears it, and the load generator stops when its parent goes away.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from ..faults import runner as faults
from ..faults.backends import LocalBackend
from ..faults.catalogue import backend_module
from ..load import local_targets, start
from .model import Scenario

logger = logging.getLogger(__name__)

LOAD_MARGIN_S = 600.0  # load outlives the run's own limits; the session stops it


class Session:
    """Load plus an injected fault, undone on exit."""

    def __init__(self, backend: LocalBackend, scenario: Scenario, injected_by: str,
                 progress: Callable[[str], None] = lambda m: None, load: bool = True,
                 on_injected: Callable[[str, float], None] | None = None) -> None:
        self.backend = backend
        self.on_injected = on_injected  # (incident id, injected at) once the change is made, before verifying
        self.scenario = scenario
        self.injected_by = injected_by
        self.progress = progress
        self.with_load = load
        self.load = None
        self.incident_id: str | None = None
        self.injected_at: float | None = None
        self.evidence = ""
        self.cleared = scenario.is_control

    def __enter__(self) -> Session:
        return self.open()

    def open(self) -> Session:
        """Start load and inject; on any failure undo what was done and raise."""
        try:
            if self.with_load:
                self._start_load()
            self._inject()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _start_load(self) -> None:
        spec = self.scenario.load
        self.progress(f"{self.scenario.name}: load {spec.users} users, {spec.rate:g} rps on {spec.target}")
        targets = local_targets(self.backend.stack.settings, spec.target)
        duration = self.scenario.time_limit_s + LOAD_MARGIN_S
        self.load = start(targets, users=spec.users, rate=spec.rate, duration=duration)

    def _inject(self) -> None:
        if self.scenario.is_control:
            self.incident_id = self.backend.ledger.open(self.scenario.name, {
                "scenario": self.scenario.name, "ground_truth": None, "injected_by": self.injected_by})
            self.injected_at = time.time()
            self.evidence = "no fault (control)"
            if self.on_injected is not None:
                self.on_injected(self.incident_id, self.injected_at)
            return
        tell = (lambda r: self.on_injected(r["incident_id"], r["changed_at"])) if self.on_injected else None
        record = faults.inject(self.backend, self.scenario.fault, list(self.scenario.params), self.injected_by,
                               progress=self.progress, on_injected=tell)
        self.incident_id, self.injected_at = record["incident_id"], record["changed_at"]
        self.evidence = record["evidence"]

    def clear(self, sustain_s: float, timeout_s: float) -> float:
        """Clear the fault with the tool and verify sustained steady state; return when it was verified."""
        if not self.cleared:
            self.cleared = True  # even if verification fails: the fault's changes were put back
            faults.clear(self.backend, self.scenario.fault, sustain=sustain_s, timeout=timeout_s)
        return time.time()

    def fault_active(self) -> bool:
        """Tell whether the scenario's fault is still in effect (the harness's ground truth, not a diagnosis)."""
        if self.scenario.is_control:
            return False
        fault = self.scenario.fault_def()
        return bool(backend_module(fault, self.backend.name).active(self.backend.ctl, self.scenario.parsed_params()))

    def close(self) -> None:
        """Clear the fault if still injected and stop load; each step runs even if the other fails."""
        try:
            if not self.cleared and self.incident_id:
                self.cleared = True
                faults.clear(self.backend, self.scenario.fault, sustain=1.0, timeout=60.0)
        finally:
            self.stop_load()

    def stop_load(self) -> dict[str, Any] | None:
        """Stop the load generator; return its summary (None if it was not running or failed)."""
        handle, self.load = self.load, None
        if handle is None:
            return None
        try:
            return handle.stop().to_dict()
        except Exception as exc:  # a load that failed must not hide the scenario's own outcome
            logger.warning("load generator: %s", exc)
            handle.kill()
            return None
