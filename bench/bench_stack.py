"""The local stack: time to healthy, memory at rest, and the cost of the four hops.

1. `sre-workshop up --detach` until every target is healthy (goal <= 5 s): a first start (tables created,
   CRM seeded) and restarts (snapshot restored).
2. RSS and PSS of every process of the stack at rest (goal <= 500 MB); PSS counts pages that forked
   workers share once, RSS counts them in every process.
3. GET / through the public ALB (HAProxy -> nginx -> HAProxy -> Gunicorn) vs straight to the app's Gunicorn,
   alternating in one run, with wrk (goal: ratio >= 0.6). The leak is switched off for this part, so
   both measure the same work. CPU time per request of every component (and of wrk) in each run shows
   where the difference goes.

    .venv/bin/python bench/bench_stack.py [--starts 3] [--seconds 4] [--rounds 6]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

from sre_workshop.cli.main import main as cli
from sre_workshop.local.process import ProcessRecord, group_members
from sre_workshop.settings import BASE_PORTS

from common import cpu_seconds, machine, memory_kb, wrk
from conftest import http

OFFSET = 21000  # keeps every port below the kernel's ephemeral range (32768+), where a client socket may sit


def url(name: str) -> str:
    return f"http://127.0.0.1:{BASE_PORTS[name] + OFFSET}"


def run(*args: str) -> int:
    """Run the CLI in this process, its output on stderr so that stdout stays JSON."""
    with contextlib.redirect_stdout(sys.stderr):
        return cli(list(args))


def timed_up(state: Path) -> float:
    started = time.monotonic()
    if run("--state-dir", str(state), "up", "--detach") != 0:
        run("--state-dir", str(state), "down")
        sys.exit("up failed")
    return time.monotonic() - started


def stack_pids(state: Path) -> dict[str, list[int]]:
    """The live pids of every component (its whole process group), by component name."""
    return {record.name: list(group_members(record.pid))
            for record in map(ProcessRecord.load, sorted((state / "run" / "pids").glob("*.json")))}


def stack_memory(state: Path) -> dict[str, dict[str, float]]:
    """RSS and PSS in MB per component."""
    result = {}
    for name, pids in stack_pids(state).items():
        sizes = [memory_kb(pid) for pid in pids]
        result[name] = {"processes": len(sizes), "rss_mb": round(sum(s[0] for s in sizes) / 1024, 1),
                        "pss_mb": round(sum(s[1] for s in sizes) / 1024, 1)}
    return result


def measured_wrk(target: str, seconds: int, pids: dict[str, list[int]]) -> dict:
    """wrk's result plus the CPU microseconds per request each component (and wrk itself) spent."""
    before = {name: cpu_seconds(group) for name, group in pids.items()}
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = wrk(target, seconds=seconds)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    spent = {name: cpu_seconds(group) - before[name] for name, group in pids.items()}
    spent["wrk"] = after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime
    result["cpu_us_per_request"] = {name: round(s * 1e6 / result["requests"], 1) for name, s in spent.items()}
    return result


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--starts", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args()
    os.environ["SRE_WORKSHOP_PORT_OFFSET"] = str(OFFSET)
    state = Path(tempfile.mkdtemp(prefix="bench-stack-"))
    starts = []
    for _ in range(args.starts):
        starts.append(round(timed_up(state), 2))
        run("--state-dir", str(state), "down")
    timed_up(state)
    try:
        time.sleep(3)  # at rest
        memory = stack_memory(state)
        token = (state / "run" / "fault-token").read_text()
        reply = http("PUT", url("sre-app") + "/admin/leak", {"mode": "off"}, headers={"X-Fault-Token": token})
        if reply.status != 200:
            sys.exit(f"could not switch the leak off: {reply.status} {reply.text}")
        time.sleep(1.5)
        results = {"through :8000": [], "direct": []}
        targets = [("through :8000", url("public-alb") + "/"), ("direct", url("sre-app") + "/")]
        wrk(targets[0][1], seconds=2)
        pids = stack_pids(state)
        for round_ in range(args.rounds):
            for name, target in targets if round_ % 2 == 0 else targets[::-1]:
                results[name].append(measured_wrk(target, args.seconds, pids))
    finally:
        run("--state-dir", str(state), "down")
    paired = sorted(a["rps"] / b["rps"] for a, b in zip(results["through :8000"], results["direct"], strict=True))
    summary = {
        "machine": machine(),
        "up_seconds": {"first (create + seed)": starts[0], "restarts (restore)": starts[1:]},
        "memory": memory,
        "total_rss_mb": round(sum(m["rss_mb"] for m in memory.values()), 1),
        "total_pss_mb": round(sum(m["pss_mb"] for m in memory.values()), 1),
        "rps": {k: statistics.median(r["rps"] for r in v) for k, v in results.items()},
        "p50_ms": {k: statistics.median(r["p50_ms"] for r in v) for k, v in results.items()},
        "p99_ms": {k: statistics.median(r["p99_ms"] for r in v) for k, v in results.items()},
        "non_2xx": {k: sum(r["non_2xx"] for r in v) for k, v in results.items()},
        "cpu_us_per_request": {k: {name: statistics.median(r["cpu_us_per_request"][name] for r in v)
                                   for name in v[0]["cpu_us_per_request"]} for k, v in results.items()},
        "hops_ratio": round(statistics.median(paired), 3),
        "paired_ratios": [round(r, 3) for r in paired],
    }
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
