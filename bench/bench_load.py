"""The load generator's own limits: is it ever the bottleneck for the rates faults need?

1. Closed loop at the same concurrency, in the same run, alternating (ABBA): wrk -c C against GET / through
   the public entry point (public ALB -> nginx -> private ALB -> sre-app), and `sre-workshop load` with C
   users and no pacing. Requests/s and CPU per request of each generator (wrk, the Locust child process).
2. Paced runs at the rates faults need (default 200 and 400 rps, C users), a few rounds each: the rate
   achieved, and the generator's own overhead per request: the latency Locust measured minus the time
   nginx spent on the same request (its access log's request_time, joined by X-Request-ID). Measured
   twice: through the public entry point (the difference then also holds the public ALB's hop: an upper
   bound) and straight to nginx (the generator and loopback only). Goal: >= 200 rps sustained with a p95
   overhead under 5 ms. The machine is shared, so each figure is the median over the rounds, and the
   load average is recorded with them.

The leak is switched off, as in bench_stack.py, so that every run does the same work.

    .venv/bin/python bench/bench_load.py [--connections 8] [--seconds 8] [--rounds 3] [--rates 200,400]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sre_workshop.cli.main import main as cli
from sre_workshop.load import Targets, start
from sre_workshop.load.options import MAX_RATE
from sre_workshop.settings import BASE_PORTS

from common import cpu_seconds, machine
from conftest import http

WRK_LUA = """done = function(summary, latency, requests)
  io.write(string.format('JSON {"requests": %d, "duration_us": %d, "p50_us": %d, "p95_us": %d, "p99_us": %d, '
    .. '"non_2xx": %d}\\n', summary.requests, summary.duration, latency:percentile(50), latency:percentile(95),
    latency:percentile(99), summary.errors.status))
end
"""
GOAL_RPS, GOAL_OVERHEAD_P95_MS = 200.0, 5.0


def run_cli(*args: str) -> int:
    """Run the tool's CLI in this process, its output on stderr so that stdout stays JSON."""
    with contextlib.redirect_stdout(sys.stderr):
        return cli(list(args))


def percentile(values: list[float], p: float) -> float:
    """Return the p-th percentile (0-100) of `values`, nearest rank."""
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))], 2)


def wrk(url: str, seconds: int, connections: int, lua: Path) -> dict:
    """Run wrk (one thread); return requests/s, p50/p95/p99 in ms and its CPU per request."""
    binary = shutil.which("wrk") or sys.exit("wrk is not installed: apt-get install -y wrk")
    argv = [binary, "-t1", f"-c{connections}", f"-d{seconds}s", "-s", str(lua), url]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    data = json.loads(next(line[5:] for line in out.splitlines() if line.startswith("JSON ")))
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return {"rps": round(data["requests"] / (data["duration_us"] / 1e6), 1), "requests": data["requests"],
            "non_2xx": data["non_2xx"], **{f"p{p}_ms": round(data[f"p{p}_us"] / 1000, 2) for p in (50, 95, 99)},
            "generator_cpu_us_per_request": round(cpu * 1e6 / max(data["requests"], 1), 1)}


def locust_run(url: str, seconds: int, users: int, rate: float, trace: Path | None = None) -> dict:
    """Run the load generator against `url`; return its summary figures and its CPU per request."""
    handle = start(Targets({"app": url}), users=users, rate=rate, duration=seconds, trace_path=trace)
    pid = handle.process.pid
    while handle.progress is None and handle.running:  # the first reading comes a second in
        time.sleep(0.05)
    cpu0, progress0 = cpu_seconds([pid]), handle.progress
    time.sleep(max(1.0, seconds - 2.5))
    cpu1, progress1 = cpu_seconds([pid]), handle.progress
    summary = handle.wait(timeout=seconds + 60)
    counted = progress1.requests - progress0.requests
    window = progress1.elapsed_s - progress0.elapsed_s
    total = summary.total
    return {"rps": total.rps, "requests": total.count, "failures": total.failures,
            "p50_ms": total.p50_ms, "p95_ms": total.p95_ms, "p99_ms": total.p99_ms,
            "generator_cpu_us_per_request": round((cpu1 - cpu0) * 1e6 / max(counted, 1), 1),
            "generator_cpu_share_of_a_core": round((cpu1 - cpu0) / window, 2) if window else None,
            "run_id": summary.run_id}


def overhead(trace: Path, nginx_log: Path, run_id: str) -> dict:
    """Join Locust's per-request latency with nginx's request_time by X-Request-ID; return the overhead's shape."""
    nginx = {}
    for line in nginx_log.read_text().splitlines():
        entry = json.loads(line)
        if entry["request_id"].startswith(run_id + "-"):
            nginx[entry["request_id"]] = float(entry["request_time"]) * 1000
    rows = [json.loads(line) for line in trace.read_text().splitlines()]
    diffs = [ms - nginx[rid] for rid, ms in rows if rid in nginx]
    client = [ms for rid, ms in rows if rid in nginx]
    return {"joined": len(diffs), "of": len(rows), "overhead_ms": {f"p{p}": percentile(diffs, p) for p in (50, 95, 99)},
            "locust_ms": {f"p{p}": percentile(client, p) for p in (50, 95, 99)},
            "nginx_ms": {f"p{p}": percentile(list(nginx.values()), p) for p in (50, 95, 99)}}


