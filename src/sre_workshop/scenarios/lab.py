"""`sre-workshop lab`: train a person on a scenario, scored like an agent.

start   clear to steady state, start load in the background, inject the scenario's fault; show only the
        ticket (the symptom as a user reports it). Nothing it prints names the fault.
hint    the next of the scenario's graded hints: from where to look, through the diagnosis, to the repair
submit  score a diagnosis (component, category) against the ground truth; any number of attempts
check   pass when the learner's own repair holds: the fault no longer in effect while its record is still the
        lab's (the fault tool's own clear takes the record away: that is no repair of the learner's), and the
        stack steady for a sustained window; then the lab ends and the write-up is shown. While it is not,
        it says what it is waiting for.
giveup  reveal the ground truth, clear the fault, end the lab, show the write-up
Every step is an event of the fault's incident in IncidentHistoryTable (lab_started, lab_hint,
lab_submitted, lab_passed or lab_gave_up). The lab's own state is the examiner's (examiner_dir/lab.json,
hidden in every instance's view), never in run/, where a learner reads the stack as an instance's /etc.
The learner works the AWS APIs as an IAM user of its own (scenarios/identity.py, LEARNER), whose key
`aws-env` prints while the lab runs: through the twin's scoped endpoint, SSM's command history and CloudTrail's
parameters show the learner its own calls, never the steps the fault tool ran on an instance.

During a lab, what would hand the learner the answer refuses with one line (oracle()): doctor (unless the
lab was started with --assist: then each use counts as a hint), `fault status|inject|clear`, `incidents`.
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
from collections.abc import Callable
from typing import Any

from ..errors import ComponentFailed, StackBusy, UsageError, WorkshopError
from ..faults import runner as faults
from ..faults.backends import LocalBackend
from ..local.process import ProcessRecord, ProcessSpec, is_alive, spawn, stop, tail
from ..local.stack import Stack
from ..mcp.run import NONE
from ..settings import Settings
from ..state import lab_path, lab_running, private_dir
from ..vocabulary import CATEGORIES, COMPONENTS
from . import identity
from .background_load import STARTED
from .catalogue import get, scenarios
from .model import Scenario
from .session import Session

LOAD_SECONDS = 7200  # the background load stops by itself after this, if the lab is never ended
LOAD_START_S = 60.0  # Locust's import and first users, on a busy machine
CHECK_POLL_S = 2.0  # how often `lab check --wait` looks again


def oracle(stack: Stack, what: str) -> None:
    """Refuse `what` (a command that would name the fault) while a lab runs, with one line saying why."""
    if lab_running(stack.settings):
        raise StackBusy(f"a lab is running: {what} would give the answer away; try `sre-workshop lab hint`, "
                        "or `sre-workshop lab giveup` to end the lab")


def consult_doctor(stack: Stack) -> None:
    """Let doctor run: freely outside a lab, as a counted hint in a lab started with --assist; else refuse."""
    lab = Lab(stack)
    if lab.path.exists():
        lab.doctor()


def learner_identity(settings: Settings) -> identity.Identity | None:
    """Return the running lab's learner identity (None when no lab runs, or one started before it had one)."""
    try:
        kept = json.loads(lab_path(settings).read_text()).get("identity")
    except (OSError, ValueError):
        return None
    return identity.Identity(**kept) if isinstance(kept, dict) else None


