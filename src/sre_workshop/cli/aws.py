"""The AWS commands: package, deploy, destroy.

`--json` shapes (stdout; progress lines go to stderr):
    package  {"artifacts": [{"path": PATH, "sha256": HEX}]}
    deploy   {"stack_name": NAME, "outputs": {OUTPUT_KEY: VALUE}}
    destroy  {"stack_name": NAME, "deleted": bool, "left": ["what is still there", ...]}
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from ..aws import deploy as aws_deploy
from ..aws import package as aws_package
from ..errors import ExitStatus
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
@click.option("--ttl", type=click.FloatRange(min=0), default=8.0, show_default=True, metavar="HOURS",
              help="Cost guard: the stack deletes itself after HOURS (0 for never).")
@json_option
@pass_context
def deploy(ctx: Context, stack_name: str, region: str | None, ttl: float, as_json: bool) -> int:
    """Deploy the whole architecture to AWS (creates billable resources)."""
    say("this creates billable AWS resources (NAT gateway, 2 load balancers, 3 instances)")
    options = aws_deploy.DeployOptions(stack_name=stack_name, region=region, ttl_hours=ttl)
    with tempfile.TemporaryDirectory(prefix="sre-workshop-") as build_dir:
        outputs = aws_deploy.deploy(ctx.settings(), options, say, Path(build_dir))
    emit({"stack_name": stack_name, "outputs": outputs}, as_json,
         lambda r: print("\n".join(f"{k}: {v}" for k, v in sorted(r["outputs"].items()))))
    return ExitStatus.OK


@click.command()
@stack_options
@json_option
@pass_context
def destroy(ctx: Context, stack_name: str, region: str | None, as_json: bool) -> int:
    """Delete the stack and its assets bucket, and check nothing billable is left."""
    left = aws_deploy.destroy(aws_deploy.DeployOptions(stack_name=stack_name, region=region), say)
    emit({"stack_name": stack_name, "deleted": not left, "left": left}, as_json, _print_destroyed)
    return ExitStatus.ERROR if left else ExitStatus.OK


def _print_destroyed(result: dict[str, Any]) -> None:
    if result["left"]:
        print("still there (delete by hand or run destroy again): " + ", ".join(result["left"]))
    else:
        print(f"stack {result['stack_name']} deleted; nothing billable is left")


COMMANDS = (package, deploy, destroy)
