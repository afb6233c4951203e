"""ALB metrics from HAProxy's counters ("show stat" on its runtime socket), as AWS/ApplicationELB publishes them.

HAProxy's counters are cumulative since it started: each period publishes the growth since the last sample;
a counter smaller than before means HAProxy restarted, and its value then is the growth (never negative).
From the rows of one load balancer (its frontends, and its backends = target groups, with their servers):

- RequestCount: requests the listeners (frontends' req_tot) received; per target group, its backend's req_tot.
- HTTPCode_Target_5XX_Count: 5xx answered by the targets themselves (servers' hrsp_5xx: HAProxy counts on a
  server only what that server answered).
- HTTPCode_ELB_5XX_Count: 5xx the listeners sent minus those from targets (frontends' hrsp_5xx - servers'
  hrsp_5xx): what HAProxy generated itself (502/503/504: no healthy target, connection refused, timeout).
- TargetResponseTime: HAProxy's rtime (ms to the response headers, averaged over each server's last 1024
  requests) in seconds, weighted by each server's requests in the period; published only when targets
  answered, as StatisticValues with one sample per request (Minimum/Maximum: of the per-server averages).
- HealthyHostCount / UnHealthyHostCount: servers whose checks pass / fail (starting servers count in neither).

Like an ALB, the counts are published only when they are not zero. A socket that cannot be read gives no
datapoint, and the next reading starts a new baseline (no period is given another's requests).
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Mapping
from dataclasses import dataclass

from ..local.lbstats import command, row_state
from .agent_plan import LoadBalancer

logger = logging.getLogger(__name__)

NAMESPACE = "AWS/ApplicationELB"
Counters = dict[str, float]  # "frontend/NAME/field", "backend/NAME/field", "server/BACKEND/NAME/field" -> value
COUNTED = ("req_tot", "hrsp_5xx")


@dataclass(frozen=True)
class AlbSample:
    """One reading of a load balancer: cumulative counters, and gauges (rtime, server states)."""

    counters: Counters
    rtime_ms: dict[tuple[str, str], float]  # (backend, server) -> rtime
    states: dict[tuple[str, str], str]  # (backend, server) -> healthy / unhealthy / initial / unused


def parse_stat(text: str, lb: LoadBalancer) -> AlbSample:
    """Return the sample of one load balancer from HAProxy's "show stat" CSV."""
    counters: Counters = {}
    rtime, states = {}, {}
    for row in csv.DictReader(io.StringIO(text.lstrip("# "))):
        proxy, name = row.get("pxname", ""), row.get("svname", "")
        if name == "FRONTEND" and proxy in lb.frontends:
            prefix = f"frontend/{proxy}"
        elif proxy not in lb.target_groups:
            continue
        elif name == "BACKEND":
            prefix = f"backend/{proxy}"
        else:
            prefix = f"server/{proxy}/{name}"
            rtime[proxy, name] = float(row.get("rtime") or 0)
            states[proxy, name] = row_state(row)
        counters.update({f"{prefix}/{f}": float(row.get(f) or 0) for f in COUNTED})
    return AlbSample(counters, rtime, states)


def read_sample(lb: LoadBalancer) -> AlbSample | None:
    """Read a load balancer's counters, or None (logged) if its socket does not answer."""
    try:
        return parse_stat(command(lb.socket, "show stat"), lb)
    except (OSError, ValueError) as exc:
        logger.warning("ALB %s: cannot read HAProxy's stats at %s: %s", lb.dimension, lb.socket, exc)
        return None


def deltas(previous: Counters, current: Counters) -> Counters:
    """Return each counter's growth; a counter that went down (HAProxy restarted) grew by its current value."""
    return {k: (v - previous[k] if k in previous and v >= previous[k] else v) for k, v in current.items()}


def _sum(delta: Counters, prefix: str, field: str) -> float:
    return sum(v for k, v in delta.items() if k.startswith(prefix) and k.endswith("/" + field))


def datums(lb: LoadBalancer, delta: Counters, sample: AlbSample) -> list[dict]:
    """Return the period's datapoints of one load balancer (without timestamps), from counter growth."""
    lb_dims = [{"Name": "LoadBalancer", "Value": lb.dimension}]
    front = sum(_sum(delta, f"frontend/{f}/", "hrsp_5xx") for f in lb.frontends)
    target_5xx = _sum(delta, "server/", "hrsp_5xx")
    found = _counts(lb_dims, {"RequestCount": sum(_sum(delta, f"frontend/{f}/", "req_tot") for f in lb.frontends),
                              "HTTPCode_ELB_5XX_Count": max(front - target_5xx, 0),
                              "HTTPCode_Target_5XX_Count": target_5xx})
    found += _response_time(lb_dims, delta, sample.rtime_ms, None)
    for backend, group in lb.target_groups.items():
        dims = [{"Name": "TargetGroup", "Value": group}, *lb_dims]
        found += _counts(dims, {"RequestCount": _sum(delta, f"backend/{backend}/", "req_tot"),
                                "HTTPCode_Target_5XX_Count": _sum(delta, f"server/{backend}/", "hrsp_5xx")})
        found += _response_time(dims, delta, sample.rtime_ms, backend)
        states = [s for (b, _), s in sample.states.items() if b == backend]
        found += [{"MetricName": name, "Dimensions": dims, "Value": float(states.count(state)), "Unit": "Count"}
                  for name, state in (("HealthyHostCount", "healthy"), ("UnHealthyHostCount", "unhealthy"))]
    return found


def _counts(dims: list[dict], values: Mapping[str, float]) -> list[dict]:
    """Return count datapoints, leaving out zeros as an ALB does."""
    return [{"MetricName": name, "Dimensions": dims, "Value": value, "Unit": "Count"}
            for name, value in values.items() if value > 0]


def _response_time(dims: list[dict], delta: Counters, rtime_ms: dict[tuple[str, str], float],
                   backend: str | None) -> list[dict]:
    """Return TargetResponseTime over the servers (of one backend, or all) that answered in the period."""
    answered = {(b, s): delta.get(f"server/{b}/{s}/req_tot", 0.0) for b, s in rtime_ms
                if backend in (None, b)}
    answered = {k: n for k, n in answered.items() if n > 0}
    if not answered:
        return []
    count = sum(answered.values())
    seconds = [rtime_ms[k] / 1000 for k in answered]
    stats = {"SampleCount": count, "Sum": sum(rtime_ms[k] / 1000 * n for k, n in answered.items()),
             "Minimum": min(seconds), "Maximum": max(seconds)}
    return [{"MetricName": "TargetResponseTime", "Dimensions": dims, "StatisticValues": stats, "Unit": "Seconds"}]


class AlbMeter:
    """Keeps the last sample of one load balancer and turns each new one into the period's datapoints."""

    def __init__(self, lb: LoadBalancer) -> None:
        self.lb = lb
        self._previous: Counters | None = None

    def collect(self) -> list[dict]:
        """Read the counters; return the datapoints of the growth since the last reading (none the first time)."""
        sample = read_sample(self.lb)
        if sample is None:
            self._previous = None
            return []
        previous, self._previous = self._previous, sample.counters
        if previous is None:
            return []
        return datums(self.lb, deltas(previous, sample.counters), sample)
