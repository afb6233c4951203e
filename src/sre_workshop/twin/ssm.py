"""SSM Run Command on the local instances: SendCommand with AWS-RunShellScript runs the script in the
instance's view (twin/hostview.py), in a thread, within the document's executionTimeout; GetCommandInvocation,
ListCommandInvocations and ListCommands answer from the twin's own records, as SSM does. A command that came
through the scoped endpoint (an evaluated agent's: twin/scoped.py) runs confined, and such a caller sees only
its own commands.

The records live in the twin's memory (a restart of aws-api forgets them, as SSM forgets after 30 days).
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from ..settings import Settings
from . import protocol
from .instances import COMPONENTS
from .protocol import Call

logger = logging.getLogger(__name__)

DOCUMENT = "AWS-RunShellScript"
PLUGIN = "aws:runShellScript"
OUTPUT_LIMIT = 24000  # GetCommandInvocation keeps the first 24,000 characters of each stream
PLUGIN_OUTPUT_LIMIT = 2500  # ListCommandInvocations' CommandPlugins[].Output keeps 2,500
DEFAULT_TIMEOUT, MAX_TIMEOUT = 3600, 172800  # the document's executionTimeout, in seconds
DONE = {"Success", "Failed", "TimedOut", "Cancelled"}


@dataclass
class Result:
    """What a script did in an instance's view."""

    stdout: str
    stderr: str
    code: int
    timed_out: bool = False


Runner = Callable[..., Result]  # (settings, logical, script, timeout[, confined=True]) -> Result


@dataclass
class Invocation:
    """One command on one instance."""

    instance_id: str
    logical: str
    status: str = "Pending"
    details: str = "Pending"
    code: int = -1
    stdout: str = ""
    stderr: str = ""
    start: datetime | None = None
    end: datetime | None = None


@dataclass
class Command:
    """One SendCommand."""

    id: str
    comment: str
    parameters: dict
    requested: datetime
    timeout: int  # TimeoutSeconds: delivery
    targets: list
    sender: str = ""  # the scoped endpoint's caller (an evaluated agent); "" for the tool's own calls
    invocations: dict[str, Invocation] = field(default_factory=dict)

    @property
    def status(self) -> str:
        """The command's status, from its invocations' as SSM sums them up."""
        statuses = [i.status for i in self.invocations.values()]
        if any(s not in DONE for s in statuses):
            return "InProgress" if any(s != "Pending" for s in statuses) else "Pending"
        for status in ("TimedOut", "Failed", "Cancelled"):
            if status in statuses:
                return status
        return "Success"


