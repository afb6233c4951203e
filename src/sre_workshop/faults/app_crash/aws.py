"""app-crash on AWS: `systemctl kill --signal=SIGKILL` of the app's unit on its instance, through SSM."""

from __future__ import annotations

from typing import Any

from ...errors import ComponentFailed
from ..contract import AwsCtl
from ..crash import crashed

# Where each app's failure shows at the public ALB.
PUBLIC = {"sre-app": ("app", "/"), "crm-app": ("crm", "/api/customers?limit=1")}


def snapshot(ctl: AwsCtl, params: dict[str, Any]) -> dict[str, Any]:
    """Refuse to crash an app that is not running; nothing else to save."""
    target = params["target"]
    if not ctl.running(target):
        raise ComponentFailed(f"{target} is not running on {ctl.instance(target)}")
    return {"was_running": True}


def inject(ctl: AwsCtl, params: dict[str, Any]) -> None:
    """Kill the app's master and workers (every process of its unit); nothing restarts them."""
    ctl.kill(params["target"])


def verify(ctl: AwsCtl, params: dict[str, Any]) -> str:
    """Evidence: the unit is down on its instance and the app's public entry point fails."""
    target = params["target"]
    return crashed(ctl, target, *PUBLIC[target])


def active(ctl: AwsCtl, params: dict[str, Any]) -> bool:
    """True while the app's unit is not active."""
    return not ctl.running(params["target"])


def clear(ctl: AwsCtl, params: dict[str, Any], saved: dict[str, Any]) -> None:
    """Start the app again (`systemctl start`) if it is not running."""
    ctl.start(params["target"])

