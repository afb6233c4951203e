"""The fault commands: fault list|inject|status|clear, and incidents.

`--json` shapes (stdout; progress lines go to stderr):
    fault list     {"faults": [{"name", "description", "symptom", "needs_load", "pre_baked", "params": [{"name",
                    "default", "range", "unit", "intensity", "help", "worlds"}], "ground_truth": {"component",
                    "layer", "category", "cause"}, "paths": {"local", "aws"}}]} (paths: what runs the fault in
                    each world: "aws.py", "local.py", or "aws.py via the twin")
    fault inject   {"fault", "incident_id", "params", "ground_truth", "evidence", "injected_by", "injected_at"}
    fault status   {"faults": [{"fault", "state": "active|unknown|cleared|remediated|expired", "pre_baked",
                    "incident_id", "params", "injected_by", "injected_at"}]}
    fault clear    {"cleared": [{"fault", "incident_id", "ended": "cleared|remediated|expired"}], "steady": true}
                   (`clear --all` runs every clear; when some raise, it exits 5 naming each, recorded as
                   `clear-failed` in its incident)
    incidents      {"incidents": [{"incident_id", "fault", "status", "opened_at", "detail", "events": [...]}]}

Each acts on the local stack, or with `--aws [--stack-name NAME] [--region R]` on an AWS stack made by
`sre-workshop deploy` (its incidents and what clear restores live in the stack's IncidentHistoryTable).
During a lab (`sre-workshop lab`), inject, status, clear and incidents refuse on the local stack: they would
name the learner's fault.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from ..errors import ExitStatus, UsageError
from ..faults import runner
from ..faults.aws_backend import AwsBackend
from ..faults.backends import LocalBackend
from ..faults.catalogue import catalogue
from ..scenarios.lab import oracle
from .common import Context, emit, json_option, pass_context, say

DEFAULT_STACK = "sre-workshop"


def backend(ctx: Context, on_aws: bool = False, stack_name: str | None = None,
            region: str | None = None) -> LocalBackend | AwsBackend:
    """Return the backend the fault commands act on: the local stack, or with --aws an AWS stack."""
    if not on_aws:
        if stack_name or region:
            raise UsageError("--stack-name and --region go with --aws")
        stack = ctx.stack()
        oracle(stack, "the fault commands and the incident ledger")  # they name the lab's fault
        return LocalBackend(stack)
    return AwsBackend.connect(stack_name or DEFAULT_STACK, region)


def backend_options(function: Callable) -> Callable:
    """Add --aws, --stack-name and --region."""
    function = click.option("--region", help="The AWS stack's region (with --aws; default: your configured one).")(
        function)
    function = click.option("--stack-name", help=f"The AWS stack's name (with --aws; default {DEFAULT_STACK}).")(
        function)
    return click.option("--aws", "on_aws", is_flag=True,
                        help="Act on an AWS stack made by `sre-workshop deploy` instead of the local one.")(function)


@click.group()
def fault() -> None:
    """Break the system on purpose, see what is broken, and put it back."""


@fault.command("list")
@json_option
def list_faults(as_json: bool) -> int:
    """Every fault of the catalogue, with its parameters and ground truth."""
    emit({"faults": [f.to_dict() for f in catalogue().values()]}, as_json, _print_catalogue)
    return ExitStatus.OK


def _print_catalogue(result: dict[str, Any]) -> None:
    for f in result["faults"]:
        truth = f["ground_truth"]
        load = "  (needs load)" if f["needs_load"] else ""
        print(f"{f['name']:<22} {truth['component']}/{truth['category']}{load}")
        for p in f["params"]:
            knob = " [intensity]" if p["intensity"] else ""
            print(f"    --set {p['name']}={p['default']}  ({p['range']}){knob}")


@fault.command()
@click.argument("name")
@click.option("--set", "assignments", multiple=True, metavar="KEY=VALUE", help="A parameter (repeatable).")
@backend_options
@json_option
@pass_context
def inject(ctx: Context, name: str, assignments: tuple[str, ...], as_json: bool, on_aws: bool,
           stack_name: str | None, region: str | None) -> int:
    """Inject fault NAME, record it as an incident and wait until its effect shows."""
    result = runner.inject(backend(ctx, on_aws, stack_name, region), name, list(assignments), progress=say)
    emit(result, as_json, lambda r: print(f"{r['fault']}: injected (incident {r['incident_id']}): {r['evidence']}"))
    return ExitStatus.OK


@fault.command()
@backend_options
@json_option
@pass_context
def status(ctx: Context, as_json: bool, on_aws: bool, stack_name: str | None, region: str | None) -> int:
    """Faults in effect now, the pre-baked one included."""
    rows = runner.status(backend(ctx, on_aws, stack_name, region))
    emit({"faults": rows}, as_json, _print_status)
    return ExitStatus.OK


def _print_status(result: dict[str, Any]) -> None:
    if not result["faults"]:
        print("no fault is active (steady state)")
    for row in result["faults"]:
        baked = " (pre-baked)" if row["pre_baked"] else ""
        params = " ".join(f"{k}={v}" for k, v in row["params"].items())
        print(f"{row['fault']:<22} {row['state']}{baked}  {params}  incident {row['incident_id'] or '-'}")


@fault.command()
@click.argument("name", required=False)
@click.option("--all", "clear_all", is_flag=True, help="Clear every fault and return to steady state.")
@backend_options
@json_option
@pass_context
def clear(ctx: Context, name: str | None, clear_all: bool, as_json: bool, on_aws: bool, stack_name: str | None,
          region: str | None) -> int:
    """Clear fault NAME (or --all), restoring exactly what was there, then verify steady state."""
    if bool(name) == clear_all:
        raise UsageError("give a fault NAME or --all")
    target = backend(ctx, on_aws, stack_name, region)
    cleared = runner.clear(target, name, timeout=getattr(target, "steady_timeout", 60.0))
    emit({"cleared": cleared, "steady": True}, as_json, _print_cleared)
    return ExitStatus.OK


def _print_cleared(result: dict[str, Any]) -> None:
    for row in result["cleared"]:
        print(f"{row['fault']}: {row['ended']}" + (f" (incident {row['incident_id']})" if row["incident_id"] else ""))
    print("steady state: every probe green")


@click.command()
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True, help="Newest incidents to show.")
@backend_options
@json_option
@pass_context
def incidents(ctx: Context, limit: int, as_json: bool, on_aws: bool, stack_name: str | None,
              region: str | None) -> int:
    """The incident ledger (IncidentHistoryTable): each injection and how it ended."""
    found = backend(ctx, on_aws, stack_name, region).ledger.incidents(limit)
    emit({"incidents": found}, as_json, _print_incidents)
    return ExitStatus.OK


def _print_incidents(result: dict[str, Any]) -> None:
    for incident in result["incidents"]:
        ended = ", ".join(f"{e['event']} {e['at']}" for e in incident["events"])
        print(f"{incident['incident_id']}  {incident['status']:<10} by {incident['detail'].get('injected_by')}"
              f"  opened {incident['opened_at']}; {ended}")


COMMANDS = (fault, incidents)