class SsmError(Exception):
    """An SSM error code with its message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class RunCommand:
    """Run Command on the twin's instances (physical id -> logical id from the deployment)."""

    def __init__(self, settings: Settings, physical: dict[str, str], runner: Runner | None = None) -> None:
        self.settings = settings
        self.instances = {pid: logical for logical, pid in physical.items() if logical in COMPONENTS}
        self.runner = runner or run_script
        self.commands: dict[str, Command] = {}
        self.lock = threading.Lock()

    def handlers(self) -> dict[tuple[str, str], Callable[[Call, dict], protocol.Answer]]:
        """Return the operations this plug-in answers."""
        operations = {"SendCommand": self.send, "GetCommandInvocation": self.get_invocation,
                      "ListCommandInvocations": self.list_invocations, "ListCommands": self.list_commands}
        return {("ssm", name): _answering(call) for name, call in operations.items()}

    # --- SendCommand ---------------------------------------------------------------------------------

    def send(self, params: dict, sender: str = "") -> dict:
        """Validate a SendCommand as SSM does, start it on each instance, and return the command. A command
        from the scoped endpoint (`sender`) runs confined: off the stack's private ports, the state dir hidden."""
        document = params.get("DocumentName")
        if not document:
            raise SsmError("ValidationException", "1 validation error detected: Value null at 'documentName' "
                           "failed to satisfy constraint: Member must not be null")
        if document != DOCUMENT:
            raise SsmError("InvalidDocument", f"Document {document} does not exist in your account (this "
                           f"twin runs only {DOCUMENT})")
        instance_ids = self._instance_ids(params)
        script, timeout = self._script(params.get("Parameters") or {})
        command = Command(str(uuid.uuid4()), params.get("Comment", ""), params.get("Parameters") or {},
                          datetime.now(UTC), int(params.get("TimeoutSeconds") or 3600), params.get("Targets", []),
                          sender)
        for instance_id in instance_ids:
            command.invocations[instance_id] = Invocation(instance_id, self.instances[instance_id])
        with self.lock:
            self.commands[command.id] = command
        for invocation in command.invocations.values():
            threading.Thread(target=self._execute, args=(invocation, script, timeout, bool(sender)),
                             daemon=True).start()
        return {"Command": self._command(command)}

    def _instance_ids(self, params: dict) -> list[str]:
        ids = list(params.get("InstanceIds") or [])
        for target in params.get("Targets") or []:
            ids += self._targeted(target.get("Key", ""), target.get("Values", []))
        if not ids:
            raise SsmError("InvalidParameters", "Either InstanceIds or Targets must be given")
        unknown = [i for i in ids if i not in self.instances]
        if unknown:
            raise SsmError("InvalidInstanceId", f"Instances [{unknown}] not in a valid state for account "
                           f"{protocol_account()}")
        return list(dict.fromkeys(ids))

    def _targeted(self, key: str, values: list[str]) -> list[str]:
        from .instances import NAMES

        if key == "InstanceIds":
            return list(values)
        if key == "tag:Name":
            return [pid for pid, logical in self.instances.items() if NAMES[logical] in values]
        raise SsmError("InvalidParameters", f"Target key {key} is not supported by the twin "
                       "(InstanceIds and tag:Name are)")

    @staticmethod
    def _script(parameters: dict) -> tuple[str, float]:
        commands = parameters.get("commands")
        if not isinstance(commands, list) or not commands or not all(isinstance(c, str) for c in commands):
            raise SsmError("InvalidParameters", "Parameter \"commands\" is required and must be a list of strings")
        unknown = set(parameters) - {"commands", "workingDirectory", "executionTimeout"}
        if unknown:
            raise SsmError("InvalidParameters", f"Parameters {sorted(unknown)} are not defined in {DOCUMENT}")
        raw = (parameters.get("executionTimeout") or [str(DEFAULT_TIMEOUT)])[0]
        if not str(raw).isdigit() or not 1 <= int(raw) <= MAX_TIMEOUT:
            raise SsmError("InvalidParameters", f"executionTimeout must be a whole number of seconds from 1 to "
                           f"{MAX_TIMEOUT}")
        directory = (parameters.get("workingDirectory") or [""])[0]
        prefix = f"cd {_quote(directory)} || exit 1\n" if directory else ""
        return prefix + "\n".join(commands) + "\n", float(raw)

    def _execute(self, invocation: Invocation, script: str, timeout: float, confined: bool = False) -> None:
        invocation.start = datetime.now(UTC)
        invocation.status = invocation.details = "InProgress"
        try:
            confine = {"confined": True} if confined else {}
            result = self.runner(self.settings, invocation.logical, script, timeout, **confine)
        except Exception as exc:  # the view could not be made: the agent reports a failure
            logger.exception("Run Command on %s failed", invocation.instance_id)
            result = Result("", f"failed to run commands: {exc}\n", 1)
        invocation.stdout, invocation.stderr = result.stdout, result.stderr
        invocation.code = -1 if result.timed_out else result.code
        invocation.end = datetime.now(UTC)
        if result.timed_out:
            invocation.status, invocation.details = "TimedOut", "ExecutionTimedOut"
        else:
            invocation.status = invocation.details = "Success" if result.code == 0 else "Failed"

    # --- reads ---------------------------------------------------------------------------------------

    def get_invocation(self, params: dict, sender: str = "") -> dict:
        """Answer GetCommandInvocation (a scoped caller sees only its own commands)."""
        command = self.commands.get(params.get("CommandId", ""))
        command = command if command and (not sender or command.sender == sender) else None
        invocation = command.invocations.get(params.get("InstanceId", "")) if command else None
        plugin = params.get("PluginName")
        if invocation is None or (plugin and plugin != PLUGIN):
            raise SsmError("InvocationDoesNotExist", "")
        return {"CommandId": command.id, "InstanceId": invocation.instance_id, "Comment": command.comment,
                "DocumentName": DOCUMENT, "DocumentVersion": "$DEFAULT", "PluginName": PLUGIN,
                "ResponseCode": invocation.code, "ExecutionStartDateTime": _iso(invocation.start),
                "ExecutionElapsedTime": _elapsed(invocation), "ExecutionEndDateTime": _iso(invocation.end),
                "Status": invocation.status, "StatusDetails": invocation.details,
                "StandardOutputContent": invocation.stdout[:OUTPUT_LIMIT], "StandardOutputUrl": "",
                "StandardErrorContent": invocation.stderr[:OUTPUT_LIMIT], "StandardErrorUrl": "",
                "CloudWatchOutputConfig": {"CloudWatchLogGroupName": "", "CloudWatchOutputEnabled": False}}

    def list_invocations(self, params: dict, sender: str = "") -> dict:
        """Answer ListCommandInvocations (newest first; with Details, each plug-in's output)."""
        found = [(c, i) for c in self._commands(params.get("CommandId"), sender) for i in c.invocations.values()
                 if params.get("InstanceId") in (None, i.instance_id)]
        page, token = _page(found, params)
        rows = [self._invocation_row(c, i, bool(params.get("Details"))) for c, i in page]
        return {"CommandInvocations": rows, **({"NextToken": token} if token else {})}

    def list_commands(self, params: dict, sender: str = "") -> dict:
        """Answer ListCommands (newest first)."""
        found = [c for c in self._commands(params.get("CommandId"), sender)
                 if params.get("InstanceId") in (None, *c.invocations)]
        page, token = _page(found, params)
        return {"Commands": [self._command(c) for c in page], **({"NextToken": token} if token else {})}

    def _commands(self, command_id: str | None, sender: str = "") -> list[Command]:
        """The commands, newest first; a scoped caller's own only (the tool's commands carry a fault's steps)."""
        with self.lock:
            commands = sorted((c for c in self.commands.values() if not sender or c.sender == sender),
                              key=lambda c: c.requested, reverse=True)
        if command_id is None:
            return commands
        chosen = [c for c in commands if c.id == command_id]
        if not chosen:
            raise SsmError("InvalidCommandId", "")
        return chosen

    def _invocation_row(self, command: Command, invocation: Invocation, details: bool) -> dict:
        row = {"CommandId": command.id, "InstanceId": invocation.instance_id, "InstanceName": "",
               "Comment": command.comment, "DocumentName": DOCUMENT, "DocumentVersion": "$DEFAULT",
               "RequestedDateTime": command.requested.timestamp(), "Status": invocation.status,
               "StatusDetails": invocation.details, "StandardOutputUrl": "", "StandardErrorUrl": "",
               "CommandPlugins": [], "ServiceRole": "", "NotificationConfig": {},
               "CloudWatchOutputConfig": {"CloudWatchLogGroupName": "", "CloudWatchOutputEnabled": False}}
        if details:
            row["CommandPlugins"] = [{
                "Name": PLUGIN, "Status": invocation.status, "StatusDetails": invocation.details,
                "ResponseCode": invocation.code, "Output": _plugin_output(invocation),
                "StandardOutputUrl": "", "StandardErrorUrl": "", "OutputS3Region": self.settings.region,
                **({"ResponseStartDateTime": invocation.start.timestamp()} if invocation.start else {}),
                **({"ResponseFinishDateTime": invocation.end.timestamp()} if invocation.end else {})}]
        return row

    def _command(self, command: Command) -> dict:
        invocations = list(command.invocations.values())
        return {"CommandId": command.id, "DocumentName": DOCUMENT, "DocumentVersion": "$DEFAULT",
                "Comment": command.comment, "Parameters": command.parameters,
                "InstanceIds": [i.instance_id for i in invocations], "Targets": command.targets,
                "RequestedDateTime": command.requested.timestamp(),
                "ExpiresAfter": command.requested.timestamp() + command.timeout,
                "Status": command.status, "StatusDetails": command.status, "OutputS3Region": self.settings.region,
                "MaxConcurrency": "50", "MaxErrors": "0", "TargetCount": len(invocations),
                "CompletedCount": sum(i.status in DONE for i in invocations),
                "ErrorCount": sum(i.status in ("Failed", "TimedOut") for i in invocations),
                "DeliveryTimedOutCount": 0, "ServiceRole": "", "NotificationConfig": {},
                "CloudWatchOutputConfig": {"CloudWatchLogGroupName": "", "CloudWatchOutputEnabled": False},
                "TimeoutSeconds": command.timeout}


