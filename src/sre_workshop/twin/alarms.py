"""Evaluate CloudWatch metric alarms held by moto's backend as AWS does (moto stores alarms, never evaluates).

Call `evaluate_all(backend, now)` with a moto CloudWatchBackend each tick; it returns the names of the alarms
whose state changed, applied through moto's own `Alarm.update_state` (so DescribeAlarms and the alarm's
history show them). The decisions are pure: `evaluate(alarm, read, now)` takes any datapoint reader.

As AWS documents "Evaluating an alarm" and "Configuring how CloudWatch alarms treat missing data":
- the evaluation range is the last EvaluationPeriods whole periods before `now` (the current, incomplete
  period is left out), periods aligned to multiples of Period since the epoch;
- each period is aggregated with the alarm's Statistic (SampleCount, Sum, Minimum, Maximum, Average) or
  ExtendedStatistic pNN (raw values only; a StatisticValues set counts only when its Minimum = Maximum);
- ALARM when at least DatapointsToAlarm (default EvaluationPeriods) datapoints breach, else OK;
- missing datapoints: breaching / notBreaching fill them; missing and ignore evaluate the datapoints there
  are; when all are missing, missing -> INSUFFICIENT_DATA, ignore -> state kept, breaching -> ALARM,
  notBreaching -> OK. AWS/DynamoDB alarms always ignore missing data, as AWS documents.
Not supported (state left unchanged, logged): anomaly-detection operators (LessThanLowerThreshold,
GreaterThanUpperThreshold, LessThanLowerOrGreaterThanUpperThreshold), ThresholdMetricId, composite alarms,
an evaluation range longer than EvaluationPeriods, EvaluateLowSampleCountPercentile. A malformed math
expression keeps the state and says why in the alarm's StateReason (no history entry).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sre_workshop.twin import metricmath

logger = logging.getLogger(__name__)

Datapoint = tuple[datetime, Any, Any]  # (timestamp, float | StatisticValues dict, unit)
Reader = Callable[[str, str, dict[str, str], datetime, datetime], list[Datapoint]]

OPERATORS: dict[str, tuple[str, Callable[[float, float], bool]]] = {
    "GreaterThanThreshold": ("greater than", lambda v, t: v > t),
    "GreaterThanOrEqualToThreshold": ("greater than or equal to", lambda v, t: v >= t),
    "LessThanThreshold": ("less than", lambda v, t: v < t),
    "LessThanOrEqualToThreshold": ("less than or equal to", lambda v, t: v <= t),
}
TREATMENTS = ("missing", "ignore", "breaching", "notBreaching")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Verdict:
    """The state an alarm should be in, with AWS's StateReason and StateReasonData."""

    state: str
    reason: str
    reason_data: str
    error: bool = False


@dataclass(frozen=True)
class Point:
    """One period of the evaluation range: its start, its value (None: missing) and its sample count."""

    start: datetime
    value: float | None
    samples: float | None = None


# ---- reading moto's backend -------------------------------------------------------------------------


def utc(stamp: datetime | str) -> datetime:
    """A timestamp as an aware UTC datetime (moto keeps naive UTC ones)."""
    if isinstance(stamp, str):
        stamp = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    return stamp.replace(tzinfo=UTC) if stamp.tzinfo is None else stamp.astimezone(UTC)


def moto_reader(backend: Any) -> Reader:
    """A reader of the datapoints moto's CloudWatch backend holds for one metric (exact dimension set)."""

    def read(namespace: str, name: str, dimensions: dict[str, str], start: datetime, end: datetime):
        found = []
        for datum in backend.metric_data:
            if datum.namespace != namespace or datum.name != name:
                continue
            if {d.name: d.value for d in datum.dimensions} != dimensions:
                continue
            stamp = utc(datum.timestamp)
            if start <= stamp < end:
                found.append((stamp, _datum_value(datum), datum.unit))
        return found

    return read


def _datum_value(datum: Any) -> Any:
    """A MetricDatum's value, or a MetricAggregatedDatum's StatisticValues."""
    if hasattr(datum, "value"):
        return float(datum.value)
    return {"SampleCount": datum.sample_count, "Sum": datum.sum, "Minimum": datum.min, "Maximum": datum.max}


# ---- per-period statistics ----------------------------------------------------------------------------


