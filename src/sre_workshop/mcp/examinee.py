"""The examinee's tools: everything an evaluated agent can call, and nothing else.

An evaluated agent gets raw signals (architecture, health, target health, logs, metrics) and operator
actions (restart_service), plus submit_diagnosis. It never gets doctor (only with `--assist`, and the run is
then scored as assisted), the fault controls (inject_fault, clear_fault: an unknown name answers with the
catalogue, and the tool's undo is not the agent's repair) or the incident ledger (list_incidents: it holds
the ground truth). The examiner's data (the ledger, fault records, scoring) stays behind
`sre_workshop.scenarios`; nothing here imports it.
"""

from __future__ import annotations

SIGNALS = ("get_architecture", "check_health", "get_target_health", "get_logs", "get_metrics",
           # the AWS-shaped reads (mcp/aws_tools.py): what an on-call engineer would ask AWS
           "filter_log_events", "logs_insights_query", "get_metric_data", "describe_alarms",
           "describe_target_health", "lookup_events")
ACTIONS = ("restart_service", "service", "run_command", "aws_call")  # mcp/actions.py
ASSIST = ("diagnose",)
SUBMIT = ("submit_diagnosis",)


def names(assist: bool) -> tuple[str, ...]:
    """Return the tool names an evaluated agent may call (doctor only when assisted)."""
    return SIGNALS + ACTIONS + (ASSIST if assist else ()) + SUBMIT


def select(tools: dict[str, tuple], assist: bool) -> dict[str, tuple]:
    """Keep only the examinee's tools of `tools` (name -> (function, description, hints))."""
    allowed = names(assist)
    return {name: spec for name, spec in tools.items() if name in allowed}


INSTRUCTIONS = """\
Tools over a running system: an AWS-style architecture (public load balancer -> nginx -> private load
balancer -> sre-app, and -> crm-app on :8080; both apps use DynamoDB), here running as real processes.
Something may be wrong. Find out from the signals (get_architecture, check_health, get_target_health,
get_logs, get_metrics, and the AWS-shaped reads: filter_log_events, logs_insights_query, get_metric_data,
describe_alarms, describe_target_health, lookup_events), act if you can (service start/stop/restart/reload,
run_command on an instance through SSM, aws_call with your own IAM credentials), then call
submit_diagnosis once with the root-cause component and category from the vocabulary (none/none if nothing
is wrong)."""


def instructions(assist: bool) -> str:
    """Return the server's instructions for an evaluated agent."""
    return INSTRUCTIONS + ("\nThe tool's own doctor is available as diagnose (an assisted run)." if assist else "")