def _answering(operation: Callable[[dict, str], dict]) -> Callable[[Call, dict], protocol.Answer]:
    """Wrap an operation of dicts into a plug-in handler answering JSON or an SSM error; it is told the scoped
    endpoint's caller, if the call came that way."""
    def handler(call: Call, environ: dict) -> protocol.Answer:
        try:
            return protocol.json_answer(operation(call.params, environ.get(protocol.PRINCIPAL, "")))
        except SsmError as exc:
            return protocol.error(call, exc.code, str(exc))
    return handler


def _page(items: list, params: dict) -> tuple[list, str | None]:
    start = int(params.get("NextToken") or 0) if str(params.get("NextToken") or "0").isdigit() else 0
    size = int(params.get("MaxResults") or 50)
    end = start + size
    return items[start:end], (str(end) if end < len(items) else None)


def _plugin_output(invocation: Invocation) -> str:
    """The plug-in's Output as ListCommandInvocations gives it: stdout, then stderr under a marker, cut."""
    text = invocation.stdout
    if invocation.stderr:
        text += "\n----------ERROR-------\n" + invocation.stderr
    return text[:PLUGIN_OUTPUT_LIMIT]


def _iso(when: datetime | None) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z" if when else ""


def _elapsed(invocation: Invocation) -> str:
    if not invocation.start:
        return ""
    end = invocation.end or datetime.now(UTC)
    return f"PT{(end - invocation.start).total_seconds():.3f}S"


def _quote(text: str) -> str:
    import shlex

    return shlex.quote(text)


def protocol_account() -> str:
    """The twin's account id."""
    from .plugins import ACCOUNT

    return ACCOUNT


def run_script(settings: Settings, logical: str, script: str, timeout: float, confined: bool = False) -> Result:
    """Run a script in the instance's view (`sh`, as the SSM agent does), within `timeout` seconds."""
    from .hostview import run

    return run(settings, logical, script, timeout, confined)

