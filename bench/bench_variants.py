"""The fuller run of scenarios that cannot be memorised: K variants of every catalogue scenario drawn from a
seed, every compound, cascading and manual scenario, and a control of CONTROL_S seconds with every kind of
noise, all with doctor diagnosing. Writes bench/out/variants.json and bench/out/variants.html.

Goals (issue 19, point 5): the control with all noise has no false positive; the scorecard shows, per
fault, how many of its variants doctor localized (the spread is the result: no goal per variant).

    SRE_WORKSHOP_PORT_OFFSET=22500 .venv/bin/python bench/bench_variants.py [SEED] [K]
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
from sre_workshop.scenarios.catalogue import scenarios
from sre_workshop.scenarios.extra import extras
from sre_workshop.scenarios.html import page
from sre_workshop.scenarios.multi import run_all_kinds
from sre_workshop.scenarios.noise import KINDS
from sre_workshop.scenarios.runner import Options
from sre_workshop.scenarios.variants import variants
from sre_workshop.settings import Settings

from common import ROOT, machine

OFFSET = int(os.environ.get("SRE_WORKSHOP_PORT_OFFSET", "22500"))
CONTROL_S = float(os.environ.get("BENCH_CONTROL_S", "120"))


def say(message: str) -> None:
    print(f"  {message}", file=sys.stderr, flush=True)


def main_bench(seed: int, count: int) -> int:
    """Run the variants, the extras and the noisy control on a fresh stack; print and save the scorecard."""
    os.environ["SRE_WORKSHOP_PORT_OFFSET"] = str(OFFSET)
    state = Path(tempfile.mkdtemp(prefix="bench-variants-"))
    assert main(["--state-dir", str(state), "up", "--detach"]) == 0
    started = time.monotonic()
    faulty = [v for s in scenarios().values() if not s.is_control for v in variants(s, seed, count)]
    control = replace(scenarios()["control"], time_limit_s=CONTROL_S)
    try:
        stack = Stack.open(Settings.from_env(state_dir=state))
        results = run_all_kinds(stack, [*faulty, *extras().values()], Options(seed=seed), say)
        results += run_all_kinds(stack, [control], Options(seed=seed, noise=KINDS), say)
    finally:
        main(["--state-dir", str(state), "fault", "clear", "--all"])
        main(["--state-dir", str(state), "down"])
    cards = [("doctor", results)]
    print(scorecard.table(cards) + "\n\n" + scorecard.spread_table(results), file=sys.stderr)
    data = {"machine": machine(), "seed": seed, "variants": count, "control_s": CONTROL_S,
            "minutes": round((time.monotonic() - started) / 60, 1), "scorecards": [scorecard.card("doctor", results)]}
    out = ROOT / "bench" / "out"
    out.mkdir(exist_ok=True)
    (out / "variants.json").write_text(json.dumps(data, indent=2))
    (out / "variants.html").write_text(page(cards))
    print(json.dumps({k: v for k, v in data.items() if k != "scorecards"} | {"totals": scorecard.totals(results)}))
    return 0 if results[-1].false_positives == 0 and not results[-1].error else 1


if __name__ == "__main__":
    sys.exit(main_bench(*(int(a) for a in sys.argv[1:3])) if len(sys.argv) > 1 else main_bench(19, 3))
