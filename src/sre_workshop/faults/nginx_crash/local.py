"""nginx-crash on the local stack: SIGKILL to nginx's process group, by its pid record."""

from __future__ import annotations

from typing import Any

from ..contract import LocalCtl
from ..crash import crash_active, crash_clear, crash_inject, crash_snapshot, crash_verify

APP = "nginx"


def snapshot(ctl: LocalCtl, params: dict[str, Any]) -> dict[str, Any]:
    """Nothing to save but that it ran."""
    return crash_snapshot(ctl, APP)


def inject(ctl: LocalCtl, params: dict[str, Any]) -> None:
    """Kill nginx (master and workers)."""
    crash_inject(ctl, APP)


def verify(ctl: LocalCtl, params: dict[str, Any]) -> str:
    """Evidence: nginx is gone and the public entry point fails."""
    return crash_verify(ctl, APP, ctl.settings.endpoints["app"] + "/")


def active(ctl: LocalCtl, params: dict[str, Any]) -> bool:
    """True while nginx is not running."""
    return crash_active(ctl, APP)


def clear(ctl: LocalCtl, params: dict[str, Any], saved: dict[str, Any]) -> None:
    """Start nginx again (`systemctl start nginx`)."""
    crash_clear(ctl, APP)
