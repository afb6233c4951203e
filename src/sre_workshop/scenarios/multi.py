"""Run a compound, cascading or manual scenario (extra.py) with doctor diagnosing, and run any mix of
scenarios with noise beside them.

steady state -> load -> break every part (faults through the fault runner, manual parts by their shell
steps) -> diagnose every few seconds until every part's component is named by a finding (a compound has
two root causes; doctor's top finding can name only one of them) or the time limit -> undo the manual parts,
clear every fault -> verify sustained recovery. Each part is one result, named SCENARIO:PART, with its rank
(found first, second) in `group`. A manual part has an incident of its own in the ledger, like a fault.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from ..diagnose.doctor import run_local
from ..diagnose.model import Report
from ..errors import StackBusy, WorkshopError
from ..faults import runner as faults
from ..faults.backends import LocalBackend
from ..load import local_targets, start
from ..local.process import HOST_ENV
from ..local.stack import Stack
from ..settings import BASE_PORTS
from . import runner, signals
from .extra import Multi, Part
from .model import Scenario
from .noise import Noise
from .result import Result
from .session import LOAD_MARGIN_S

logger = logging.getLogger(__name__)
Progress = Callable[[str], None]


class StepFailed(WorkshopError):
    """A manual scenario's shell step failed."""


def step_env(stack: Stack, scratch: Path) -> dict[str, str]:
    """Return the environment of a manual step: the stack's state dir and port offset, the workshop's tools
    on PATH (sre-workshop, aws), PYTHON, SCRATCH (a directory the part's steps and undo share, outside the
    stack: what an undo must put back is kept there, never where the examinee looks), and each component's
    process group leader and port (PID_CRM_APP, PORT_CRM_APP)."""
    settings = stack.settings
    tools = str(Path(sys.executable).parent)
    env = {**os.environ, "SRE_WORKSHOP_STATE_DIR": str(settings.state_dir),
           "SRE_WORKSHOP_PORT_OFFSET": str(settings.port_offset),
           "PATH": os.pathsep.join([tools, os.environ.get("PATH", os.defpath)]),
           "PYTHON": sys.executable, "SCRATCH": str(scratch),
           HOST_ENV: str(settings.state_dir.resolve())}  # a step runs on the stack's host, as a fault's script does
    for name in stack.components:
        key = name.upper().replace("-", "_")
        if name in BASE_PORTS:  # the agent listens on none
            env["PORT_" + key] = str(settings.port(name))
        record = stack.record(name)
        if record is not None:
            env["PID_" + key] = str(record.pid)
    return env


def run_steps(stack: Stack, steps: tuple[str, ...], scratch: Path, check: bool = True) -> None:
    """Run shell steps in order (`sh -c STEP`, as SSM runs them); with `check`, stop at the first failure.
    A step that starts something in the background must send its output elsewhere (`>/dev/null 2>&1 &`):
    the step's own output is read to its end."""
    env = step_env(stack, scratch)
    for step in steps:
        done = subprocess.run(["sh", "-c", step], env=env, capture_output=True, text=True, timeout=60)
        if done.returncode and check:
            raise StepFailed(f"step {step!r} exited {done.returncode}: {done.stderr.strip()[:200]}")
        if done.returncode:
            logger.warning("undo step %r exited %s: %s", step, done.returncode, done.stderr.strip()[:200])


class MultiSession:
    """Load plus every part broken; leaving undoes the manual parts, clears the faults, stops load."""

    def __init__(self, backend: LocalBackend, scenario: Multi, progress: Progress) -> None:
        self.backend, self.scenario, self.progress = backend, scenario, progress
        self.load = None
        self.broken: list[tuple[Part, str, float]] = []  # (part, incident id, injected at)
        self.scratch: dict[str, Path] = {}  # a manual part's label -> the directory its steps and undo share

    def __enter__(self) -> MultiSession:
        try:
            spec = self.scenario.load
            targets = local_targets(self.backend.stack.settings, spec.target)
            self.load = start(targets, users=spec.users, rate=spec.rate,
                              duration=self.scenario.time_limit_s + LOAD_MARGIN_S)
            for part in self.scenario.parts:
                self.broken.append((part, *self._break(part)))
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _break(self, part: Part) -> tuple[str, float]:
        by = f"scenario:{self.scenario.name}"
        if part.manual:
            incident = self.backend.ledger.open(part.label, {"scenario": self.scenario.name, "injected_by": by,
                                                             "ground_truth": part.truth().to_dict(), "manual": True})
            self.broken.append((part, incident, time.time()))  # undone on close even if a step fails
            self.scratch[part.label] = Path(tempfile.mkdtemp(prefix="sre-workshop-steps-"))
            run_steps(self.backend.stack, part.steps, self.scratch[part.label])
            self.broken.pop()
            self.backend.ledger.event(incident, "injected", evidence=f"{len(part.steps)} step(s) by hand")
            return incident, time.time()
        record = faults.inject(self.backend, part.fault, list(part.params), by, progress=self.progress)
        return record["incident_id"], record["changed_at"]

    def clear(self, sustain_s: float, timeout_s: float) -> float:
        """Undo every part and verify sustained steady state; return when it was verified."""
        broken, self.broken = self.broken, []
        for part, incident, _ in broken:
            if part.manual:
                scratch = self.scratch.pop(part.label)
                try:
                    run_steps(self.backend.stack, part.undo, scratch, check=False)
                finally:
                    shutil.rmtree(scratch, ignore_errors=True)
                self.backend.ledger.event(incident, "cleared")
        faults.clear(self.backend, None, sustain=sustain_s, timeout=timeout_s)
        return time.time()

    def close(self) -> None:
        """Undo whatever is still broken and stop load; each step runs even if another fails."""
        try:
            if self.broken:
                self.clear(1.0, 60.0)
        finally:
            handle, self.load = self.load, None
            if handle is not None:
                try:
                    handle.stop()
                except Exception as exc:  # a load that failed must not hide the outcome
                    logger.warning("load generator: %s", exc)
                    handle.kill()


