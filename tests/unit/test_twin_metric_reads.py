"""ListMetrics, GetMetricStatistics and GetMetricData through moto with the twin's reads installed: each metric
listed once, exact dimensions, the period grid, extended statistics, metric math and AWS's errors."""

from datetime import UTC, datetime, timedelta

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.cloudwatch.models import CloudWatchBackend
from moto.cloudwatch.responses import CloudWatchResponse

from sre_workshop.twin import metric_reads

INSTANCE = [{"Name": "InstanceId", "Value": "i-0abc"}]
BOTH = [*INSTANCE, {"Name": "cpu", "Value": "cpu-total"}]
NOW = datetime.now(UTC).replace(second=0, microsecond=0)


@pytest.fixture
def cloudwatch(monkeypatch):
    # the originals come back after the test: install() changes moto's classes for the whole process
    monkeypatch.setattr(CloudWatchResponse, "get_metric_statistics", CloudWatchResponse.get_metric_statistics)
    monkeypatch.setattr(CloudWatchBackend, "get_metric_data", CloudWatchBackend.get_metric_data)
    monkeypatch.setattr(CloudWatchBackend, "get_filtered_metrics", CloudWatchBackend.get_filtered_metrics)
    metric_reads.install()
    with mock_aws():
        client = boto3.client("cloudwatch", region_name="us-east-1", aws_access_key_id="x",
                              aws_secret_access_key="x")
        client.put_metric_data(Namespace="CWAgent", MetricData=[
            {"MetricName": "cpu_usage_active", "Dimensions": BOTH, "Value": value,
             "Timestamp": NOW - timedelta(minutes=3) + timedelta(seconds=seconds)}
            for seconds, value in ((0, 10.0), (20, 30.0), (70, 50.0), (130, 90.0))])
        client.put_metric_data(Namespace="CWAgent", MetricData=[
            {"MetricName": "cpu_usage_active", "Dimensions": INSTANCE, "Timestamp": NOW - timedelta(minutes=2),
             "StatisticValues": {"SampleCount": 4, "Sum": 8, "Minimum": 1, "Maximum": 3}}])
        yield client


def statistics(client, dimensions, **extra):
    kwargs = extra or {"Statistics": ["Average", "SampleCount", "Maximum"]}
    return client.get_metric_statistics(Namespace="CWAgent", MetricName="cpu_usage_active", Dimensions=dimensions,
                                        StartTime=NOW - timedelta(minutes=10, seconds=25), EndTime=NOW,
                                        Period=60, **kwargs)["Datapoints"]


def test_only_the_metric_with_exactly_those_dimensions_answers(cloudwatch):
    points = sorted(statistics(cloudwatch, BOTH), key=lambda p: p["Timestamp"])
    assert [(p["Timestamp"], p["Average"], p["SampleCount"]) for p in points] == [
        (NOW - timedelta(minutes=3), 20.0, 2.0), (NOW - timedelta(minutes=2), 50.0, 1.0),
        (NOW - timedelta(minutes=1), 90.0, 1.0)]
    (aggregated,) = statistics(cloudwatch, INSTANCE)
    assert (aggregated["SampleCount"], aggregated["Average"], aggregated["Maximum"]) == (4.0, 2.0, 3.0)
    assert statistics(cloudwatch, []) == []
    assert statistics(cloudwatch, [{"Name": "InstanceId", "Value": "i-other"}]) == []


def test_extended_statistics_are_answered(cloudwatch):
    points = statistics(cloudwatch, BOTH, ExtendedStatistics=["p50", "p100"])
    first = min(points, key=lambda p: p["Timestamp"])
    assert first["ExtendedStatistics"] == {"p50": 10.0, "p100": 30.0}


def test_get_metric_data_reads_exact_metrics_and_evaluates_math(cloudwatch):
    results = cloudwatch.get_metric_data(StartTime=NOW - timedelta(minutes=10), EndTime=NOW, MetricDataQueries=[
        {"Id": "cpu", "MetricStat": {"Metric": {"Namespace": "CWAgent", "MetricName": "cpu_usage_active",
                                                "Dimensions": BOTH}, "Period": 60, "Stat": "Maximum"},
         "ReturnData": False},
        {"Id": "half", "Expression": "cpu / 2", "Label": "half"},
        {"Id": "none", "MetricStat": {"Metric": {"Namespace": "CWAgent", "MetricName": "cpu_usage_active"},
                                      "Period": 60, "Stat": "Average"}}])["MetricDataResults"]
    half, none = results
    assert half["Label"] == "half" and half["Values"] == [45.0, 25.0, 15.0]
    assert half["Timestamps"][0] == NOW - timedelta(minutes=1)
    assert none["Values"] == [] and none["StatusCode"] == "Complete"


@pytest.mark.parametrize(("kwargs", "code", "words"), [
    ({"Period": 7}, "InvalidParameterValue", "Period"),
    ({"Period": 1}, "InvalidParameterCombination", "1,440"),
    ({"StartTime": NOW}, "InvalidParameterValue", "StartTime"),
    ({"Statistics": ["tm99"]}, "InvalidParameterValue", "tm99"),
])
def test_bad_reads_get_aws_errors(cloudwatch, kwargs, code, words):
    call = {"Namespace": "CWAgent", "MetricName": "cpu_usage_active", "Dimensions": BOTH,
            "StartTime": NOW - timedelta(hours=1), "EndTime": NOW, "Period": 60, "Statistics": ["Average"],
            **kwargs}
    with pytest.raises(ClientError) as caught:
        cloudwatch.get_metric_statistics(**call)
    assert caught.value.response["Error"]["Code"] == code and words in caught.value.response["Error"]["Message"]


def test_each_metric_is_listed_once_and_the_dimension_filter_matches_names_and_values(cloudwatch):
    listed = cloudwatch.list_metrics(Namespace="CWAgent")["Metrics"]
    assert sorted(len(m["Dimensions"]) for m in listed) == [1, 2]  # four datapoints of the two-dimension metric
    by_name = cloudwatch.list_metrics(Namespace="CWAgent", Dimensions=[{"Name": "cpu"}])["Metrics"]
    assert [len(m["Dimensions"]) for m in by_name] == [2]
    assert cloudwatch.list_metrics(Dimensions=[{"Name": "InstanceId", "Value": "i-other"}])["Metrics"] == []
