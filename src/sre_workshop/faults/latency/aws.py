"""latency on AWS: added delay per request through the app's /admin/faults on its instance, through SSM."""

from __future__ import annotations

from typing import Any

from ...errors import AwsError, ComponentFailed
from ..contract import AwsCtl
from ..model import NotYet

FIELDS = ("latency_ms", "latency_fraction")


def _settings(params: dict[str, Any]) -> dict[str, Any]:
    return {"latency_ms": params["latency_ms"], "latency_fraction": params["fraction"]}


def snapshot(ctl: AwsCtl, params: dict[str, Any]) -> dict[str, Any]:
    """Save the app's latency settings as they are."""
    settings = ctl.app_fault_settings(params["target"])
    return {k: settings[k] for k in FIELDS}


def inject(ctl: AwsCtl, params: dict[str, Any]) -> None:
    """Delay that fraction of the app's requests by latency_ms (every worker within 0.5 s)."""
    ctl.put_app_faults(params["target"], _settings(params))


def verify(ctl: AwsCtl, params: dict[str, Any]) -> str:
    """Evidence: the app's workers run with the delay."""
    settings = ctl.app_fault_settings(params["target"])
    if {k: settings[k] for k in FIELDS} != _settings(params):
        raise NotYet(f"{params['target']} runs with latency {settings['latency_ms']} ms")
    return (f"{params['target']} on {ctl.instance(params['target'])} delays {settings['latency_fraction']:.0%} "
            f"of its requests by {settings['latency_ms']} ms")


def active(ctl: AwsCtl, params: dict[str, Any]) -> bool | None:
    """True while the app delays requests (None when it cannot be asked: it is down)."""
    try:
        settings = ctl.app_fault_settings(params["target"])
    except (AwsError, ComponentFailed):
        return None
    return settings["latency_ms"] > 0 and settings["latency_fraction"] > 0


def clear(ctl: AwsCtl, params: dict[str, Any], saved: dict[str, Any]) -> None:
    """Put the saved latency settings back (the app's other run-time faults stay as they are)."""
    ctl.restore_app_faults(params["target"], saved)
