"""`sre-workshop lab`: train a person on a scenario, scored like an agent.

start   clear to steady state, start load in the background, inject the scenario's fault; show only the
        ticket (the symptom as a user reports it)
hint    the next of the scenario's graded hints
submit  score a diagnosis (component, category) against the ground truth; any number of attempts
check   pass when the learner's own fix holds: the fault no longer in effect and the stack steady for a
        sustained window, with no clear by the tool; then the lab ends and the write-up is shown
giveup  reveal the ground truth, clear the fault, end the lab, show the write-up
Every step is an event of the fault's incident in IncidentHistoryTable (lab_started, lab_hint,
lab_submitted, lab_passed or lab_gave_up). The lab's own state is run/lab.json.
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
from typing import Any

from ..errors import ComponentFailed, StackBusy, UsageError
from ..faults import runner as faults
from ..faults.backends import LocalBackend
from ..local.process import ProcessRecord, ProcessSpec, is_alive, spawn, stop, tail
from ..local.stack import Stack
from ..mcp.run import NONE
from ..vocabulary import CATEGORIES, COMPONENTS
from .background_load import STARTED
from .catalogue import get, scenarios
from .model import Scenario
from .runner import LAB_FILE
from .session import Session

LOAD_SECONDS = 7200  # the background load stops by itself after this, if the lab is never ended
LOAD_START_S = 60.0  # Locust's import and first users, on a busy machine


class Lab:
    """The lab of one local stack: its state file and the steps."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.backend = LocalBackend(stack)
        self.path = stack.settings.run_dir / LAB_FILE
        self.load_path = stack.settings.run_dir / "lab-load.json"

    def state(self) -> dict[str, Any]:
        """Return the running lab's state, or raise UsageError if no lab runs."""
        if not self.path.exists():
            raise UsageError("no lab is running: `sre-workshop lab start [NAME|--random]`")
        return json.loads(self.path.read_text())

    def _save(self, state: dict[str, Any]) -> None:
        partial = self.path.with_suffix(".tmp")
        partial.write_text(json.dumps(state))
        os.replace(partial, self.path)

    def _scenario(self) -> Scenario:
        return get(self.state()["scenario"])

    def _event(self, event: str, **detail: Any) -> None:
        self.backend.ledger.event(self.state()["incident_id"], event, **detail)

    def start(self, name: str | None, learner: str, progress=lambda m: None) -> dict[str, Any]:
        """Start a lab on scenario `name` (None: one at random); return the ticket."""
        if self.path.exists():
            raise StackBusy("a lab is already running: `sre-workshop lab check` or `sre-workshop lab giveup` first")
        faulty = [s for s in scenarios().values() if not s.is_control]
        scenario = get(name) if name else random.choice(faulty)  # noqa: S311 - a lesson, not a secret
        if scenario.is_control:
            raise UsageError("the control scenario has nothing to find: choose a scenario with a fault")
        faults.clear(self.backend, None, sustain=1.0, timeout=60.0)
        self._start_load(scenario)
        try:  # not `with`: the fault outlives this command, until check or giveup
            session = Session(self.backend, scenario, f"lab:{learner}", progress, load=False).open()
        except BaseException:
            self._stop_load()
            raise
        state = {"scenario": scenario.name, "incident_id": session.incident_id, "started_at": time.time(),
                 "learner": learner, "hints": 0, "attempts": []}
        self._save(state)
        self._event("lab_started", learner=learner, scenario=scenario.name)
        return {"ticket": scenario.ticket, "time_limit_s": scenario.time_limit_s}

    def _start_load(self, scenario: Scenario) -> None:
        settings, spec = self.stack.settings, scenario.load
        argv = [sys.executable, "-m", "sre_workshop.scenarios.background_load", str(settings.state_dir),
                str(spec.users), str(spec.rate), spec.target, str(LOAD_SECONDS)]
        env = {"SRE_WORKSHOP_PORT_OFFSET": str(settings.port_offset), "HOME": os.environ.get("HOME", "/")}
        log = settings.logs_dir / "lab-load.log"
        log.unlink(missing_ok=True)  # the start is told by a line in it
        record = spawn(ProcessSpec("lab-load", argv, log, env))
        record.save(self.load_path)
        deadline = time.monotonic() + LOAD_START_S
        while STARTED not in tail(log, 5):
            if not is_alive(record) or time.monotonic() > deadline:
                self._stop_load()
                raise ComponentFailed(f"the lab's load did not start: {tail(log, 3)}")
            time.sleep(0.2)

    def _stop_load(self) -> None:
        record = ProcessRecord.load(self.load_path)
        if record is not None:
            stop(record, timeout=30)
            self.load_path.unlink(missing_ok=True)

    def hint(self) -> dict[str, Any]:
        """Return the next hint (the last one again once all were given)."""
        state, scenario = self.state(), self._scenario()
        index = min(state["hints"], len(scenario.hints) - 1)
        state["hints"] = index + 1
        self._save(state)
        self._event("lab_hint", number=index + 1)
        return {"hint": scenario.hints[index], "number": index + 1, "of": len(scenario.hints)}

    def submit(self, component: str, category: str, cause: str) -> dict[str, Any]:
        """Score a diagnosis against the ground truth; return which parts are right."""
        if component not in COMPONENTS and component != NONE:
            raise UsageError(f"--component must be one of {', '.join(COMPONENTS)}, not {component!r}")
        if category not in CATEGORIES and category != NONE:
            raise UsageError(f"--category must be one of {', '.join(CATEGORIES)}, not {category!r}")
        state, truth = self.state(), self._scenario().truth()
        verdict = {"component_correct": component == truth.component, "category_correct": category == truth.category}
        verdict["correct"] = verdict["component_correct"] and verdict["category_correct"]
        state["attempts"].append({"component": component, "category": category, "cause": cause, **verdict,
                                  "at": time.time()})
        self._save(state)
        self._event("lab_submitted", component=component, category=category, cause=cause,
                    attempt=len(state["attempts"]), hints=state["hints"], **verdict)
        return {**verdict, "attempt": len(state["attempts"])}

    def check(self, sustain_s: float = 10.0, timeout_s: float = 30.0) -> dict[str, Any]:
        """Pass if the learner's fix holds (fault gone, stack steady for `sustain_s`); then end the lab."""
        state, scenario = self.state(), self._scenario()
        session = Session(self.backend, scenario, "lab", load=False)
        if session.fault_active():
            return {"fixed": False, "problems": self.backend.problems() or ["the cause is still in effect"]}
        problems = faults.wait_steady(self.backend, sustain_s, timeout_s)
        if problems:
            return {"fixed": False, "problems": problems}
        faults.clear(self.backend, scenario.fault, sustain=1.0)  # records `remediated`: the learner fixed it
        return self._end(state, scenario, "lab_passed", fixed=True)

    def giveup(self) -> dict[str, Any]:
        """Reveal the ground truth, clear the fault with the tool, end the lab."""
        state, scenario = self.state(), self._scenario()
        faults.clear(self.backend, scenario.fault)
        return self._end(state, scenario, "lab_gave_up", fixed=False)

    def _end(self, state: dict[str, Any], scenario: Scenario, event: str, fixed: bool) -> dict[str, Any]:
        self._stop_load()
        correct = any(a["correct"] for a in state["attempts"])
        score = {"scenario": scenario.name, "fixed": fixed, "diagnosed": correct,
                 "attempts": len(state["attempts"]), "hints": state["hints"],
                 "minutes": round((time.time() - state["started_at"]) / 60, 1)}
        self._event(event, **score)
        self.path.unlink()
        return {**score, "ground_truth": scenario.truth().to_dict(), "writeup": scenario.writeup.to_dict()}

