"""memory-leak on the local stack: sre-app's /admin/leak on its own port, with the stack's token."""

from __future__ import annotations

from typing import Any

from ...errors import ComponentFailed
from ..contract import LocalCtl
from ..model import NotYet

APP = "sre-app"
FIELDS = ("mode", "kb_per_request", "mb_per_minute", "cap_mb")


def snapshot(ctl: LocalCtl, params: dict[str, Any]) -> dict[str, Any]:
    """Return the leak settings in effect."""
    settings = ctl.app_admin(APP, "GET", "/leak")["settings"]
    return {k: settings[k] for k in FIELDS}


def current_params(ctl: LocalCtl) -> dict[str, Any]:
    """Return the leak's settings in effect as the fault's parameters (the pre-baked leak's)."""
    return snapshot(ctl, {})


def inject(ctl: LocalCtl, params: dict[str, Any]) -> None:
    """Set the leak's mode and rate in every worker."""
    ctl.app_admin(APP, "PUT", "/leak", {k: params[k] for k in FIELDS})


def verify(ctl: LocalCtl, params: dict[str, Any]) -> str:
    """Evidence: a worker runs with the new settings and has retained memory (time mode)."""
    answer = ctl.app_admin(APP, "GET", "/leak")
    settings, worker = answer["settings"], answer["worker"]
    if settings["mode"] != params["mode"] or (params["mode"] == "time" and worker["memory_leak_size_mb"] <= 0):
        raise NotYet(f"worker {worker['pid']} runs mode {settings['mode']} with {worker['memory_leak_size_mb']} MB")
    return f"worker {worker['pid']}: leak mode {settings['mode']}, {worker['memory_leak_size_mb']} MB retained"


def active(ctl: LocalCtl, params: dict[str, Any]) -> bool | None:
    """True while the leak is on (None when sre-app is down: it cannot be asked)."""
    if not ctl.running(APP):
        return None
    try:
        return ctl.app_admin(APP, "GET", "/leak")["settings"]["mode"] != "off"
    except ComponentFailed:
        return None


def clear(ctl: LocalCtl, params: dict[str, Any], saved: dict[str, Any]) -> None:
    """Restore the saved settings and free what the workers retained (a down app starts afresh anyway)."""
    if not ctl.running(APP):
        return
    ctl.app_admin(APP, "PUT", "/leak", saved)
    ctl.app_admin(APP, "POST", "/leak/release")
