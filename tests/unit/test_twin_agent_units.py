"""The cloudwatch-agent's decisions without a server: config mapping, offsets and rotation, batching limits,
CPU and memory arithmetic on fixed /proc samples, HAProxy counter deltas, and the metric queue."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from sre_workshop.local.process import ProcessRecord
from sre_workshop.settings import Settings
from sre_workshop.twin import agent_alb, agent_tail
from sre_workshop.twin.agent_alb import AlbSample, datums, deltas, parse_stat
from sre_workshop.twin.agent_host import Proc, cpu_used, leaders, members
from sre_workshop.twin.agent_host import parse_stat as parse_proc_stat
from sre_workshop.twin.agent_logs import LogShipper, collected, rejected
from sre_workshop.twin.agent_metrics import MetricSink, measurements
from sre_workshop.twin.agent_plan import LoadBalancer, build_plan, parse_plan
from sre_workshop.twin.agent_tail import (
    MAX_BATCH_BYTES,
    MAX_BATCH_EVENTS,
    MAX_EVENT_BYTES,
    TRUNCATED,
    Event,
    Source,
    batches,
    line_time_ms,
    log_events,
    truncate,
)

ROOT = Path(__file__).resolve().parents[2]
CONFIG = json.loads((ROOT / "infra" / "cloudwatch" / "amazon-cloudwatch-agent.json").read_text())
IDS = {"NginxInstance1": "i-0nginx", "AppServerInstance1": "i-0app", "CRMAppInstance": "i-0crm"}
RESOURCES = {"PublicALB": "arn:aws:elasticloadbalancing:us-east-1:123:loadbalancer/app/sre-workshop-public-alb/50dc",
             "PrivateALB": "app/sre-workshop-private-alb/77aa",
             "PublicALBTargetGroup": "arn:aws:elasticloadbalancing:us-east-1:123:targetgroup/pub-tg/11",
             "CRMAppTargetGroup": "targetgroup/crm-tg/22", "PrivateALBTargetGroup": "targetgroup/priv-tg/33"}


def plan_of(tmp_path: Path, **overrides):
    settings = Settings(home=ROOT, state_dir=tmp_path / "state")
    return parse_plan({**build_plan(settings, "http://127.0.0.1:1", IDS, RESOURCES,
                                    private_ips={"NginxInstance1": "10.0.10.5"}), **overrides})


# --- the plan and the config mapping ---

def test_the_plan_maps_each_collect_list_file_of_the_config_to_its_instance(tmp_path):
    plan = plan_of(tmp_path)
    found = {(c.instance_id, c.group): (c.local_path.name, c.stream) for c in collected(CONFIG, plan)}
    assert found == {
        ("i-0app", "/aws/sre-workshop/application"): ("sre-app.json.log", "i-0app"),
        ("i-0crm", "/aws/sre-workshop/crm-application"): ("crm-app.json.log", "i-0crm"),
        ("i-0nginx", "/aws/sre-workshop/nginx/access"): ("nginx-access.log", "i-0nginx"),
        ("i-0nginx", "/aws/sre-workshop/nginx/error"): ("nginx-error.log", "i-0nginx")}
    assert plan.instances["i-0app"].pid_records == (tmp_path / "state" / "run" / "pids" / "sre-app.json",
                                                    tmp_path / "state" / "run" / "hosts" / "AppServerInstance1"
                                                    / "jobs" / "processes.pids")
    assert plan.instances["i-0app"].memory_mib == 1024 and plan.instances["i-0app"].vcpus == 2


def test_the_plan_names_the_load_balancers_by_their_cloudwatch_dimensions(tmp_path):
    public, private = plan_of(tmp_path).load_balancers
    assert public.dimension == "app/sre-workshop-public-alb/50dc"
    assert public.frontends == ("listener_80", "listener_8080")
    assert public.target_groups == {"PublicALBTargetGroup": "targetgroup/pub-tg/11",
                                    "CRMAppTargetGroup": "targetgroup/crm-tg/22"}
    assert private.socket.name == "private-alb.sock" and private.frontends == ("listener_80",)


def test_stream_names_take_the_instance_id_hostname_and_address(tmp_path):
    config = {"logs": {"logs_collected": {"files": {"collect_list": [
        {"file_path": "/var/log/nginx/access.log", "log_group_name": "g",
         "log_stream_name": "{instance_id}/{hostname}/{ip_address}"}]}}}}
    (only,) = collected(config, plan_of(tmp_path))
    assert only.stream == "i-0nginx/ip-10-0-10-5/10.0.10.5"


def test_a_bad_plan_is_one_usage_error():
    with pytest.raises(Exception, match="bad agent plan"):
        parse_plan({"endpoint": "http://x"})


def test_the_config_measurements_are_read_with_their_plugin_prefix():
    assert measurements(CONFIG, "mem") == {"mem_used_percent": "mem_used_percent", "mem_available": "mem_available"}
    config = {"metrics": {"metrics_collected": {"cpu": {"measurement": [{"name": "usage_active", "rename": "A"}]}}}}
    assert measurements(config, "cpu") == {"cpu_usage_active": "A"}


# --- timestamps, truncation, batching ---

def test_a_line_keeps_its_own_time_when_it_has_one():
    assert line_time_ms(b'{"time":"2026-01-02T03:04:05.678+00:00","level":"INFO"}') == 1767323045678
    assert line_time_ms(b'{"timestamp": 1767323045.5, "x": 1}') == 1767323045500
    assert line_time_ms(b'{"timestamp": 1767323045500}') == 1767323045500
    local = int(time.mktime((2026, 1, 2, 3, 4, 5, 0, 0, -1)) * 1000)
    assert line_time_ms(b"2026/01/02 03:04:05 [error] 12#12: *1 connect() failed") == local
    assert line_time_ms(b"a plain line") is None
    assert line_time_ms(b'{"time":"not a time"}') is None


def test_an_event_over_256_kb_is_truncated_as_the_agent_does():
    message = truncate("é" * 200_000)
    assert message.endswith(TRUNCATED)
    assert len(message.encode()) + agent_tail.EVENT_OVERHEAD <= MAX_EVENT_BYTES
    assert truncate("short") == "short"


def events(count: int, size: int = 10, start: int = 0, step: int = 1) -> list[Event]:
    return [Event(start + i * step, "x" * size, (i + 1) * (size + 1)) for i in range(count)]


def test_batches_hold_at_most_10000_events():
    found = batches(events(MAX_BATCH_EVENTS * 2 + 5))
    assert [len(b) for b in found] == [MAX_BATCH_EVENTS, MAX_BATCH_EVENTS, 5]


def test_batches_hold_at_most_1_mb_counting_26_bytes_per_event():
    found = batches(events(100, size=50_000))
    assert all(sum(e.size for e in b) <= MAX_BATCH_BYTES for b in found)
    assert [len(b) for b in found] == [20] * 5
    assert [e for b in found for e in b] == events(100, size=50_000)  # consecutive lines, none lost


def test_batches_span_at_most_24_hours_and_are_sent_in_time_order():
    hour = 3600 * 1000
    lines = [Event(t * hour, str(t), i) for i, t in enumerate([5, 1, 20, 26, 30])]
    found = batches(lines)
    assert [[e.message for e in b] for b in found] == [["5", "1", "20"], ["26", "30"]]
    assert [e["message"] for e in log_events(found[0])] == ["1", "5", "20"]


def test_rejected_events_are_counted():
    assert rejected({}, 10) == 0
    assert rejected({"tooOldLogEventEndIndex": 2}, 10) == 3
    assert rejected({"tooNewLogEventStartIndex": 8}, 10) == 2


# --- offsets, rotation, truncation, backlog ---

@pytest.fixture
def tail():
    """Return a maker of sources that are closed after the test."""
    made: list[Source] = []

    def make(path: Path, saved: dict | None = None) -> Source:
        made.append(Source("k", path, "g", "s", saved))
        return made[-1]

    yield make
    for source in made:
        source.close()


def write(path: Path, *lines: str) -> None:
    with path.open("a") as f:
        f.writelines(line + "\n" for line in lines)


def messages(source: Source, commit: bool = True) -> list[str]:
    found = source.read()
    if found and commit:
        source.commit(found[-1].end)
    return [e.message for e in found]


def test_the_offset_moves_only_on_commit_and_survives_a_restart(tmp_path, tail):
    log = tmp_path / "app.log"
    write(log, "one", "two")
    source = tail(log)
    assert messages(source, commit=False) == ["one", "two"]
    assert messages(source) == ["one", "two"]  # not committed: read again
    write(log, "three")
    with log.open("a") as f:
        f.write("partial")  # no newline yet: waits
    again = tail(log, source.state())
    assert messages(again) == ["three"]
    write(log, " line")
    assert messages(again) == ["partial line"]
    assert messages(again) == []


def test_a_rotated_file_is_finished_before_the_new_one_is_read(tmp_path, tail):
    log = tmp_path / "access.log"
    write(log, "a1")
    source = tail(log)
    assert messages(source) == ["a1"]
    write(log, "a2")
    log.rename(tmp_path / "access.log.1")
    write(log, "b1")
    assert messages(source) == ["a2"]
    assert messages(source) == ["b1"]


def test_after_a_restart_the_rotated_file_is_found_by_its_inode(tmp_path, tail):
    log = tmp_path / "access.log"
    write(log, "a1", "a2")
    source = tail(log)
    found = source.read()
    source.commit(found[0].end)  # a2 not shipped yet when the agent stops
    saved = source.state()
    source.close()
    log.rename(tmp_path / "access.log.1")
    write(log, "b1")
    again = tail(log, saved)
    assert messages(again) == ["a2"]
    assert messages(again) == ["b1"]


def test_a_truncated_file_is_read_from_its_start(tmp_path, tail):
    log = tmp_path / "app.log"
    write(log, "long line one", "long line two")
    source = tail(log)
    messages(source)
    log.write_text("new\n")  # copytruncate, then a shorter line
    assert messages(source) == ["new"]


def test_a_backlog_over_the_bound_is_skipped_and_counted(tmp_path, monkeypatch, tail):
    monkeypatch.setattr(agent_tail, "BACKLOG_LIMIT", 100)
    log = tmp_path / "app.log"
    write(log, *[f"line {i:03d}" for i in range(30)])  # 9 bytes each: 270 bytes
    source = tail(log)
    found = messages(source)
    assert len(found) + source.dropped_events == 30
    assert found[-1] == "line 029" and len(found) == 100 // 9
    assert source.dropped_bytes == 270 - 9 * len(found)


def test_a_missing_file_gives_nothing_until_it_appears(tmp_path, tail):
    source = tail(tmp_path / "later.log")
    assert messages(source) == []
    write(tmp_path / "later.log", "first")
    assert messages(source) == ["first"]


class FakeLogs:
    """A CloudWatch Logs client whose log group exists only once `exists` is set (or the agent creates it)."""

    def __init__(self) -> None:
        self.exists, self.put, self.retention = False, [], {}

    def create_log_stream(self, **kwargs) -> None:
        if not self.exists:
            error = {"Error": {"Code": "ResourceNotFoundException", "Message": "no group"}}
            raise ClientError(error, "CreateLogStream")

    def create_log_group(self, logGroupName: str) -> None:
        self.exists = True

    def put_retention_policy(self, logGroupName: str, retentionInDays: int) -> None:
        self.retention[logGroupName] = retentionInDays

    def put_log_events(self, **kwargs) -> dict:
        self.put += [e["message"] for e in kwargs["logEvents"]]
        return {}


def shipper_with_a_line(tmp_path, create_groups: bool) -> tuple[LogShipper, FakeLogs, list]:
    """A shipper of the app's log, holding one line, whose log group does not exist."""
    plan = plan_of(tmp_path, spool_dir=str(tmp_path / "spool"))
    plan.spool_dir.mkdir()
    files = [f for f in collected(CONFIG, plan) if f.group == "/aws/sre-workshop/application"]
    files[0].local_path.parent.mkdir(parents=True)
    write(files[0].local_path, "kept")
    fake = FakeLogs()
    return LogShipper(fake, plan, files, create_groups=create_groups), fake, files


