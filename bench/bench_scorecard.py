"""The full-length scorecard: every scenario with doctor and with the reference agent over MCP, unassisted
(its own rules over the raw signals and operator actions: agents/rules.py) and assisted (`--assist`: it acts
on doctor's findings, scored as "agent:reference (assisted)"), at the scenarios' own time limits, and a
control of CONTROL_S seconds under load for the false-positive rate.

    BENCH_SCORERS=doctor,reference,assisted   (the default: all three; a subset runs only those)

Goals (issue "Scored incident scenarios"): doctor localizes every fault and recovery is verified for each;
the control has no false positive; the assisted reference agent localizes every fault too. The unassisted
agent is the baseline that is not doctor (issue 18 point 7): its score is recorded, not a goal. Writes
bench/out/scorecard.json and bench/out/scorecard.html.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from sre_workshop.cli.main import main
from sre_workshop.local.stack import Stack
from sre_workshop.scenarios import scorecard
from sre_workshop.scenarios.agent import AgentOptions, run_agent_many
from sre_workshop.scenarios.catalogue import scenarios
from sre_workshop.scenarios.html import page
from sre_workshop.scenarios.runner import Options, run_many
from sre_workshop.settings import Settings

from common import ROOT, machine
from conftest import examinee_python

OFFSET = int(os.environ.get("SRE_WORKSHOP_PORT_OFFSET", "22300"))
CONTROL_S = float(os.environ.get("BENCH_CONTROL_S", "300"))
AGENT = f"{examinee_python()} -m sre_workshop.agents.reference"  # as root the agent runs as nobody


def say(message: str) -> None:
    print(f"  {message}", file=sys.stderr, flush=True)


SCORERS = tuple(os.environ.get("BENCH_SCORERS", "doctor,reference,assisted").split(","))


def agent_options(assist: bool) -> AgentOptions:
    """The reference agent imports our packages: pass it PYTHONPATH; assisted, it reads doctor."""
    import site

    os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), *site.getsitepackages()])
    return AgentOptions(assist=assist, env=("PYTHONPATH",))


def chosen() -> list:
    """Every scenario; the control stretched to CONTROL_S."""
    return [replace(s, time_limit_s=CONTROL_S) if s.is_control else s for s in scenarios().values()]


def main_bench() -> int:
    """Run the scorecard on a fresh stack; print and save it."""
    os.environ["SRE_WORKSHOP_PORT_OFFSET"] = str(OFFSET)
    state = Path(tempfile.mkdtemp(prefix="bench-scorecard-"))
    assert main(["--state-dir", str(state), "up", "--detach"]) == 0
    started = time.monotonic()
    try:
        stack = Stack.open(Settings.from_env(state_dir=state))
        cards = [("doctor", run_many(stack, chosen(), Options(), say))] if "doctor" in SCORERS else []
        for assist in [False] * ("reference" in SCORERS) + [True] * ("assisted" in SCORERS):
            cards.append(run_agent_many(stack, chosen(), AGENT, Options(), say, agent_options(assist)))
    finally:
        main(["--state-dir", str(state), "fault", "clear", "--all"])
        main(["--state-dir", str(state), "down"])
    print(scorecard.table(cards), file=sys.stderr)
    data = {"machine": machine(), "control_s": CONTROL_S, "minutes": round((time.monotonic() - started) / 60, 1),
            "scorecards": [scorecard.card(s, r) for s, r in cards]}
    totals = {name: scorecard.totals(r) for name, r in cards}
    doctor, agent = totals.get("doctor"), totals.get("agent:reference (assisted)")
    data["met"] = ((doctor is None or (doctor["localized"] == doctor["faults"] == doctor["recovered"]
                                       and doctor["false_positives"] == 0))
                   and (agent is None or (agent["localized"] == agent["faults"] and agent["false_positives"] == 0)))
    out = ROOT / "bench" / "out"
    out.mkdir(exist_ok=True)
    (out / "scorecard.json").write_text(json.dumps(data, indent=2, default=str))
    (out / "scorecard.html").write_text(page(cards, "sre-workshop scorecard (benchmark)"))
    print(json.dumps({"machine": data["machine"], "minutes": data["minutes"], "totals": totals, "met": data["met"]},
                     indent=2))
    return 0 if data["met"] else 1


if __name__ == "__main__":
    sys.exit(main_bench())
