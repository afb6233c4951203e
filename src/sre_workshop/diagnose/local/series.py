"""Time series over the window for doctor's report: from the access logs and the interval metrics."""

from __future__ import annotations

import socket
import time
from pathlib import Path

from ...local.stack import Stack
from ...settings import TABLE_NAMES
from .. import intervals
from ..loglines import AWS_CODE, json_entry, tail_lines

BUCKET_S = 10


def collect(stack: Stack, window_s: float = 600.0) -> dict[str, dict[str, list[tuple[float, float]]]]:
    """Return chart name -> series name -> [(epoch s, value)] over the window."""
    since = time.time() - window_s
    logs = stack.settings.logs_dir
    app = _access(logs / "nginx-access.log", since, "request_time")
    crm = _access(logs / "crm-app.json.log", since, "duration_ms")
    charts = {
        "requests per second": {"app (nginx)": app["rate"], "crm": crm["rate"]},
        "5xx per second": {"app (nginx)": app["errors"], "crm": crm["errors"]},
        "DynamoDB errors per second (apps' logs)": {"sre-app": _aws_errors(logs / "sre-app.json.log", since),
                                                    "crm": _aws_errors(logs / "crm-app.json.log", since)},
    }
    charts.update(_interval_metrics(stack, since))
    return charts


def _bucket(stamp: float) -> float:
    return stamp - stamp % BUCKET_S


def _entries(path: Path, since: float):
    for line in tail_lines(path):
        parsed = json_entry(line)
        if parsed and parsed[0] >= since:
            yield parsed


def _access(path: Path, since: float, latency_field: str) -> dict[str, list[tuple[float, float]]]:
    counts: dict[float, list[int]] = {}
    for stamp, entry in _entries(path, since):
        if "status" not in entry:
            continue
        bucket = counts.setdefault(_bucket(stamp), [0, 0])
        bucket[0] += 1
        bucket[1] += int(entry["status"]) >= 500
    ordered = sorted(counts.items())
    return {"rate": [(t, n / BUCKET_S) for t, (n, _) in ordered],
            "errors": [(t, e / BUCKET_S) for t, (_, e) in ordered]}


def _aws_errors(path: Path, since: float) -> list[tuple[float, float]]:
    counts: dict[float, int] = {}
    for stamp, entry in _entries(path, since):
        if entry.get("level") == "ERROR" and AWS_CODE.search(f"{entry.get('error_code', '')} {entry.get('message')}"):
            counts[_bucket(stamp)] = counts.get(_bucket(stamp), 0) + 1
    return [(t, n / BUCKET_S) for t, n in sorted(counts.items())]


def _interval_metrics(stack: Stack, since: float) -> intervals.Charts:
    """sre-app's interval metrics per worker (ApplicationMetricsTable), read from the engine."""
    try:
        # The whole table: a local stack's own, small, and a bound would drop items at random.
        items = intervals.scan(stack.dynamodb_client(), TABLE_NAMES["METRICS_TABLE"],
                               f"sre-app#{socket.gethostname()}#", since, max_pages=None)
    except Exception:
        items = []
    return intervals.charts(items, lambda metric_id: "pid " + metric_id.rsplit("#", 1)[-1])
