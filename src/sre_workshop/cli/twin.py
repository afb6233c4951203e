"""The AWS API twin's command: `aws-env`, so the aws CLI, boto3 and any agent's tools talk to the laptop.

`--json` shape: {"AWS_ENDPOINT_URL": URL, "AWS_REGION": ..., "AWS_DEFAULT_REGION": ...,
                 "AWS_ACCESS_KEY_ID": ..., "AWS_SECRET_ACCESS_KEY": ...}
"""

from __future__ import annotations

import shlex

import click

from ..errors import ExitStatus
from ..local.components import LOCAL_CREDENTIALS
from ..settings import Settings
from .common import Context, emit, json_option, pass_context


def aws_environment(settings: Settings) -> dict[str, str]:
    """Return the variables that point AWS clients at the stack's twin: as the lab's learner while a lab runs
    (its own IAM user at the scoped endpoint), else as an operator of the stack."""
    from ..scenarios.lab import learner_identity

    learner = learner_identity(settings)
    if learner is not None:
        return learner.env()
    return {"AWS_ENDPOINT_URL": settings.url("aws-api"), "AWS_REGION": settings.region,
            "AWS_DEFAULT_REGION": settings.region, **LOCAL_CREDENTIALS}


@click.command("aws-env")
@click.option("--shell", is_flag=True, help="Print `export` lines for eval \"$(sre-workshop aws-env --shell)\".")
@json_option
@pass_context
def aws_env(ctx: Context, shell: bool, as_json: bool) -> int:
    """The endpoint, region and credentials of the stack's AWS API twin (aws CLI, boto3, agents); during a lab,
    the learner's own."""
    env = aws_environment(ctx.settings())
    if shell and not as_json:
        # A profile or a session token in the caller's shell would send the calls elsewhere, or sign them
        # with credentials the twin does not know.
        print("unset AWS_PROFILE AWS_SESSION_TOKEN AWS_SECURITY_TOKEN")
        for name, value in env.items():
            print(f"export {name}={shlex.quote(value)}")
        return ExitStatus.OK
    emit(env, as_json, lambda e: print("\n".join(f"{k}={v}" for k, v in e.items())))
    return ExitStatus.OK


COMMANDS = [aws_env]
