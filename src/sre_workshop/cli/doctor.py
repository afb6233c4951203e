"""`sre-workshop doctor`: what is broken, where and why, from symptoms alone.

`--json` shape: {"healthy": bool, "checked_at": ISO-8601, "seconds": float, "findings": [{"component",
"layer", "category", "severity": "critical|major|minor", "summary", "evidence": [str], "remediation"}]}
Exit 0 when healthy, 1 when something is found, 2 on usage errors.
"""

from __future__ import annotations

import json
import sys
import textwrap
import time
from pathlib import Path

import click

from ..diagnose.doctor import run_local
from ..diagnose.local import series
from ..diagnose.model import Report
from ..diagnose.report import render
from ..errors import ExitStatus
from .common import Context, pass_context

WIDTH = 80


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--watch", type=click.FloatRange(min=1), is_flag=False, flag_value=5.0, default=None,
              metavar="[SECONDS]", help="Diagnose again every SECONDS (default 5) and say what changed.")
@click.option("--report", "report_path", type=click.Path(path_type=Path, dir_okay=False), metavar="FILE.html",
              help="Also write a self-contained HTML page with the findings and charts of the last minutes.")
@pass_context
def doctor(ctx: Context, as_json: bool, watch: float | None, report_path: Path | None) -> int:
    """Diagnose the stack: findings ranked by severity, with evidence and the fix."""
    stack = ctx.stack()
    report = run_local(stack)
    _show(report, as_json, None)
    if report_path:
        report_path.write_text(render(report, series.collect(stack)))
        print(f"report: {report_path}", file=sys.stderr)
    previous = report
    while watch:
        time.sleep(watch)
        report = run_local(stack)
        _show(report, as_json, previous)
        previous = report
    return ExitStatus.OK if report.healthy else ExitStatus.ERROR


def _show(report: Report, as_json: bool, previous: Report | None) -> None:
    if as_json:
        print(json.dumps(report.to_dict()), flush=True)
        return
    if previous is not None:
        print(f"--- {report.checked_at} " + _changes(previous, report))
    print(verdict(report))
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
