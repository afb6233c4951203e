"""The twin's alarm evaluation against moto's in-process CloudWatch: alarms and datapoints put through boto3,
then `evaluate_all(backend, now)` at a chosen `now`, checked against AWS's states, reasons and history."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import boto3
import pytest
from moto import mock_aws
from moto.cloudwatch.models import cloudwatch_backends

from cfn import load
from sre_workshop.twin import alarm_history, metricmath
from sre_workshop.twin.alarms import aggregate, evaluate_all

REGION = "us-east-1"
ACCOUNT = "123456789012"
DIMS = [{"Name": "InstanceId", "Value": "i-1"}]


def at(minute: int, second: int = 0) -> datetime:
    """A time on 12 April 2026 at 18:MM:SS UTC."""
    return datetime(2026, 4, 12, 18, minute, second, tzinfo=UTC)


@pytest.fixture(scope="module")
def moto_cloudwatch():
    """moto's in-process AWS for the module (starting it per test costs more than the tests)."""
    with mock_aws():
        yield boto3.client("cloudwatch", region_name=REGION), cloudwatch_backends[ACCOUNT][REGION]


@pytest.fixture
def cw(moto_cloudwatch):
    """A boto3 CloudWatch client and the moto backend behind it, with no alarms and no datapoints."""
    client, backend = moto_cloudwatch
    backend.alarms.clear()
    backend.metric_data.clear()
    return client, backend


def put(client, minute: int, value: float | None = None, name: str = "m", **datum) -> None:
    """Put one datum at 18:MM:05 (a Value, or whatever `datum` says: Values/Counts, StatisticValues)."""
    if value is not None:
        datum["Value"] = value
    client.put_metric_data(
        Namespace="ns", MetricData=[{"MetricName": name, "Dimensions": DIMS, "Timestamp": at(minute, 5), **datum}]
    )


def alarm(client, name: str = "a", **props) -> None:
    """Put a metric alarm on ns/m (Maximum > 0 over 2 of 2 one-minute periods unless `props` says otherwise)."""
    settings = {
        "Namespace": "ns",
        "MetricName": "m",
        "Dimensions": DIMS,
        "Statistic": "Maximum",
        "Period": 60,
        "EvaluationPeriods": 2,
        "Threshold": 0.0,
        "ComparisonOperator": "GreaterThanThreshold",
        "TreatMissingData": "notBreaching",
        **props,
    }
    client.put_metric_alarm(AlarmName=name, **{k: v for k, v in settings.items() if v is not None})


def state(client, name: str = "a") -> dict:
    """The alarm as DescribeAlarms returns it."""
    return client.describe_alarms(AlarmNames=[name])["MetricAlarms"][0]


def test_two_of_two_breaching_periods_raise_the_alarm_with_aws_reason_and_data(cw):
    client, backend = cw
    alarm(client)
    put(client, 9, 1.0)
    put(client, 10, 1.0)
    put(client, 11, 50.0)  # the current, incomplete period: not evaluated yet
    assert evaluate_all(backend, at(11, 30)) == ["a"]
    described = state(client)
    assert described["StateValue"] == "ALARM"
    assert described["StateReason"] == (
        "Threshold Crossed: 2 out of the last 2 datapoints [1.0 (12/04/26 18:10:00), 1.0 (12/04/26 18:09:00)] "
        "were greater than the threshold (0.0) (minimum 2 datapoints for OK -> ALARM transition)."
    )
    assert json.loads(described["StateReasonData"]) == {
        "version": "1.0",
        "queryDate": "2026-04-12T18:11:30.000+0000",
        "startDate": "2026-04-12T18:09:00.000+0000",
        "statistic": "Maximum",
        "period": 60,
        "recentDatapoints": [1.0, 1.0],
        "threshold": 0.0,
        "evaluatedDatapoints": [
            {"timestamp": "2026-04-12T18:10:00.000+0000", "sampleCount": 1.0, "value": 1.0},
            {"timestamp": "2026-04-12T18:09:00.000+0000", "sampleCount": 1.0, "value": 1.0},
        ],
    }
    assert evaluate_all(backend, at(11, 45)) == []  # no change, no second transition


