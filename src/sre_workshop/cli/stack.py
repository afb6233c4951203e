"""The local stack's commands: up, down, restore, backup, status, logs, service.

`--json` shapes (stdout; progress lines go to stderr):
    up       {"endpoints": {"app": URL, "crm": URL}, "state_dir": PATH, "started_in_s": 2.1}
    down     {"stopped": ["public-alb", ...]}
    restore  {"table": NAME, "items": int, "snapshot": PATH | null}
    backup   {"snapshot": PATH, "items": {TABLE: int}, "missing": [TABLE, ...]}
    status   {"healthy": bool, "components": [{"name", "state": "running|exited|stopped", "pid", "ports",
              "url", "healthy", "log"}], "targets": [{"target_group", "target", "state", "reason"}],
              "problems": [{"component", "kind", "detail"}], "endpoints": {...}, "state_dir": PATH,
              "log_shipping": {"backlog_bytes", "dropped_events", "errors": [...], "updated": epoch} | null}
    logs     {"component": NAME, "files": [{"path": PATH, "lines": [...]}]}
    service  {"component": NAME, "action": "start|stop|restart|reload", "state": "running|stopped", "pid": int|null}
"""

from __future__ import annotations

import signal
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from ..errors import ExitStatus, UsageError
from ..faults import runner
from ..faults.backends import LocalBackend
from ..local.engines import ENGINES, choose_engine
from ..local.stack import Stack, mark_foreground
from .common import Context, emit, json_option, pass_context, say


def print_endpoints(endpoints: dict[str, str]) -> None:
    """Print the public entry points."""
    print(f"app: {endpoints['app']}/   (public ALB :80 -> nginx -> private ALB -> sre-app)")
    print(f"crm: {endpoints['crm']}/   (public ALB :8080 -> crm-app)")


@click.command()
@click.option("--detach", "-d", is_flag=True, help="Return once every target is healthy.")
@click.option("--dynamodb-endpoint", metavar="URL", help="Use this DynamoDB endpoint instead of a local engine.")
@click.option("--engine", type=click.Choice(ENGINES), help="The local DynamoDB engine (default: dynalite if "
              "this machine can run it, else moto).")
@click.option("--timeout", type=click.FloatRange(min=1), default=60.0, show_default=True,
              help="Seconds to wait for health.")
@click.option("--metrics-period", type=click.IntRange(min=1, max=60), help="Seconds per datapoint of the "
              "stack's CloudWatch metrics in the AWS API twin (default 60, as CloudWatch's basic monitoring; "
              "10 for fast local work).")
@json_option
@pass_context
def up(ctx: Context, detach: bool, dynamodb_endpoint: str | None, engine: str | None, timeout: float,
       metrics_period: int | None, as_json: bool) -> int:
    """Run the whole architecture on this machine (foreground: Ctrl-C stops it)."""
    settings = ctx.settings()
    if not dynamodb_endpoint:
        engine, why = choose_engine(engine, settings.home)
        say(f"DynamoDB engine: {engine} ({why})")
    stack = Stack(replace(settings, dynamodb_endpoint=dynamodb_endpoint, engine=engine or settings.engine,
                          metrics_period=metrics_period or settings.metrics_period), progress=say)
    # `kill` and a closed terminal stop the stack cleanly too (data saved, no orphans), like Ctrl-C.
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _raise_interrupt)
    started = time.monotonic()
    try:
        stack.up(timeout=timeout)  # stops what it started on any failure or interruption
    except KeyboardInterrupt:
        print("\ninterrupted; what was started is stopped", file=sys.stderr, flush=True)
        return ExitStatus.INTERRUPTED
    # The workshop's app starts leaking: a pre-baked fault (fault.toml's [pre_baked]), recorded as such.
    for record in runner.record_pre_baked(LocalBackend(stack)):
        say(f"{record['fault']} is active (pre-baked, as in the workshop): "
            f"`sre-workshop fault clear {record['fault']}` stops it")
    result = {"endpoints": settings.endpoints, "state_dir": str(settings.state_dir),
              "started_in_s": round(time.monotonic() - started, 1)}
    emit(result, as_json, lambda r: print_endpoints(r["endpoints"]))
    if detach:
        return ExitStatus.OK
    _run_in_foreground(stack)
    return ExitStatus.OK


def _raise_interrupt(signum, frame) -> None:
    """Treat SIGTERM and SIGHUP like Ctrl-C."""
    raise KeyboardInterrupt


def _run_in_foreground(stack: Stack) -> None:
    """Report components that exit until interrupted (nothing restarts them, as on AWS), then stop all."""
    marker = mark_foreground(stack.settings)
    print("running; press Ctrl-C to stop", file=sys.stderr, flush=True)
    try:
        _watch(stack)
    except KeyboardInterrupt:
        print("\nstopping...", file=sys.stderr, flush=True)
        stack.down()
    finally:
        marker.unlink(missing_ok=True)


def _watch(stack: Stack) -> None:
    reported: set[str] = set()
    while True:
        time.sleep(1)
        for row in stack.status()["components"]:
            if row["state"] == "exited" and row["name"] not in reported:
                reported.add(row["name"])
                say(f"{row['name']} exited; `sre-workshop service start {row['name']}` starts it again")


@click.command()
@click.option("--discard-data", is_flag=True, help="Stop the DynamoDB engine even if its data cannot be saved "
              "(what changed since the last save is lost).")