def test_a_missing_log_group_is_created_with_the_entrys_retention_as_the_real_agent_does(tmp_path):
    shipper, fake, _ = shipper_with_a_line(tmp_path, create_groups=True)
    shipper.poll()
    shipper.close()
    assert fake.put == ["kept"] and fake.retention == {"/aws/sre-workshop/application": 7}


def test_without_create_groups_a_missing_log_group_keeps_the_lines_until_it_exists(tmp_path, monkeypatch):
    monkeypatch.setattr("sre_workshop.twin.agent_logs.GROUP_RETRY_S", 0)
    shipper, fake, files = shipper_with_a_line(tmp_path, create_groups=False)
    shipper.poll()
    assert fake.put == [] and shipper.status()[files[0].key]["backlog_bytes"] == 5
    assert "ResourceNotFoundException" in shipper.status()[files[0].key]["last_error"]
    fake.exists = True
    shipper.poll()
    shipper.close()
    assert fake.put == ["kept"]
    assert json.loads((shipper.spool_dir / "offsets.json").read_text())[files[0].key]["offset"] == 5


# --- CPU and memory arithmetic ---

STAT = (b"4242 (gunicorn: worker [x) y]) S 4200 4200 4200 0 -1 4194560 100 0 0 0 "
        b"150 50 7 3 20 0 1 0 9000 123456789 2500 18446744073709551615")


