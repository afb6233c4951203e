"""`sre-workshop load`: realistic traffic against the stack's public entry points, for a bounded time.

    sre-workshop load [--users N] [--rate RPS] [--duration 60s] [--target app|crm|both]
                      [--web] [--json] [--cleanup] [--aws [--stack-name NAME] [--region R]]

Headless by default: one live progress line on stderr (requests, rps, failures, p50/p95), then a table
per endpoint. `--web` serves Locust's web UI on 127.0.0.1 (the run starts at once and can be driven
from there) and prints its URL; the run still ends after --duration. Ctrl-C stops the run and prints
its summary (exit 130). Failed requests are what load is for, so they do not change the exit status.
`--cleanup` runs no load: it deletes the data earlier runs created (marked customers, with their deals
and activities) through the CRM API and prints what it removed.

Load only ever goes to loopback (the local stack, ports from the settings) or, with --aws, to the public
ALB named in the CloudFormation stack's outputs.

`--json` prints the summary on stdout as one object (cleanup prints {"customers", "deals", "activities"}):

    {"run_id": "load-1f2e3d4c",          # prefix of every X-Request-ID sent (find the run in app logs)
     "targets": {"app": "http://127.0.0.1:8000", "crm": "http://127.0.0.1:8080"},
     "users": 10, "rate": 50.0,          # rate: total requests/s asked, or null (users with think time)
     "duration_s": 60.0, "elapsed_s": 60.02, "stopped_early": false,
     "flows": {"app.home": 1510, "crm.list": 230, "crm.page": 118, "crm.search": 121, "crm.open": 170,
               "crm.add_activity": 29, "crm.add_deal": 31},      # times each user flow ran
     "endpoints": [{"name": "crm GET /api/customers", "count": 402, "failures": 3,
                    "failures_by_status": {"503": 3},           # HTTP status, or "connection"
                    "p50_ms": 21.0, "p95_ms": 64.0, "p99_ms": 120.0, "rps": 6.7,
                    "public_alb_failures": {"503": 2}}, ...],   # of those, answered by the ALB itself
                                                                # (no target answered: no X-Request-ID echo)
     "total": {"name": "total", ...the same fields over all endpoints...},
     "flow_errors": {}}                  # exceptions inside flows (a bug, not a failed request)
"""

from __future__ import annotations

import json
import sys
import time

import click

from ..errors import ExitStatus, UsageError
from ..load.cleanup import cleanup
from ..load.handle import LoadHandle, start
from ..load.options import LoadOptions, parse_duration
from ..load.summary import LoadSummary, Progress, render_table
from ..load.targets import Targets, check_reachable, local_targets, parse_target
from ..settings import Settings
from .common import Context

WEB_PORT = 8089           # Locust's usual port; moved by SRE_WORKSHOP_PORT_OFFSET for local stacks
PLAIN_PROGRESS_EVERY_S = 10.0  # when stderr is not a terminal, a progress line this often


