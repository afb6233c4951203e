"""app-crash on the local stack: SIGKILL to the app's process group, by its pid record."""

from __future__ import annotations

from typing import Any

from ..contract import LocalCtl
from ..crash import crash_active, crash_clear, crash_inject, crash_snapshot, crash_verify

PUBLIC = {"sre-app": ("app", "/"), "crm-app": ("crm", "/api/customers?limit=1")}


def snapshot(ctl: LocalCtl, params: dict[str, Any]) -> dict[str, Any]:
    """Nothing to save but that it ran."""
    return crash_snapshot(ctl, params["target"])


def inject(ctl: LocalCtl, params: dict[str, Any]) -> None:
    """Kill the app's master and workers."""
    crash_inject(ctl, params["target"])


def verify(ctl: LocalCtl, params: dict[str, Any]) -> str:
    """Evidence: the app is gone and its public entry point fails."""
    endpoint, path = PUBLIC[params["target"]]
    return crash_verify(ctl, params["target"], ctl.settings.endpoints[endpoint] + path)


def active(ctl: LocalCtl, params: dict[str, Any]) -> bool:
    """True while the app is not running."""
    return crash_active(ctl, params["target"])


def clear(ctl: LocalCtl, params: dict[str, Any], saved: dict[str, Any]) -> None:
    """Start the app again (`systemctl start`)."""
    crash_clear(ctl, params["target"])
