"""The MCP server over both transports, driven by the official SDK's own client against a real local stack:
the read-only tools without the flag, the changes with it, errors as WorkshopError dicts, and an
architecture that follows the live configuration."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from sre_workshop.cli.main import main
from sre_workshop.local.process import port_open
from sre_workshop.local.stack import Stack
from sre_workshop.mcp.world import LocalWorld
from sre_workshop.settings import BASE_PORTS, Settings

from conftest import cli, eventually, moto_spec, port_offset, start_server

OFFSET = port_offset(200)
MCP_PORT = 8765 + OFFSET
READ_ONLY = {"get_architecture", "check_health", "get_target_health", "get_logs", "get_metrics", "diagnose",
             "list_incidents", "filter_log_events", "logs_insights_query", "get_metric_data", "describe_alarms",
             "describe_target_health", "lookup_events"}
CHANGES = {"inject_fault", "clear_fault", "restart_service", "service", "run_command", "aws_call"}



def server_argv(state: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "sre_workshop.cli.main", "--state-dir", str(state), "mcp", *args]


def env() -> dict[str, str]:
    return {**os.environ, "SRE_WORKSHOP_PORT_OFFSET": str(OFFSET)}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    state = tmp_path_factory.mktemp("mcp")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SRE_WORKSHOP_PORT_OFFSET", str(OFFSET))
        assert cli(state, "up", "--detach") == 0
        assert cli(state, "fault", "clear", "--all") == 0
        yield state
        cli(state, "fault", "clear", "--all")
        cli(state, "down")


@pytest.fixture(scope="module")
def http_server(stack):
    """The server on streamable HTTP with --allow-changes, for the module."""
    process = subprocess.Popen(server_argv(stack, "--transport", "http", "--port", str(MCP_PORT),
                                           "--allow-changes"), env=env(), stderr=subprocess.PIPE,
                               start_new_session=True)
    eventually(lambda: port_open(MCP_PORT), timeout=30, interval=0.2)
    yield f"http://127.0.0.1:{MCP_PORT}/mcp"
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    process.stderr.close()


async def session(target, calls):
    """Connect, list the tools, make `calls` [(tool, arguments)], return (tool names, results)."""
    async with Client(target) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        results = [await client.call_tool(tool, arguments) for tool, arguments in calls]
    return names, results


def over_stdio(state: Path, calls, *flags: str):
    return asyncio.run(session(StdioServerParameters(command=sys.executable, args=server_argv(state, *flags)[1:],
                                                     env=env()), calls))


def test_stdio_offers_only_read_only_tools_and_answers_them(stack):
    names, results = over_stdio(stack, [
        ("get_architecture", {}), ("check_health", {}), ("get_target_health", {}),
        ("get_logs", {"group": "sre-app", "limit": 3}), ("get_logs", {"group": "no-such-group"}),
        ("get_metrics", {"name": "requests_per_s", "window_s": 600}), ("get_metrics", {"name": "bogus"}),
        ("diagnose", {}), ("list_incidents", {"limit": 5}), ("inject_fault", {"name": "nginx-crash"}),
    ])
    assert names == READ_ONLY
    arch, health, targets, logs, bad_logs, metrics, bad_metric, diagnosis, incidents, refused = results
    nginx = next(c for c in arch.structured_content["components"] if c["name"] == "nginx")
    assert nginx["ports"] == [BASE_PORTS["nginx"] + OFFSET] and nginx["state"] == "running"
    assert f"listen 127.0.0.1:{BASE_PORTS['nginx'] + OFFSET} default_server;" in \
        arch.structured_content["config"]["nginx.conf"]
    assert arch.structured_content["paths"]["app"][0]["component"] == "public-alb"
    assert health.structured_content["healthy"] is True
    assert {t["state"] for t in targets.structured_content["targets"]} == {"healthy"}
    assert not logs.is_error and len(logs.structured_content["lines"]) <= 3
    assert bad_logs.is_error and bad_logs.structured_content["error"] == "usage"
    assert "nginx-access" in bad_logs.structured_content["message"]
    assert metrics.structured_content["metric"] == "requests_per_s"
    assert bad_metric.is_error and bad_metric.structured_content["exit_status"] == 2
    assert diagnosis.structured_content["healthy"] is True
    assert "incidents" in incidents.structured_content
    assert refused.is_error, "no change without --allow-changes"


def test_http_with_changes_breaks_diagnoses_and_repairs(stack, http_server):
    names, results = asyncio.run(session(http_server, [
        ("inject_fault", {"name": "nginx-timeout", "params": {"timeout_s": "2"}}), ("get_architecture", {}),
        ("clear_fault", {"name": "nginx-timeout"}), ("get_architecture", {}),
        ("inject_fault", {"name": "nginx-crash"}), ("check_health", {}), ("diagnose", {}),
        ("restart_service", {"name": "nginx"}), ("clear_fault", {"name": "nginx-crash"}),
        ("inject_fault", {"name": "no-such-fault"}),
    ]))
    assert names == READ_ONLY | CHANGES
    timeout, cut, cleared, restored, crash, health, diagnosis, restart, after, unknown = results
    assert timeout.structured_content["ground_truth"]["component"] == "nginx"
    assert "saved" not in timeout.structured_content
    assert "proxy_read_timeout 2s;" in cut.structured_content["config"]["nginx.conf"], "the live config"
    assert cleared.structured_content["steady"] is True
    assert "proxy_read_timeout 60s;" in restored.structured_content["config"]["nginx.conf"]
    assert not crash.is_error and health.structured_content["healthy"] is False
    top = diagnosis.structured_content["findings"][0]
    assert (top["component"], top["category"]) == ("nginx", "crash")
    assert restart.structured_content["restarted"] == "nginx"
    assert after.structured_content["cleared"][0]["ended"] == "remediated"
    assert unknown.is_error and unknown.structured_content["error"] == "usage"


def test_operator_actions_act_as_an_engineer_would_and_refuse_bad_input(stack, http_server):
    # From steady state (the test before restarted nginx: its target passes its checks again within seconds).
    world = LocalWorld(Stack(Settings.from_env(port_offset=OFFSET, state_dir=stack)))
    eventually(lambda: world.health()["healthy"], timeout=30, interval=0.5)
    _, results = asyncio.run(session(http_server, [
        ("service", {"action": "reload", "name": "nginx"}), ("service", {"action": "explode", "name": "nginx"}),
        ("run_command", {"instance": "sre-workshop-nginx", "commands": ["grep -c proxy_pass /etc/nginx/nginx.conf"]}),
        ("run_command", {"instance": "nowhere", "commands": ["true"]}),
        ("aws_call", {"service": "dynamodb", "operation": "DescribeTable",
                      "parameters": {"TableName": "CRMDealsTable"}}),
        ("aws_call", {"service": "s3", "operation": "ListBuckets"}),
        ("aws_call", {"service": "ec2", "operation": "Fly"}),
        ("aws_call", {"service": "dynamodb", "operation": "describe_table", "parameters": {"Table": "x"}}),
    ]))
    reload, bad_action, command, nowhere, table, bad_service, bad_operation, bad_parameter = results
    assert reload.structured_content["action"] == "reload"
    assert reload.structured_content["health"]["healthy"], reload.structured_content["health"]["problems"]
    assert bad_action.is_error and "start, stop, restart, reload" in bad_action.structured_content["message"]
    assert command.structured_content["status"] == "Success" and int(command.structured_content["stdout"]) >= 1
    assert nowhere.is_error and "Name tag 'nowhere'" in nowhere.structured_content["message"]
    assert table.structured_content["Table"]["TableName"] == "CRMDealsTable"
    assert bad_service.is_error and "service must be one of" in bad_service.structured_content["message"]
    assert bad_operation.is_error and "'Fly' is not an operation of ec2" in bad_operation.structured_content["message"]
    assert bad_parameter.is_error and "TableName" in bad_parameter.structured_content["message"]


def test_an_evaluated_run_offers_only_the_examinees_tools(stack, tmp_path):
    from sre_workshop.mcp import examinee

    run = ["--allow-changes", "--run-dir", str(tmp_path)]
    names, (refused, restart) = over_stdio(stack, [("clear_fault", {"name": "nginx-crash"}),
                                                   ("restart_service", {"name": "nginx-crash"})], *run)
    assert names == set(examinee.names(assist=False)) and "diagnose" not in names, "no oracle, no undo"
    assert refused.is_error and "nginx-crash" not in refused.content[0].text.replace("'nginx-crash'", "")
    assert restart.is_error and "security-group-block" not in restart.content[0].text, "no catalogue in errors"
    names, _ = over_stdio(stack, [], *run, "--assist")
    assert names == set(examinee.names(assist=True)) and "diagnose" in names


def test_the_architecture_resource_and_the_prompt(stack, http_server):
    async def read():
        async with Client(http_server) as client:
            resource = await client.read_resource("sre-workshop://architecture")
            prompt = await client.get_prompt("investigate", {"symptom": "the site is slow"})
        return resource, prompt

    resource, prompt = asyncio.run(read())
    assert '"entry_points"' in resource.contents[0].text
    assert "the site is slow" in prompt.messages[0].content.text


@pytest.fixture
def aws_stack(tmp_path, monkeypatch):
    """A stack deployed by `sre-workshop deploy` into moto's server (a real process); yields the server's env."""
    server = start_server(moto_spec(tmp_path))
    try:
        env = {"AWS_ENDPOINT_URL": server.url, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        monkeypatch.delenv("AWS_PROFILE", raising=False)
        with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
            assert main(["deploy", "--region", "us-east-1", "--stack-name", "wk", "--ttl", "0"]) == 0
        yield env
    finally:
        server.stop()


def test_the_same_server_reads_an_aws_stack(aws_stack):
    params = StdioServerParameters(command=sys.executable, env={**os.environ, **aws_stack}, args=[
        "-m", "sre_workshop.cli.main", "mcp", "--aws", "--stack-name", "wk", "--region", "us-east-1"])
    names, (arch, health, targets, incidents, logs) = asyncio.run(session(params, [
        ("get_architecture", {}), ("check_health", {}), ("get_target_health", {}), ("list_incidents", {}),
        ("get_logs", {"group": "sre-app"})]))
    assert names == READ_ONLY
    assert arch.structured_content["world"] == "aws" and "PublicALBDNSName" in arch.structured_content["outputs"]
    # moto registers no target: the stack is honestly unhealthy
    assert health.structured_content["healthy"] is False and health.structured_content["problems"]
    assert set(targets.structured_content["targets"]) == {"PublicALBTargetGroup", "PrivateALBTargetGroup",
                                                          "CRMAppTargetGroup"}
    assert incidents.structured_content == {"incidents": []}
    # the app's log group, read with FilterLogEvents: nothing has shipped to moto's
    assert not logs.is_error and logs.structured_content["lines"] == [] and logs.structured_content["omitted"] == 0