def test_back_below_the_threshold_returns_to_ok(cw):
    client, backend = cw
    alarm(client)
    for minute, value in ((9, 1.0), (10, 1.0), (11, 0.0), (12, 0.0)):
        put(client, minute, value)
    evaluate_all(backend, at(11, 30))
    assert evaluate_all(backend, at(13, 30)) == ["a"]
    described = state(client)
    assert described["StateValue"] == "OK"
    assert described["StateReason"] == (
        "Threshold Crossed: 2 out of the last 2 datapoints [0.0 (12/04/26 18:12:00), 0.0 (12/04/26 18:11:00)] "
        "were not greater than the threshold (0.0) (minimum 1 datapoint for ALARM -> OK transition)."
    )


@pytest.mark.parametrize(
    ("treatment", "before", "after", "reason"),
    [
        ("missing", "OK", "INSUFFICIENT_DATA", "Insufficient Data: 2 datapoints were unknown."),
        ("ignore", "ALARM", "ALARM", "kept"),
        ("ignore", "OK", "OK", "kept"),
        (
            "breaching",
            "OK",
            "ALARM",
            "Threshold Crossed: no datapoints were received for 2 periods and 2 missing datapoints were treated as "
            "[Breaching].",
        ),
        (
            "notBreaching",
            "ALARM",
            "OK",
            "Threshold Crossed: no datapoints were received for 2 periods and 2 missing datapoints were treated as "
            "[NonBreaching].",
        ),
    ],
)
def test_all_datapoints_missing_follows_treat_missing_data(cw, treatment, before, after, reason):
    client, backend = cw
    alarm(client, TreatMissingData=treatment)
    client.set_alarm_state(AlarmName="a", StateValue=before, StateReason="kept")
    put(client, 5, 9.0)  # before the evaluation range: does not count
    assert evaluate_all(backend, at(11, 30)) == ([] if before == after else ["a"])
    assert (state(client)["StateValue"], state(client)["StateReason"]) == (after, reason)


@pytest.mark.parametrize(
    ("treatment", "after"), [("breaching", "ALARM"), ("notBreaching", "OK"), ("missing", "OK"), ("ignore", "OK")]
)
def test_some_datapoints_missing_are_filled_or_left_out(cw, treatment, after):
    client, backend = cw
    alarm(client, TreatMissingData=treatment)
    client.set_alarm_state(AlarmName="a", StateValue="INSUFFICIENT_DATA", StateReason="start")
    put(client, 10, 1.0)  # 18:09 missing: 2 of 2 breach only if the missing one counts as breaching
    assert evaluate_all(backend, at(11, 30)) == ["a"]
    assert state(client)["StateValue"] == after
    if treatment == "breaching":
        assert state(client)["StateReason"] == (
            "Threshold Crossed: 1 out of the last 2 datapoints [1.0 (12/04/26 18:10:00)] was greater than the "
            "threshold (0.0) and 1 missing datapoint was treated as [Breaching] (minimum 2 datapoints for "
            "INSUFFICIENT_DATA -> ALARM transition)."
        )


def test_m_of_n_alarm_and_its_reason(cw):
    client, backend = cw
    alarm(client, EvaluationPeriods=3, DatapointsToAlarm=2, Threshold=5.0)
    for minute, value in ((8, 6.0), (9, 1.0), (10, 7.0)):
        put(client, minute, value)
    assert evaluate_all(backend, at(10, 30)) == []  # 18:07 (missing), 18:08, 18:09: 1 of 3 breach
    assert evaluate_all(backend, at(11, 30)) == ["a"]
    assert state(client)["StateReason"] == (
        "Threshold Crossed: 2 out of the last 3 datapoints [7.0 (12/04/26 18:10:00), 1.0 (12/04/26 18:09:00), "
        "6.0 (12/04/26 18:08:00)] were greater than the threshold (5.0) (minimum 2 datapoints for OK -> ALARM "
        "transition)."
    )


STAT_SETS = [
    {"SampleCount": 2, "Sum": 10.0, "Minimum": 1.0, "Maximum": 9.0},
    {"SampleCount": 3, "Sum": 5.0, "Minimum": 0.0, "Maximum": 4.0},
]


