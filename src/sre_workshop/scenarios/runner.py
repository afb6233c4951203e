"""Run a scenario with doctor as the scorer.

check steady state (every fault cleared, doctor says healthy) -> start load -> inject -> diagnose every
few seconds until the top finding names the ground-truth component (or the time limit) -> clear ->
verify sustained recovery -> write the score as events of the incident in IncidentHistoryTable.
The control scenario diagnoses for its whole time limit; every finding is a false positive.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..diagnose.doctor import run_local
from ..diagnose.model import Report
from ..errors import NotSteady, StackBusy, WorkshopError
from ..faults import runner as faults
from ..faults.backends import LocalBackend
from ..local.stack import Stack
from ..state import lab_running
from . import signals
from .model import Scenario
from .noise import Noise
from .result import Result, iso
from .session import Session

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Options:
    """How a run paces itself; the defaults suit a laptop and CI."""

    interval_s: float = 2.0  # between diagnoses
    sustain_s: float = 5.0  # recovery must hold this long
    baseline_timeout_s: float = 120.0  # doctor's log window is a minute: a previous fault's traces must age out
    recover_timeout_s: float = 60.0
    time_limit_s: float | None = None  # overrides the scenario's own
    noise: tuple[str, ...] = ()  # noise injectors beside the run (noise.py)
    seed: int = 0  # what the noise's schedule is drawn from


def limit_of(scenario: Scenario, options: Options) -> float:
    """Return the time limit a run uses."""
    return options.time_limit_s or scenario.time_limit_s


def baseline(stack: Stack, backend: LocalBackend, options: Options, progress: Progress) -> None:
    """Bring the stack to steady state: clear every fault, then wait until doctor says healthy."""
    if lab_running(stack.settings):  # its fault is the learner's, not ours to clear
        raise StackBusy("a lab is running on this stack: `sre-workshop lab giveup` (or `lab check`) first")
    faults.clear(backend, None, sustain=1.0, timeout=options.recover_timeout_s)
    deadline = time.monotonic() + options.baseline_timeout_s
    report = run_local(stack)
    while not report.healthy:
        if time.monotonic() > deadline:
            found = "; ".join([f"{f.component}/{f.category}: {f.summary}" for f in report.findings]
                              + [f"{name} unread: {why}" for name, why in report.observations.unknown.items()])
            raise NotSteady(f"doctor does not find the stack healthy before the scenario: {found}")
        # Not healthy is a finding, or a signal that could not be read (a reader past its deadline).
        why = (f"{report.findings[0].component}/{report.findings[0].category}" if report.findings
               else "unread: " + ", ".join(report.observations.unknown))
        progress(f"waiting for a healthy baseline ({why})")
        time.sleep(options.interval_s)
        report = run_local(stack)


def run(stack: Stack, scenario: Scenario, options: Options = Options(), progress: Progress = lambda m: None) -> Result:
    """Run one scenario with doctor as the scorer; return its score (written to the ledger too). Diagnoses
    start as soon as the fault's change is made, while the tool still verifies its effect: time to detect runs
    from the breakage, and doctor is not kept waiting by the tool's own check."""
    backend = LocalBackend(stack)
    truth = scenario.truth()
    result = Result(scenario.name, "doctor", truth.to_dict() if truth else None, params=list(scenario.params))
    baseline(stack, backend, options, progress)
    limit = limit_of(scenario, options)
    watcher = Watcher(stack, scenario, result, limit, options.interval_s)

    def injected(incident_id: str, at: float) -> None:
        result.incident_id, result.injected_at = incident_id, at
        progress(f"{scenario.name}: diagnosing every {options.interval_s:g}s for up to {limit:g}s")
        watcher.start()

    try:
        with (Session(backend, scenario, f"scenario:{scenario.name}", progress, on_injected=injected) as session,
              Noise(stack, options.noise, options.seed)):
            result.mark("injected", session.evidence, at=session.injected_at)
            watcher.wait()
            result.timeline.sort(key=lambda m: m.at_s)  # the diagnoses made while the tool verified come first
            record_detection(backend, result)
            if not scenario.is_control:
                cleared_at = time.time()
                result.mark("cleared", "fault clear by the tool")
                result.recovered_at = session.clear(options.sustain_s, options.recover_timeout_s)
                result.recovery_s = round(result.recovered_at - cleared_at, 2)
                result.mark("recovered", f"steady for {options.sustain_s:g}s", ok=True)
                backend.ledger.event(result.incident_id, "recovered", scorer="doctor",
                                     recovered_at=iso(result.recovered_at), recovery_s=result.recovery_s)
            signals.collect(stack, result)
    finally:
        watcher.stop()
    backend.ledger.event(result.incident_id, "scored", **summary(result))
    return result


