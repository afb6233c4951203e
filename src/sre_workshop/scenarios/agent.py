"""Evaluate an agent on a scenario over MCP: `scenario run NAME --agent "COMMAND"`.

baseline -> start an MCP server for the run (streamable HTTP on loopback, the examinee's tools only:
mcp/examinee.py; doctor only with --assist) -> load -> inject without saying which -> start the agent,
isolated (isolation.py), with the server's URL (as its last argument and in SRE_WORKSHOP_MCP_URL) -> wait,
within the time limit, for its submit_diagnosis -> score: detected, localized, category, mitigated (the
fault no longer in effect and the stack steady for a sustained window after the agent's own actions,
before the tool's clear: credited only if the agent changed something itself, by an MCP operator action or
a write with its own IAM credentials, and only with a localized diagnosis: restarting everything blindly is
not a repair; a fault that ends by itself or by the tool's clear is never the agent's), time to submit,
tool calls -> the tool's clear -> recovery -> events in IncidentHistoryTable. The agent calls AWS as its own
IAM user at the twin's scoped endpoint (identity.py), never with the stack's credentials.
An assisted run is scored under `agent:NAME (assisted)` and carries `assisted: true` everywhere.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from ..errors import ComponentFailed, PortInUse, UsageError
from ..faults import runner as faults
from ..faults.backends import LocalBackend
from ..local.process import port_open
from ..local.stack import Stack
from ..mcp.aws_tools import EXAMINEE_ENV
from ..mcp.run import NONE, RunRecord
from ..mcp.server import BASE_PORT
from ..twin import hostview
from . import identity, isolation, signals
from .model import Scenario
from .result import Result
from .runner import Options, Progress, baseline, limit_of, run_many, summary
from .session import Session

OPERATOR_ACTIONS = ("restart_service", "service", "run_command", "aws_call")  # the examinee's (mcp/examinee.py)
MITIGATION_TIMEOUT_S = 30.0  # the agent's action may need this long to show (a restart, health checks)


@dataclass(frozen=True)
class AgentOptions:
    """How an agent is evaluated: with doctor (`--assist`), and which of our variables it may see."""

    assist: bool = False
    env: tuple[str, ...] = ()  # names passed with --agent-env


def agent_name(command: str) -> str:
    """Name an agent by its command: the module of `python -m MODULE`, else the program's name."""
    argv = shlex.split(command)
    if not argv:
        raise UsageError("--agent needs a command")
    if "-m" in argv[:-1]:
        return argv[argv.index("-m") + 1].rsplit(".", 1)[-1]
    return Path(argv[0]).name


def scorer_name(command: str, assist: bool = False) -> str:
    """Name the scorer of an agent run; an assisted run says so in its name, so every output shows it."""
    return f"agent:{agent_name(command)}" + (" (assisted)" if assist else "")


def run_agent_many(stack: Stack, chosen: list[Scenario], command: str, options: Options, progress: Progress,
                   agent: AgentOptions = AgentOptions()) -> tuple[str, list[Result]]:
    """Run the agent on each scenario; return its name and results."""
    name = scorer_name(command, agent.assist)
    one = partial(run_agent, command=command, agent=agent)
    return name, run_many(stack, chosen, options, progress, one=one, scorer=name)


def run_agent(stack: Stack, scenario: Scenario, options: Options, progress: Progress, *, command: str,
              agent: AgentOptions = AgentOptions()) -> Result:
    """Run one scenario with the agent diagnosing; return its score (written to the ledger too)."""
    backend = LocalBackend(stack)
    truth = scenario.truth()
    name = scorer_name(command, agent.assist)
    result = Result(scenario.name, name, truth.to_dict() if truth else None)
    baseline(stack, backend, options, progress)
    with tempfile.TemporaryDirectory(prefix="sre-workshop-agent-") as folder, \
            identity.oncall(stack.settings) as oncall, \
            mcp_server(stack, Path(folder), agent.assist, oncall) as url, \
            Session(backend, scenario, f"agent-run:{name}", progress) as session:
        result.incident_id, result.injected_at = session.incident_id, session.injected_at
        result.mark("injected", "fault injected; the agent is not told which")
        record = RunRecord(Path(folder))
        limit = limit_of(scenario, options)
        with isolation.agent_process(command, url, limit, Path(folder), stack.settings.state_dir,
                                     agent.env, private_ports(stack), oncall.env()) as process:
            submission = wait_for_submission(record, process, result.injected_at + limit)
        score(result, submission, record)
        result.agent["assisted"] = agent.assist
        if submission and not scenario.is_control:
            result.agent["acted"] = acted(record, oncall, stack, result.injected_at)
            result.agent["mitigated"] = (result.localized and result.agent["acted"]
                                         and mitigated(backend, session, options))
            result.mark("mitigated" if result.agent["mitigated"] else "not mitigated", "after the agent's actions",
                        ok=result.agent["mitigated"])
        backend.ledger.event(result.incident_id, "agent_submitted" if submission else "agent_silent",
                             scorer=name, **{k: v for k, v in result.agent.items() if k != "log_tail"})
        if not scenario.is_control:
            cleared_at = time.time()
            result.recovered_at = session.clear(options.sustain_s, options.recover_timeout_s)
            result.recovery_s = round(result.recovered_at - cleared_at, 2)
            result.mark("recovered", "after the tool's clear", ok=True)
        signals.collect(stack, result)
    backend.ledger.event(result.incident_id, "scored", **summary(result))
    return result