@pytest.mark.parametrize(
    ("statistic", "shown", "after"),
    [
        ("Sum", "21.0", "ALARM"),
        ("Average", "3.5", "OK"),
        ("Maximum", "9.0", "ALARM"),
        ("SampleCount", "6.0", "ALARM"),
        ("Minimum", "0.0", "OK"),
    ],
)
def test_statistics_over_statistic_values_and_raw_values(cw, statistic, shown, after):
    client, backend = cw
    alarm(client, Statistic=statistic, EvaluationPeriods=1, Threshold=5.0)
    client.set_alarm_state(AlarmName="a", StateValue="INSUFFICIENT_DATA", StateReason="start")
    for stats in STAT_SETS:
        put(client, 10, StatisticValues=stats)
    put(client, 10, Values=[6.0], Counts=[1])  # 2 + 3 + 1 samples, sum 21, min 0, max 9
    assert evaluate_all(backend, at(11, 30)) == ["a"]
    verb = "was greater" if after == "ALARM" else "was not greater"
    assert state(client)["StateValue"] == after
    assert state(client)["StateReason"] == (
        f"Threshold Crossed: 1 datapoint [{shown} (12/04/26 18:10:00)] {verb} than the threshold (5.0)."
    )


def test_percentiles_come_from_raw_values(cw):
    client, backend = cw
    alarm(client, Statistic=None, ExtendedStatistic="p90", EvaluationPeriods=1, Threshold=50.0)
    put(client, 10, Values=[1.0, 2.0, 3.0, 4.0, 100.0], Counts=[1, 1, 1, 1, 1])
    assert evaluate_all(backend, at(11, 30)) == ["a"]
    assert json.loads(state(client)["StateReasonData"])["extendedStatistic"] == "p90"
    assert aggregate([1.0, 2.0, 3.0, 4.0, 100.0], "p50") == (3.0, 5)


def template_5xx_alarm() -> dict:
    """The template's Public5xxAlarm as put_metric_alarm arguments (the load balancer given a fixed name)."""
    props = load()["Resources"]["Public5xxAlarm"]["Properties"]
    metrics = json.loads(json.dumps(props["Metrics"]))
    for query in metrics:
        for dim in query.get("MetricStat", {}).get("Metric", {}).get("Dimensions", []):
            dim["Value"] = "app/public/1"
    keep = ("EvaluationPeriods", "Threshold", "ComparisonOperator", "TreatMissingData")
    return {"Metrics": metrics, **{k: props[k] for k in keep}}


def put_alb(client, minute: int, requests: float, elb_5xx: float, target_5xx: float) -> None:
    """One minute of the public ALB's request and 5xx counts."""
    dims = [{"Name": "LoadBalancer", "Value": "app/public/1"}]
    data = [("RequestCount", requests), ("HTTPCode_ELB_5XX_Count", elb_5xx), ("HTTPCode_Target_5XX_Count", target_5xx)]
    client.put_metric_data(
        Namespace="AWS/ApplicationELB",
        MetricData=[{"MetricName": n, "Value": v, "Dimensions": dims, "Timestamp": at(minute, 20)} for n, v in data],
    )


def test_template_5xx_percent_is_zero_without_requests(cw):
    client, backend = cw
    client.put_metric_alarm(AlarmName="5xx", **template_5xx_alarm())
    client.set_alarm_state(AlarmName="5xx", StateValue="ALARM", StateReason="start")
    assert evaluate_all(backend, at(11, 30)) == ["5xx"]
    described = state(client, "5xx")
    assert described["StateValue"] == "OK"
    assert "[0.0 (12/04/26 18:10:00), 0.0 (12/04/26 18:09:00), 0.0 (12/04/26 18:08:00)]" in described["StateReason"]
    assert "statistic" not in json.loads(described["StateReasonData"])


def test_template_5xx_alarm_fires_after_three_periods_of_ten_percent(cw):
    client, backend = cw
    client.put_metric_alarm(AlarmName="5xx", **template_5xx_alarm())
    for minute in (8, 9, 10):
        put_alb(client, minute, requests=100, elb_5xx=4, target_5xx=6)
    assert evaluate_all(backend, at(10, 30)) == []  # 18:07 had no requests: 0 %
    assert evaluate_all(backend, at(11, 30)) == ["5xx"]
    assert state(client, "5xx")["StateReason"] == (
        "Threshold Crossed: 3 out of the last 3 datapoints [10.0 (12/04/26 18:10:00), 10.0 (12/04/26 18:09:00), "
        "10.0 (12/04/26 18:08:00)] were greater than the threshold (5.0) (minimum 3 datapoints for OK -> ALARM "
        "transition)."
    )


