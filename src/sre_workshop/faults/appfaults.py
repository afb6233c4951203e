"""What the faults inside the apps (latency, error-rate, health-check-fail) share on the local stack: the
apps' /admin/faults API on their own port, driven by steps/app-faults.sh with the stack's token,
the very script SSM runs on an instance."""

from __future__ import annotations

import json
from typing import Any

from ..errors import ComponentFailed
from .contract import LocalCtl

FIELDS = ("latency_ms", "latency_fraction", "error_rate", "health")


def settings(ctl: LocalCtl, app: str) -> dict[str, Any]:
    """Return the app's fault settings in effect."""
    answer = json.loads(ctl.script("app-faults.sh", str(ctl.settings.port(app)), str(ctl.token_file()), "get"))
    return {k: answer["settings"][k] for k in FIELDS}


def put(ctl: LocalCtl, app: str, changes: dict[str, Any]) -> None:
    """Change the app's fault settings (every worker within a second)."""
    ctl.script("app-faults.sh", str(ctl.settings.port(app)), str(ctl.token_file()), "put", json.dumps(changes))


def snapshot(ctl: LocalCtl, app: str) -> dict[str, Any]:
    """Save the settings a fault will change (the app must be running)."""
    if not ctl.running(app):
        raise ComponentFailed(f"{app} is not running")
    return settings(ctl, app)


def active(ctl: LocalCtl, app: str, check) -> bool | None:
    """Apply `check` to the settings in effect (None when the app is down: a fresh start has none)."""
    if not ctl.running(app):
        return None
    try:
        return check(settings(ctl, app))
    except ComponentFailed:
        return None


def restore(ctl: LocalCtl, app: str, saved: dict[str, Any]) -> None:
    """Put the saved settings back (an app that is down starts without any)."""
    if ctl.running(app):
        put(ctl, app, saved)
