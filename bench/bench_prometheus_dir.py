"""GET / requests per second of sre-app with its Prometheus files on tmpfs vs on disk.

The Prometheus multiprocess files moved from a private /dev/shm directory to <SRE_APP_RUNTIME_DIR>/prometheus:
tmpfs on AWS (/run/sre-app), but <state-dir>/run/sre-app locally, which is on disk when the state directory
is. Workers write those memory-mapped files on every request, so this measures whether a disk-backed
directory costs throughput: two sre-apps, one with its runtime directory on /dev/shm and one on disk,
measured alternately (ABBA) as bench_app_overhead.py does. Goal: ratio disk / tmpfs >= 0.95.

    .venv/bin/python bench/bench_prometheus_dir.py [--seconds 4] [--rounds 10]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from common import ROOT, machine, pinned, wrk
from conftest import app_spec, create_tables, dynamodb, moto_spec, start_server


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    server_cpu, client_cpu = "0", "1"  # pinned as in bench_app_overhead.py: throughput = CPU cost per request
    tmp = Path(tempfile.mkdtemp(prefix="bench-promdir-", dir=ROOT / "bench"))  # on the checkout's disk
    shm = Path(tempfile.mkdtemp(prefix="bench-promdir-", dir="/dev/shm"))
    moto_process = moto_spec(tmp)
    moto_process.argv = pinned(moto_process.argv, client_cpu)
    moto = start_server(moto_process)
    create_tables(dynamodb(moto.url))
    apps = {}
    for name, runtime in (("tmpfs", shm / "run"), ("disk", tmp / "run")):
        spec = app_spec("sre_app", tmp, moto.url, LEAK_MODE="off", SRE_APP_RUNTIME_DIR=str(runtime))
        spec.argv = pinned(spec.argv, server_cpu)
        apps[name] = start_server(spec)
    try:
        for app in apps.values():
            wrk(app.url + "/", seconds=2, cpus=client_cpu)  # warm up
        results = {name: [] for name in apps}
        order = list(apps)
        for round_ in range(args.rounds):
            for name in order if round_ % 2 == 0 else order[::-1]:
                results[name].append(wrk(apps[name].url + "/", seconds=args.seconds, cpus=client_cpu))
    finally:
        for server in (*apps.values(), moto):
            server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(shm, ignore_errors=True)
    paired = sorted(d["rps"] / t["rps"] for d, t in zip(results["disk"], results["tmpfs"], strict=True))
    summary = {"machine": machine(), "median_rps": {k: statistics.median(r["rps"] for r in v)
                                                    for k, v in results.items()},
               "ratio_disk_to_tmpfs": round(statistics.median(paired), 3),
               "paired_ratios": [round(r, 3) for r in paired],
               "p99_ms": {k: statistics.median(r["p99_ms"] for r in v) for k, v in results.items()}}
    print(json.dumps(summary, indent=2))
    return 0 if summary["ratio_disk_to_tmpfs"] >= 0.95 else 1


if __name__ == "__main__":
    sys.exit(main())
