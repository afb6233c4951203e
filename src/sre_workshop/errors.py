"""The tool's expected failures: one root, each class carrying its exit status and a machine-readable code.

The CLI prints `str(error)` as one line and exits with `error.exit_status`; the MCP server returns
`error.to_dict()`. Anything that is not a `WorkshopError` is a bug (or an unforeseen environment) and is
reported as "unexpected error" with a hint for `--traceback`.
"""

from __future__ import annotations

import enum


class ExitStatus(enum.IntEnum):
    """Exit statuses of `sre-workshop`, one per class of failure (documented in the README)."""

    OK = 0
    ERROR = 1              # an unexpected error, or a check that found a problem (doctor, status)
    USAGE = 2              # bad arguments or an unknown name
    MISSING_PROGRAM = 3    # nginx or haproxy is not installed
    PORT_IN_USE = 4        # another program holds a port the stack needs
    UNHEALTHY = 5          # a component did not start or did not become healthy
    AWS = 6                # AWS refused or failed: credentials, region, a stack that failed or is stuck
    BUSY = 7               # the stack is already running, or another command holds it
    STATE = 8              # the state directory cannot be read or written
    INTERRUPTED = 130      # Ctrl-C (or SIGTERM/SIGHUP during `up`)
    PIPE = 141             # stdout was closed early (`| head`), as for a process that SIGPIPE ended


class WorkshopError(Exception):
    """Root of every expected failure; the message is one line for the user."""

    exit_status: ExitStatus = ExitStatus.ERROR
    code: str = "error"

    def to_dict(self) -> dict[str, str | int]:
        """Return the error as the MCP server and `--json` output report it."""
        return {"error": self.code, "message": str(self), "exit_status": int(self.exit_status)}


class UsageError(WorkshopError):
    """Bad arguments: an unknown name, a malformed value."""

    exit_status = ExitStatus.USAGE
    code = "usage"


class MissingProgram(WorkshopError):
    """A program the local stack needs is not installed."""

    exit_status = ExitStatus.MISSING_PROGRAM
    code = "missing_program"


class PortInUse(WorkshopError):
    """A port the stack needs is taken by another program."""

    exit_status = ExitStatus.PORT_IN_USE
    code = "port_in_use"


class ComponentFailed(WorkshopError):
    """A component did not start or did not become healthy."""

    exit_status = ExitStatus.UNHEALTHY
    code = "component_failed"


class StackBusy(WorkshopError):
    """The stack is already running, or another `sre-workshop` command is changing it."""

    exit_status = ExitStatus.BUSY
    code = "busy"


class FaultActive(WorkshopError):
    """The fault asked for is already in effect."""

    exit_status = ExitStatus.BUSY
    code = "fault_active"


class FaultNotEffective(WorkshopError):
    """A fault was injected but its effect did not show in time; it was cleared again."""

    exit_status = ExitStatus.UNHEALTHY
    code = "fault_not_effective"


class NotSteady(WorkshopError):
    """After clearing, the stack did not return to steady state; the message names what is wrong."""

    exit_status = ExitStatus.UNHEALTHY
    code = "not_steady"


class ClearFailed(WorkshopError):
    """One or more clears raised; every other fault was still cleared. The message names each failure, and
    `failures` holds them (fault name -> one line); each is recorded in the ledger as `clear-failed`."""

    exit_status = ExitStatus.UNHEALTHY
    code = "clear_failed"

    def __init__(self, failures: dict[str, str], cleared: list[dict] | None = None) -> None:
        self.failures = failures
        self.cleared = cleared or []
        named = "; ".join(f"{fault}: {reason}" for fault, reason in failures.items())
        super().__init__(f"could not clear {len(failures)} fault(s), the rest were cleared: {named}")


class StateError(WorkshopError):
    """The state directory (or a file in it) cannot be read or written."""

    exit_status = ExitStatus.STATE
    code = "state"


class ConfigTemplateError(WorkshopError):
    """A committed config template no longer has a line the renderer (or an overlay) must replace."""

    code = "template"


class AwsError(WorkshopError):
    """AWS refused or failed: credentials, region, a stack that failed or is stuck."""

    exit_status = ExitStatus.AWS
    code = "aws"
