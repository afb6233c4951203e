"""The hostile-input properties (tests/integration/test_hostile_input.py) with many more examples than CI runs.

Runs that test module under pytest with SRE_WORKSHOP_HOSTILE_SCALE (default 10: ten times CI's examples),
with a seed printed so a failure can be replayed, against a whole local stack of its own; prints one JSON
object (machine, scale, seed, seconds, passed/failed counts) and writes it to bench/out/. Exit 1 when any
property fails.

    .venv/bin/python bench/bench_hostile_input.py [--scale N] [--seed S]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import subprocess
import sys
import time

from common import ROOT, machine


def main(argv: list[str] | None = None) -> int:
    """Run the properties at a larger scale and report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=10, help="examples per property, times CI's (10)")
    parser.add_argument("--seed", type=int, default=random.randrange(2**32), help="Hypothesis seed")
    args = parser.parse_args(argv)
    env = {**os.environ, "SRE_WORKSHOP_HOSTILE_SCALE": str(args.scale)}
    started = time.monotonic()
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          f"--hypothesis-seed={args.seed}", "tests/integration/test_hostile_input.py"],
                         cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    counts = {kind: int(n) for n, kind in re.findall(r"(\d+) (passed|failed|error)", run.stdout)}
    result = {"machine": machine(), "scale": args.scale, "seed": args.seed,
              "seconds": round(time.monotonic() - started, 1), **counts}
    (ROOT / "bench" / "out").mkdir(exist_ok=True)
    (ROOT / "bench" / "out" / "hostile_input.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result))
    if run.returncode != 0:
        print(run.stdout[-6000:], file=sys.stderr)
    return 0 if run.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
