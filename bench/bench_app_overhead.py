"""GET / requests per second: sre-app with its leak off vs a bare Flask JSON endpoint, same Gunicorn settings.

Both run under Gunicorn with sre-app's gunicorn.conf.py (2 sync workers) against moto's server, and are
measured alternately (A B A B ...) in one run so that machine noise hits both. Goal: ratio >= 0.85.

    .venv/bin/python bench/bench_app_overhead.py [--seconds 4] [--rounds 10]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

from sre_workshop.local.process import ProcessSpec, free_port

from common import ROOT, machine, pinned, wrk
from conftest import app_spec, create_tables, dynamodb, moto_spec, start_server


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--no-pin", action="store_true",
                        help="let the scheduler place processes (default: servers on CPU 0, wrk and moto on CPU 1)")
    args = parser.parse_args()
    # Pinned, the servers' throughput is one core divided by their CPU cost per request, so the ratio
    # compares exactly that and wrk never competes with the server for its core.
    server_cpu, client_cpu = (None, None) if args.no_pin else ("0", "1")
    tmp = Path(tempfile.mkdtemp(prefix="bench-overhead-"))
    moto_process = moto_spec(tmp)
    moto_process.argv = pinned(moto_process.argv, client_cpu)
    moto = start_server(moto_process)
    create_tables(dynamodb(moto.url))
    app_process = app_spec("sre_app", tmp, moto.url, LEAK_MODE="off")
    app_process.argv = pinned(app_process.argv, server_cpu)
    app = start_server(app_process)
    port = free_port()
    # sre-app's gunicorn.conf.py hooks start its flusher; the baseline gets the same server settings by hand.
    bare = start_server(ProcessSpec("bare", pinned([
        sys.executable, "-m", "gunicorn", "--chdir", str(ROOT / "bench"), "-w", "2", "-k", "sync",
        "-b", f"127.0.0.1:{port}", "--no-control-socket", "bare_app:app"], server_cpu), tmp / "bare.log",
        ports=[port]))
    try:
        wrk(app.url + "/", seconds=2, cpus=client_cpu)  # warm up both
        wrk(bare.url + "/", seconds=2, cpus=client_cpu)
        results = {"sre-app": [], "bare": []}
        targets = [("sre-app", app.url + "/"), ("bare", bare.url + "/")]
        for round_ in range(args.rounds):
            for name, url in targets if round_ % 2 == 0 else targets[::-1]:  # ABBA: cancels drift
                results[name].append(wrk(url, seconds=args.seconds, cpus=client_cpu))
    finally:
        for server in (app, bare, moto):
            server.stop()
    median = {k: statistics.median(r["rps"] for r in v) for k, v in results.items()}
    paired = sorted(a["rps"] / b["rps"] for a, b in zip(results["sre-app"], results["bare"], strict=True))
    summary = {"machine": machine(), "pinned": not args.no_pin, "median_rps": median,
               "ratio": round(statistics.median(paired), 3), "paired_ratios": [round(r, 3) for r in paired],
               "p50_ms": {k: statistics.median(r["p50_ms"] for r in v) for k, v in results.items()},
               "p99_ms": {k: statistics.median(r["p99_ms"] for r in v) for k, v in results.items()}}
    print(json.dumps(summary, indent=2))
    return 0 if summary["ratio"] >= 0.85 else 1


if __name__ == "__main__":
    sys.exit(main())