def test_a_malformed_expression_keeps_the_state_and_says_why(cw):
    client, backend = cw
    metrics = template_5xx_alarm()
    metrics["Metrics"][-1]["Expression"] = "100 * (errors + "
    client.put_metric_alarm(AlarmName="bad", **metrics)
    assert evaluate_all(backend, at(11, 30)) == []
    described = state(client, "bad")
    assert described["StateValue"] == "OK"
    assert described["StateReason"].startswith("Unchecked: the alarm's metric math could not be evaluated")


def test_an_unknown_statistic_keeps_the_state_and_the_other_alarms_are_evaluated(cw):
    client, backend = cw
    alarm(client, "odd", Statistic=None, ExtendedStatistic="pq")
    alarm(client, "b", TreatMissingData="breaching")
    put(client, 10, 1.0)
    assert evaluate_all(backend, at(11, 30)) == ["b"]
    assert state(client, "odd")["StateReason"].startswith("Unchecked: the alarm's statistic could not be evaluated")


def test_anomaly_detection_operators_are_left_alone(cw):
    client, backend = cw
    alarm(client, ComparisonOperator="LessThanLowerOrGreaterThanUpperThreshold", TreatMissingData="breaching")
    assert evaluate_all(backend, at(11, 30)) == []
    assert state(client)["StateValue"] == "OK"


def test_describe_alarm_history_shows_the_transitions(cw):
    client, backend = cw
    alarm_history.install()
    alarm(client)
    for minute, value in ((9, 1.0), (10, 1.0), (11, 0.0), (12, 0.0)):
        put(client, minute, value)
    evaluate_all(backend, at(11, 30))
    evaluate_all(backend, at(13, 30))
    items = client.describe_alarm_history(AlarmName="a")["AlarmHistoryItems"]
    assert [i["HistorySummary"] for i in items] == ["Alarm updated from ALARM to OK", "Alarm updated from OK to ALARM"]
    assert [i["Timestamp"] for i in items] == [at(13, 30), at(11, 30)]
    newest = json.loads(items[0]["HistoryData"])
    assert newest["oldState"]["stateValue"] == "ALARM"
    assert newest["newState"]["stateReason"] == state(client)["StateReason"]
    assert newest["newState"]["stateReasonData"]["recentDatapoints"] == [0.0, 0.0]


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("a / b", {1: 2.0}),  # b is 0 at 0: no datapoint
        ("a + 1", {0: 2.0, 1: 5.0, 2: 7.0}),
        ("a > 3", {0: 0.0, 1: 1.0, 2: 1.0}),
        ("a - b * 2", {0: 1.0, 1: 0.0}),  # b lacks 2: no datapoint
        ("SUM([a, b])", {0: 1.0, 1: 6.0, 2: 6.0}),
        ("MAX(a)", {0: 6.0, 1: 6.0, 2: 6.0, 3: 6.0}),
        ("IF(b, a, -1)", {0: -1.0, 1: 4.0}),
        ("FILL(b, REPEAT)", {0: 0.0, 1: 2.0, 2: 2.0, 3: 2.0}),
        ("FILL(b, 9) == 9 || a >= 6", {0: 0.0, 1: 0.0, 2: 1.0}),  # a lacks 3: no datapoint
        ("AVG(METRICS())", {0: 0.5, 1: 3.0, 2: 6.0}),
    ],
)
def test_metric_math(expression, expected):
    grid = [at(m) for m in range(4)]
    series = {"a": {at(0): 1.0, at(1): 4.0, at(2): 6.0}, "b": {at(0): 0.0, at(1): 2.0}}
    result = metricmath.evaluate(expression, metricmath.Context(series, grid, ["a", "b"]))
    assert metricmath.as_series(result, grid) == {at(m): v for m, v in expected.items()}


@pytest.mark.parametrize("expression", ["a +", "a b", "NOPE(a)", "c * 2", "(a", "a $ 2", "FILL(a)"])
def test_malformed_metric_math_raises(expression):
    with pytest.raises(metricmath.MathError):
        metricmath.evaluate(expression, metricmath.Context({"a": {}}, [at(0)]))