@json_option
@pass_context
def down(ctx: Context, discard_data: bool, as_json: bool) -> int:
    """Stop everything the stack started (data is kept)."""
    stopped = ctx.stack().down(discard_data=discard_data)
    emit({"stopped": stopped}, as_json,
         lambda r: print("stopped: " + ", ".join(r["stopped"]) if r["stopped"] else "nothing was running"))
    return ExitStatus.OK


@click.command()
@click.argument("table")
@json_option
@pass_context
def restore(ctx: Context, table: str, as_json: bool) -> int:
    """Recreate a deleted DynamoDB table from the template, with its items from the last snapshot."""
    result = ctx.stack().restore_table(table)
    emit(result, as_json, lambda r: print(f"{r['table']}: recreated with {r['items']} items"))
    return ExitStatus.OK


@click.command()
@json_option
@pass_context
def backup(ctx: Context, as_json: bool) -> int:
    """Save every table's items now (as `down` does): what `restore TABLE` and `up` recreate a table from."""
    result = ctx.stack().backup()
    emit(result, as_json, lambda r: print(f"saved {sum(r['items'].values())} items to {r['snapshot']}"
                                          + (f"; missing from the engine: {', '.join(r['missing'])}"
                                             if r["missing"] else "")))
    return ExitStatus.OK


@click.command()
@json_option
@pass_context
def status(ctx: Context, as_json: bool) -> int:
    """Components, health and target health (exit 5 if something is unhealthy)."""
    stack = ctx.stack()
    problems = stack.problems()
    result = stack.status(problems)
    result["problems"] = [p.to_dict() for p in problems]
    result["healthy"] = not result["problems"]
    emit(result, as_json, _print_status)
    return ExitStatus.OK if result["healthy"] else ExitStatus.UNHEALTHY


def _print_status(status: dict[str, Any]) -> None:
    print(f"{'COMPONENT':<18} {'STATE':<8} {'PID':>7}  {'HEALTH':<9} URL")
    for row in status["components"]:
        health = "healthy" if row["healthy"] else "-" if row["state"] == "stopped" else "unhealthy"
        print(f"{row['name']:<18} {row['state']:<8} {row['pid'] or '-':>7}  {health:<9} {row['url']}")
    if status["targets"]:
        print(f"\n{'TARGET GROUP':<22} {'TARGET':<20} {'STATE':<10} REASON")
        for t in status["targets"]:
            print(f"{t['target_group']:<22} {t['target']:<20} {t['state']:<10} {t['reason']}")
    shipping = status.get("log_shipping")
    if shipping:
        print(f"\ncloudwatch-agent: {shipping['backlog_bytes']} bytes of logs not shipped yet, "
              f"{shipping['dropped_events']} events dropped" + "".join(f"; {e}" for e in shipping["errors"]))
    print()
    print_endpoints(status["endpoints"])


@click.command()
@click.argument("name")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines.")
@click.option("-n", "--lines", type=click.IntRange(min=0), default=50, show_default=True,
              help="Lines of each log to show.")
@json_option
@pass_context
def logs(ctx: Context, name: str, follow: bool, lines: int, as_json: bool) -> int:
    """Show a component's logs: its process output, then its own logs."""
    if follow and as_json:
        raise UsageError("--follow and --json cannot be combined")
    paths = ctx.stack().log_paths(name)
    files = [{"path": str(p), "lines": _last_lines(p, lines)} for p in paths if p.exists()]
    emit({"component": name, "files": files}, as_json, _print_logs)
    if follow:
        _follow(paths)
    return ExitStatus.OK


def _last_lines(path: Path, count: int) -> list[str]:
    lines = path.read_text(errors="replace").splitlines()
    return lines[-count:] if count else []


def _print_logs(result: dict[str, Any]) -> None:
    for entry in result["files"]:
        print(f"==> {entry['path']} <==")
        print("\n".join(entry["lines"]))


def _follow(paths: list[Path]) -> None:
    """Print lines appended to the files until interrupted, as `tail -f` does."""
    offsets = {p: p.stat().st_size if p.exists() else 0 for p in paths}
    while True:
        time.sleep(0.5)
        for path in paths:
            if path.exists() and path.stat().st_size > offsets[path]:
                with open(path, errors="replace") as f:
                    f.seek(offsets[path])
                    sys.stdout.write(f.read())
                    sys.stdout.flush()
                offsets[path] = path.stat().st_size


@click.command()
@click.argument("action", type=click.Choice(["start", "stop", "restart", "reload"]))
@click.argument("name")
@json_option
@pass_context
def service(ctx: Context, action: str, name: str, as_json: bool) -> int:
    """Stop, start, restart or reload one component, as systemctl would (reload: nginx re-reads its
    config file as it is now, hand edits included)."""
    stack = ctx.stack()
    if action == "reload":
        stack.reload(name, render=False)
    else:
        stack.service(action, name)
    record = stack.record(name)
    result = {"component": name, "action": action, "state": "running" if stack.running(name) else "stopped",
              "pid": record.pid if record and stack.running(name) else None}
    emit(result, as_json, lambda r: print(f"{name}: {action} done ({r['state']})"))
    return ExitStatus.OK


COMMANDS = (up, down, restore, backup, status, logs, service)
