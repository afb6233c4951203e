"""ListMetrics, GetMetricStatistics and GetMetricData answered as CloudWatch answers them, from moto's stored
datapoints.

Where moto 5.2 answers otherwise:
- ListMetrics lists a metric of two or more dimensions once per datapoint (its duplicate check compares
  every dimension with every other), so a caller summing over the metrics it lists counts each many times;
- dimensions: CloudWatch returns only the metric with exactly the dimensions asked for (cpu_usage_active
  {InstanceId, cpu} is not found by InstanceId alone, and a query without dimensions finds only the metric
  that has none); moto matches a subset, or everything when none are given;
- GetMetricData fails with a TypeError once naive and aware timestamps meet (botocore's JSON and CBOR
  protocols give moto naive ones), and GetMetricStatistics ignores ExtendedStatistics (p99);
- periods: CloudWatch rounds StartTime down to the minute and counts whole periods from there; moto starts
  at the first datapoint (GetMetricStatistics) or at StartTime to the microsecond.
moto's responses still parse and serialize the calls; `install()` replaces the three reads on its CloudWatch
classes. Statistics and metric math are the alarm evaluator's (alarms.py, metricmath.py), so an alarm and a
read of its metric agree. Limits as AWS: 1,440 datapoints per GetMetricStatistics; 100,800 per GetMetricData
(beyond that the newest are returned with StatusCode PartialData; no NextToken). A Period must be one AWS
takes (1, 5, 10, 30 or a multiple of 60) or a multiple of the stack's own `--metrics-period`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from moto.cloudwatch.exceptions import InvalidParameterCombination, InvalidParameterValue, ValidationError
from moto.cloudwatch.models import CloudWatchBackend
from moto.cloudwatch.responses import CloudWatchResponse
from moto.core.responses import ActionResult

from . import metricmath
from .alarms import aggregate, moto_reader, period_datapoints, stat_series, utc

STATISTICS = ("SampleCount", "Average", "Sum", "Minimum", "Maximum")
HIGH_RESOLUTION = (1, 5, 10, 30)
MAX_STATISTICS_POINTS = 1440
MAX_DATA_POINTS = 100_800
_local_period = [60]  # the stack's --metrics-period, set by install()


def grid(start: Any, end: Any, period: int) -> list[datetime]:
    """The period starts of [start, end): StartTime rounded down to the minute, then whole periods."""
    first, end = utc(start).replace(second=0, microsecond=0), utc(end)
    count = max(0, -(-int((end - first).total_seconds()) // period))
    return [first + timedelta(seconds=period * n) for n in range(count)]


def _check_range(start: Any, end: Any, period: int) -> None:
    if utc(start) >= utc(end):
        raise InvalidParameterValue("The parameter StartTime must be less than the parameter EndTime.")
    if period <= 0 or (period % 60 and period not in HIGH_RESOLUTION and period % _local_period[0]):
        raise InvalidParameterValue("The parameter Period must be 1, 5, 10, 30, or a multiple of 60"
                                    f"{'' if _local_period[0] == 60 else f' or of {_local_period[0]}'}.")


def _statistic(stat: str) -> str:
    if stat in STATISTICS:
        return stat
    try:
        rank = float(stat[1:]) if stat[:1] == "p" else -1
    except ValueError:
        rank = -1
    if not 0 <= rank <= 100:
        raise InvalidParameterValue(f"The statistic {stat} is not supported by the twin (SampleCount, Average, "
                                    "Sum, Minimum, Maximum, pNN).")
    return stat


def get_metric_statistics(self: CloudWatchResponse) -> ActionResult:
    """GetMetricStatistics: the exact metric, per period, with Statistics and ExtendedStatistics."""
    namespace, name = self._get_param("Namespace"), self._get_param("MetricName")
    start, end, period = self._get_param("StartTime"), self._get_param("EndTime"), self._get_int_param("Period")
    statistics = self._get_param("Statistics", []) or []
    extended = self._get_param("ExtendedStatistics", []) or []
    unit = self._get_param("Unit")
    if bool(statistics) == bool(extended):
        raise InvalidParameterCombination("Must specify either Statistics or ExtendedStatistics, but not both.")
    _check_range(start, end, period or 0)
    for stat in [*statistics, *extended]:
        _statistic(stat)
    starts = grid(start, end, period)
    if len(starts) > MAX_STATISTICS_POINTS:
        raise InvalidParameterCombination(
            f"You have requested up to {len(starts):,} datapoints, which exceeds the limit of 1,440. You may "
            "reduce the datapoints requested by increasing Period, or decreasing the time range.")
    dims = {d["Name"]: d["Value"] for d in self._get_param("Dimensions", []) or []}
    buckets = period_datapoints(moto_reader(self.cloudwatch_backend), (namespace, name, dims), unit, starts, period)
    datapoints = []
    for stamp, found in buckets.items():
        if not found:
            continue
        values = [v for v, _ in found]
        point: dict[str, Any] = {"Timestamp": stamp, "Unit": unit or found[-1][1] or "None"}
        for stat in statistics:
            point[stat] = aggregate(values, stat)[0]
        if extended:
            point["ExtendedStatistics"] = {s: v for s in extended if (v := aggregate(values, s)[0]) is not None}
        datapoints.append(point)
    return ActionResult({"Label": name, "Datapoints": datapoints})


def get_metric_data(self: CloudWatchBackend, queries: list[dict[str, Any]], start_time: datetime,
                    end_time: datetime, scan_by: str = "TimestampDescending") -> list[dict[str, Any]]:
    """GetMetricData's results: each MetricStat query on its period grid, then the expressions in order."""
    if utc(start_time) >= utc(end_time):
        raise ValidationError("The parameter EndTime must be greater than StartTime.")
    read = moto_reader(self)
    series: dict[str, dict[datetime, float]] = {}
    grids: dict[str, list[datetime]] = {}
    partial: set[str] = set()
    stat_ids = [q["Id"] for q in queries if "MetricStat" in q]
    for query in queries:
        if "MetricStat" not in query:
            continue
        stat = query["MetricStat"]
        period = int(stat["Period"])
        _check_range(start_time, end_time, period)
        starts = grid(start_time, end_time, period)
        if len(starts) > MAX_DATA_POINTS:
            starts = starts[-MAX_DATA_POINTS:]
            partial.add(query["Id"])
        metric = stat["Metric"]
        dims = {d["Name"]: d["Value"] for d in metric.get("Dimensions", []) or []}
        points = stat_series(read, (metric["Namespace"], metric["MetricName"], dims), _statistic(stat["Stat"]),
                             stat.get("Unit"), starts, period) if starts else []
        series[query["Id"]] = {p.start: p.value for p in points if p.value is not None}
        grids[query["Id"]] = starts
    common = sorted({s for g in grids.values() for s in g})
    for query in queries:
        if "Expression" not in query:
            continue
        if query["Expression"].lstrip().upper().startswith("SELECT"):
            raise InvalidParameterValue("Metrics Insights queries (SELECT ...) are not supported by the twin.")
        context = metricmath.Context(series, common, stat_ids)
        try:
            series[query["Id"]] = metricmath.as_series(metricmath.evaluate(query["Expression"], context), common)
        except metricmath.MathError as exc:
            raise ValidationError(f"Error in expression '{query['Id']}': {exc}") from exc
    results = []
    for query in queries:
        if str(query.get("ReturnData", True)).lower() == "false":
            continue
        points = sorted(series.get(query["Id"], {}).items(), reverse=scan_by != "TimestampAscending")
        default = (f"{query['MetricStat']['Metric']['MetricName']} {query['MetricStat']['Stat']}"
                   if "MetricStat" in query else query["Id"])
        results.append({"id": query["Id"], "label": query.get("Label") or default,
                        "values": [v for _, v in points], "timestamps": [t for t, _ in points],
                        "status_code": "PartialData" if query["Id"] in partial else "Complete"})
    return results


