"""health-check-fail on the local stack: the app's /admin/faults (health: fail)."""

from __future__ import annotations

from typing import Any

from .. import appfaults
from ..contract import LocalCtl
from ..crash import public_status
from ..model import NotYet

APP = "sre-app"


def snapshot(ctl: LocalCtl, params: dict[str, Any]) -> dict[str, Any]:
    """Save the app's fault settings."""
    return appfaults.snapshot(ctl, APP)


def inject(ctl: LocalCtl, params: dict[str, Any]) -> None:
    """Fail the app's health check."""
    appfaults.put(ctl, APP, {"health": "fail"})


def verify(ctl: LocalCtl, params: dict[str, Any]) -> str:
    """Evidence: the load balancer took the target out, so the public entry point answers 503."""
    status = public_status(ctl.settings.endpoints["app"] + "/")
    if status != 503:
        raise NotYet(f"GET / answers {status}")
    return "GET / through the public entry point answers 503 (target unhealthy)"


def active(ctl: LocalCtl, params: dict[str, Any]) -> bool | None:
    """True while the app's health check is made to fail."""
    return appfaults.active(ctl, APP, lambda s: s["health"] != "ok")


def clear(ctl: LocalCtl, params: dict[str, Any], saved: dict[str, Any]) -> None:
    """Put the saved settings back."""
    appfaults.restore(ctl, APP, saved)