def leak_off(state: Path, offset: int) -> None:
    """Switch sre-app's leak off so that every run does the same work."""
    token = (state / "run" / "fault-token").read_text()
    url = f"http://127.0.0.1:{BASE_PORTS['sre-app'] + offset}/admin/leak"
    reply = http("PUT", url, {"mode": "off"}, headers={"X-Fault-Token": token})
    if reply.status != 200:
        sys.exit(f"could not switch the leak off: {reply.status} {reply.text}")


def paced_run(url: str, args: argparse.Namespace, rate: float, state: Path) -> dict:
    """One paced run with its per-request overhead over nginx's own time."""
    trace = state / "trace.jsonl"
    result = locust_run(url, args.seconds, args.connections, rate, trace)
    result["overhead"] = overhead(trace, state / "logs" / "nginx-access.log", result["run_id"])
    result["load_average_1m"] = round(os.getloadavg()[0], 2)
    return result


def measure(args: argparse.Namespace, state: Path, lua: Path) -> dict:
    """Run the closed-loop rounds and the paced runs against a running stack."""
    entry = f"http://127.0.0.1:{BASE_PORTS['public-alb'] + args.offset}/"
    nginx = f"http://127.0.0.1:{BASE_PORTS['nginx'] + args.offset}/"
    wrk(entry, 2, args.connections, lua)  # warm-up
    closed: dict[str, list[dict]] = {"wrk": [], "load": []}
    for round_ in range(args.rounds):
        order = ("wrk", "load") if round_ % 2 == 0 else ("load", "wrk")
        for name in order:
            closed[name].append(wrk(entry, args.seconds, args.connections, lua) if name == "wrk"
                                else locust_run(entry, args.seconds, args.connections, MAX_RATE))
    paced: dict[str, dict[str, list[dict]]] = {}
    for rate in args.rates:
        runs = paced[f"{rate:.0f} rps"] = {"through the public ALB": [], "straight to nginx": []}
        for _ in range(args.rounds):
            runs["through the public ALB"].append(paced_run(entry, args, rate, state))
            runs["straight to nginx"].append(paced_run(nginx, args, rate, state))
    return {"closed_loop": closed, "paced": paced}


def medians(runs: list[dict]) -> dict:
    """Median over rounds of the achieved rate, failures and the overhead percentiles."""
    return {"rps": statistics.median(r["rps"] for r in runs), "failures": sum(r["failures"] for r in runs),
            **{f"overhead_{p}_ms": statistics.median(r["overhead"]["overhead_ms"][p] for r in runs)
               for p in ("p50", "p95", "p99")},
            "locust_p95_ms": statistics.median(r["overhead"]["locust_ms"]["p95"] for r in runs),
            "nginx_p95_ms": statistics.median(r["overhead"]["nginx_ms"]["p95"] for r in runs),
            "generator_cpu_us_per_request": statistics.median(r["generator_cpu_us_per_request"] for r in runs),
            "load_average_1m": [r["load_average_1m"] for r in runs]}


def verdict(results: dict) -> dict:
    """Summarise the runs and check the goal at GOAL_RPS (overhead measured straight to nginx)."""
    closed = results["closed_loop"]
    wrk_rps = statistics.median(r["rps"] for r in closed["wrk"])
    load_rps = statistics.median(r["rps"] for r in closed["load"])
    paced = {rate: {how: medians(runs) for how, runs in by_how.items()} for rate, by_how in results["paced"].items()}
    goal = paced.get(f"{GOAL_RPS:.0f} rps", {}).get("straight to nginx")
    met = bool(goal and goal["rps"] >= 0.97 * GOAL_RPS and goal["failures"] == 0
               and goal["overhead_p95_ms"] < GOAL_OVERHEAD_P95_MS)
    return {"closed_loop_rps": {"wrk": wrk_rps, "load": load_rps}, "load_over_wrk": round(load_rps / wrk_rps, 3),
            "generator_cpu_us_per_request": {
                "wrk": statistics.median(r["generator_cpu_us_per_request"] for r in closed["wrk"]),
                "load": statistics.median(r["generator_cpu_us_per_request"] for r in closed["load"])},
            "paced_medians": paced,
            "goal": f">= {GOAL_RPS:.0f} rps sustained, p95 overhead < {GOAL_OVERHEAD_P95_MS} ms", "goal_met": met}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rates", default="200,400")
    parser.add_argument("--offset", type=int, default=21000)
    args = parser.parse_args()
    args.rates = [float(r) for r in args.rates.split(",")]
    os.environ["SRE_WORKSHOP_PORT_OFFSET"] = str(args.offset)
    state = Path(tempfile.mkdtemp(prefix="bench-load-"))
    lua = state / "percentiles.lua"
    lua.write_text(WRK_LUA)
    if run_cli("--state-dir", str(state), "up", "--detach") != 0:
        run_cli("--state-dir", str(state), "down")
        sys.exit("up failed")
    try:
        leak_off(state, args.offset)
        results = measure(args, state, lua)
    finally:
        run_cli("--state-dir", str(state), "down")
    summary = {"machine": machine(), "load_average_1m": os.getloadavg()[0], "connections": args.connections,
               "seconds": args.seconds, **verdict(results), "runs": results}
    text = json.dumps(summary, indent=2)
    out = Path(__file__).parent / "out"
    out.mkdir(exist_ok=True)
    (out / "bench_load.json").write_text(text)
    print(text)
    return 0 if summary["goal_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
