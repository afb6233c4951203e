"""The local DynamoDB engines side by side in one run: dynalite (LevelDB on disk) and moto's server (memory).

For each engine, as real processes: start time (spawn until it answers ListTables), RSS (at rest and after
the load below), seeding time, the
CRM under Gunicorn (2 sync workers, as on AWS) against it with wrk at concurrency 8 on `/api/customers`
(one Scan page of 25) and on the customer page (`/customers/<id>`: GetItem + 2 Query on customer-index),
the customer page's latency and a bare customer-index Query at 100 and at --large customers, the time
until 10,000 customers' data is back after a restart (moto: dump + restore, as the stack does), and
durability: customers created through the CRM API (answered 201) while the engine is killed with
SIGKILL, then counted after a restart on the same data. Throughput rounds alternate the engines (ABBA).

Goals (issue 8) for the default engine: every confirmed write survives kill -9; /api/customers sustains
at least 5x today's ~44 rps; the customer page's latency does not grow from 100 to 10,000 customers.

    .venv/bin/python bench/bench_engines.py [--large 10000] [--seconds 5] [--rounds 2] [--writes 200]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench_crm_scaling import measure, timed_seed

from sre_workshop.local import snapshot
from sre_workshop.local.engines import DEFAULT_ENGINE, ENGINES, engine_launch, wait_engine_ready
from sre_workshop.local.process import ProcessSpec, free_port, group_members
from sre_workshop.tables import create_tables

from common import ROOT, machine, memory_kb, wrk
from conftest import Server, app_spec, dynamodb, http, start_server

TODAY_RPS = 44  # /api/customers through :8080 on moto, as issue 8 measured it
OUT = ROOT / "bench" / "out" / "engines.json"


@dataclass
class Side:
    """One engine with the CRM in front of it, and what was measured of them."""

    name: str
    tmp: Path
    engine: Server | None = None
    crm: Server | None = None
    results: dict = field(default_factory=dict)

    @property
    def crm_log(self) -> Path:
        return Path(self.crm.spec.env["LOG_FILE"])


def start_engine(side: Side, port: int | None = None) -> float:
    """Start the side's engine on its data dir; return seconds until it answered ListTables."""
    port = port or free_port()
    launch = engine_launch(side.name, port, side.tmp / "data", ROOT)
    started = time.monotonic()
    side.engine = start_server(ProcessSpec(side.name, launch.argv, side.tmp / f"{side.name}.log", launch.env,
                                           ports=[port], stop_timeout=10))
    if not wait_engine_ready(side.engine.record, side.engine.url, 60):
        sys.exit(f"{side.name} did not answer: {side.engine.log.read_text()[-500:]}")
    return time.monotonic() - started


def cold_starts(name: str, tmp: Path, count: int) -> list[float]:
    """Start an engine `count` times on fresh, empty data; return the seconds each took to answer."""
    times = []
    for n in range(count):
        side = Side(name, tmp / f"cold-{n}")
        times.append(start_engine(side))
        side.engine.stop()
    return times


def rss_mb(server: Server) -> float:
    """RSS of a server's whole process group in MB."""
    return round(sum(memory_kb(pid)[0] for pid in group_members(server.record.pid)) / 1024, 1)


def query_ms(side: Side, count: int, calls: int = 100) -> float:
    """Median ms of a customer-index Query for customers spread over the table, straight to the engine."""
    client = dynamodb(side.engine.url)
    times = []
    for n in range(calls):
        cid = f"cust-{1 + n * max(1, count // calls) % count:06d}"
        started = time.perf_counter()
        client.query(TableName="CRMDealsTable", IndexName="customer-index", KeyConditionExpression="customer_id = :c",
                     ExpressionAttributeValues={":c": {"S": cid}}, Limit=25)
        times.append(time.perf_counter() - started)
    return round(statistics.median(times) * 1000, 2)


def at_size(sides: list[Side], count: int, seconds: int, rounds: int) -> None:
    """Seed up to `count` customers, then measure latency and throughput of each side."""
    for side in sides:
        side.results[f"seed_s_{count}"] = round(timed_seed(side.engine.url, count), 1)
        side.results[f"rss_mb_{count}"] = rss_mb(side.engine)
        for n in range(20):  # warm both workers and the engine (imports, JIT) before timing pages
            http("GET", f"{side.crm.url}/customers/cust-{1 + n:06d}")
        side.results[f"page_{count}"] = measure(side.crm, side.crm_log, count)
        side.results[f"query_ms_{count}"] = query_ms(side, count)
    for path, label in (("/api/customers", "list"), ("/customers/cust-000001", "page")):
        rps = abba(sides, path, seconds, rounds)
        for side in sides:
            side.results[f"{label}_rps_{count}"] = rps[side.name]
    for side in sides:
        side.results[f"rss_mb_{count}_after_load"] = rss_mb(side.engine)