@click.command("load")
@click.option("--users", type=int, default=10, show_default=True, help="simulated users")
@click.option("--rate", type=float, help="total requests per second (default: users with 0.5-2 s think time)")
@click.option("--duration", default="60s", show_default=True, help="how long: 90, 60s, 2m, 1h")
@click.option("--target", default="both", show_default=True, help="app, crm or both")
@click.option("--web", is_flag=True, help="serve Locust's web UI on 127.0.0.1 and print its URL")
@click.option("--json", "as_json", is_flag=True, help="print the summary as JSON")
@click.option("--cleanup", "cleanup_only", is_flag=True, help="delete the data load created, run no load")
@click.option("--aws", is_flag=True, help="target the AWS stack's public ALB (from its outputs)")
@click.option("--stack-name", help="CloudFormation stack with --aws (default sre-workshop)")
@click.option("--region", help="AWS region with --aws (default: your configured region)")
@click.pass_context
def load(ctx: click.Context, users: int, rate: float | None, duration: str, target: str, web: bool,
         as_json: bool, cleanup_only: bool, aws: bool, stack_name: str | None, region: str | None) -> None:
    """Send realistic traffic to the stack's public entry points for a bounded time."""
    root = ctx.find_object(Context)  # the root command's --state-dir and environment
    settings = root.settings() if root else Settings.from_env()
    options = LoadOptions(users=users, rate=rate, duration_s=parse_duration(duration))  # checked before AWS calls
    targets, hint = resolve_targets(settings, parse_target(target), aws, stack_name, region)
    if cleanup_only:
        run_cleanup(targets, as_json)
        return
    check_reachable(targets, hint)
    web_port = (WEB_PORT if aws else WEB_PORT + settings.port_offset) if web else None
    try:
        handle = start(targets, users=options.users, rate=options.rate, duration=options.duration_s,
                       web_port=web_port)
    except KeyboardInterrupt:
        click.echo("interrupted before the users started; no request was sent", err=True)
        ctx.exit(ExitStatus.INTERRUPTED)
    if handle.web_url:
        click.echo(f"Locust web UI: {handle.web_url}  (the run ends after {duration}; Ctrl-C stops it)", err=True)
    summary, interrupted = follow(handle)
    click.echo(json.dumps(summary.to_dict(), indent=2) if as_json else render_table(summary))
    if interrupted:
        ctx.exit(ExitStatus.INTERRUPTED)


def resolve_targets(settings: Settings, which: str, aws: bool, stack_name: str | None,
                    region: str | None) -> tuple[Targets, str]:
    """Return the targets (local stack, or the AWS stack's ALB) and a hint for when they do not answer."""
    if not aws:
        if stack_name or region:
            raise UsageError("--stack-name and --region go with --aws")
        return local_targets(settings, which), "is the local stack up? (sre-workshop up --detach)"
    from ..aws.session import session  # boto3 only when AWS is asked for
    from ..load.stack_outputs import aws_targets

    name = stack_name or "sre-workshop"
    return aws_targets(session(region), name).only(which), f"is stack {name} deployed and healthy?"


def run_cleanup(targets: Targets, as_json: bool) -> None:
    """Delete the marked data through the CRM API and report it."""
    if "crm" not in targets.urls:
        raise UsageError("--cleanup removes CRM data: use it with --target crm or both")
    removed = cleanup(targets.urls["crm"])
    if as_json:
        click.echo(json.dumps(removed.to_dict()))
    else:
        click.echo(f"removed {removed.customers} customers, {removed.deals} deals and {removed.activities} "
                   "activities created by load")


def follow(handle: LoadHandle) -> tuple[LoadSummary, bool]:
    """Show progress until the run ends; on Ctrl-C stop it. Return (summary, interrupted)."""
    line = ProgressLine(sys.stderr.isatty())
    try:
        while (summary := handle.wait(1.0)) is None:
            line.show(handle.progress)
        line.done()
        return summary, False
    except KeyboardInterrupt:
        line.done()
        click.echo("interrupted; stopping the users...", err=True)
        return handle.stop(), True
    finally:
        if handle.running:  # a second Ctrl-C while stopping: end it hard
            handle.kill()


class ProgressLine:
    """One progress line on stderr: rewritten in place on a terminal, printed now and then otherwise."""

    def __init__(self, tty: bool) -> None:
        self.tty = tty
        self.last_plain = 0.0

    def show(self, progress: Progress | None) -> None:
        """Print the latest reading."""
        if progress is None:
            return
        if self.tty:
            click.echo(f"\r{progress.line()}\x1b[K", err=True, nl=False)
        elif time.monotonic() - self.last_plain >= PLAIN_PROGRESS_EVERY_S:
            self.last_plain = time.monotonic()
            click.echo(progress.line(), err=True)

    def done(self) -> None:
        """End the line on a terminal."""
        if self.tty:
            click.echo("", err=True)


COMMANDS = (load,)
