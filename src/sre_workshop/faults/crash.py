"""What the two crash faults (nginx-crash, app-crash) share: the evidence that a unit is down (in both worlds,
locally through the AWS API twin)."""

from __future__ import annotations

from .contract import AwsCtl
from .model import NotYet


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
