"""memory-leak on AWS: sre-app's /admin/leak on its instance, through SSM (app-leak.sh, the token read as root)."""

from __future__ import annotations

from typing import Any

from ...aws.control import app_leak_step, only_if_running
from ...errors import AwsError, ComponentFailed
from ..contract import AwsCtl
from ..model import NotYet

APP = "sre-app"
FIELDS = ("mode", "kb_per_request", "mb_per_minute", "cap_mb")


def snapshot(ctl: AwsCtl, params: dict[str, Any]) -> dict[str, Any]:
    """Return the leak settings in effect."""
    settings = ctl.app_leak("get")["settings"]
    return {k: settings[k] for k in FIELDS}


def current_params(ctl: AwsCtl) -> dict[str, Any]:
    """Return the leak's settings in effect as the fault's parameters (the pre-baked leak's)."""
    return snapshot(ctl, {})


def inject(ctl: AwsCtl, params: dict[str, Any]) -> None:
    """Set the leak's mode and rate in every worker."""
    ctl.put_leak({k: params[k] for k in FIELDS})


def verify(ctl: AwsCtl, params: dict[str, Any]) -> str:
    """Evidence: a worker runs with the new settings and has retained memory (time mode)."""
    answer = ctl.app_leak("get")
    settings, worker = answer["settings"], answer["worker"]
    if settings["mode"] != params["mode"] or (params["mode"] == "time" and worker["memory_leak_size_mb"] <= 0):
        raise NotYet(f"worker {worker['pid']} runs mode {settings['mode']} with {worker['memory_leak_size_mb']} MB")
    return (f"worker {worker['pid']} on {ctl.instance(APP)}: leak mode {settings['mode']}, "
            f"{worker['memory_leak_size_mb']} MB retained")


def active(ctl: AwsCtl, params: dict[str, Any]) -> bool | None:
    """True while the leak is on (None when sre-app cannot be asked: it is down, or its instance is)."""
    try:
        return ctl.app_leak("get")["settings"]["mode"] != "off"
    except (AwsError, ComponentFailed):
        return None


def clear(ctl: AwsCtl, params: dict[str, Any], saved: dict[str, Any]) -> None:
    """Restore the saved settings and free what the workers retained, in one run (a down app starts afresh)."""
    port = ctl.app_port(APP)
    ctl.run(APP, only_if_running(APP), app_leak_step("put", saved, port), app_leak_step("release", port=port),
            label="app-leak.sh put, release")