def run(stack: Stack, scenario: Multi, options: runner.Options, progress: Progress) -> list[Result]:
    """Run one multi-part scenario with doctor diagnosing; return one result per part."""
    backend = LocalBackend(stack)
    results = [Result(f"{scenario.name}:{p.label}", "doctor", p.truth().to_dict(), params=list(p.params),
                      group={"scenario": scenario.name, "kind": scenario.kind, "part": p.label, "rank": None})
               for p in scenario.parts]
    runner.baseline(stack, backend, options, progress)
    with MultiSession(backend, scenario, progress) as session, Noise(stack, options.noise, options.seed):
        for result, (_, incident, at) in zip(results, session.broken, strict=True):
            result.incident_id, result.injected_at = incident, at
            result.mark("injected", "", at=at)
        started = min(r.injected_at for r in results)
        watch(stack, results, started + (options.time_limit_s or scenario.time_limit_s), options.interval_s)
        for result in results:
            runner.record_detection(backend, result)
            result.mark("cleared", "every part undone by the tool")
        cleared_at = time.time()
        recovered = session.clear(options.sustain_s, options.recover_timeout_s)
        for result in results:
            result.recovered_at, result.recovery_s = recovered, round(recovered - cleared_at, 2)
            result.mark("recovered", f"steady for {options.sustain_s:g}s", ok=True)
            signals.collect(stack, result)
    for result in results:
        # the group rides as one field: its "scenario" (the whole) would clash with the summary's (the part)
        backend.ledger.event(result.incident_id, "scored", **runner.summary(result), group=result.group)
    return results


def watch(stack: Stack, results: list[Result], deadline: float, interval_s: float) -> None:
    """Diagnose until every part is found (the control of time: until the deadline)."""
    while time.time() < deadline and not all(r.detected for r in results):
        began = time.monotonic()
        judge(results, run_local(stack))
        time.sleep(max(0.0, interval_s - (time.monotonic() - began)))


def judge(results: list[Result], report: Report) -> None:
    """Score one diagnosis into each part's result: a part is found when any finding names its component."""
    now = time.time()
    found = sum(r.detected for r in results)
    said = "; ".join(f"{f.component}/{f.category}" for f in report.findings) or "healthy"
    for result in results:
        result.diagnoses += 1
        match = next((f for f in report.findings if f.component == result.truth["component"]), None)
        if result.detected or match is None:
            result.mark("diagnosis", said, ok=result.detected, at=now)
            continue
        result.detected_at, result.mttd_s = now, round(now - result.injected_at, 2)
        result.localized, result.category_match = True, match.category == result.truth["category"]
        result.finding, result.group["rank"] = match.to_dict(), found + 1
        result.mark("detected", f"after {result.mttd_s:g}s (found #{found + 1})", ok=True, at=now)


def run_all_kinds(stack: Stack, chosen: list[Scenario | Multi], options: runner.Options, progress: Progress
                  ) -> list[Result]:
    """Run catalogue and multi-part scenarios one after another; an expected failure is the scenario's result."""
    results: list[Result] = []
    for scenario in chosen:
        if isinstance(scenario, Scenario):
            results += runner.run_many(stack, [scenario], options, progress)
            continue
        try:
            results += run(stack, scenario, options, progress)
        except StackBusy:
            raise
        except WorkshopError as exc:
            progress(f"{scenario.name}: {exc}")
            results += [Result(f"{scenario.name}:{p.label}", "doctor", p.truth().to_dict(), error=str(exc),
                               params=list(p.params), group={"scenario": scenario.name, "kind": scenario.kind,
                                                            "part": p.label, "rank": None})
                        for p in scenario.parts]
    return results
