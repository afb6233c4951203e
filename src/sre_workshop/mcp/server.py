"""`sre-workshop mcp`: the stack as MCP tools, built on the official MCP Python SDK (MCPServer).

Read-only tools always: get_architecture, check_health, get_target_health, get_logs, get_metrics, diagnose,
list_incidents. With --allow-changes: inject_fault, clear_fault, restart_service. In an agent run (the
scenario runner starts the server with a run directory): submit_diagnosis, and no inject_fault.
Every tool answers JSON; an expected failure is WorkshopError.to_dict() ({"error", "message",
"exit_status"}) with isError set. A resource (sre-workshop://architecture) and a prompt (investigate)
follow the SDK's conventions.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from typing import Annotated, Any

import mcp_types as types
from mcp.server.mcpserver import MCPServer
from pydantic import Field

from ..errors import WorkshopError
from ..vocabulary import CATEGORIES, COMPONENTS
from . import actions, aws_tools, examinee
from . import world as worlds
from .logs import LINE_CHARS
from .metrics import METRICS, STATISTICS
from .run import RunRecord

logger = logging.getLogger(__name__)

INSTRUCTIONS = """\
Tools over the sre-workshop system: an AWS-style architecture (public load balancer -> nginx -> private load
balancer -> sre-app, and -> crm-app on :8080; both apps use DynamoDB), here running as real processes.
Start with get_architecture and check_health; diagnose runs the tool's own doctor; get_logs and get_metrics
show the evidence. Components and categories use one vocabulary (see get_architecture's layers)."""
READ_ONLY = types.ToolAnnotations(read_only_hint=True, destructive_hint=False, open_world_hint=False)
CHANGES = types.ToolAnnotations(read_only_hint=False, destructive_hint=True, open_world_hint=False)
BASE_PORT = 8765  # streamable HTTP listens on this plus SRE_WORKSHOP_PORT_OFFSET


def error_result(error: dict[str, Any]) -> types.CallToolResult:
    """Return an error as a tool result: the error's dict as text and as structured content."""
    return types.CallToolResult(content=[types.TextContent(type="text", text=json.dumps(error))],
                                structured_content=error, is_error=True)


def guarded(name: str, function: Callable[..., Any], record: RunRecord | None) -> Callable[..., Any]:
    """Wrap a tool: expected failures become error results, every call is recorded in an agent run."""
    @functools.wraps(function)
    def tool(**arguments: Any) -> Any:
        try:
            result, ok = function(**arguments), True
        except WorkshopError as exc:
            result, ok = error_result(exc.to_dict()), False
        except Exception as exc:  # a bug must not kill the server: say what it was, keep serving
            logger.exception("tool %s failed", name)
            result, ok = error_result({"error": "unexpected", "message": f"{type(exc).__name__}: {exc}",
                                       "exit_status": 1}), False
        if record is not None:
            record.call(name, arguments, ok)
        return result

    return tool


def build(world: worlds.LocalWorld | worlds.AwsWorld, allow_changes: bool = False,
          record: RunRecord | None = None, assist: bool = False,
          clients: aws_tools.Clients | None = None) -> MCPServer:
    """Return the server with its tools for `world`; changes only if allowed. In an agent run (`record`),
    only the examinee's tools (mcp/examinee.py): signals, operator actions, doctor if `assist`, submit;
    its AWS tools call with `clients` (the agent's own identity at the twin's scoped endpoint)."""
    text = INSTRUCTIONS if record is None else examinee.instructions(assist)
    server = MCPServer("sre-workshop", instructions=text, log_level="WARNING")
    tools = read_tools(world, hide_open=record is not None)
    clients = clients or aws_tools.clients_for(world)
    tools.update(aws_tools.tools(clients))
    if allow_changes:
        tools.update(change_tools(world, inject=record is None))
        tools.update(actions.tools(world, clients))
    if record is not None:
        tools["submit_diagnosis"] = (submit_tool(record), SUBMIT, CHANGES)
        tools = examinee.select(tools, assist)
    for name, (function, description, hints) in tools.items():
        server.add_tool(guarded(name, function, record), name=name, description=description, annotations=hints)
    server.resource("sre-workshop://architecture", name="architecture", mime_type="application/json",
                    description="The live architecture, as get_architecture returns it.")(
        lambda: json.dumps(world.architecture()))
    prompt = investigate if record is None or assist else investigate_unassisted
    server.prompt(name="investigate", description="Investigate a reported symptom with these tools.")(prompt)
    return server


def investigate(symptom: str) -> str:
    """Return the prompt that starts an investigation of `symptom`."""
    return (f"A user reports: {symptom}\nFind the root cause: start with get_architecture and check_health, "
            "confirm with get_logs, get_metrics and diagnose, name the component and category, and say "
            "what fixes it.")


def investigate_unassisted(symptom: str) -> str:
    """Return the prompt of an unassisted evaluated run (no doctor to lean on)."""
    return (f"A user reports: {symptom}\nFind the root cause: start with get_architecture and check_health, "
            "confirm with get_logs and get_metrics, name the component and category, and say what fixes it.")


Window = Annotated[float, Field(ge=10, le=3600, description="How far back to look, in seconds.")]


def read_tools(world: worlds.LocalWorld | worlds.AwsWorld, hide_open: bool) -> dict[str, tuple]:
    """Return the read-only tools: name -> (function, description, annotations)."""
    def get_architecture() -> dict[str, Any]:
        return world.architecture()

    def check_health() -> dict[str, Any]:
        return world.health()

    def get_target_health() -> dict[str, Any]:
        return world.target_health()

    def get_logs(group: Annotated[str, Field(description="A log group, e.g. nginx-access, nginx-error, sre-app, "
                                             "crm-app, or COMPONENT.out for a process's own output.")],
                 pattern: Annotated[str | None, Field(description="A regular expression lines must match.")] = None,
                 window_s: Window = 300.0,
                 limit: Annotated[int, Field(ge=1, le=200, description="How many of the last lines to show.")] = 50,
                 ) -> dict[str, Any]:
        return world.logs(group, pattern, window_s, limit)

    def get_metrics(name: Annotated[str, Field(description="One of: " + ", ".join(METRICS) + ".")],
                    window_s: Window = 300.0,
                    statistic: Annotated[str, Field(description="One of: " + ", ".join(STATISTICS) + ".")] = "average",
                    ) -> dict[str, Any]:
        return world.metrics(name, window_s, statistic)

    def diagnose() -> dict[str, Any]:
        return world.diagnose()

    def list_incidents(limit: Annotated[int, Field(ge=1, le=100, description="Newest incidents to return.")] = 10,
                       ) -> dict[str, Any]:
        return {"incidents": worlds.incidents(world.backend, limit, hide_open)}

    return {
        "get_architecture": (get_architecture, ARCHITECTURE, READ_ONLY),
        "check_health": (check_health, HEALTH, READ_ONLY),
        "get_target_health": (get_target_health, TARGETS, READ_ONLY),
        "get_logs": (get_logs, LOGS, READ_ONLY),
        "get_metrics": (get_metrics, METRICS_TEXT, READ_ONLY),
        "diagnose": (diagnose, DIAGNOSE, READ_ONLY),
        "list_incidents": (list_incidents, INCIDENTS, READ_ONLY),
    }


def change_tools(world: worlds.LocalWorld | worlds.AwsWorld, inject: bool) -> dict[str, tuple]:
    """Return the tools that change the system (only with --allow-changes)."""
    def inject_fault(name: Annotated[str, Field(description="A fault of the catalogue (`sre-workshop fault list`).")],
                     params: Annotated[dict[str, str] | None, Field(description="The fault's parameters.")] = None,
                     ) -> dict[str, Any]:
        return worlds.inject(world.backend, name, params or {})

    def clear_fault(name: Annotated[str, Field(description="The fault to clear.")]) -> dict[str, Any]:
        return worlds.clear(world.backend, name)

    def restart_service(name: Annotated[str, Field(description="A component: " + ", ".join(
            c for c in COMPONENTS if c not in ("iam-role", "security-groups")) + ".")]) -> dict[str, Any]:
        return world.restart(name)

    tools = {"clear_fault": (clear_fault, CLEAR, CHANGES), "restart_service": (restart_service, RESTART, CHANGES)}
    if inject:
        tools["inject_fault"] = (inject_fault, INJECT, CHANGES)
    return tools


def submit_tool(record: RunRecord) -> Callable[..., dict[str, Any]]:
    """Return submit_diagnosis for an agent run."""
    def submit_diagnosis(
            component: Annotated[str, Field(description="The root-cause component: " + ", ".join(COMPONENTS)
                                            + ", or none if nothing is wrong.")],
            category: Annotated[str, Field(description="What kind of breakage: " + ", ".join(CATEGORIES)
                                           + ", or none.")],
            cause: Annotated[str, Field(description="The cause in a sentence.")] = "",
            actions: Annotated[list[str] | None, Field(description="What you did about it, if anything.")] = None,
    ) -> dict[str, Any]:
        return {"accepted": record.submit(component, category, cause, actions or [])}

    return submit_diagnosis


ARCHITECTURE = ("Describe the system as it is configured now: components (layer, state, pid, ports, URL), the "
                "public entry points, the request paths hop by hop (app: public-alb -> nginx -> private-alb -> "
                "sre-app; crm: public-alb :8080 -> crm-app; data: DynamoDB), the target groups with their "
                "targets and health-check settings, and config facts read from the rendered files (nginx's "
                "listen, upstream and proxy timeouts; the load balancers' binds, servers and timeouts; the "
                "apps' table settings).")
HEALTH = ("Say whether the system is healthy now: {healthy, problems: [str], components: [{name, state, healthy}]}. "
          "A problem is a component not running or not answering its health check, an unhealthy target, or "
          "a public entry point that does not answer 200 within 2 s.")
TARGETS = ("Return the load balancers' target health: {health_check: {interval_seconds, healthy_threshold, "
           "unhealthy_threshold, timeout_seconds, path}, targets: [{target_group, target, state, reason, "
           "component}]}. state is healthy, unhealthy, draining or unused; reason is the last check's result.")
LOGS = ("Read one log group over the last window_s seconds, optionally only lines matching a regular expression. "
        f"Returns {{matched, by_status, by_level, most_repeated: [{{message, count}}], lines (the last `limit`, "
        f"each cut at {LINE_CHARS} characters), omitted}}. An unknown group's error lists the groups.")
METRICS_TEXT = ("Read a metric over the last window_s seconds in 10 s periods: {metric, meaning, statistic, "
                "series: {name: {value (the statistic over the window), points: [[time, value]] (last 60)}}}. "
                "Metrics: " + "; ".join(f"{k}: {v[1]}" for k, v in METRICS.items()) + ".")
DIAGNOSE = ("Run the tool's doctor once (about a second): probes every hop, reads processes, targets, logs, "
            "configs and metrics, and returns {healthy, findings: [{component, layer, category, severity, "
            "summary, evidence, remediation}]}, most severe first, one finding per root cause.")
INCIDENTS = ("List the newest incidents of the incident ledger (IncidentHistoryTable): {incidents: [{incident_id, "
             "fault, status, opened_at, detail, events}]}. During an evaluated agent run, incidents still open "
             "are not listed.")
INJECT = ("Inject a fault of the catalogue and wait until its effect shows; returns {fault, incident_id, params, "
          "ground_truth, evidence}. Changes the system.")
CLEAR = ("Clear one fault, restoring exactly what it changed, and wait for steady state; returns {cleared: "
         "[{fault, incident_id, ended}], steady}. Changes the system.")
RESTART = ("Restart one component (start it if it is down), as `systemctl restart` would, and return "
           "{restarted, health}. Changes the system.")
SUBMIT = ("Submit your diagnosis for this evaluated run, once: the root-cause component and category from the "
          "vocabulary (both none if nothing is wrong), the cause in words, and the actions you took. "
          "Returns {accepted: {...}}.")


def serve(server: MCPServer, transport: str, host: str, port: int) -> None:
    """Serve over stdio, or streamable HTTP at http://HOST:PORT/mcp, until stopped."""
    if transport == "stdio":
        server.run("stdio")
    else:
        server.run("streamable-http", host=host, port=port)