def test_a_stat_line_is_parsed_after_the_command_name():
    assert parse_proc_stat(4242, STAT) == Proc(4242, 4200, 4200, 9000, 150 + 50 + 7 + 3, 2500)
    assert parse_proc_stat(1, b"garbage") is None


def test_cpu_counts_growth_new_processes_and_children_reaped_between_samples():
    first = [Proc(10, 1, 10, 100, 500, 1), Proc(11, 10, 10, 150, 40, 1), Proc(14, 1, 10, 160, 70, 1)]
    used, totals = cpu_used({}, first, None)
    assert used == 0  # the first sample is a baseline
    # 10 used 20 itself; its child 11 used 10 more, exited and was reaped (its 50 ticks moved into 10's cutime);
    # 14 (whose parent is not in the group) exited: what it used since the last sample is lost, never negative;
    # 12 started after the sample and used 30.
    second = [Proc(10, 1, 10, 100, 500 + 20 + 50, 1), Proc(12, 10, 10, 1000, 30, 1)]
    used, totals = cpu_used(totals, second, since=900)
    assert used == 20 + 10 + 30
    assert set(totals) == {(10, 100), (12, 1000)}


def test_a_process_seen_late_but_started_earlier_is_a_baseline():
    used, _ = cpu_used({(10, 100): (500, 1)}, [Proc(10, 1, 10, 100, 510, 1), Proc(13, 1, 10, 200, 999, 1)], since=900)
    assert used == 10