def period_starts(now: datetime, period: int, count: int) -> list[datetime]:
    """The starts of the last `count` whole periods before `now`, oldest first."""
    elapsed = (utc(now) - EPOCH).total_seconds()
    current = EPOCH + timedelta(seconds=math.floor(elapsed / period) * period)
    return [current - timedelta(seconds=period * n) for n in range(count, 0, -1)]


def aggregate(values: Iterable[Any], stat: str) -> tuple[float | None, float | None]:
    """One period's (statistic, sample count) from raw values and StatisticValues sets; None if empty."""
    raw = [float(v) for v in values if not isinstance(v, dict)]
    sets = [v for v in values if isinstance(v, dict)]
    count = len(raw) + sum(float(s["SampleCount"]) for s in sets)
    if count == 0:
        return None, None
    if stat.startswith("p"):
        return _percentile(raw, sets, float(stat[1:])), count
    total = sum(raw) + sum(float(s["Sum"]) for s in sets)
    lows = raw + [float(s["Minimum"]) for s in sets]
    highs = raw + [float(s["Maximum"]) for s in sets]
    table = {"SampleCount": count, "Sum": total, "Average": total / count, "Minimum": min(lows), "Maximum": max(highs)}
    if stat not in table:
        raise ValueError(f"unsupported statistic {stat}")
    return table[stat], count


def _percentile(raw: list[float], sets: list[dict], rank: float) -> float | None:
    """A nearest-rank percentile; a StatisticValues set joins only when it is one repeated value."""
    values = list(raw)
    for s in sets:
        if float(s["Minimum"]) == float(s["Maximum"]):
            values += [float(s["Minimum"])] * int(float(s["SampleCount"]))
    if not values:
        return None
    values.sort()
    return values[max(0, math.ceil(rank / 100 * len(values)) - 1)]


