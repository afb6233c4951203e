"""The AWS commands: package, deploy, destroy.

`--json` shapes (stdout; progress lines go to stderr):
    package  {"artifacts": [{"path": PATH, "sha256": HEX}]}
    deploy      {"stack_name", "stack_id", "region", "status", "changed", "outputs": {OUTPUT_KEY: VALUE},
                 "assets", ...} (aws/deploy.py: deploy's return value)
    destroy     {"stack_name", "region", "stack", "earlier_delete_failed", "other_stack", "bucket_deleted",
                 "guard_removed", "leftovers": [...]} (exit 1 when leftovers remain)
    aws-status  {"stack", "expiry", "guard", "problems": [...]} (aws/status.py; exit 1 on problems)
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from ..aws import deploy as aws_deploy
from ..aws import package as aws_package
from ..aws import status
from ..errors import ExitStatus, UsageError
from .common import Context, emit, json_option, pass_context, say


def stack_options(function: Callable) -> Callable:
    """Add --stack-name and --region."""
    function = click.option("--region", help="AWS region (default: your configured region).")(function)
    return click.option("--stack-name", default="sre-workshop", show_default=True,
                        help="CloudFormation stack.")(function)


@click.command()
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), default=Path("dist"), show_default=True,
              help="Output directory.")
@json_option
@pass_context
def package(ctx: Context, out: Path, as_json: bool) -> int:
    """Build sre-app.zip, crm-app.zip and nginx-assets.zip (byte-for-byte reproducible)."""
    artifacts = aws_package.build(ctx.settings(), out)
    result = {"artifacts": [{"path": str(a.path), "sha256": a.sha256} for a in artifacts]}
    emit(result, as_json, lambda r: print("\n".join(f"{a['path']}  sha256:{a['sha256']}" for a in r["artifacts"])))
    return ExitStatus.OK


@click.command()
@stack_options
@click.option("--ttl", type=click.FloatRange(min=0), default=None, metavar="HOURS",
              help="Cost guard: the stack deletes itself after HOURS (default 8 on create, kept on update; 0 never).")
@click.option("--alarm-email", metavar="ADDRESS", help="Subscribe ADDRESS to alarms and failed self-deletes "
              "(\"\" removes it; kept on update).")
@click.option("--image-id", metavar="AMI", help="Pin this AMI (replaces the instances if it differs).")
@click.option("--refresh-image", is_flag=True, help="Pin the latest Amazon Linux 2023 AMI again.")
@click.option("--parameter", "parameters", multiple=True, metavar="KEY=VALUE",
              help="A template parameter (repeatable); others keep their previous values on update.")
@json_option
@pass_context
def deploy(ctx: Context, stack_name: str, region: str | None, ttl: float | None, alarm_email: str | None,
           image_id: str | None, refresh_image: bool, parameters: tuple[str, ...], as_json: bool) -> int:
    """Deploy the whole architecture to AWS (creates billable resources), or update it with new code."""
    say("this creates billable AWS resources (NAT gateway, 2 load balancers, 3 instances)")
    options = aws_deploy.DeployOptions(stack_name=stack_name, region=region, ttl_hours=ttl, alarm_email=alarm_email,
                                       image_id=image_id, refresh_image=refresh_image,
                                       parameters=_assignments(parameters))
    with tempfile.TemporaryDirectory(prefix="sre-workshop-") as build_dir:
        result = aws_deploy.deploy(ctx.settings(), options, say, Path(build_dir))
    emit(result, as_json, lambda r: print("\n".join(f"{k}: {v}" for k, v in sorted(r["outputs"].items()))))
    return ExitStatus.OK


def _assignments(pairs: tuple[str, ...]) -> dict[str, str]:
    found = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"--parameter takes KEY=VALUE, not {pair!r}")
        found[key] = value
    return found


@click.command()
@stack_options
@json_option
@pass_context
def destroy(ctx: Context, stack_name: str, region: str | None, as_json: bool) -> int:
    """Delete the stack, its assets bucket and its guard, and check nothing billable is left."""
    report = aws_deploy.destroy(aws_deploy.DeployOptions(stack_name=stack_name, region=region), say)
    emit(report, as_json, _print_destroyed)
    return ExitStatus.ERROR if report["leftovers"] else ExitStatus.OK


def _print_destroyed(report: dict[str, Any]) -> None:
    if report["leftovers"]:
        print("still there (delete by hand or run destroy again): " + ", ".join(report["leftovers"]))
    else:
        print(f"stack {report['stack_name']} deleted; nothing billable is left")


@click.command("aws-status")
@stack_options
@json_option
@pass_context
def aws_status(ctx: Context, stack_name: str, region: str | None, as_json: bool) -> int:
    """An AWS stack's state, its cost guard (expiry, a failed self-delete) and what is left over."""
    result = status.aws_status(aws_deploy.DeployOptions(stack_name=stack_name, region=region))
    emit(result, as_json, lambda r: print(json.dumps(r, indent=2, default=str)))
    return ExitStatus.ERROR if result.get("problems") else ExitStatus.OK


COMMANDS = (package, deploy, destroy, aws_status)