def private_ports(stack: Stack) -> tuple[int, ...]:
    """The ports an examinee must not connect to: the engine (it holds the ledger, and checks no
    credentials), the apps' DynamoDB endpoint and the AWS API twin's own port (the stack's fixed credentials;
    the agent has the scoped endpoint and its own identity)."""
    return hostview.private_ports(stack.settings)


@contextlib.contextmanager
def mcp_server(stack: Stack, folder: Path, assist: bool = False,
               oncall: identity.Identity | None = None) -> Iterator[str]:
    """Serve MCP for the run on a free loopback port; yield its URL; stop it afterwards. Its AWS tools and
    operator actions call as the agent's identity (`oncall`), never with the stack's credentials."""
    port = BASE_PORT + 1 + stack.settings.port_offset  # beside a server the user may run on BASE_PORT
    if port_open(port):
        raise PortInUse(f"port {port} (the agent run's MCP server) is taken by another program")
    argv = [sys.executable, "-m", "sre_workshop.cli.main", "--state-dir", str(stack.settings.state_dir), "mcp",
            "--transport", "http", "--port", str(port), "--allow-changes", "--run-dir", str(folder)]
    argv += ["--assist"] if assist else []
    env = {**os.environ, "SRE_WORKSHOP_PORT_OFFSET": str(stack.settings.port_offset)}
    if oncall is not None:
        env[EXAMINEE_ENV] = json.dumps({"endpoint": oncall.endpoint, "access_key": oncall.access_key,
                                        "secret_key": oncall.secret_key, "region": oncall.region})
    with (folder / "mcp.log").open("wb") as log:
        process = subprocess.Popen(argv, env=env, stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                                   start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not port_open(port):
            if process.poll() is not None or time.monotonic() > deadline:
                raise ComponentFailed(f"the MCP server did not start: {(folder / 'mcp.log').read_text()[-300:]}")
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        isolation.end(process)


def wait_for_submission(record: RunRecord, agent: subprocess.Popen, deadline: float) -> dict[str, Any] | None:
    """Wait until the agent submits, exits, or the time limit passes; return its submission."""
    while time.time() < deadline and agent.poll() is None:
        submission = record.submission()
        if submission:
            return submission
        time.sleep(0.25)
    return record.submission()


def score(result: Result, submission: dict[str, Any] | None, record: RunRecord) -> None:
    """Score the submission against the ground truth (the control: a reported fault is a false alarm)."""
    calls = record.calls()
    signals.mark_calls(result, calls)
    result.agent = {"submitted": submission is not None, "submission": submission, "tool_calls": len(calls),
                    "tools": dict(Counter(c["tool"] for c in calls)),
                    "log_tail": (record.folder / "agent.log").read_text(errors="replace")[-2000:]}
    if submission is None:
        result.mark("no submission", "the agent did not submit within the time limit", ok=False)
        return
    said = f"{submission['component']}/{submission['category']}: {submission['cause']}"
    reported = submission["component"] != NONE
    result.agent["time_to_submit_s"] = round(submission["at"] - result.injected_at, 2)
    if result.control:
        result.false_positives = int(reported)
        result.agent["false_alarm"] = reported
        result.mark("submitted", said, ok=not reported, at=submission["at"])
        return
    result.localized = submission["component"] == result.truth["component"]
    result.category_match = submission["category"] == result.truth["category"]
    if reported:
        result.detected_at, result.mttd_s = submission["at"], result.agent["time_to_submit_s"]
    result.finding = submission
    result.mark("submitted", said, ok=result.localized, at=submission["at"])


def acted(record: RunRecord, oncall: identity.Identity, stack: Stack, since: float) -> bool:
    """True if the agent changed something itself: an operator action through MCP that succeeded, or a
    change made with its own credentials (the twin's CloudTrail: a write call by its access key)."""
    if any(c["ok"] and c["tool"] in OPERATOR_ACTIONS for c in record.calls()):
        return True
    return bool(own_changes(stack, oncall, since))


def own_changes(stack: Stack, oncall: identity.Identity, since: float) -> list[str]:
    """Return the names of the write calls the agent's access key made since `since` (the twin's trail)."""
    from datetime import UTC, datetime

    from ..mcp.aws_tools import call, local_clients

    trail = local_clients(stack.settings)("cloudtrail")
    answer = call(trail, "lookup_events", StartTime=datetime.fromtimestamp(since - 1, UTC),
                  LookupAttributes=[{"AttributeKey": "AccessKeyId", "AttributeValue": oncall.access_key}],
                  MaxResults=50)
    return [e["EventName"] for e in answer.get("Events", []) if e.get("ReadOnly") != "true"]


def mitigated(backend: LocalBackend, session: Session, options: Options) -> bool:
    """True if the fault is no longer in effect and the stack stays steady for the sustain window."""
    deadline = time.monotonic() + MITIGATION_TIMEOUT_S
    while session.fault_active():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)
    left = max(options.sustain_s, deadline - time.monotonic())
    return not faults.wait_steady(backend, options.sustain_s, left)