def test_group_members_need_the_leaders_pgid_and_no_earlier_start():
    procs = [Proc(10, 1, 10, 100, 0, 1), Proc(11, 10, 10, 120, 0, 1), Proc(12, 1, 12, 130, 0, 1),
             Proc(13, 1, 10, 50, 0, 1)]
    assert [p.pid for p in members(procs, [(10, 100)])] == [10, 11]


def test_group_leaders_come_from_process_records_and_pid_files(tmp_path):
    ProcessRecord("nginx", 10, 100, ["nginx"], 9).save(tmp_path / "nginx.json")
    (tmp_path / "cpu-burn.pids").write_text("20 200\n21 210\n")
    (tmp_path / "bad.json").write_text("{not json")
    found = leaders([tmp_path / "nginx.json", tmp_path / "cpu-burn.pids", tmp_path / "bad.json", tmp_path / "none"])
    assert found == [(10, 100), (20, 200), (21, 210)]


# --- HAProxy counters ---

HEADER = "# pxname,svname,req_tot,hrsp_5xx,rtime,status,check_status\n"


def show_stat(front: int, front_5xx: int, server: int, server_5xx: int, backend: int, rtime: int = 20) -> str:
    return HEADER + (f"listener_8080,FRONTEND,{front},{front_5xx},,OPEN,\n"
                     f"CRMAppTargetGroup,CRMAppInstance,{server},{server_5xx},{rtime},UP,L7OK\n"
                     f"CRMAppTargetGroup,BACKEND,{backend},{front_5xx},{rtime},UP,\n"
                     "PublicALBTargetGroup,NginxInstance1,0,0,0,DOWN,L4CON\n"
                     "other,FRONTEND,999,999,,OPEN,\n")