def abba(sides: list[Side], path: str, seconds: int, rounds: int) -> dict[str, dict]:
    """wrk -c8 on `path` of each side's CRM in ABBA order; return each side's runs and median rps."""
    runs: dict[str, list[dict]] = {side.name: [] for side in sides}
    for n in range(rounds):
        for side in (sides if n % 2 == 0 else sides[::-1]):
            runs[side.name].append(wrk(side.crm.url + path, seconds=seconds, connections=8))
    return {name: {"median_rps": round(statistics.median(r["rps"] for r in done), 1),
                   "p50_ms": statistics.median(r["p50_ms"] for r in done),
                   "p99_ms": max(r["p99_ms"] for r in done), "non_2xx": sum(r["non_2xx"] for r in done)}
            for name, done in runs.items()}


def restart_with_data(side: Side) -> float:
    """Restart the engine on its data; return seconds until the data is back (moto: dump and restore)."""
    dump = side.tmp / "dynamodb.json"
    if side.name == "moto":
        snapshot.dump(dynamodb(side.engine.url), dump)
    port = side.engine.port
    side.engine.stop()
    started = time.monotonic()
    start_engine(side, port)
    client = dynamodb(side.engine.url)
    if create_tables(client) and dump.exists():
        snapshot.restore(client, dump)
    return round(time.monotonic() - started, 2)


def post_customers(url: str, prefix: str, confirmed: list[str], stop: threading.Event) -> None:
    """Create customers through the CRM API until stopped; record the ids it answered 201 for."""
    n = 0
    while not stop.is_set():
        reply = http("POST", url + "/api/customers", {"name": f"{prefix} {n}", "email": f"{prefix}{n}@x.example"},
                     timeout=10)
        if reply.status == 201:
            confirmed.append(reply.json()["customer_id"])
        n += 1


def durability(side: Side, writes: int) -> dict:
    """Kill -9 the engine while 4 clients create customers; count the confirmed ones after a restart."""
    confirmed: list[str] = []
    stop = threading.Event()
    threads = [threading.Thread(target=post_customers, args=(side.crm.url, f"w{t}", confirmed, stop))
               for t in range(4)]
    for thread in threads:
        thread.start()
    while len(confirmed) < writes:
        time.sleep(0.01)
    os.killpg(side.engine.record.pid, signal.SIGKILL)
    stop.set()
    for thread in threads:
        thread.join()
    side.engine.stop()
    start_engine(side, side.engine.port)
    client = dynamodb(side.engine.url)
    create_tables(client)  # moto comes back empty, without tables
    present = sum("Item" in client.get_item(TableName="CRMCustomersTable", Key={"customer_id": {"S": cid}})
                  for cid in confirmed)
    return {"confirmed_201": len(confirmed), "present_after_restart": present}


def run(args: argparse.Namespace, tmp: Path) -> dict:
    """Measure both engines; return the results by engine."""
    sides = [Side(name, tmp / name) for name in ENGINES]
    try:
        for side in sides:
            side.results["cold_start_s"] = [round(t, 3) for t in cold_starts(side.name, side.tmp, 3)]
            start_engine(side)
            side.results["rss_mb_empty"] = rss_mb(side.engine)
            create_tables(dynamodb(side.engine.url))
            side.crm = start_server(app_spec("crm_app", side.tmp, side.engine.url))
        at_size(sides, 100, args.seconds, args.rounds)
        at_size(sides, args.large, args.seconds, args.rounds)
        for side in sides:
            side.results[f"back_after_restart_s_{args.large}"] = restart_with_data(side)
            side.results["durability_kill_9"] = durability(side, args.writes)
    finally:
        for side in sides:
            for server in (side.crm, side.engine):
                if server:
                    server.stop()
    return {side.name: side.results for side in sides}


def verdict(results: dict, large: int) -> dict[str, bool]:
    """Check the default engine against issue 8's goals."""
    chosen = results[DEFAULT_ENGINE]
    kill = chosen["durability_kill_9"]
    small, big = chosen["page_100"]["median_ms"], chosen[f"page_{large}"]["median_ms"]
    return {"no_confirmed_write_lost": kill["present_after_restart"] == kill["confirmed_201"],
            "list_rps_at_least_5x_today": chosen[f"list_rps_{large}"]["median_rps"] >= 5 * TODAY_RPS,
            "page_latency_flat": big <= 1.3 * small + 1.0}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--large", type=int, default=10_000)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--writes", type=int, default=200)
    args = parser.parse_args()
    results = run(args, Path(tempfile.mkdtemp(prefix="bench-engines-")))
    summary = {"machine": machine(), "load_average": os.getloadavg(), "engines": results,
               "goals": verdict(results, args.large)}
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))
    return 0 if all(summary["goals"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
