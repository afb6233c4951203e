"""The fault commands: fault list|inject|status|clear, and incidents.

`--json` shapes (stdout; progress lines go to stderr):
    fault list     {"faults": [{"name", "description", "symptom", "needs_load", "params": [{"name", "default",
                    "range", "unit", "intensity", "help"}], "ground_truth": {"component", "layer", "category",
                    "cause"}}]}
    fault inject   {"fault", "incident_id", "params", "ground_truth", "evidence", "injected_by", "injected_at"}
    fault status   {"faults": [{"fault", "state": "active|unknown|cleared|remediated", "pre_baked", "incident_id",
                    "params", "injected_by", "injected_at"}]}
    fault clear    {"cleared": [{"fault", "incident_id", "ended": "cleared|remediated"}], "steady": true}
    incidents      {"incidents": [{"incident_id", "fault", "status", "opened_at", "detail", "events": [...]}]}
"""

from __future__ import annotations

from typing import Any

import click

from ..errors import ExitStatus, UsageError
from ..faults import runner
from ..faults.backends import LocalBackend
from ..faults.catalogue import catalogue
from .common import Context, emit, json_option, pass_context, say


def backend(ctx: Context) -> LocalBackend:
    """Return the backend the fault commands act on (the local stack)."""
    return LocalBackend(ctx.stack())


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
@json_option
@pass_context
def inject(ctx: Context, name: str, assignments: tuple[str, ...], as_json: bool) -> int:
    """Inject fault NAME, record it as an incident and wait until its effect shows."""
    result = runner.inject(backend(ctx), name, list(assignments), progress=say)
    emit(result, as_json, lambda r: print(f"{r['fault']}: injected (incident {r['incident_id']}): {r['evidence']}"))
    return ExitStatus.OK


@fault.command()
@json_option
@pass_context
def status(ctx: Context, as_json: bool) -> int:
    """Faults in effect now, the pre-baked one included."""
    rows = runner.status(backend(ctx))
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
@json_option
@pass_context
def clear(ctx: Context, name: str | None, clear_all: bool, as_json: bool) -> int:
    """Clear fault NAME (or --all), restoring exactly what was there, then verify steady state."""
    if bool(name) == clear_all:
        raise UsageError("give a fault NAME or --all")
    cleared = runner.clear(backend(ctx), name)
    emit({"cleared": cleared, "steady": True}, as_json, _print_cleared)
    return ExitStatus.OK


def _print_cleared(result: dict[str, Any]) -> None:
    for row in result["cleared"]:
        print(f"{row['fault']}: {row['ended']}" + (f" (incident {row['incident_id']})" if row["incident_id"] else ""))
    print("steady state: every probe green")


@click.command()
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True, help="Newest incidents to show.")
@json_option
@pass_context
def incidents(ctx: Context, limit: int, as_json: bool) -> int:
    """The incident ledger (IncidentHistoryTable): each injection and how it ended."""
    found = backend(ctx).ledger.incidents(limit)
    emit({"incidents": found}, as_json, _print_incidents)
    return ExitStatus.OK


def _print_incidents(result: dict[str, Any]) -> None:
    for incident in result["incidents"]:
        ended = ", ".join(f"{e['event']} {e['at']}" for e in incident["events"])
        print(f"{incident['incident_id']}  {incident['status']:<10} by {incident['detail'].get('injected_by')}"
              f"  opened {incident['opened_at']}; {ended}")


COMMANDS = (fault, incidents)
