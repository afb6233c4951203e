"""Unit tests of the load generator's parsing, target checks, summary shape, stack-output reader and CLI
refusals. Nothing here imports Locust (it would monkey-patch the test process); the flows themselves are
tested against a real stack in tests/integration/test_load.py."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from click.testing import CliRunner
from moto import mock_aws

from sre_workshop.cli.load import load
from sre_workshop.errors import AwsError, ComponentFailed, ExitStatus, UsageError
from sre_workshop.load.options import LoadOptions, parse_duration
from sre_workshop.load.stack_outputs import aws_targets
from sre_workshop.load.summary import EndpointSummary, LoadSummary, Progress, render_table
from sre_workshop.load.targets import Targets, check_reachable, local_targets, parse_target
from sre_workshop.settings import Settings

ALB = "sre-workshop-public-alb-123.us-east-1.elb.amazonaws.com"


@pytest.mark.parametrize(("text", "seconds"), [
    ("90", 90), ("60s", 60), ("2m", 120), ("1h", 3600), ("1m30s", 90), ("500ms", 0.5), (" 2M ", 120), ("1.5s", 1.5),
])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "0", "0s", "-5s", "5x", "s", "1d", "25h", "1m 30s", "abc"])
def test_bad_durations_are_usage_errors(text):
    with pytest.raises(UsageError) as caught:
        parse_duration(text)
    assert caught.value.exit_status == ExitStatus.USAGE and "--duration" in str(caught.value)


@pytest.mark.parametrize("kwargs", [{"users": 0}, {"users": 1001}, {"rate": 0}, {"rate": -1.0}, {"rate": 1e6},
                                    {"duration_s": 0}, {"duration_s": 90000}, {"web_port": 0}])
def test_options_are_bounded(kwargs):
    with pytest.raises(UsageError):
        LoadOptions(**kwargs)


def test_target_names():
    assert [parse_target(t) for t in ("app", "crm", "both")] == ["app", "crm", "both"]
    with pytest.raises(UsageError, match="app, crm or both"):
        parse_target("all")


def test_local_targets_are_the_public_entry_points(tmp_path):
    settings = Settings.from_env({"SRE_WORKSHOP_PORT_OFFSET": "21000"}, state_dir=tmp_path)
    assert local_targets(settings).urls == {"app": "http://127.0.0.1:29000", "crm": "http://127.0.0.1:29080"}
    assert local_targets(settings, "crm").urls == {"crm": "http://127.0.0.1:29080"}
    assert local_targets(settings, "app").to_dict() == {"urls": {"app": "http://127.0.0.1:29000"}, "alb_hosts": []}


@pytest.mark.parametrize("url", ["http://127.0.0.1:8000", "http://127.0.0.5:1", "http://localhost:8080",
                                 "http://[::1]:8000", f"http://{ALB}", f"http://{ALB.upper()}:8080"])
def test_loopback_and_the_stacks_alb_are_allowed(url):
    assert Targets({"app": url}, frozenset({ALB})).urls["app"] == url


@pytest.mark.parametrize("url", ["http://example.com", "http://10.0.0.5:8000", "http://169.254.169.254/",
                                 "http://127.0.0.1.example.com", f"http://x{ALB}", "ftp://127.0.0.1", "127.0.0.1:80",
                                 "http://0.0.0.0:8000"])
def test_any_other_host_is_refused(url):
    with pytest.raises(UsageError) as caught:
        Targets({"app": url}, frozenset({ALB}))
    assert caught.value.exit_status == 2 and "\n" not in str(caught.value)


def test_targets_are_base_urls():
    assert Targets({"app": "http://127.0.0.1:8000/"}).urls == {"app": "http://127.0.0.1:8000"}
    for url in ("http://127.0.0.1:8000/api", "http://127.0.0.1:8000/?q=1"):
        with pytest.raises(UsageError, match="base URL"):
            Targets({"app": url})


def test_flow_errors_are_shown():
    assert render_table(summary(flow_errors={"KeyError: 'items'": 3})).splitlines()[-1] == (
        "error inside a flow (3x): KeyError: 'items'")


def test_targets_round_trip_and_refuse_unknown_names():
    targets = Targets({"app": f"http://{ALB}", "crm": f"http://{ALB}:8080"}, frozenset({ALB}))
    assert Targets.from_dict(json.loads(json.dumps(targets.to_dict()))) == targets
    with pytest.raises(UsageError):
        Targets({"db": "http://127.0.0.1:8006"})
    with pytest.raises(UsageError):
        Targets({})


def test_unreachable_target_names_the_url_and_the_hint():
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
        url = f"http://127.0.0.1:{holder.getsockname()[1]}"
        with pytest.raises(ComponentFailed, match="is the stack up"):
            check_reachable(Targets({"crm": url}), "is the stack up?", timeout=2)


def summary(**overrides) -> LoadSummary:
    endpoint = EndpointSummary("crm GET /api/customers", 40, 5, {"503": 4, "connection": 1}, 20.0, 60.0, 90.0, 4.0,
                               public_alb_failures={"503": 3})
    values = dict(run_id="load-1a2b3c4d", targets={"crm": "http://127.0.0.1:8080"}, users=2, rate=5.0,
                  duration_s=10.0, elapsed_s=10.01, stopped_early=False, flows={"crm.list": 30},
                  endpoints=[endpoint], total=EndpointSummary("total", 40, 5, {"503": 4, "connection": 1},
                                                              20.0, 60.0, 90.0, 4.0, {"503": 3}))
    return LoadSummary(**{**values, **overrides})


def test_summary_json_shape_round_trips():
    data = json.loads(json.dumps(summary().to_dict()))
    assert list(data) == ["run_id", "targets", "users", "rate", "duration_s", "elapsed_s", "stopped_early", "flows",
                          "endpoints", "total", "flow_errors"]
    assert list(data["total"]) == ["name", "count", "failures", "failures_by_status", "p50_ms", "p95_ms", "p99_ms",
                                   "rps", "public_alb_failures"]
    assert LoadSummary.from_dict(data) == summary()


def test_status_counts_split_by_who_answered():
    total = summary().total
    assert summary().server_errors == total.status_count(500, 599) == 4
    assert total.status_count(500, 599, by_public_alb=True) == 3
    assert total.status_count(500, 599, by_public_alb=False) == 1
    assert total.status_count(400, 499) == 0


def test_table_has_a_row_per_endpoint_and_the_total():
    lines = render_table(summary()).splitlines()
    assert lines[0].split()[:3] == ["ENDPOINT", "COUNT", "FAIL"]
    assert lines[1].split()[:4] == ["crm", "GET", "/api/customers", "40"]
    assert "503:4 (ALB 3)" in lines[1] and "connection:1" in lines[1]
    assert lines[2].startswith("total")
    assert "completed after 10.0s" in lines[-1] and "crm.list 30" in lines[-1]


def test_progress_line():
    line = Progress(12.3, 60, 1234, 98.2, 3, 4.0, 15.0, 10).line()
    assert line.split() == ["load", "12/60s", "users", "10", "requests", "1234", "rps", "98.2", "failures", "3",
                            "p50", "4.0", "ms", "p95", "15", "ms"]


def cfn_stack(outputs: dict[str, str], name: str = "sre-workshop") -> None:
    template = {"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
                "Outputs": {k: {"Description": k, "Value": v} for k, v in outputs.items()}}
    boto3.client("cloudformation", region_name="us-east-1").create_stack(StackName=name,
                                                                         TemplateBody=json.dumps(template))


@pytest.fixture
def aws(monkeypatch):
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        yield boto3.session.Session(region_name="us-east-1")


def test_aws_targets_come_from_the_stack_outputs(aws):
    cfn_stack({"AppURL": f"http://{ALB}/", "CRMURL": f"http://{ALB}:8080/", "PublicALBDNSName": ALB})
    targets = aws_targets(aws, "sre-workshop")
    assert targets.urls == {"app": f"http://{ALB}", "crm": f"http://{ALB}:8080"}
    assert targets.alb_hosts == {ALB}


def test_aws_targets_refuse_a_stack_pointing_elsewhere(aws):
    cfn_stack({"AppURL": "http://example.com/", "CRMURL": f"http://{ALB}:8080/", "PublicALBDNSName": ALB})
    with pytest.raises(UsageError, match=r"refusing to send load to example\.com"):
        aws_targets(aws, "sre-workshop")


def test_aws_targets_missing_stack_or_outputs(aws):
    with pytest.raises(AwsError, match="does not exist"):
        aws_targets(aws, "nope")
    cfn_stack({"AppURL": f"http://{ALB}/"}, name="half")
    with pytest.raises(AwsError, match="CRMURL, PublicALBDNSName"):
        aws_targets(aws, "half")


def invoke(*args: str, env: dict[str, str] | None = None):
    """Run the load command in-process (not standalone: errors come out as exceptions)."""
    return CliRunner().invoke(load, list(args), env=env, standalone_mode=False, catch_exceptions=False)


@pytest.mark.parametrize(("args", "message"), [
    (["--target", "db"], "--target"), (["--duration", "forever"], "--duration"), (["--users", "0"], "--users"),
    (["--rate", "-3"], "--rate"), (["--stack-name", "x"], "go with --aws"), (["--cleanup", "--target", "app"], "CRM"),
])
def test_cli_refuses_bad_arguments(args, message):
    with pytest.raises(UsageError, match=message):
        invoke(*args)


def test_cli_aws_with_a_foreign_url_is_refused(aws):
    cfn_stack({"AppURL": "http://203.0.113.9/", "CRMURL": f"http://{ALB}:8080/", "PublicALBDNSName": ALB})
    with pytest.raises(UsageError, match=r"refusing to send load to 203\.0\.113\.9"):
        invoke("--aws", "--region", "us-east-1")


def test_cli_without_a_stack_says_so(tmp_path):
    with pytest.raises(ComponentFailed, match="sre-workshop up --detach"):
        invoke("--duration", "5s", env={"SRE_WORKSHOP_PORT_OFFSET": "23950"})


def test_importing_load_patches_nothing():
    code = ("import sys, sre_workshop.load, sre_workshop.cli.load; from sre_workshop.load import start, Targets; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('locust', 'gevent')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).parent).stdout
    assert out.strip() == "[]"


class FakeClock:
    """A clock that only moves when told to (or when the pacer sleeps)."""

    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 6))
        self.now += seconds


def test_pacer_spaces_requests_and_catches_up_only_briefly():
    from sre_workshop.load.pacer import Pacer  # gevent is imported, never patched, by this module

    clock = FakeClock()
    pacer = Pacer(10.0, clock=clock, sleep=clock.sleep)
    for _ in range(3):
        pacer.wait()
    assert clock.slept == [0.1, 0.1]  # the first goes at once, then 1/rate apart
    clock.slept.clear()
    clock.now += 0.15  # a late wake-up: one missed slot is made up at once
    pacer.wait()
    pacer.wait()
    assert clock.slept == [0.05]
    clock.slept.clear()
    clock.now += 5.0  # a long stall is not made up beyond CATCH_UP_S (0.25 s = 2.5 slots)
    for _ in range(4):
        pacer.wait()
    assert clock.slept == [0.05]
