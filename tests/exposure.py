"""Everything an examinee can read on a running local stack, gathered by the examiner to scan it for answers.

Channels: the examinee's MCP tools (the very server an assisted evaluated run offers, in-process: each
tool's description, and its answer for every log group, metric and target it can name; doctor's too),
every log file of the stack (get_logs offers each component's output), the rendered configs, the command
lines of the stack's processes and of what a fault started (found by a token in their environment, so that
other users' processes on a shared machine do not count), and the metric names the twin holds.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

from mcp import Client

from honesty import leaks
from sre_workshop.local.process import ProcessRecord
from sre_workshop.local.stack import Stack
from sre_workshop.mcp import server as mcp_server
from sre_workshop.mcp.logs import groups
from sre_workshop.mcp.metrics import METRICS
from sre_workshop.mcp.run import RunRecord
from sre_workshop.mcp.world import LocalWorld

TOKEN_ENV = "SRE_WORKSHOP_EXPOSURE_TOKEN"  # set by the scan's caller; children of its commands inherit it
CHANGES = {"restart_service", "submit_diagnosis"}  # never called by a scan: they act


def calls(stack: Stack, tools: set[str]) -> list[tuple[str, dict[str, Any]]]:
    """The tool calls that read everything there is: each log group, metric and twin log group."""
    plan: list[tuple[str, dict[str, Any]]] = [(t, {}) for t in sorted(tools - CHANGES)]
    plan += [("get_logs", {"group": g, "limit": 200}) for g in groups(stack)]
    plan += [("get_metrics", {"name": m}) for m in METRICS]
    for group in twin_log_groups(stack):
        plan += [("filter_log_events", {"log_group": group, "limit": 200})]
    plan += [("logs_insights_query", {"log_groups": twin_log_groups(stack), "query": "fields @message | limit 200"})]
    return [(tool, args) for tool, args in plan if tool in tools]


async def tool_answers(stack: Stack, folder: Path) -> dict[str, set[str]]:
    """Call the examinee's tools as an evaluated run offers them; return the faults each answer names."""
    # Assisted: doctor (diagnose) is an examinee's tool then, and a lab's learner reads it too.
    server = mcp_server.build(LocalWorld(stack), allow_changes=True, record=RunRecord(folder), assist=True)
    found: dict[str, set[str]] = {}
    async with Client(server) as client:
        tools = (await client.list_tools()).tools
        found["tool descriptions"] = set().union(*(leaks(f"{t.description} {json.dumps(t.input_schema)}")
                                                   for t in tools))
        for tool, args in calls(stack, {t.name for t in tools}):
            result = await client.call_tool(tool, args)
            text = json.dumps(result.structured_content) + " ".join(getattr(c, "text", "") for c in result.content)
            found.setdefault(f"tool {tool}", set()).update(leaks(text))
    return found


def twin_log_groups(stack: Stack) -> list[str]:
    """The log groups the twin holds."""
    return [g["logGroupName"] for g in twin(stack, "logs").describe_log_groups().get("logGroups", [])]


def twin(stack: Stack, service: str) -> Any:
    """A client of the stack's AWS API twin, as `aws-env` gives one."""
    import boto3

    from sre_workshop.local.components import LOCAL_CREDENTIALS

    return boto3.client(service, region_name=stack.settings.region, endpoint_url=stack.settings.url("aws-api"),
                        **{k.lower(): v for k, v in LOCAL_CREDENTIALS.items()})


def files(root: Path, patterns: tuple[str, ...]) -> set[str]:
    """The faults named in the names and contents of the files under `root` matching `patterns`."""
    found: set[str] = set()
    for pattern in patterns:
        for path in root.glob(pattern):
            if path.is_file():
                found |= leaks(path.name) | leaks(path.read_text(errors="replace"))
    return found


def argv(pid: int) -> str:
    """A process's command line ("" once it is gone)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def ours(pid: int, token: str) -> bool:
    """True if the process carries the scan's token in its environment (one a fault command started)."""
    try:
        return f"{TOKEN_ENV}={token}".encode() in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return False


def processes(stack: Stack, token: str) -> set[str]:
    """The faults named in the command lines of the stack's process groups and of what our commands started
    (the scanning process itself aside: it is the examiner)."""
    helpers = sorted((stack.settings.run_dir / "helpers").glob("*.json"))
    records = [stack.record(n) for n in stack.components] + [ProcessRecord.load(p) for p in helpers]
    groups_ = {r.pid for r in records if r is not None}  # a record's pid leads its process group
    found: set[str] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        pid = int(entry.name)
        try:
            member = os.getpgid(pid) in groups_
        except OSError:
            continue
        if member or ours(pid, token):
            found |= leaks(argv(pid))
    return found


def metric_names(stack: Stack) -> set[str]:
    """The faults named in the twin's metric names and dimensions, and in get_metrics' names."""
    listed = twin(stack, "cloudwatch").list_metrics().get("Metrics", [])
    return leaks(json.dumps(listed)) | leaks(" ".join(METRICS))


def collect(stack: Stack, folder: Path, token: str) -> dict[str, set[str]]:
    """Every channel -> the faults it names now."""
    found = asyncio.run(tool_answers(stack, folder))
    settings = stack.settings
    found["log files"] = files(settings.logs_dir, ("**/*",))
    found["rendered configs"] = files(settings.run_dir, ("*.conf", "*.cfg", "etc-nginx/*"))
    found["process table"] = processes(stack, token)
    found["metric names"] = metric_names(stack)
    return found
