"""Run one load test in this process with Locust's library API (only in the load child: it needs gevent).

Environment + local runner + stats, headless, optionally with the web UI on 127.0.0.1; bounded by the
duration; progress every second through `emit`; the summary built from Locust's stats plus the status
of every failed request (Locust keeps only error strings).
"""

from __future__ import annotations

import json
import socket
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gevent
import gevent.event
from locust.env import Environment
from locust.stats import StatsEntry
from locust.web import WebUI

from .errors import LoadFailed
from .flows import FLOW_COUNTS, configure
from .options import LoadOptions
from .pacer import Pacer
from .summary import EndpointSummary, LoadSummary, Progress
from .targets import Targets

Emit = Callable[[dict[str, Any]], None]
STOP_TIMEOUT_S = 5.0  # users finish the flow they are in (so no request is cut off) unless it takes longer


class RequestRecorder:
    """Count failures by HTTP status per endpoint (and those the public ALB answered itself); optionally keep
    (request id, ms) of every request."""

    def __init__(self, trace: bool) -> None:
        self.failures: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self.alb_failures: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self.trace: list[tuple[str, float]] | None = [] if trace else None

    def on_request(self, name: str, response_time: float, response=None, exception=None, context=None,
                   **kwargs: Any) -> None:
        """Locust's request event: record the status of a failure, and the trace."""
        if exception is not None:
            status = getattr(response, "status_code", 0) or 0
            key = str(status) if status else "connection"
            self.failures[name][key] += 1
            # Everything behind the public ALB echoes X-Request-ID (the apps, and nginx even on its own
            # 502/504); an answer without it was made by the ALB itself.
            if status and not response.headers.get("X-Request-ID"):
                self.alb_failures[name][key] += 1
        if self.trace is not None:
            self.trace.append(((context or {}).get("request_id", ""), response_time))


def run(targets: Targets, options: LoadOptions, run_id: str, emit: Emit, stop: gevent.event.Event,
        trace_path: str | None = None) -> LoadSummary:
    """Run users against `targets` until the duration ends or `stop` is set; return the summary."""
    FLOW_COUNTS.clear()
    pacer = Pacer(options.rate) if options.rate else None
    env = Environment(user_classes=configure(targets.urls, run_id, pacer), stop_timeout=STOP_TIMEOUT_S)
    recorder = RequestRecorder(trace=trace_path is not None)
    env.events.request.add_listener(recorder.on_request)
    runner = env.create_local_runner()
    web = _web_ui(env, options.web_port) if options.web_port else None
    started = time.monotonic()
    runner.start(options.users, spawn_rate=options.spawn_rate or options.users)
    emit({"event": "started", "run_id": run_id,
          "web_url": f"http://127.0.0.1:{options.web_port}/" if web else None})
    _watch(env, options, started, emit, stop)
    elapsed = time.monotonic() - started  # the window requests were sent in; rates are over it
    if pacer is not None:
        pacer.close()  # users waiting for a slot stop now instead of sending after the deadline
    runner.stop()  # users finish the flow they are in (up to STOP_TIMEOUT_S)
    runner.quit()
    if web is not None:
        web.stop()
    if trace_path:
        Path(trace_path).write_text("".join(json.dumps(row) + "\n" for row in recorder.trace or []))
    return summarize(env, recorder, targets, options, run_id, elapsed)


def _web_ui(env: Environment, port: int, timeout: float = 10.0) -> WebUI:
    """Start Locust's web UI on 127.0.0.1:port and return once it accepts connections."""
    web = env.create_web_ui("127.0.0.1", port)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not web.greenlet.dead:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return web
        except OSError:
            gevent.sleep(0.05)
    raise LoadFailed(f"Locust's web UI did not start on 127.0.0.1:{port}")


def _watch(env: Environment, options: LoadOptions, started: float, emit: Emit, stop: gevent.event.Event) -> None:
    """Emit progress every second until the deadline or a stop request."""
    deadline = started + options.duration_s
    while (left := deadline - time.monotonic()) > 0:
        if stop.wait(timeout=min(1.0, left)):
            return
        emit({"event": "progress", **progress(env, time.monotonic() - started, options.duration_s).__dict__})


def progress(env: Environment, elapsed: float, duration: float) -> Progress:
    """Return the live reading: totals so far, current rate and percentiles (Locust's 10 s window)."""
    total = env.stats.total
    return Progress(elapsed_s=round(elapsed, 1), duration_s=duration, requests=total.num_requests,
                    rps=round(total.current_rps, 1), failures=total.num_failures,
                    p50_ms=total.get_current_response_time_percentile(0.5) if total.num_requests else None,
                    p95_ms=total.get_current_response_time_percentile(0.95) if total.num_requests else None,
                    users=env.runner.user_count if env.runner else 0)


def endpoint_summary(name: str, entry: StatsEntry, failures: Counter[str], alb_failures: Counter[str],
                     elapsed: float) -> EndpointSummary:
    """Summarise one Locust stats entry."""
    count = entry.num_requests

    def pct(p: float) -> float | None:
        return float(entry.get_response_time_percentile(p)) if count else None

    return EndpointSummary(name=name, count=count, failures=entry.num_failures, failures_by_status=dict(failures),
                           p50_ms=pct(0.5), p95_ms=pct(0.95), p99_ms=pct(0.99),
                           rps=round(count / elapsed, 2) if elapsed > 0 else 0.0,
                           public_alb_failures=dict(alb_failures))


def summarize(env: Environment, recorder: RequestRecorder, targets: Targets, options: LoadOptions, run_id: str,
              elapsed: float) -> LoadSummary:
    """Build the run's summary from Locust's stats and the recorder's statuses."""
    endpoints = [endpoint_summary(name, entry, recorder.failures[name], recorder.alb_failures[name], elapsed)
                 for (name, _method), entry in sorted(env.stats.entries.items())]
    total = endpoint_summary("total", env.stats.total, sum(recorder.failures.values(), Counter()),
                             sum(recorder.alb_failures.values(), Counter()), elapsed)
    return LoadSummary(run_id=run_id, targets=dict(targets.urls), users=options.users, rate=options.rate,
                       duration_s=options.duration_s, elapsed_s=round(elapsed, 2),
                       stopped_early=elapsed < options.duration_s - 0.5, flows=dict(FLOW_COUNTS),
                       endpoints=endpoints, total=total,
                       flow_errors=flow_errors(env))


def flow_errors(env: Environment) -> dict[str, int]:
    """Return the exceptions raised inside flows (a bug in a flow, not a failed request), by message."""
    errors: Counter[str] = Counter()
    for error in (env.runner.exceptions.values() if env.runner else []):
        errors[str(error["msg"])[:200]] += int(error["count"])
    return dict(errors)
