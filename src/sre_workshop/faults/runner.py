"""Inject, verify, clear and report faults on a backend, with every step in the incident ledger.

inject:  validate -> refuse if it is in effect -> save what it will change (in the backend's durable store
         and in the ledger) -> change -> poll verify until the effect shows (or clear again and fail)
clear:   put back what was saved (always, even if the effect is already gone) -> `cleared`, or
         `remediated` when someone had already fixed it (`expired` when it ran its course) -> verify steady
         state. `clear --all` runs every clear even when one raises (recorded as `clear-failed`), then
         reports every failure
status:  each recorded fault, checked against what is in effect now; a fault fixed by hand is recorded as
         remediated and its saved changes are removed, so a restart does not bring it back
"""

from __future__ import annotations

import getpass
import logging
import socket
import time
from collections.abc import Callable
from typing import Any, Protocol

from ..errors import ClearFailed, FaultActive, FaultNotEffective, NotSteady
from ..incidents import Ledger
from .catalogue import backend_module, catalogue, get, pre_baked, pre_baked_module
from .contract import AwsCtl, FaultModule, LocalCtl
from .model import Fault, NotYet

logger = logging.getLogger(__name__)

PRE_BAKED = "pre-baked"


class Backend(Protocol):
    """Where faults act: the local stack or an AWS stack."""

    name: str  # module name of the faults' functions: "local" or "aws"
    ctl: LocalCtl | AwsCtl
    ledger: Ledger

    def recorded(self) -> dict[str, dict[str, Any]]: ...
    def remember(self, name: str, record: dict[str, Any]) -> None: ...
    def forget(self, name: str) -> None: ...
    def locked(self) -> Any: ...
    def check_up(self) -> None: ...
    def problems(self) -> list[str]: ...
    def stopped(self) -> list[str]: ...


def who() -> str:
    """Name the person injecting: user@host."""
    return f"{getpass.getuser()}@{socket.gethostname()}"