class Lab:
    """The lab of one local stack: its state file and the steps."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.backend = LocalBackend(stack)
        self.path = lab_path(stack.settings)
        self.load_path = stack.settings.run_dir / "lab-load.json"

    def state(self) -> dict[str, Any]:
        """Return the running lab's state, or raise UsageError if no lab runs."""
        if not self.path.exists():
            raise UsageError("no lab is running: `sre-workshop lab start [NAME|--random]`")
        return json.loads(self.path.read_text())

    def _save(self, state: dict[str, Any]) -> None:
        private_dir(self.path.parent)
        partial = self.path.with_suffix(".tmp")
        partial.write_text(json.dumps(state))
        os.replace(partial, self.path)

    def _scenario(self) -> Scenario:
        return get(self.state()["scenario"])

    def _event(self, event: str, **detail: Any) -> None:
        self.backend.ledger.event(self.state()["incident_id"], event, **detail)

    def start(self, name: str | None, learner: str, progress: Callable[[str], None] = lambda m: None,
              assist: bool = False) -> dict[str, Any]:
        """Start a lab on scenario `name` (None: one at random); return the ticket.

        `progress` gets lines that name no fault: the learner reads them."""
        if self.path.exists():
            raise StackBusy("a lab is already running: `sre-workshop lab check` or `sre-workshop lab giveup` first")
        faulty = [s for s in scenarios().values() if not s.is_control]
        scenario = get(name) if name else random.choice(faulty)  # noqa: S311 - a lesson, not a secret
        if scenario.is_control:
            raise UsageError("the control scenario has nothing to find: choose a scenario with a fault")
        progress("lab: bringing the stack to steady state")
        faults.clear(self.backend, None, sustain=1.0, timeout=60.0)
        key = identity.create(self.stack.settings, identity.LEARNER)  # what `aws-env` gives during the lab
        try:
            progress("lab: starting the users' load")
            self._start_load(scenario)
            progress("lab: something is about to go wrong")
            session = self._open(scenario, learner)
        except BaseException:
            identity.delete(self.stack.settings, key, identity.LEARNER)
            raise
        state = {"scenario": scenario.name, "incident_id": session.incident_id, "started_at": time.time(),
                 "learner": learner, "hints": 0, "hints_given": 0, "doctor": 0, "attempts": [], "assist": assist,
                 "identity": key.to_dict()}
        self._save(state)
        (self.path.parent / "lab-error.txt").unlink(missing_ok=True)  # an earlier start's failure, now stale
        self._event("lab_started", learner=learner, scenario=scenario.name, assist=assist)
        return {"ticket": scenario.ticket, "time_limit_s": scenario.time_limit_s, "assist": assist}

    def _open(self, scenario: Scenario, learner: str) -> Session:
        """Inject the scenario's fault silently; a failure is said without naming it (the details are the
        examiner's, in examiner_dir/lab-error.txt)."""
        try:  # not `with`: the fault outlives this command, until check or giveup
            return Session(self.backend, scenario, f"lab:{learner}", load=False).open()
        except WorkshopError as exc:
            self._stop_load()
            private_dir(self.path.parent)
            (self.path.parent / "lab-error.txt").write_text(f"{type(exc).__name__}: {exc}\n")
            raise ComponentFailed("the lab's incident did not start, and the stack was put back: "
                                  "try `sre-workshop lab start` again") from None
        except BaseException:
            self._stop_load()
            raise

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

    def doctor(self) -> None:
        """Count a use of doctor as a hint in a lab started with --assist; refuse it in any other lab."""
        state = self.state()
        if not state["assist"]:
            raise StackBusy("a lab is running: doctor is not offered in it (start it with `lab start --assist` to "
                            "have doctor, counted as hints); try `sre-workshop lab hint`")
        state["doctor"] += 1
        state["hints"] = state["hints_given"] + state["doctor"]
        self._save(state)
        self._event("lab_hint", doctor=state["doctor"])

    def hint(self) -> dict[str, Any]:
        """Return the next hint (the last one again once all were given)."""
        state, scenario = self.state(), self._scenario()
        index = min(state["hints_given"], len(scenario.hints) - 1)
        state["hints_given"] = index + 1
        state["hints"] = state["hints_given"] + state["doctor"]  # each use of doctor (--assist) counts as one
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

    def check(self, sustain_s: float = 10.0, timeout_s: float = 30.0, wait_s: float = 0.0,
              progress: Callable[[str], None] = lambda m: None) -> dict[str, Any]:
        """Pass if the learner's own repair holds (fault gone, stack steady for `sustain_s`); then end the lab.

        While the cause is in effect it says so (to `progress`), looking again for up to `wait_s` seconds."""
        state, scenario = self.state(), self._scenario()
        deadline = time.monotonic() + wait_s
        while (waiting := self._waiting_for(state, scenario)) is not None:
            if waiting["credit"] is False or time.monotonic() >= deadline:
                return {"fixed": False, **waiting}
            progress(waiting["waiting"])
            time.sleep(CHECK_POLL_S)
        progress(f"the cause is gone: waiting for the stack to stay healthy for {sustain_s:g} s")
        problems = faults.wait_steady(self.backend, sustain_s, timeout_s)
        if problems:
            return {"fixed": False, "credit": True, "problems": problems,
                    "waiting": f"waiting for the stack to stay healthy for {sustain_s:g} s: the cause is gone, "
                               "but it has not yet"}
        faults.clear(self.backend, scenario.fault, sustain=1.0)  # records `remediated`: the learner fixed it
        return self._end(state, scenario, "lab_passed", fixed=True)

    def _waiting_for(self, state: dict[str, Any], scenario: Scenario) -> dict[str, Any] | None:
        """Return what check still waits for (None: the learner's repair is in effect)."""
        record = self.backend.recorded().get(scenario.fault)
        if record is None or record.get("incident_id") != state["incident_id"]:
            # Only the fault tool takes the record away before the lab ends: not a repair of the learner's.
            return {"credit": False, "problems": [],
                    "waiting": "not credited: the fault tool put the incident back, not a repair of yours; "
                               "`sre-workshop lab giveup` ends the lab"}
        if not Session(self.backend, scenario, "lab", load=False).fault_active():
            return None
        return {"credit": True, "problems": self.backend.problems(),
                "waiting": "waiting for your repair: the cause of what the ticket reports is still in effect"}

    def giveup(self) -> dict[str, Any]:
        """Reveal the ground truth, clear the fault with the tool, end the lab."""
        state, scenario = self.state(), self._scenario()
        faults.clear(self.backend, scenario.fault)
        return self._end(state, scenario, "lab_gave_up", fixed=False)

    def _end(self, state: dict[str, Any], scenario: Scenario, event: str, fixed: bool) -> dict[str, Any]:
        self._stop_load()
        if "identity" in state:
            identity.delete(self.stack.settings, identity.Identity(**state["identity"]), identity.LEARNER)
        correct = any(a["correct"] for a in state["attempts"])
        score = {"scenario": scenario.name, "fixed": fixed, "diagnosed": correct,
                 "attempts": len(state["attempts"]), "hints": state["hints"],
                 "minutes": round((time.time() - state["started_at"]) / 60, 1)}
        self._event(event, **score)
        self.path.unlink()
        return {**score, "ground_truth": scenario.truth().to_dict(), "writeup": scenario.writeup.to_dict()}

