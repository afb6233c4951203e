"""Time series over the window for doctor's report on AWS: CloudWatch metrics and the interval metrics.

The charts are those of the local report (local/series.py) where AWS has the same signal: request rate and
5xx rate per entry point (the ALB's per-minute counts, per second), response time, DynamoDB's throttles
and errors, sre-app's leak size and RSS per worker; plus the app instance's CPU.
"""

from __future__ import annotations

import time

from ...aws.control import AwsControl
from .. import intervals
from ..intervals import Charts
from . import metrics


def collect(ctl: AwsControl, window_s: float = 600.0) -> Charts:
    """Return chart name -> series name -> [(epoch s, value)] over the window."""
    end = time.time()
    start = end - window_s
    wanted = metrics.queries(ctl)
    found = metrics.fetch(ctl, wanted, start, end)
    found.update(metrics.percentiles(ctl, wanted, start, end))
    charts = {
        "requests per second": {"app (public ALB :80)": _rate(found["app requests"]),
                                "crm (public ALB :8080)": _rate(found["crm requests"])},
        "5xx per second": {"public ALB itself": _rate(found["public ALB 5xx"]),
                           "app targets": _rate(found["app target 5xx"]),
                           "crm targets": _rate(found["crm target 5xx"])},
        "target response time (ms)": {k.replace(" (s)", ""): _ms(v) for k, v in found.items() if "response time" in k},
        "DynamoDB throttles and errors per second": {
            "throttled requests": _rate(_sum(found, metrics.METRIC_THROTTLED)),
            "user errors": _rate(found[metrics.METRIC_USER_ERRORS])},
        "app instance CPU (%)": {k: v for k, v in found.items() if "CPU" in k and v},
    }
    charts.update(_interval(ctl, start))
    return charts


def _rate(values: list[tuple[float, float]]) -> list[tuple[float, float]]:
    return [(t, v / metrics.PERIOD) for t, v in values]


def _ms(values: list[tuple[float, float]]) -> list[tuple[float, float]]:
    return [(t, v * 1000) for t, v in values]


def _sum(found: dict[str, list[tuple[float, float]]], prefix: str) -> list[tuple[float, float]]:
    """Add up the series whose key starts with `prefix`, per timestamp."""
    added: dict[float, float] = {}
    for key, values in found.items():
        if key.startswith(prefix + " "):
            for t, v in values:
                added[t] = added.get(t, 0.0) + v
    return sorted(added.items())


def _interval(ctl: AwsControl, since: float) -> Charts:
    """sre-app's interval metrics per worker, from the stack's ApplicationMetricsTable."""
    items = intervals.scan(ctl.client("dynamodb"), ctl.physical("ApplicationMetricsTable"), "sre-app#", since)
    return intervals.charts(items, lambda metric_id: metric_id.split("#", 1)[-1])
