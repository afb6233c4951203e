"""Shell steps on an instance through SSM Run Command: the very scripts of sre_workshop/steps/, as root.

A run is one AWS-RunShellScript command whose text writes each script it needs into a private temporary
directory (a quoted here-document: nothing in it is expanded) and then runs the steps in order under
`set -e`, so the first failing step ends the run and its one-line stderr is what the user is told:

    set -eu
    d=$(mktemp -d)
    trap 'rm -rf "$d"' EXIT
    cat > "$d/file-get.sh" <<'SRE_WORKSHOP_SCRIPT_END'
    ...the script, byte for byte...
    SRE_WORKSHOP_SCRIPT_END
    sh "$d/file-get.sh" /etc/nginx/nginx.conf
    systemctl reload nginx
"""

from __future__ import annotations

import shlex
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ..errors import AwsError, ComponentFailed, UsageError
from ..steps import STEPS_DIR

SCRIPTS_DIR = STEPS_DIR
DOCUMENT = "AWS-RunShellScript"
# SSM keeps at most this many characters of a command's output in GetCommandInvocation.
OUTPUT_LIMIT = 24000
PENDING = {"Pending", "InProgress", "Delayed", "Cancelling"}
HEREDOC_END = "SRE_WORKSHOP_SCRIPT_END"


@dataclass(frozen=True)
class Step:
    """One step of a run: a script of sre_workshop/steps/ with its arguments, or a fixed command."""

    script: str = ""
    args: tuple[str, ...] = ()
    command: str = ""  # a constant written in this code base, never built from input

    @property
    def label(self) -> str:
        """Name the step in messages: the script, or the command's first two words."""
        return self.script or " ".join(self.command.split()[:2])


def script(name: str, *args: object) -> Step:
    """Return a step that runs sre_workshop/steps/NAME with `args` (each one shell-quoted)."""
    return Step(script=name, args=tuple(str(a) for a in args))


def shell(command: str) -> Step:
    """Return a step that runs a fixed command line."""
    return Step(command=command)


def render(steps: list[Step], scripts_dir: Path = SCRIPTS_DIR) -> str:
    """Return the shell text that runs `steps` in order, each script shipped verbatim."""
    lines = ["set -eu", "d=$(mktemp -d)", "trap 'rm -rf \"$d\"' EXIT"]
    written: set[str] = set()
    for step in steps:
        if step.command:
            lines.append(step.command)
            continue
        if step.script not in written:
            lines += _heredoc(step.script, scripts_dir)
            written.add(step.script)
        lines.append(" ".join(["sh", f'"$d/{step.script}"', *map(shlex.quote, step.args)]))
    return "\n".join(lines) + "\n"


def _heredoc(name: str, scripts_dir: Path) -> list[str]:
    path = scripts_dir / name
    if "/" in name or not path.is_file():
        raise UsageError(f"no fault script {name} in {scripts_dir}")
    text = path.read_text()
    if HEREDOC_END in text:
        raise UsageError(f"fault script {name} contains {HEREDOC_END}, which would end its here-document")
    return [f"cat > \"$d/{name}\" <<'{HEREDOC_END}'", text.rstrip("\n"), HEREDOC_END]


def last_line(text: str) -> str:
    """Return the last non-empty line of `text` (a script's one-line error), or ''."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


@dataclass
class Runner:
    """Sends runs to instances and waits for them, within a bound."""

    client: Any  # the session's SSM client
    scripts_dir: Path = SCRIPTS_DIR
    timeout: float = 120.0  # the command's own executionTimeout
    poll: float = 1.0
    delivery: float = 30.0  # how much longer than the timeout the wait allows for delivering the command
    # who sends the runs, in their Comment (SSM's history): "doctor", or "" for a change to the system, whose
    # Comment says what it does, never why (a learner or an examinee reads SSM's history: `aws ssm list-commands`)
    purpose: str = ""

    def run(self, instance: str, where: str, steps: list[Step], label: str = "") -> str:
        """Run `steps` as root on `instance` (named `where` in messages); return the output."""
        label = label or ", ".join(step.label for step in steps)
        text = render(steps, self.scripts_dir)
        sender = f"sre-workshop {self.purpose}" if self.purpose else "sre-workshop"
        try:
            sent = self.client.send_command(
                InstanceIds=[instance], DocumentName=DOCUMENT, Comment=f"{sender}: {label}"[:100],
                TimeoutSeconds=60, Parameters={"commands": [text], "executionTimeout": [str(int(self.timeout))]})
        except ClientError as exc:
            error = exc.response["Error"]
            raise AwsError(f"cannot run {label} on {where} ({instance}) through SSM: {error.get('Code')}: "
                           f"{error.get('Message', '')} (is its SSM agent online?)") from exc
        except BotoCoreError as exc:
            raise AwsError(f"cannot reach SSM to run {label} on {where} ({instance}): {exc}") from exc
        invocation = self._wait(sent["Command"]["CommandId"], instance, f"{label} on {where} ({instance})")
        return self._output(invocation, f"{label} on {where} ({instance})")

    def _wait(self, command_id: str, instance: str, what: str) -> dict[str, Any]:
        """Poll the invocation until it is no longer pending."""
        deadline = time.monotonic() + self.timeout + self.delivery
        while True:
            try:
                invocation = self.client.get_command_invocation(CommandId=command_id, InstanceId=instance)
                if invocation["Status"] not in PENDING:
                    return invocation
            except ClientError as exc:  # there is no invocation for a moment after SendCommand
                if exc.response["Error"]["Code"] != "InvocationDoesNotExist":
                    raise AwsError(f"{what}: {exc.response['Error'].get('Message', exc)}") from exc
            if time.monotonic() > deadline:
                bound = self.timeout + self.delivery
                raise AwsError(f"{what} did not finish within {bound:.0f}s (command {command_id})")
            time.sleep(self.poll)

    @staticmethod
    def _output(invocation: dict[str, Any], what: str) -> str:
        """Return a finished invocation's output, or raise with its stderr's last line."""
        if invocation["Status"] != "Success":
            reason = last_line(invocation.get("StandardErrorContent", "")) or invocation.get("StatusDetails", "")
            raise ComponentFailed(f"{what} ended {invocation['Status']}: {reason}")
        output = invocation.get("StandardOutputContent", "")
        if len(output) >= OUTPUT_LIMIT:
            raise AwsError(f"{what}: the output was cut at {OUTPUT_LIMIT} characters")
        return output
