"""The CRM under overload, slow clients and a DynamoDB outage, through the local public ALB (:8080).

1. wrk -c 8, -c 50 and -c 100 on /api/customers through the ALB: requests/s, latency, answers by status
   ("503-lb": a 503 without Retry-After, the load balancer's own), how often the ALB took the CRM target
   out (HAProxy's chkdown) and the slowest /health answer of the app meanwhile (polled at Gunicorn).
2. Two clients send a request body at one byte per second while another asks for /api/customers through
   the ALB every 0.25 s: how many of those answers were 200 and the slowest one.
3. The DynamoDB engine stopped (`service stop dynamodb`): status and time of API and UI requests through
   the ALB, and of /health.

Goals: at -c 50 the target is never taken out, every answer is 200 or the app's own 503 with Retry-After,
/health answers within 1 s; slow clients take nothing away; a DynamoDB failure answers within about 2 s.

    .venv/bin/python bench/bench_crm_overload.py [--seconds 10] [--state-dir DIR (a running stack)]

Without --state-dir it starts its own stack on SRE_WORKSHOP_PORT_OFFSET (default 23000) and stops it.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from sre_workshop.cli.main import main as cli
from sre_workshop.local.lbstats import command
from sre_workshop.settings import BASE_PORTS

from common import ROOT, machine
from conftest import Reply, http, wrk_statuses


def get(target: str, timeout: float = 10):
    """GET `target`; a timeout is an answer of status 0, like a browser's."""
    try:
        return http("GET", target, timeout=timeout)
    except TimeoutError:
        return Reply(0, {}, b"timed out")


def run(*args: str) -> int:
    """Run the CLI in this process, its output on stderr so that stdout stays JSON."""
    with contextlib.redirect_stdout(sys.stderr):
        return cli(list(args))


def url(name: str) -> str:
    return f"http://127.0.0.1:{BASE_PORTS[name] + int(os.environ['SRE_WORKSHOP_PORT_OFFSET'])}"


def chkdown(state: Path) -> int:
    """How many times the public ALB has taken the CRM target out so far."""
    rows = csv.DictReader(io.StringIO(command(state / "run" / "public-alb.sock", "show stat").lstrip("# ")))
    return next(int(r["chkdown"] or 0) for r in rows if r["svname"] == "CRMAppInstance")


class HealthPoller(threading.Thread):
    """Ask the app's /health (straight at Gunicorn) every 0.2 s; keep the slowest answer and any failure."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.stop = threading.Event()
        self.slowest = 0.0
        self.failures = 0

    def run(self) -> None:
        while not self.stop.wait(0.2):
            started = time.monotonic()
            reply = get(url("crm-app") + "/health", timeout=5)
            self.slowest = max(self.slowest, time.monotonic() - started)
            self.failures += reply.status != 200


def load(state: Path, connections: int, seconds: int) -> dict:
    """wrk on /api/customers through the ALB, with the target's health watched meanwhile."""
    before, poller = chkdown(state), HealthPoller()
    poller.start()
    tmp = Path(tempfile.mkdtemp(prefix="bench-wrk-"))
    try:
        result = wrk_statuses(url("public-alb-crm") + "/api/customers", connections, seconds, tmp)
    finally:
        poller.stop.set()
        poller.join()
        shutil.rmtree(tmp)
    return {"connections": connections, **result, "target_taken_out": chkdown(state) - before,
            "slowest_health_s": round(poller.slowest, 3), "health_failures": poller.failures}


def slow_sender(port: int, stop: threading.Event) -> None:
    """POST a 200-byte JSON body to the CRM at one byte per second until told to stop."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"POST /api/customers HTTP/1.1\r\nHost: crm\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 200\r\n\r\n")
        while not stop.wait(1.0):
            try:
                sock.sendall(b" ")
            except OSError:
                return


def slow_clients(seconds: int) -> dict:
    """Two slow senders at the ALB and two at the app itself; meanwhile GET /api/customers every 0.25 s."""
    stop = threading.Event()
    senders = [threading.Thread(target=slow_sender, args=(int(url(name).rsplit(":", 1)[1]), stop), daemon=True)
               for name in ("public-alb-crm", "public-alb-crm", "crm-app", "crm-app")]
    for sender in senders:
        sender.start()
    time.sleep(1)
    answers, slowest, deadline = [], 0.0, time.monotonic() + seconds
    while time.monotonic() < deadline:
        started = time.monotonic()
        answers.append(get(url("public-alb-crm") + "/api/customers", timeout=10).status)
        slowest = max(slowest, time.monotonic() - started)
        time.sleep(0.25)
    stop.set()
    return {"requests": len(answers), "ok": answers.count(200), "slowest_s": round(slowest, 3)}


def outage(state: Path) -> dict:
    """Stop the DynamoDB engine; time API, UI and health requests through the ALB; start it again."""
    run("--state-dir", str(state), "service", "stop", "dynamodb")
    result = {}
    try:
        for name, path in (("api", "/api/customers"), ("ui", "/customers"), ("health", "/health")):
            timings = []
            for _ in range(3):
                started = time.monotonic()
                reply = get(url("public-alb-crm") + path, timeout=30)
                timings.append((reply.status, round(time.monotonic() - started, 2),
                                reply.headers.get("retry-after"), reply.headers.get("content-type", "")[:16]))
            result[name] = timings
    finally:
        run("--state-dir", str(state), "service", "start", "dynamodb")
    return result


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--state-dir", type=Path)
    args = parser.parse_args()
    os.environ.setdefault("SRE_WORKSHOP_PORT_OFFSET", "23000")
    state = args.state_dir or Path(tempfile.mkdtemp(prefix="bench-crm-overload-"))
    if not args.state_dir and run("--state-dir", str(state), "up", "--detach") != 0:
        sys.exit("up failed")
    try:
        summary = {"machine": machine(), "commit": subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip(),
            "load": [load(state, c, args.seconds) for c in (8, 50, 100)],
            "slow_clients": slow_clients(args.seconds), "dynamodb_down": outage(state)}
    finally:
        if not args.state_dir:
            run("--state-dir", str(state), "down")
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