LB = LoadBalancer("app/pub/1", Path("/nonexistent.sock"), ("listener_8080",),
                  {"CRMAppTargetGroup": "targetgroup/crm/2", "PublicALBTargetGroup": "targetgroup/pub/1"})


def by_key(found: list[dict]) -> dict[tuple, dict]:
    return {(d["MetricName"], tuple(x["Value"] for x in d["Dimensions"])): d for d in found}


def test_alb_metrics_are_the_growth_of_haproxys_counters():
    before, after = parse_stat(show_stat(10, 2, 8, 1, 10), LB), parse_stat(show_stat(25, 6, 20, 2, 25, rtime=40), LB)
    found = by_key(datums(LB, deltas(before.counters, after.counters), after))
    lb, crm, pub = ("app/pub/1",), ("targetgroup/crm/2", "app/pub/1"), ("targetgroup/pub/1", "app/pub/1")
    assert found["RequestCount", lb]["Value"] == 15
    assert found["HTTPCode_Target_5XX_Count", lb]["Value"] == 1
    assert found["HTTPCode_ELB_5XX_Count", lb]["Value"] == 3  # 4 sent, 1 from the target
    assert found["RequestCount", crm]["Value"] == 15
    assert found["TargetResponseTime", crm]["StatisticValues"] == {"SampleCount": 12, "Sum": pytest.approx(0.48),
                                                                  "Minimum": 0.04, "Maximum": 0.04}
    assert found["HealthyHostCount", crm]["Value"] == 1 and found["UnHealthyHostCount", pub]["Value"] == 1
    assert ("RequestCount", pub) not in found  # zero counts are not published, as an ALB does


def test_a_haproxy_restart_never_gives_negative_counts():
    before, after = parse_stat(show_stat(100, 10, 90, 5, 100), LB), parse_stat(show_stat(4, 1, 3, 0, 4), LB)
    delta = deltas(before.counters, after.counters)
    assert delta["frontend/listener_8080/req_tot"] == 4
    assert all(v >= 0 for v in delta.values())
    assert by_key(datums(LB, delta, after))["RequestCount", ("app/pub/1",)]["Value"] == 4


def test_an_unreadable_socket_gives_no_datapoint_and_a_new_baseline(monkeypatch):
    meter = agent_alb.AlbMeter(LB)
    readings = iter([parse_stat(show_stat(1, 0, 1, 0, 1), LB), None, parse_stat(show_stat(50, 0, 50, 0, 50), LB),
                     parse_stat(show_stat(53, 0, 53, 0, 53), LB)])
    monkeypatch.setattr(agent_alb, "read_sample", lambda lb: next(readings))
    assert meter.collect() == [] and meter.collect() == [] and meter.collect() == []
    assert by_key(meter.collect())["RequestCount", ("app/pub/1",)]["Value"] == 3


def test_an_empty_sample_parses():
    assert parse_stat(HEADER, LB) == AlbSample({}, {}, {})


# --- the metric queue ---

class FlakyCloudWatch:
    def __init__(self) -> None:
        self.up, self.put = False, []

    def put_metric_data(self, Namespace, MetricData) -> None:
        if not self.up:
            raise EndpointConnectionError(endpoint_url="http://127.0.0.1:1")
        self.put += [(Namespace, d["MetricName"]) for d in MetricData]


def test_metrics_wait_on_disk_while_the_twin_is_away(tmp_path):
    fake = FlakyCloudWatch()
    sink = MetricSink(fake, tmp_path, high_resolution=True)
    sink.add("AWS/EC2", [{"MetricName": "CPUUtilization", "Dimensions": [], "Value": 1.0}], time.time())
    sink.flush()
    assert fake.put == [] and json.loads((tmp_path / "metrics-queue.json").read_text())["datums"]
    restarted = MetricSink(fake, tmp_path, high_resolution=True)  # an agent restart keeps them
    fake.up = True
    restarted.flush(force=True)
    assert fake.put == [("AWS/EC2", "CPUUtilization")]
    assert not (tmp_path / "metrics-queue.json").exists()
