"""The fuller run of scenarios that cannot be memorised: K variants of every catalogue scenario drawn from each
of the seeds, every compound, cascading and manual scenario once, and a control of CONTROL_S seconds with
every kind of noise, all with doctor diagnosing. Writes bench/out/variants.json and bench/out/variants.html.

Goals (issue 19, point 6): doctor localizes 100 % of the catalogue's variants and >= 90 % of the manual and
compound scenarios' parts; the control with all noise has no false positive; median time to detect <= 2 s
for hard-down breakage and <= 30 s for trends (scorecard.TRENDS: memory, cpu, latency, errors, throttling).

    SRE_WORKSHOP_PORT_OFFSET=22500 BENCH_CONTROL_S=300 .venv/bin/python bench/bench_variants.py [SEEDS] [K]

SEEDS is one seed (20), a range (20-24) or a list (20,23).
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


def parse_seeds(text: str) -> list[int]:
    """Return the seeds of "20", "20-24" or "20,23"."""
    if "-" in text:
        low, high = (int(x) for x in text.split("-", 1))
        return list(range(low, high + 1))
    return [int(x) for x in text.split(",")]


def share(results: list, part: str) -> str:
    """Return "localized/total" over results."""
    return f"{sum(r.localized for r in results)}/{len(results)} {part}"


def main_bench(seeds: list[int], count: int) -> int:
    """Run the variants, the extras and the noisy control on a fresh stack; print and save the scorecard."""
    os.environ["SRE_WORKSHOP_PORT_OFFSET"] = str(OFFSET)
    state = Path(tempfile.mkdtemp(prefix="bench-variants-"))
    assert main(["--state-dir", str(state), "up", "--detach"]) == 0
    started = time.monotonic()
    control = replace(scenarios()["control"], time_limit_s=CONTROL_S)
    results = []
    try:
        stack = Stack.open(Settings.from_env(state_dir=state))
        for seed in seeds:
            faulty = [v for s in scenarios().values() if not s.is_control for v in variants(s, seed, count)]
            results += run_all_kinds(stack, faulty, Options(seed=seed), say)
        catalogue = list(results)
        results += run_all_kinds(stack, list(extras().values()), Options(seed=seeds[0]), say)
        extra = results[len(catalogue):]
        results += run_all_kinds(stack, [control], Options(seed=seeds[0], noise=KINDS), say)
    finally:
        main(["--state-dir", str(state), "fault", "clear", "--all"])
        main(["--state-dir", str(state), "down"])
    cards = [("doctor", results)]
    print(scorecard.table(cards) + "\n\n" + scorecard.spread_table(results), file=sys.stderr)
    print(f"localized: {share(catalogue, 'catalogue variants')}, {share(extra, 'manual/compound/cascade parts')}",
          file=sys.stderr)
    data = {"machine": machine(), "seeds": seeds, "variants": count, "control_s": CONTROL_S,
            "minutes": round((time.monotonic() - started) / 60, 1),
            "by_kind": {"catalogue": scorecard.totals(catalogue), "extras": scorecard.totals(extra)},
            "scorecards": [scorecard.card("doctor", results)]}
    out = ROOT / "bench" / "out"
    out.mkdir(exist_ok=True)
    (out / "variants.json").write_text(json.dumps(data, indent=2))
    (out / "variants.html").write_text(page(cards))
    print(json.dumps({k: v for k, v in data.items() if k != "scorecards"} | {"totals": scorecard.totals(results)}))
    return 0 if results[-1].false_positives == 0 and not results[-1].error else 1


if __name__ == "__main__":
    args = sys.argv[1:]
    sys.exit(main_bench(parse_seeds(args[0]) if args else [19], int(args[1]) if len(args) > 1 else 3))
