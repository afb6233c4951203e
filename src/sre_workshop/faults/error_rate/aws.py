"""error-rate on AWS: a fraction of requests answer 500, through the app's /admin/faults on its instance (SSM)."""

from __future__ import annotations

from typing import Any

from ...errors import AwsError, ComponentFailed
from ..contract import AwsCtl
from ..model import NotYet

FIELDS = ("error_rate",)


def snapshot(ctl: AwsCtl, params: dict[str, Any]) -> dict[str, Any]:
    """Save the app's error rate as it is."""
    settings = ctl.app_fault_settings(params["target"])
    return {k: settings[k] for k in FIELDS}


def inject(ctl: AwsCtl, params: dict[str, Any]) -> None:
    """Make that fraction of the app's requests fail with 500 (every worker within 0.5 s)."""
    ctl.put_app_faults(params["target"], {"error_rate": params["rate"]})


def verify(ctl: AwsCtl, params: dict[str, Any]) -> str:
    """Evidence: the app's workers run with the error rate."""
    settings = ctl.app_fault_settings(params["target"])
    if settings["error_rate"] != params["rate"]:
        raise NotYet(f"{params['target']} runs with error rate {settings['error_rate']}")
    return (f"{params['target']} on {ctl.instance(params['target'])} fails {settings['error_rate']:.0%} "
            "of its requests with 500")


def active(ctl: AwsCtl, params: dict[str, Any]) -> bool | None:
    """True while the app fails requests on purpose (None when it cannot be asked: it is down)."""
    try:
        return ctl.app_fault_settings(params["target"])["error_rate"] > 0
    except (AwsError, ComponentFailed):
        return None


def clear(ctl: AwsCtl, params: dict[str, Any], saved: dict[str, Any]) -> None:
    """Put the saved error rate back (the app's other run-time faults stay as they are)."""
    ctl.restore_app_faults(params["target"], saved)
