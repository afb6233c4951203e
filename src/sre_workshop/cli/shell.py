"""`sre-workshop shell INSTANCE`: a shell on an instance of the local stack, like Session Manager's.

INSTANCE is the instance id the twin gave it, its Name tag (sre-workshop-nginx) or its logical id
(NginxInstance1). The shell runs in the instance's view (twin/hostview.py): its files at their AWS paths,
and `systemctl`, `ps`, `top` acting on its components. `-c COMMAND` runs one command line instead.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess

import click

from ..errors import UsageError
from ..local.components import LOCAL_CREDENTIALS
from ..settings import Settings
from ..twin import hostview, trail
from ..twin.instances import COMPONENTS, NAMES
from .common import Context, pass_context


def resolve(settings: Settings, instance: str) -> str:
    """Return the logical id of an instance named by id, Name tag or logical id."""
    if instance in COMPONENTS:
        return instance
    by_name = {name: logical for logical, name in NAMES.items()}
    if instance in by_name:
        return by_name[instance]
    try:
        physical = json.loads((settings.data_dir / "aws-api" / "resources.json").read_text())
    except (OSError, ValueError):
        physical = {}
    found = next((logical for logical, pid in physical.items() if pid == instance and logical in COMPONENTS), None)
    if found is None:
        choices = ", ".join(f"{physical.get(lg, '?')} / {NAMES[lg]} / {lg}" for lg in COMPONENTS)
        raise UsageError(f"no instance {instance!r}; instances (id / Name / logical id): {choices}")
    return found


def record_session(settings: Settings, logical: str) -> None:
    """Record the session in the twin's CloudTrail as Session Manager's StartSession (if the twin made it)."""
    try:
        instance_id = json.loads((settings.data_dir / "aws-api" / "resources.json").read_text())[logical]
    except (OSError, ValueError, KeyError):
        return
    user = LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"]
    trail.append(settings.data_dir / "aws-api" / "trail.jsonl",
                 trail.event("StartSession", "ssm.amazonaws.com", user, user, settings.region,
                             [{"ResourceType": "AWS::EC2::Instance", "ResourceName": instance_id}],
                             {"target": instance_id}))


@click.command()
@click.argument("instance")
@click.option("-c", "command", help="Run this command line (bash -c) instead of an interactive shell.")
@pass_context
def shell(ctx: Context, instance: str, command: str | None) -> int:
    """Open a shell on an instance of the local stack (its files at their AWS paths, its systemctl and ps)."""
    settings = ctx.settings()
    logical = resolve(settings, instance)
    argv = ["/bin/bash", "-c", command] if command else ["/bin/bash", "-i"]
    record_session(settings, logical)
    with hostview.view(settings, logical) as (view_dir, broker):
        process = subprocess.Popen(hostview.argv(settings, logical, view_dir, argv),
                                   env=hostview.environment(os.environ.get("HOME"), os.environ.get("TERM")))
        broker.view_pid = process.pid
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the shell's
        try:
            return process.wait()
        finally:
            signal.signal(signal.SIGINT, previous)


COMMANDS = (shell,)
