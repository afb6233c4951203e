"""nginx-crash on AWS: `systemctl kill --signal=SIGKILL nginx` on the web instance, through SSM."""

from __future__ import annotations

from typing import Any

from ...errors import ComponentFailed
from ..contract import AwsCtl
from ..crash import crashed

APP = "nginx"


def snapshot(ctl: AwsCtl, params: dict[str, Any]) -> dict[str, Any]:
    """Refuse to crash an nginx that is not running; nothing else to save."""
    if not ctl.running(APP):
        raise ComponentFailed(f"nginx is not running on {ctl.instance(APP)}")
    return {"was_running": True}


def inject(ctl: AwsCtl, params: dict[str, Any]) -> None:
    """Kill nginx's master and workers (`pkill -9 nginx`, by its unit); nothing restarts them."""
    ctl.kill(APP)


def verify(ctl: AwsCtl, params: dict[str, Any]) -> str:
    """Evidence: nginx is down on its instance and the public entry point fails."""
    return crashed(ctl, APP, "app", "/")


def active(ctl: AwsCtl, params: dict[str, Any]) -> bool:
    """True while nginx's unit is not active."""
    return not ctl.running(APP)


def clear(ctl: AwsCtl, params: dict[str, Any], saved: dict[str, Any]) -> None:
    """Start nginx again (`systemctl start nginx`) if it is not running."""
    ctl.start(APP)
