"""`sre-workshop doctor`: what is broken, where and why, from symptoms alone.

`--json` shape: {"healthy": bool, "checked_at": ISO-8601, "seconds": float, "findings": [{"component",
"layer", "category", "severity": "critical|major|minor", "summary", "evidence": [str], "remediation"}],
"unknown": {WHAT: WHY}, "context": [str]} ("unknown": what could not be read, within doctor's deadline; healthy
is false while anything is unknown; "context": busy processes of the machine outside the stack, never a finding).
Exit 0 when healthy, 1 when something is found or could not be read, 2 on usage errors, 6 when AWS refuses,
7 during a lab not started with --assist (doctor would give the learner the answer).

With `--aws [--stack-name NAME] [--region R]` it diagnoses an AWS stack made by `sre-workshop deploy`
(diagnose/aws/: SSM Run Command on the instances, CloudWatch Logs and metrics, ELBv2, IAM, EC2).
"""

from __future__ import annotations

import json
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import click

from ..aws.control import AwsControl
from ..aws.session import session as aws_session
from ..diagnose.aws import series as aws_series
from ..diagnose.doctor import run_aws, run_local
from ..diagnose.local import series
from ..diagnose.model import Report
from ..diagnose.report import render
from ..errors import ExitStatus, UsageError
from ..scenarios.lab import consult_doctor
from .common import Context, pass_context

WIDTH = 80
DEFAULT_STACK = "sre-workshop"


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--watch", type=click.FloatRange(min=1), is_flag=False, flag_value=5.0, default=None,
              metavar="[SECONDS]", help="Diagnose again every SECONDS (default 5) and say what changed.")
@click.option("--report", "report_path", type=click.Path(path_type=Path, dir_okay=False), metavar="FILE.html",
              help="Also write a self-contained HTML page with the findings and charts of the last minutes.")
@click.option("--aws", "on_aws", is_flag=True, help="Diagnose an AWS stack made by `sre-workshop deploy`.")
@click.option("--stack-name", help=f"The AWS stack's name (with --aws; default {DEFAULT_STACK}).")
@click.option("--region", help="The AWS stack's region (with --aws; default: your configured one).")
@pass_context
def doctor(ctx: Context, as_json: bool, watch: float | None, report_path: Path | None, on_aws: bool,
           stack_name: str | None, region: str | None) -> int:
    """Diagnose the stack: findings ranked by severity, with evidence and the fix."""
    run, charts = _world(ctx, on_aws, stack_name, region)
    report = run()
    _show(report, as_json, None)
    if report_path:
        report_path.write_text(render(report, charts()))
        print(f"report: {report_path}", file=sys.stderr)
    previous = report
    while watch:
        time.sleep(watch)
        report = run()
        _show(report, as_json, previous)
        previous = report
    return ExitStatus.OK if report.healthy else ExitStatus.ERROR


def _world(ctx: Context, on_aws: bool, stack_name: str | None,
           region: str | None) -> tuple[Callable[[], Report], Callable[[], dict]]:
    """Return how to diagnose the stack asked for and how to chart it: the local one, or with --aws an AWS one."""
    if not on_aws:
        if stack_name or region:
            raise UsageError("--stack-name and --region go with --aws")
        stack = ctx.stack()
        consult_doctor(stack)  # during a lab: refused, or with `lab start --assist` counted as a hint
        return (lambda: run_local(stack)), (lambda: series.collect(stack))
    ctl = AwsControl(aws_session(region), stack_name or DEFAULT_STACK)
    infra_dir = ctx.settings().infra_dir
    return (lambda: run_aws(ctl, infra_dir)), (lambda: aws_series.collect(ctl))


def _show(report: Report, as_json: bool, previous: Report | None) -> None:
    if as_json:
        print(json.dumps(report.to_dict()), flush=True)
        return
    if previous is not None:
        print(f"--- {report.checked_at} " + _changes(previous, report))
    print(verdict(report))
    for what, why in report.observations.unknown.items():
        print(textwrap.fill(f"unknown: {what}: {why}", WIDTH, subsequent_indent="  "))
    for line in report.context():
        print(textwrap.fill(f"context (the machine, not the stack): {line}", WIDTH, subsequent_indent="  "))
    for number, finding in enumerate(report.findings, 1):
        print(f"\n{number}. [{finding.severity}] {finding.component} ({finding.layer}) / {finding.category}: "
              f"{finding.summary}")
        for line in finding.evidence:
            print(textwrap.fill(line, WIDTH, initial_indent="   - ", subsequent_indent="     "))
        print(textwrap.fill(f"fix: {finding.remediation}", WIDTH, initial_indent="   ", subsequent_indent="     "))
    print(flush=True)


def verdict(report: Report) -> str:
    """One line: healthy, or how many findings and the top one."""
    if report.healthy:
        return f"healthy ({report.seconds:.1f}s)"
    if not report.findings:
        return (f"no finding, but {len(report.observations.unknown)} signal(s) could not be read: not known to be "
                f"healthy ({report.seconds:.1f}s)")
    top = report.findings[0]
    return (f"{len(report.findings)} finding(s) ({report.seconds:.1f}s); most severe: {top.component} "
            f"{top.category} - {top.summary}")


def _changes(previous: Report, report: Report) -> str:
    old = {(f.component, f.category) for f in previous.findings}
    new = {(f.component, f.category) for f in report.findings}
    added = [f"+{c}/{k}" for c, k in sorted(new - old)]
    gone = [f"-{c}/{k}" for c, k in sorted(old - new)]
    return " ".join(added + gone) or "no change"


COMMANDS = (doctor,)
