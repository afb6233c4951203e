"""Time series over the window for doctor's report: from the access logs and the interval metrics.

Each log is read once; per 10 s bucket it gives the request and 5xx rates per hop (nginx, what nginx got from
the private ALB, each app), the latency per hop (p95), the health checks' answers (the load balancers ask
/health: the share answered 200 is each target's health as they see it) and the DynamoDB errors by code and
table. A hop with no line in a bucket has no reading there: nothing is filled in.
"""

from __future__ import annotations

import re
import socket
import time
from pathlib import Path
from typing import Any

from ...local.stack import Stack
from ...settings import TABLE_NAMES
from .. import intervals
from ..loglines import AWS_CODE, json_entry, tail_lines

BUCKET_S = 10
Points = list[tuple[float, float]]
Entries = list[tuple[float, dict[str, Any]]]
TABLE = re.compile(r"(?:table/|Table: |table )([A-Za-z0-9_.-]+)")


def collect(stack: Stack, window_s: float = 600.0) -> dict[str, dict[str, Points]]:
    """Return chart name -> series name -> [(epoch s, value)] over the window."""
    since = time.time() - window_s
    logs = stack.settings.logs_dir
    nginx = _entries(logs / "nginx-access.log", since)
    sre = _entries(logs / "sre-app.json.log", since)
    crm = _entries(logs / "crm-app.json.log", since)
    charts = {
        "requests per second": {"app (nginx)": _rate(nginx), "crm-app": _rate(crm)},
        "5xx per second by hop": {"nginx": _rate(nginx, _5xx("status")), "private-alb -> sre-app (nginx's upstream)":
                                  _rate(nginx, _5xx("upstream_status")), "sre-app": _rate(sre, _5xx("status")),
                                  "crm-app": _rate(crm, _5xx("status"))},
        "latency p95 per hop (ms)": {"nginx": _p95(nginx, "request_time", 1000), "private-alb -> sre-app "
                                     "(nginx's upstream)": _p95(nginx, "upstream_response_time", 1000),
                                     "sre-app": _p95(sre, "duration_ms"), "crm-app": _p95(crm, "duration_ms")},
        "health checks answered OK (%)": {"nginx": _health(nginx, "uri"), "sre-app": _health(sre, "path"),
                                          "crm-app": _health(crm, "path")},
        "DynamoDB errors per second by code and table": {**_aws_errors("sre-app", sre), **_aws_errors("crm-app", crm)},
    }
    charts.update(_interval_metrics(stack, since))
    return charts


def _bucket(stamp: float) -> float:
    return stamp - stamp % BUCKET_S


def _entries(path: Path, since: float) -> Entries:
    found = []
    for line in tail_lines(path):
        parsed = json_entry(line)
        if parsed and parsed[0] >= since:
            found.append(parsed)
    return found


def _requests(entries: Entries) -> Entries:
    """The request lines (they carry a status), the load balancers' health checks left out."""
    return [(t, e) for t, e in entries if "status" in e and "/health" not in (e.get("path"), e.get("uri"))]


def _5xx(field: str):
    def failed(entry: dict[str, Any]) -> bool:
        # nginx's upstream_status lists each upstream tried ("502, 504"): the last one answered the client.
        return str(entry.get(field, "")).split(",")[-1].strip()[:1] == "5"
    return failed


def _rate(entries: Entries, counted=lambda entry: True) -> Points:
    """Per bucket, the requests (or those `counted`) per second; a bucket with no request has no reading."""
    buckets: dict[float, int] = {}
    for stamp, entry in _requests(entries):
        buckets[_bucket(stamp)] = buckets.get(_bucket(stamp), 0) + bool(counted(entry))
    return [(t, n / BUCKET_S) for t, n in sorted(buckets.items())]


def _p95(entries: Entries, field: str, scale: float = 1.0) -> Points:
    """Per bucket, the 95th percentile of `field` (times `scale`) over the requests that have it."""
    buckets: dict[float, list[float]] = {}
    for stamp, entry in _requests(entries):
        try:
            value = float(str(entry.get(field, "")).split(",")[-1])
        except ValueError:
            continue  # "-": nginx got no answer from upstream
        buckets.setdefault(_bucket(stamp), []).append(value * scale)
    return [(t, sorted(v)[min(len(v) - 1, int(0.95 * len(v)))]) for t, v in sorted(buckets.items())]


def _health(entries: Entries, field: str) -> Points:
    """Per bucket, the share of health checks (GET /health) answered 200, in %."""
    buckets: dict[float, list[int]] = {}
    for stamp, entry in entries:
        if entry.get(field) == "/health" and "status" in entry:
            buckets.setdefault(_bucket(stamp), []).append(int(entry["status"]) == 200)
    return [(t, 100 * sum(v) / len(v)) for t, v in sorted(buckets.items())]


def _aws_errors(app: str, entries: Entries) -> dict[str, Points]:
    """Per error code and table (when the message names it), DynamoDB errors per second in `app`'s log; each
    bucket where the app logged anything reads 0 if it logged no such error."""
    counts: dict[str, dict[float, int]] = {}
    for stamp, entry in entries:
        code = AWS_CODE.search(f"{entry.get('error_code', '')} {entry.get('message')}")
        if entry.get("level") == "ERROR" and code:
            table = TABLE.search(str(entry.get("message")))
            name = f"{app}: {code.group(1)}" + (f" ({table.group(1)})" if table else "")
            series = counts.setdefault(name, {})
            series[_bucket(stamp)] = series.get(_bucket(stamp), 0) + 1
    logged = sorted({_bucket(stamp) for stamp, _ in entries})
    if not counts and logged:
        return {f"{app}: none": [(t, 0.0) for t in logged]}
    return {name: [(t, c.get(t, 0) / BUCKET_S) for t in logged] for name, c in counts.items()}


def _interval_metrics(stack: Stack, since: float) -> intervals.Charts:
    """sre-app's interval metrics per worker (ApplicationMetricsTable), read from the engine."""
    try:
        # The whole table: a local stack's own, small, and a bound would drop items at random.
        items = intervals.scan(stack.dynamodb_client(), TABLE_NAMES["METRICS_TABLE"],
                               f"sre-app#{socket.gethostname()}#", since, max_pages=None)
    except Exception:
        items = []
    return intervals.charts(items, lambda metric_id: "pid " + metric_id.rsplit("#", 1)[-1])