class Watcher:
    """Diagnose in a thread until the top finding names the ground truth (the control: until the limit)."""

    def __init__(self, stack: Stack, scenario: Scenario, result: Result, limit_s: float, interval_s: float) -> None:
        self.stack, self.scenario, self.result = stack, scenario, result
        self.limit_s, self.interval_s = limit_s, interval_s
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="scenario-watch", daemon=True)
        self.error: BaseException | None = None

    def start(self) -> None:
        self.thread.start()

    def wait(self) -> None:
        """Wait for the answer (or the limit); raise what the diagnoses raised."""
        self.thread.join()
        if self.error is not None:
            raise self.error

    def stop(self) -> None:
        """Stop diagnosing (a scenario that failed): return once the diagnosis under way is done."""
        self.stopping.set()
        if self.thread.is_alive():
            self.thread.join()

    def _run(self) -> None:
        try:
            deadline = self.result.injected_at + self.limit_s
            while time.time() < deadline and not self.stopping.is_set():
                started = time.monotonic()
                if judge(self.scenario, self.result, run_local(self.stack)):
                    return
                self.stopping.wait(max(0.0, self.interval_s - (time.monotonic() - started)))
        except BaseException as exc:  # handed to wait()
            self.error = exc


def judge(scenario: Scenario, result: Result, report: Report) -> bool:
    """Score one diagnosis into the result; return True when the run has its answer."""
    now = time.time()
    result.diagnoses += 1
    top = report.findings[0] if report.findings else None
    said = f"{top.component}/{top.category}: {top.summary}" if top else "healthy"
    if result.control:
        result.false_positives += top is not None
        evidence = f" ({'; '.join(top.evidence[:3])})" if top else ""  # a false positive shows its evidence
        result.mark("diagnosis", said + evidence, ok=top is None, at=now)
        return False
    named = top is not None and top.component == result.truth["component"]
    result.mark("diagnosis", said, ok=named, at=now)
    if named:
        result.detected_at, result.mttd_s = now, round(now - result.injected_at, 2)
        result.localized, result.category_match = True, top.category == result.truth["category"]
        result.finding = top.to_dict()
        result.mark("detected", f"after {result.mttd_s:g}s", ok=True, at=now)
    return named


def record_detection(backend: LocalBackend, result: Result) -> None:
    """Write the detection (or the miss) as an event of the incident."""
    if result.control:
        return
    if result.detected:
        backend.ledger.event(result.incident_id, "detected", scorer=result.scorer, detected_at=iso(result.detected_at),
                             mttd_s=result.mttd_s, localized=result.localized, category_match=result.category_match,
                             finding=result.finding)
    else:
        backend.ledger.event(result.incident_id, "missed", scorer=result.scorer, diagnoses=result.diagnoses)


def summary(result: Result) -> dict:
    """Return the score as the `scored` event carries it."""
    return {"scorer": result.scorer, "scenario": result.scenario, "passed": result.passed,
            "detected_at": iso(result.detected_at), "mttd_s": result.mttd_s, "localized": result.localized,
            "category_match": result.category_match, "recovered_at": iso(result.recovered_at),
            "diagnoses": result.diagnoses, "false_positives": result.false_positives, **result.agent}


def run_many(stack: Stack, chosen: list[Scenario], options: Options, progress: Progress,
             one: Callable[..., Result] = run, scorer: str = "doctor") -> list[Result]:
    """Run scenarios one after another; an expected failure of one is its result, and the next goes on
    (a busy stack stops them all: it is nobody's score)."""
    results = []
    for scenario in chosen:
        try:
            results.append(one(stack, scenario, options, progress))
        except StackBusy:
            raise
        except WorkshopError as exc:
            truth = scenario.truth()
            failed = Result(scenario.name, scorer, truth.to_dict() if truth else None, error=str(exc),
                            params=list(scenario.params))
            results.append(failed)
            progress(f"{scenario.name}: {exc}")
    return results
