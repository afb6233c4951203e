"""doctor's time to detect: from a fault's injection to the first run whose top finding names its ground
truth, per fault of the local catalogue; and one run's duration on a healthy stack.

Targets (issue "sre-workshop doctor"): a 1 MB/s leak within 30 s; hard-down faults (crash, health-check
fail, bad upstream, access denied) within two health-check intervals of the symptom; one run under 3 s.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from sre_workshop.cli.main import main
from sre_workshop.diagnose.doctor import run_local
from sre_workshop.faults.catalogue import catalogue
from sre_workshop.local.stack import Stack
from sre_workshop.settings import HealthCheck, Settings

from common import ROOT, machine

OFFSET = 21700
HARD_DOWN = {"app-crash", "nginx-crash", "health-check-fail", "nginx-bad-upstream", "dynamodb-access-denied"}
# Faults whose symptom needs traffic or a slow request are left to their tests.
SKIP = {"nginx-timeout", "dynamodb-throttling", "cpu-burn"}
LIMIT_S = 90


def detect(state: Path, stack: Stack, name: str) -> float | None:
    """Inject, then diagnose until the top finding is the ground truth; return the seconds it took."""
    fault = catalogue()[name]
    truth = fault.ground_truth(fault.defaults())
    assert main(["--state-dir", str(state), "fault", "inject", name]) == 0
    injected = time.monotonic()
    try:
        while time.monotonic() - injected < LIMIT_S:
            report = run_local(stack)
            if report.findings and (report.findings[0].component, report.findings[0].category) == \
                    (truth.component, truth.category):
                return time.monotonic() - injected
        return None
    finally:
        assert main(["--state-dir", str(state), "fault", "clear", name]) == 0


def main_bench() -> int:
    """Run every fault once on a fresh stack; print and save the results."""
    os.environ["SRE_WORKSHOP_PORT_OFFSET"] = str(OFFSET)
    state = Path(tempfile.mkdtemp(prefix="bench-doctor-"))
    assert main(["--state-dir", str(state), "up", "--detach"]) == 0
    try:
        assert main(["--state-dir", str(state), "fault", "clear", "--all"]) == 0
        stack = Stack.open(Settings.from_env(state_dir=state))
        healthy_runs = [run_local(stack).seconds for _ in range(5)]
        results = {name: detect(state, stack, name) for name in catalogue() if name not in SKIP}
    finally:
        main(["--state-dir", str(state), "down"])
    # inject returns once the symptom shows; a hard-down fault is then due within two check intervals
    # plus the one doctor run that sees it.
    hard_down_goal = 2 * HealthCheck().interval_seconds + statistics.median(healthy_runs)
    goals = {name: hard_down_goal if name in HARD_DOWN else 30.0 for name in results}
    out = {"machine": machine(), "healthy_run_s": round(statistics.median(healthy_runs), 2),
           "detect_s": {n: (round(s, 1) if s is not None else None) for n, s in results.items()},
           "goal_s": goals, "met": all(s is not None and s <= goals[n] for n, s in results.items())}
    print(json.dumps(out, indent=2))
    (ROOT / "bench" / "out").mkdir(exist_ok=True)
    (ROOT / "bench" / "out" / "doctor.json").write_text(json.dumps(out, indent=2))
    return 0 if out["met"] else 1


if __name__ == "__main__":
    sys.exit(main_bench())
