"""CRM customer page: DynamoDB calls and ScannedCount per request at 100 vs 10,000 customers.

crm-app runs under Gunicorn against moto's server; each request's access-log line carries the DynamoDB
calls it made and the items they read (dynamodb_calls, dynamodb_scanned), counted by a botocore hook.
Goal: neither grows with table size.

    .venv/bin/python bench/bench_crm_scaling.py [--large 10000]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from common import machine
from conftest import app_spec, create_tables, dynamodb, http, moto_spec, seed, start_server

SAMPLE = 25  # customer pages measured at each size


def timed_seed(endpoint: str, count: int) -> float:
    """Seed `count` customers; return the seconds it took."""
    started = time.monotonic()
    result = seed(endpoint, "--count", str(count))
    if result.returncode:
        sys.exit(f"seeding failed: {result.stderr}")
    return time.monotonic() - started


def measure(crm, log: Path, count: int) -> dict:
    """Request SAMPLE customer pages spread over the table; return calls, scanned and latency per page."""
    step = max(1, count // SAMPLE)
    ids = [f"cust-{n:06d}" for n in range(1, count + 1, step)][:SAMPLE]
    marks = {}
    for cid in ids:
        marks[f"bench-{count}-{cid}"] = http("GET", f"{crm.url}/customers/{cid}",
                                             headers={"X-Request-ID": f"bench-{count}-{cid}"}).status
    assert set(marks.values()) == {200}, marks
    time.sleep(0.2)
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    mine = [e for e in lines if e.get("request_id") in marks]
    return {"customers": count, "pages": len(mine),
            "dynamodb_calls": sorted({e["dynamodb_calls"] for e in mine}),
            "max_scanned": max(e["dynamodb_scanned"] for e in mine),
            "median_ms": statistics.median(e["duration_ms"] for e in mine)}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--large", type=int, default=10_000)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-crm-"))
    moto = start_server(moto_spec(tmp))
    create_tables(dynamodb(moto.url))
    crm = start_server(app_spec("crm_app", tmp, moto.url))
    log = Path(crm.spec.env["LOG_FILE"])
    try:
        seconds_small = timed_seed(moto.url, 100)
        small = measure(crm, log, 100)
        seconds_large = timed_seed(moto.url, args.large)
        large = measure(crm, log, args.large)
    finally:
        crm.stop()
        moto.stop()
    summary = {"machine": machine(), "small": small, "large": large,
               "seed_seconds": {"100": round(seconds_small, 1), str(args.large): round(seconds_large, 1)}}
    print(json.dumps(summary, indent=2))
    flat = small["dynamodb_calls"] == large["dynamodb_calls"] == [3] and large["max_scanned"] <= 10
    return 0 if flat else 1


if __name__ == "__main__":
    sys.exit(main())
