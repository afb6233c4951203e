"""The full-length scorecard: every scenario with doctor and with the reference agent over MCP, at the
scenarios' own time limits, and a control of CONTROL_S seconds under load for the false-positive rate.

Goals (issue "Scored incident scenarios"): doctor localizes every fault and recovery is verified for each;
the control has no false positive; the reference agent (which acts on doctor's findings through MCP, so it
runs assisted: `--assist`, scored as "agent:reference (assisted)") localizes every fault too. Writes
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


def agent_options() -> AgentOptions:
    """The reference agent reads doctor (assisted) and imports our packages: pass it PYTHONPATH."""
    import site

    os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), *site.getsitepackages()])
    return AgentOptions(assist=True, env=("PYTHONPATH",))


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
        cards = [("doctor", run_many(stack, chosen(), Options(), say))]
        cards.append(run_agent_many(stack, chosen(), AGENT, Options(), say, agent_options()))
    finally:
        main(["--state-dir", str(state), "fault", "clear", "--all"])
        main(["--state-dir", str(state), "down"])
    print(scorecard.table(cards), file=sys.stderr)
    data = {"machine": machine(), "control_s": CONTROL_S, "minutes": round((time.monotonic() - started) / 60, 1),
            "scorecards": [scorecard.card(s, r) for s, r in cards]}
    doctor, agent = (scorecard.totals(r) for _, r in cards)
    data["met"] = (doctor["localized"] == doctor["faults"] == doctor["recovered"] and doctor["false_positives"] == 0
                   and agent["localized"] == agent["faults"] and agent["false_positives"] == 0)
    out = ROOT / "bench" / "out"
    out.mkdir(exist_ok=True)
    (out / "scorecard.json").write_text(json.dumps(data, indent=2, default=str))
    (out / "scorecard.html").write_text(page(cards, "sre-workshop scorecard (benchmark)"))
    print(json.dumps({"machine": data["machine"], "minutes": data["minutes"], "doctor": doctor, "agent": agent,
                      "met": data["met"]}, indent=2))
    return 0 if data["met"] else 1


if __name__ == "__main__":
    sys.exit(main_bench())