def period_datapoints(
    read: Reader, metric: tuple[str, str, dict], unit: Any, starts: list[datetime], period: int
) -> dict[datetime, list[tuple[Any, Any]]]:
    """One metric's (value, unit) datapoints per period start (a datapoint of another unit left out)."""
    end = starts[-1] + timedelta(seconds=period)
    buckets: dict[datetime, list[tuple[Any, Any]]] = {start: [] for start in starts}
    for stamp, value, datum_unit in read(*metric, starts[0], end):
        if unit and datum_unit and datum_unit != unit:
            continue
        buckets[starts[int((stamp - starts[0]).total_seconds() // period)]].append((value, datum_unit))
    return buckets


def stat_series(
    read: Reader, metric: tuple[str, str, dict], stat: str, unit: Any, starts: list[datetime], period: int
) -> list[Point]:
    """One metric aggregated per period over the given period starts."""
    buckets = period_datapoints(read, metric, unit, starts, period)
    return [Point(start, *aggregate([v for v, _ in buckets[start]], stat)) for start in starts]


# ---- the alarm's datapoints ---------------------------------------------------------------------------


def alarm_points(alarm: Any, read: Reader, now: datetime) -> tuple[list[Point], int]:
    """The alarm's evaluation range, one Point a period oldest first, and its period; MathError if bad."""
    if alarm.metric_data_queries:
        return _math_points(alarm, read, now)
    period = int(alarm.period)
    starts = period_starts(now, period, int(alarm.evaluation_periods))
    dims = {d.name: d.value for d in alarm.dimensions}
    stat = alarm.extended_statistic or alarm.statistic
    points = stat_series(read, (alarm.namespace, alarm.metric_name, dims), stat, alarm.unit, starts, period)
    return points, period


def _math_points(alarm: Any, read: Reader, now: datetime) -> tuple[list[Point], int]:
    """The Points of an alarm on MetricDataQueries: MetricStat queries, then the one returned expression."""
    queries = alarm.metric_data_queries
    stats = [q for q in queries if q.metric_stat is not None]
    period = int(alarm.period or next((q.metric_stat.period for q in stats), 0) or 60)
    starts = period_starts(now, period, int(alarm.evaluation_periods))
    series = {q.id: _query_series(q, read, starts, period) for q in stats}
    returned = [q for q in queries if _truthy(q.return_data)]
    if len(returned) != 1:
        raise metricmath.MathError(f"{len(returned)} queries have ReturnData true; an alarm needs exactly one")
    (target,) = returned
    if target.metric_stat is not None:
        result: metricmath.Value = series[target.id]
    else:
        result = _expressions(queries, series, starts, stats)[target.id]
    result = metricmath.as_series(result, starts)
    return [Point(start, result.get(start)) for start in starts], period


def _expressions(queries: list, series: dict, starts: list[datetime], stats: list) -> dict:
    """Evaluate the expression queries in order, each seeing the ones before it."""
    for query in queries:
        if query.expression is None:
            continue
        context = metricmath.Context(series, starts, [q.id for q in stats])
        series[query.id] = metricmath.as_series(metricmath.evaluate(query.expression, context), starts)
    return series


def _query_series(query: Any, read: Reader, starts: list[datetime], period: int) -> dict[datetime, float]:
    """A MetricStat query as a series of its present datapoints."""
    stat, metric = query.metric_stat, query.metric_stat.metric
    if int(stat.period or period) != period:
        raise metricmath.MathError(f"query {query.id} has period {stat.period}, the alarm {period}")
    dims = {d.name: d.value for d in metric.dimensions}
    points = stat_series(read, (metric.namespace, metric.metric_name, dims), stat.stat, stat.unit, starts, period)
    return {p.start: p.value for p in points if p.value is not None}


def _truthy(flag: Any) -> bool:
    """ReturnData as moto keeps it (a bool, a string or None: true by default)."""
    return flag is None or flag is True or str(flag).lower() == "true"


# ---- the decision -------------------------------------------------------------------------------------


def decide(breaches: list[bool | None], needed: int, treatment: str, current: str) -> str:
    """The new state from per-period breaches (None: missing), DatapointsToAlarm and TreatMissingData."""
    if all(b is None for b in breaches):
        return {"missing": "INSUFFICIENT_DATA", "ignore": current, "breaching": "ALARM"}.get(treatment, "OK")
    fill = {"breaching": True, "notBreaching": False}.get(treatment)
    counted = [fill if b is None else b for b in breaches]
    return "ALARM" if sum(1 for b in counted if b) >= needed else "OK"


def evaluate(alarm: Any, read: Reader, now: datetime) -> Verdict | None:
    """What the alarm's state should be at `now`; None if the alarm is one this module does not evaluate."""
    if getattr(alarm, "rule", None) or alarm.comparison_operator not in OPERATORS:
        logger.info("alarm %s: %s is not evaluated by the twin", alarm.name, alarm.comparison_operator)
        return None
    try:
        points, period = alarm_points(alarm, read, now)
    except ValueError as error:  # a MathError, or a statistic this module does not know
        what = "metric math" if isinstance(error, metricmath.MathError) else "statistic"
        reason = f"Unchecked: the alarm's {what} could not be evaluated: {error}"
        return Verdict(alarm.state_value, reason, "{}", error=True)
    _, test = OPERATORS[alarm.comparison_operator]
    threshold = float(alarm.threshold)
    breaches = [None if p.value is None else test(p.value, threshold) for p in points]
    needed = int(alarm.datapoints_to_alarm or alarm.evaluation_periods)
    state = decide(breaches, needed, treatment(alarm), alarm.state_value)
    reason = reason_text(alarm, points, breaches, state, needed)
    return Verdict(state, reason, reason_data(alarm, points, period, now))


def treatment(alarm: Any) -> str:
    """The alarm's TreatMissingData (default missing; AWS/DynamoDB alarms always ignore)."""
    if alarm.namespace == "AWS/DynamoDB":
        return "ignore"
    return alarm.treat_missing_data if alarm.treat_missing_data in TREATMENTS else "missing"


# ---- AWS's reason text and reason data -----------------------------------------------------------------


def number(value: float) -> str:
    """A value as AWS prints it (Java's Double.toString: 1.0, 12.5, 1.0E7, 1.5E-4)."""
    value = float(value)
    if value == 0 or 1e-3 <= abs(value) < 1e7 or not math.isfinite(value):
        return repr(value)
    sign, digits, exponent = Decimal(repr(value)).normalize().as_tuple()
    text = "".join(map(str, digits))
    mantissa = f"{text[0]}.{text[1:] or '0'}"
    return f"{'-' if sign else ''}{mantissa}E{len(text) + int(exponent) - 1}"


def _plural(count: int, word: str = "datapoint") -> str:
    return f"{count} {word}" + ("" if count == 1 else "s")


def reason_text(alarm: Any, points: list[Point], breaches: list[bool | None], state: str, needed: int) -> str:
    """StateReason in AWS's words for the new state."""
    total = len(points)
    present = [p for p in reversed(points) if p.value is not None]
    if not present:
        if state == "INSUFFICIENT_DATA":
            return f"Insufficient Data: {_plural(total)} {'was' if total == 1 else 'were'} unknown."
        kind = "Breaching" if state == "ALARM" else "NonBreaching"
        return (
            f"Threshold Crossed: no datapoints were received for {_plural(total, 'period')} and "
            f"{_plural(total, 'missing datapoint')} {'was' if total == 1 else 'were'} treated as [{kind}]."
        )
    words, _ = OPERATORS[alarm.comparison_operator]
    listed = ", ".join(f"{number(p.value)} ({p.start:%d/%m/%y %H:%M:%S})" for p in present)  # type: ignore[arg-type]
    counted = sum(1 for b in breaches if b is (state == "ALARM"))
    verb = ("was" if counted == 1 else "were") + ("" if state == "ALARM" else " not")
    threshold = number(float(alarm.threshold))
    if total == 1:
        return f"Threshold Crossed: 1 datapoint [{listed}] {verb} {words} the threshold ({threshold})."
    minimum = needed if state == "ALARM" else total - needed + 1
    missing = total - len(present)
    treated = (
        ""
        if missing == 0 or treatment(alarm) not in ("breaching", "notBreaching")
        else (
            f" and {_plural(missing, 'missing datapoint')} {'was' if missing == 1 else 'were'} treated as "
            f"[{'Breaching' if treatment(alarm) == 'breaching' else 'NonBreaching'}]"
        )
    )
    return (
        f"Threshold Crossed: {counted} out of the last {_plural(total)} [{listed}] {verb} "
        f"{words} the threshold ({threshold}){treated} (minimum {_plural(minimum)} for "
        f"{alarm.state_value} -> {state} transition)."
    )


def aws_time(stamp: datetime) -> str:
    """A timestamp as reason data writes it: 2022-11-08T11:26:05.399+0000."""
    stamp = utc(stamp)
    return f"{stamp:%Y-%m-%dT%H:%M:%S}.{stamp.microsecond // 1000:03d}+0000"


def reason_data(alarm: Any, points: list[Point], period: int, now: datetime) -> str:
    """StateReasonData as AWS writes it (compact JSON, keys in AWS's order)."""
    data: dict[str, Any] = {"version": "1.0", "queryDate": aws_time(now), "startDate": aws_time(points[0].start)}
    if not alarm.metric_data_queries:
        if alarm.extended_statistic:
            data["extendedStatistic"] = alarm.extended_statistic
        else:
            data["statistic"] = alarm.statistic
    data["period"] = period
    data["recentDatapoints"] = [p.value for p in points if p.value is not None]
    data["threshold"] = float(alarm.threshold)
    evaluated = []
    for p in reversed(points):
        item: dict[str, Any] = {"timestamp": aws_time(p.start)}
        if p.samples is not None:
            item["sampleCount"] = p.samples
        if p.value is not None:
            item["value"] = p.value
        evaluated.append(item)
    data["evaluatedDatapoints"] = evaluated
    return json.dumps(data, separators=(",", ":"))


# ---- applying it ----------------------------------------------------------------------------------------


def evaluate_all(backend: Any, now: datetime, read: Reader | None = None) -> list[str]:
    """Evaluate every metric alarm of a moto CloudWatch backend at `now`; return the names that changed."""
    read = read or moto_reader(backend)
    changed = []
    for alarm in list(backend.alarms.values()):
        verdict = evaluate(alarm, read, now)
        if verdict is None:
            continue
        if verdict.error:
            alarm.state_reason, alarm.state_reason_data = verdict.reason, verdict.reason_data
        elif verdict.state != alarm.state_value:
            alarm.update_state(verdict.reason, verdict.reason_data, verdict.state)
            alarm.state_updated_timestamp = utc(now).replace(tzinfo=None)  # moto keeps naive UTC
            changed.append(alarm.name)
    return changed
