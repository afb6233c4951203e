"""get_metrics: a named metric over a window, per series, with one statistic and the 10 s datapoints."""

from __future__ import annotations

import statistics
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ..aws.control import AwsControl
from ..diagnose.aws import metrics as aws_metrics
from ..diagnose.aws import series as aws_series
from ..diagnose.local import series
from ..errors import AwsError, UsageError
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
# metric name -> the chart of diagnose.aws.series that holds it on AWS (CloudWatch per minute, the interval
# metrics per 10 s): DynamoDB's errors there are its throttles and user errors, not the apps' log lines.
AWS_CHARTS = {"requests_per_s": "requests per second", "errors_5xx_per_s": "5xx per second",
              "dynamodb_errors_per_s": "DynamoDB throttles and errors per second",
              "sre_app_latency_p99_ms": "sre-app latency p99 (ms)",
              "sre_app_leak_mb": "sre-app leak size per worker (MB)", "sre_app_rss_mb": "sre-app RSS per worker (MB)"}
STATISTICS = {"average": statistics.fmean, "maximum": max, "minimum": min, "sum": sum, "last": lambda v: v[-1]}
MAX_POINTS = 60


def _check(name: str, statistic: str) -> None:
    """Refuse an unknown metric or statistic in one line, naming the valid ones."""
    if name not in METRICS:
        raise UsageError(f"no metric {name!r}; metrics: {', '.join(METRICS)}")
    if statistic not in STATISTICS:
        raise UsageError(f"statistic must be one of {', '.join(STATISTICS)}, not {statistic!r}")


def read(stack: Stack, name: str, window_s: float, statistic: str) -> dict[str, Any]:
    """Return the metric's series over the window: the statistic and the last datapoints of each."""
    _check(name, statistic)
    chart, meaning = METRICS[name]
    return answer(name, meaning, statistic, window_s, series.BUCKET_S, series.collect(stack, window_s).get(chart, {}))


def read_aws(ctl: AwsControl, name: str, window_s: float, statistic: str) -> dict[str, Any]:
    """Return the metric of an AWS stack over the window, from the charts of doctor's AWS report."""
    _check(name, statistic)
    try:
        charts = aws_series.collect(ctl, window_s)
    except (ClientError, BotoCoreError) as exc:
        raise AwsError(f"cannot read metric {name}: {exc}") from exc
    period = aws_metrics.PERIOD if not name.startswith("sre_app_") else series.BUCKET_S
    return answer(name, METRICS[name][1], statistic, window_s, period, charts.get(AWS_CHARTS[name], {}))


def answer(name: str, meaning: str, statistic: str, window_s: float, period_s: float,
           found: dict[str, list[tuple[float, float]]]) -> dict[str, Any]:
    """Return the series found: per series the statistic over the window and the last datapoints."""
    result = {}
    for label, points in found.items():
        values = [v for _, v in points]
        result[label] = {"value": round(STATISTICS[statistic](values), 3) if values else None,
                         "points": [[_iso(t), round(v, 3)] for t, v in points[-MAX_POINTS:]]}
    return {"metric": name, "meaning": meaning, "statistic": statistic, "window_s": window_s,
            "period_s": period_s, "series": result}


def _iso(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).isoformat(timespec="seconds")