def get_filtered_metrics(self: CloudWatchBackend, metric_name: str | None, namespace: str | None,
                         dimensions: list[dict[str, str]] | None) -> list[Any]:
    """ListMetrics' metrics: each (namespace, name, dimension set) once, filtered by the dimensions asked for
    (a name alone, or a name and a value)."""
    wanted = [(d["Name"], d.get("Value")) for d in dimensions or []]
    found: dict[tuple, Any] = {}
    for datum in self.get_all_metrics():
        if (namespace and datum.namespace != namespace) or (metric_name and datum.name != metric_name):
            continue
        dims = {d.name: d.value for d in datum.dimensions}
        if any(name not in dims or (value is not None and dims[name] != value) for name, value in wanted):
            continue
        found.setdefault((datum.namespace, datum.name, frozenset(dims.items())), datum)
    return list(found.values())


def install(metrics_period: int = 60) -> None:
    """Answer the three reads with this module's functions (moto parses the requests and writes the answers);
    `metrics_period` is the stack's own period, accepted as a Period beside AWS's."""
    _local_period[0] = metrics_period
    CloudWatchResponse.get_metric_statistics = get_metric_statistics  # type: ignore[method-assign]
    CloudWatchBackend.get_metric_data = get_metric_data  # type: ignore[method-assign]
    CloudWatchBackend.get_filtered_metrics = get_filtered_metrics  # type: ignore[method-assign]
