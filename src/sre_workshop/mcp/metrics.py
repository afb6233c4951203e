"""get_metrics: a named metric over a window, per series, with one statistic and the 10 s datapoints."""

from __future__ import annotations

import statistics
from datetime import UTC, datetime
from typing import Any

from ..diagnose.local import series
from ..errors import UsageError
from ..local.stack import Stack

# metric name -> (chart of diagnose.local.series, what it measures)
METRICS = {
    "requests_per_s": ("requests per second", "requests answered per second (nginx for the app, crm-app)"),
    "errors_5xx_per_s": ("5xx per second", "answers with a 5xx status per second"),
    "dynamodb_errors_per_s": ("DynamoDB errors per second (apps' logs)", "DynamoDB errors in the apps' logs"),
    "sre_app_latency_p99_ms": ("sre-app latency p99 (ms)", "sre-app's p99 request time per worker (10 s metrics)"),
    "sre_app_leak_mb": ("sre-app leak size per worker (MB)", "memory retained by sre-app's leak, per worker"),
    "sre_app_rss_mb": ("sre-app RSS per worker (MB)", "resident memory of each sre-app worker"),
}
STATISTICS = {"average": statistics.fmean, "maximum": max, "minimum": min, "sum": sum, "last": lambda v: v[-1]}
MAX_POINTS = 60


def read(stack: Stack, name: str, window_s: float, statistic: str) -> dict[str, Any]:
    """Return the metric's series over the window: the statistic and the last datapoints of each."""
    if name not in METRICS:
        raise UsageError(f"no metric {name!r}; metrics: {', '.join(METRICS)}")
    if statistic not in STATISTICS:
        raise UsageError(f"statistic must be one of {', '.join(STATISTICS)}, not {statistic!r}")
    chart, meaning = METRICS[name]
    found = series.collect(stack, window_s).get(chart, {})
    result = {}
    for label, points in found.items():
        values = [v for _, v in points]
        result[label] = {"value": round(STATISTICS[statistic](values), 3) if values else None,
                         "points": [[_iso(t), round(v, 3)] for t, v in points[-MAX_POINTS:]]}
    return {"metric": name, "meaning": meaning, "statistic": statistic, "window_s": window_s,
            "period_s": series.BUCKET_S, "series": result}


def _iso(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).isoformat(timespec="seconds")