def inject(backend: Backend, name: str, assignments: list[str], injected_by: str | None = None,
           progress: Callable[[str], None] = lambda m: None,
           on_injected: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Inject a fault; return its record (incident id, parameters, ground truth, evidence). `on_injected` gets
    the record as soon as the change is made, before its effect is verified (a scenario's diagnoses start
    then: the breakage exists from that moment). `injected_at` is when the tool began (the incident opens),
    `changed_at` when the change was in place: the tool's own reads and saves (through SSM, 0.3-1.5 s) come
    before the step that breaks, which is its last."""
    fault = get(name)
    params = fault.parse(assignments, backend.name)
    impl = backend_module(fault, backend.name)
    backend.check_up()
    with backend.locked():
        _refuse_if_active(backend, fault, impl)
        saved = impl.snapshot(backend.ctl, params)
        truth = fault.ground_truth(params)
        detail = {"params": params, "ground_truth": truth.to_dict(), "saved": saved,
                  "injected_by": injected_by or who()}
        incident_id = backend.ledger.open(fault.name, detail)
        record = {"incident_id": incident_id, "params": params, "saved": saved, "injected_by": detail["injected_by"],
                  "injected_at": time.time()}
        backend.remember(fault.name, record)  # durable before destructive: clear works from here on
        try:
            impl.inject(backend.ctl, params)
            record["changed_at"] = time.time()
            if on_injected is not None:
                on_injected(record)
            seconds = fault.verify_seconds_in(backend.name)
            progress(f"{fault.name}: injected; waiting for its effect (up to {seconds:g}s)")
            record["evidence"] = _wait_verified(fault, impl, backend.ctl, params, seconds)
        except BaseException as exc:
            _undo(backend, fault, impl, record, f"{type(exc).__name__}: {exc}")
            raise
        backend.ledger.event(incident_id, "injected", evidence=record["evidence"])
    return {**record, "fault": fault.name, "ground_truth": truth.to_dict()}


def _refuse_if_active(backend: Backend, fault: Fault, impl: FaultModule[Any]) -> None:
    """Refuse a fault that is in effect; a recorded one that no longer is was remediated."""
    record = backend.recorded().get(fault.name)
    params = record["params"] if record else fault.defaults()
    in_effect = impl.active(backend.ctl, params)  # None: cannot be told now (its component is down)
    if in_effect and not record and fault.pre_baked:
        return  # the system's own starting state (the pre-baked leak, back after a restart): inject over it
    if in_effect or (in_effect is None and record):
        since = f" (incident {record['incident_id']})" if record else " (not injected by this tool)"
        raise FaultActive(f"{fault.name} is already active{since}: `sre-workshop fault clear {fault.name}` first")
    if record:
        _clear_one(backend, fault, record)


def _wait_verified(fault: Fault, impl: FaultModule[Any], ctl: LocalCtl | AwsCtl, params: dict[str, Any],
                   seconds: float) -> str:
    deadline = time.monotonic() + seconds
    while True:
        try:
            return impl.verify(ctl, params)
        except NotYet as exc:
            if time.monotonic() > deadline:
                raise FaultNotEffective(f"{fault.name} was injected but did not take effect within "
                                        f"{seconds:g}s ({exc}); it was cleared again") from None
        time.sleep(0.2)


def _undo(backend: Backend, fault: Fault, impl: FaultModule[Any], record: dict[str, Any], reason: str) -> None:
    """Put back what a failed inject changed, and say so in the ledger."""
    impl.clear(backend.ctl, record["params"], record["saved"])
    backend.forget(fault.name)
    backend.ledger.event(record["incident_id"], "failed", reason=reason)


def clear(backend: Backend, name: str | None, sustain: float = 3.0, timeout: float = 60.0) -> list[dict[str, Any]]:
    """Clear one fault (or all, with name None) and verify steady state; return what was cleared.

    Every clear runs (the last injected first), as chaostoolkit runs every rollback: one that raises is
    recorded in the ledger (`clear-failed`, the incident stays open so a later clear tries again) and the
    others still run; then ClearFailed names each failure. A single named fault's failure is raised as it
    is, once recorded."""
    done, failures = [], {}
    with backend.locked():
        recorded = backend.recorded()
        # The last injected first: two faults that saved the same file each put back what they found, so
        # undone in reverse the file ends as it was before both.
        faults = [get(name)] if name else sorted(
            catalogue().values(), key=lambda f: -float((recorded.get(f.name) or {}).get("injected_at") or 0))
        for fault in faults:
            try:
                record = recorded.get(fault.name) or _unrecorded_pre_baked(backend, fault)
                if record:
                    done.append(_clear_one(backend, fault, record))
            except Exception as exc:
                failures[fault.name] = _clear_failed(backend, fault, recorded.get(fault.name), exc)
                if name:
                    raise  # one fault: its own error (and exit status) says what went wrong
    if failures:
        raise ClearFailed(failures, done)
    # A component that is not running after the clear was stopped by someone else (a fault's clear starts
    # what the fault stopped), and nothing will start it: waiting for steady state would only wait out the
    # timeout.
    stopped = backend.stopped()
    problems = [f"{component} is not running" for component in stopped] or wait_steady(backend, sustain, timeout)
    if problems:
        hint = " (start with `sre-workshop service start NAME`)" if stopped else ""
        raise NotSteady("cleared, but the stack is not back to steady state: " + "; ".join(problems) + hint)
    return done


def _clear_failed(backend: Backend, fault: Fault, record: dict[str, Any] | None, exc: Exception) -> str:
    """Record a clear that raised in the fault's incident (if it has one); return the failure as one line."""
    message = str(exc) or type(exc).__name__
    logger.warning("clearing %s failed: %s", fault.name, message)
    if record and record.get("incident_id"):
        try:
            backend.ledger.event(record["incident_id"], "clear-failed", reason=f"{type(exc).__name__}: {message}")
        except Exception as ledger_exc:  # the clear's own failure is still reported
            message += f" (not recorded in the ledger: {ledger_exc})"
    return message


def _unrecorded_pre_baked(backend: Backend, fault: Fault) -> dict[str, Any] | None:
    """A fault that comes back with a fresh start (the pre-baked leak after a restart) and is in effect."""
    if not fault.pre_baked:
        return None
    impl = pre_baked_module(fault, backend.name)
    if not impl.active(backend.ctl, fault.defaults()):
        return None
    return {"incident_id": None, "params": impl.current_params(backend.ctl), "saved": fault.steady,
            "injected_by": PRE_BAKED}


def _ending(fault: Fault, record: dict[str, Any], was_in_effect: bool | None) -> str:
    """How a fault ended: `cleared` by the tool; `expired` when it ran its course (cpu-burn's duration);
    `remediated` when someone fixed it first."""
    if was_in_effect is not False:
        return "cleared"
    lasts = record["params"].get(fault.expires_after) if fault.expires_after else None
    if lasts is not None and record.get("injected_at") and time.time() >= record["injected_at"] + lasts:
        return "expired"
    return "remediated"


def _clear_one(backend: Backend, fault: Fault, record: dict[str, Any]) -> dict[str, Any]:
    impl = backend_module(fault, backend.name)
    was_in_effect = impl.active(backend.ctl, record["params"])
    impl.clear(backend.ctl, record["params"], record["saved"])
    backend.forget(fault.name)
    ended = _ending(fault, record, was_in_effect)
    if record.get("incident_id"):
        backend.ledger.event(record["incident_id"], ended)
    return {"fault": fault.name, "incident_id": record.get("incident_id"), "ended": ended}


def wait_steady(backend: Backend, sustain: float, timeout: float) -> list[str]:
    """Wait until the backend reports no problem for `sustain` seconds in a row; return the last problems."""
    deadline = time.monotonic() + timeout
    green_since = None
    while True:
        problems = backend.problems()
        now = time.monotonic()
        if problems:
            green_since = None
        elif green_since is None:
            green_since = now
        if green_since is not None and now - green_since >= sustain:
            return []
        if now > deadline:
            return problems or ["not green for long enough"]
        time.sleep(0.25)


def status(backend: Backend) -> list[dict[str, Any]]:
    """Return every fault in effect or recorded, with the truth about it; record ones fixed by hand."""
    rows = []
    with backend.locked():
        recorded = backend.recorded()
        for fault in catalogue().values():
            impl = backend_module(fault, backend.name)
            record = recorded.get(fault.name)
            if record is None:
                record = _unrecorded_pre_baked(backend, fault)
                if record:
                    rows.append(_row(fault, record, "active"))
                continue
            in_effect = impl.active(backend.ctl, record["params"])
            if in_effect is None:
                rows.append(_row(fault, record, "unknown"))  # e.g. the leak while sre-app is down
            elif in_effect:
                rows.append(_row(fault, record, "active"))
            else:
                ended = _clear_one(backend, fault, record)
                rows.append(_row(fault, record, ended["ended"]))
    return rows


def _row(fault: Fault, record: dict[str, Any], state: str) -> dict[str, Any]:
    return {"fault": fault.name, "state": state, "pre_baked": record.get("injected_by") == PRE_BAKED,
            "incident_id": record.get("incident_id"), "params": record["params"],
            "injected_by": record.get("injected_by"), "injected_at": record.get("injected_at")}


def record_pre_baked(backend: Backend) -> list[dict[str, Any]]:
    """After a fresh start, record each fault the system starts with (fault.toml's [pre_baked]: the workshop's
    leaking app) that is in effect; return their records."""
    return [record for fault in pre_baked() if (record := _record_pre_baked(backend, fault))]


def _record_pre_baked(backend: Backend, fault: Fault) -> dict[str, Any] | None:
    name = fault.name
    impl = pre_baked_module(fault, backend.name)
    with backend.locked():
        if name in backend.recorded() or not impl.active(backend.ctl, fault.defaults()):
            return None
        params = impl.current_params(backend.ctl)
        detail = {"params": params, "ground_truth": fault.ground_truth(params).to_dict(), "saved": fault.steady,
                  "injected_by": PRE_BAKED}
        incident_id = backend.ledger.open(fault.name, detail)
        record = {"incident_id": incident_id, "params": params, "saved": fault.steady, "injected_by": PRE_BAKED,
                  "injected_at": time.time()}
        backend.remember(name, record)
        backend.ledger.event(incident_id, "injected", evidence="active at start (pre-baked)")
    return {**record, "fault": name}

