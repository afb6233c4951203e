"""What the two crash faults (nginx-crash, app-crash) share: the local steps, and the AWS evidence."""

from __future__ import annotations

import urllib.error
import urllib.request
from typing import Any

from ..errors import ComponentFailed
from .contract import AwsCtl, LocalCtl
from .model import NotYet


def crash_snapshot(ctl: LocalCtl, name: str) -> dict[str, Any]:
    """Refuse to crash what is not running; nothing else to save."""
    if not ctl.running(name):
        raise ComponentFailed(f"{name} is not running")
    return {"was_running": True}


def crash_inject(ctl: LocalCtl, name: str) -> None:
    """SIGKILL the component's main process and every process of its group."""
    ctl.kill(name)


def crash_verify(ctl: LocalCtl, name: str, public_url: str) -> str:
    """Evidence: the component is gone and its public entry point answers an error."""
    if ctl.running(name):
        raise NotYet(f"{name} still runs")
    status = public_status(public_url)
    if status == 200:
        raise NotYet(f"{public_url} still answers 200")
    return f"{name} is not running; GET {public_url} answers {status or 'nothing'}"


def crash_active(ctl: LocalCtl, name: str) -> bool:
    """True while the component is not running."""
    return not ctl.running(name)


def crash_clear(ctl: LocalCtl, name: str) -> None:
    """Start the component if it is not running."""
    if not ctl.running(name):
        ctl.start(name)


def public_status(url: str) -> int:
    """Return the HTTP status of GET url (0 when nothing answered)."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - loopback URLs of the stack
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


def crashed(ctl: AwsCtl, component: str, entry: str, path: str) -> str:
    """Return evidence that `component` is down and GET entry+path fails; raise NotYet until both hold."""
    state = ctl.unit_state(component)
    if state == "active":
        raise NotYet(f"{component} is still active")
    status, _ = ctl.probe(entry, path)
    if status == 200:
        raise NotYet(f"{ctl.url(entry, path)} still answers 200")
    return (f"{component}.service is {state} on {ctl.instance(component)}; "
            f"GET {ctl.url(entry, path)} answers {status or 'nothing'}")
