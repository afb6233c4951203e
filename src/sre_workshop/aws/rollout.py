"""Install a deploy's new zips on the running instances through SSM Run Command.

Why this way: a changed user data makes CloudFormation stop and start an instance without running it
again, so the old code would go on running under UPDATE_COMPLETE. cfn-hup would install the new zip minutes
later with nobody waiting for the result; replacing the instances would take minutes per deploy and new
instance ids. So the user data never changes (it reads the zips' location from SSM), and after the stack
update the tool runs, on every instance, the update script that the zip's activate.sh installed: it
fetches the zip now named in SSM, checks its sha256 against the one uploaded and, unless that hash is the
one installed already (then nothing restarts: the leak's state survives a no-op deploy), runs the new
activate.sh (install, restart, local health check). The deploy waits and fails naming the instance, and the
next deploy retries whatever did not install.
"""

from __future__ import annotations

import time
from typing import Any

from botocore.exceptions import ClientError

from ..errors import AwsError
from .package import Artifact
from .stack import Progress

# Which stack output names the instance that runs each zip.
INSTANCE_OF = {"nginx-assets.zip": "NginxInstanceId", "sre-app.zip": "AppServerInstanceId",
               "crm-app.zip": "CRMAppInstanceId"}
# Installed by every zip's activate.sh (from infra/cloudformation/update-assets.sh).
UPDATE_SCRIPT = "/usr/local/sbin/sre-workshop-update-assets"
DONE = {"Success", "Failed", "Cancelled", "TimedOut", "Cancelling"}


class RolloutFailed(AwsError):
    """New code did not install on an instance; the stack is updated, the instance runs the old code."""

    code = "rollout_failed"


def plan(outputs: dict[str, str], artifacts: list[Artifact]) -> list[dict[str, str]]:
    """Pair each zip with its instance and the hash the instance must verify."""
    return [{"zip": a.name, "instance": outputs[INSTANCE_OF[a.name]], "sha256": a.sha256} for a in artifacts]


def command(sha256: str) -> list[str]:
    """Return the shell lines SSM runs on an instance to install the zip with this hash."""
    return [f"{UPDATE_SCRIPT} {sha256}"]


def send(ssm, step: dict[str, str], timeout: float, progress: Progress) -> str:
    """Send one instance its update (retrying while its SSM agent is not yet registered); return the command id."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return ssm.send_command(
                InstanceIds=[step["instance"]], DocumentName="AWS-RunShellScript", TimeoutSeconds=600,
                Comment=f"sre-workshop: install {step['zip']} {step['sha256'][:12]}",
                Parameters={"commands": command(step["sha256"]), "executionTimeout": ["600"]})["Command"]["CommandId"]
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "InvalidInstanceId" or time.monotonic() > deadline:
                raise RolloutFailed(f"cannot reach {step['instance']} ({step['zip']}) through SSM: "
                                    f"{exc.response['Error'].get('Message', exc)}") from exc
        progress(f"{step['instance']}: waiting for its SSM agent")
        time.sleep(10)


def result(ssm, command_id: str, instance: str, poll: float, timeout: float) -> dict[str, Any]:
    """Wait for a command on one instance; return its status and the tails of its output."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            found = ssm.get_command_invocation(CommandId=command_id, InstanceId=instance)
        except ClientError as exc:  # the invocation shows up a moment after send_command
            if exc.response["Error"]["Code"] != "InvocationDoesNotExist":
                raise
            found = {"Status": "Pending"}
        if found["Status"] in DONE or time.monotonic() > deadline:
            return {"status": found["Status"], "stdout": found.get("StandardOutputContent", "")[-600:],
                    "stderr": found.get("StandardErrorContent", "")[-600:]}
        time.sleep(poll)


def rollout(ssm, steps: list[dict[str, str]], progress: Progress, poll: float = 5.0,
            timeout: float = 900.0) -> list[dict[str, Any]]:
    """Install the zips on their instances at once; return each outcome, fail if any did not succeed."""
    sent = [(step, send(ssm, step, timeout, progress)) for step in steps]
    for step, command_id in sent:
        progress(f"{step['instance']}: installing {step['zip']} (SSM command {command_id})")
    outcomes = [{**step, "command_id": command_id, **result(ssm, command_id, step["instance"], poll, timeout)}
                for step, command_id in sent]
    for outcome in outcomes:
        outcome["installed"] = "already installed" not in outcome["stdout"]
        progress(f"{outcome['instance']}: {outcome['zip']} {outcome['status']}"
                 f"{'' if outcome['installed'] else ' (already installed, nothing restarted)'}")
    failed = [o for o in outcomes if o["status"] != "Success"]
    if failed:
        raise RolloutFailed("new code did not install on " + "; ".join(
            f"{o['instance']} ({o['zip']}): {o['status']} {o['stderr'].strip().splitlines()[-1:] or ''}"
            for o in failed) + ". The stack is updated; fix and deploy again, which retries the install")
    return outcomes
