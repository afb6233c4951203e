"""sre-app's pieces in process: settings, leak accounting, interval metrics and the flusher's retries."""

from __future__ import annotations

import pytest
from botocore.exceptions import EndpointConnectionError

from sre_app.appmetrics import MetricsFlusher, MetricsRecorder, percentiles
from sre_app.config import ConfigError, Settings
from sre_app.leak import MIB, Leak, LeakSettings, LeakSettingsError


def test_settings_defaults_follow_the_spec():
    settings = Settings.from_env({})
    assert settings.metrics_table == "ApplicationMetricsTable"
    assert settings.leak_mode == "request" and 0 < settings.leak_kb_per_request < 100
    assert settings.leak_cap_mb < 1024 / 2  # well under a t3.micro's 1 GB, even with two workers
    assert settings.fault_control_token is None


@pytest.mark.parametrize(("env", "name"), [({"LEAK_MODE": "sometimes"}, "LEAK_MODE"),
                                           ({"LEAK_CAP_MB": "lots"}, "LEAK_CAP_MB"),
                                           ({"LEAK_KB_PER_REQUEST": "-3"}, "LEAK_KB_PER_REQUEST"),
                                           ({"METRICS_INTERVAL_SECONDS": "0.1"}, "METRICS_INTERVAL_SECONDS")])
def test_bad_settings_name_the_variable(env, name):
    with pytest.raises(ConfigError, match=name):
        Settings.from_env(env)


def leak(**changes) -> Leak:
    return Leak(LeakSettings("request", 64, 60, 1, **changes))


def test_leak_grows_per_request_and_stops_at_the_cap():
    subject = leak()
    for _ in range(10):
        subject.on_request()
    assert subject.retained_bytes == 10 * 64 * 1024
    for _ in range(100):
        subject.on_request()
    assert subject.retained_bytes == 1 * MIB and subject.size_mb == 1.0


def test_time_mode_leaks_by_the_minute_and_ignores_requests():
    subject = Leak(LeakSettings("time", 64, 60, 100))
    subject.on_request()
    assert subject.retained_bytes == 0
    subject.on_tick(1.0)
    assert subject.retained_bytes == MIB  # 60 MB per minute = 1 MB per second


def test_release_frees_and_a_new_generation_releases():
    subject = leak()
    subject.on_request()
    subject.apply(LeakSettings("request", 64, 60, 1, generation=1))
    assert subject.retained_bytes == 0


def test_settings_travel_through_the_control_file(tmp_path):
    control = tmp_path / "leak.json"
    writer, reader = Leak(LeakSettings("request", 16, 1, 200), str(control)), Leak(
        LeakSettings("request", 16, 1, 200), str(control))
    writer.change(lambda latest: latest.updated({"mode": "time", "mb_per_minute": 5}))
    reader.sync()
    assert reader.settings.mode == "time" and reader.settings.mb_per_minute == 5


def test_a_change_builds_on_the_latest_published_settings_not_on_a_stale_worker(tmp_path):
    control = str(tmp_path / "leak.json")
    first, second = (Leak(LeakSettings("request", 16, 1, 200), control) for _ in range(2))
    first.change(lambda latest: latest.updated({"mode": "off"}))
    # `second` has not ticked since: its own settings still say "request".
    settings = second.change(lambda latest: latest.updated({"cap_mb": 50}))
    assert (settings.mode, settings.cap_mb) == ("off", 50)
    first.sync()
    assert first.settings == settings


@pytest.mark.parametrize(("changes", "field"), [({"mode": 3}, "mode"), ({"cap_mb": True}, "cap_mb"),
                                                ({"kb_per_request": 10**9}, "kb_per_request"), ({"x": 1}, "x")])
def test_leak_settings_validation_names_the_field(changes, field):
    with pytest.raises(LeakSettingsError) as error:
        LeakSettings("request", 16, 1, 200).updated(changes)
    assert error.value.field == field


def test_percentiles():
    assert percentiles([]) == {"p50_ms": 0.0, "p90_ms": 0.0, "p99_ms": 0.0, "max_ms": 0.0}
    result = percentiles([float(n) for n in range(1, 101)])
    assert (result["p50_ms"], result["p90_ms"], result["p99_ms"], result["max_ms"]) == (51.0, 91.0, 100.0, 100.0)


def recorder(buffer_max: int = 100) -> MetricsRecorder:
    return MetricsRecorder("sre-app#test#1", buffer_max, lambda: {"rss_mb": 50.0, "memory_leak_size_mb": 0.5})


def test_an_interval_becomes_one_item_with_counts_and_percentiles():
    subject = recorder()
    for ms in (1.0, 2.0, 3.0):
        subject.record(ms, 200)
    subject.record(9.0, 503)
    subject.close_interval()
    (item,) = subject.buffer
    assert item["metric_id"] == {"S": "sre-app#test#1"}
    assert item["request_count"] == {"N": "4"} and item["error_count"] == {"N": "1"}
    assert item["max_ms"] == {"N": "9.0"} and item["rss_mb"] == {"N": "50.0"}


def test_the_buffer_is_bounded_and_counts_what_it_drops():
    subject = recorder(buffer_max=3)
    for _ in range(5):
        subject.close_interval()
    assert len(subject.buffer) == 3 and subject.dropped == 2


class FlakyDynamoDB:
    """A stand-in client: fails `failures` times, then leaves one item unprocessed once, then accepts."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.written: list[dict] = []
        self.unprocessed_once = True

    def batch_write_item(self, RequestItems):
        if self.failures:
            self.failures -= 1
            raise EndpointConnectionError(endpoint_url="http://127.0.0.1:9")
        (table, requests), = RequestItems.items()
        if self.unprocessed_once and len(requests) > 1:
            self.unprocessed_once = False
            self.written.extend(r["PutRequest"]["Item"] for r in requests[1:])
            return {"UnprocessedItems": {table: requests[:1]}}
        self.written.extend(r["PutRequest"]["Item"] for r in requests)
        return {"UnprocessedItems": {}}


def test_flusher_keeps_items_through_failures_and_unprocessed_items():
    subject = recorder()
    client = FlakyDynamoDB(failures=2)
    flusher = MetricsFlusher(subject, "ApplicationMetricsTable", lambda: client, interval=60)
    for _ in range(30):
        subject.close_interval()
    assert flusher.flush() is False and flusher.flush() is False  # DynamoDB unreachable: nothing lost
    assert len(subject.buffer) == 30
    assert flusher.flush() is False  # one item came back unprocessed and is queued again
    assert flusher.flush() is True
    assert len(client.written) == 30 and not subject.buffer


def test_stop_flushes_the_partial_interval():
    subject = recorder()
    client = FlakyDynamoDB(failures=0)
    flusher = MetricsFlusher(subject, "ApplicationMetricsTable", lambda: client, interval=60)
    subject.record(5.0, 200)
    assert flusher.stop(timeout=5) is True
    assert [i["request_count"]["N"] for i in client.written] == ["1"]


def test_memory_line_is_json_with_the_leak_size(tmp_path, monkeypatch):
    import json

    from appkit import jsonlog
    from sre_app.runtime import Runtime

    log = tmp_path / "app.log"
    jsonlog.configure(str(log))
    runtime = Runtime(Settings.from_env({"LEAK_KB_PER_REQUEST": "1024"}))
    for _ in range(3):
        runtime.leak.on_request()
    runtime.log_memory()
    (entry,) = [json.loads(line) for line in log.read_text().splitlines() if '"sre_app.memory"' in line]
    assert entry["memory_leak_size_mb"] == 3.0 and entry["rss_mb"] > 3
