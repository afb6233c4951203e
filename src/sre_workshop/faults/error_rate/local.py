"""error-rate on the local stack: the app's /admin/faults (error_rate)."""

from __future__ import annotations

import urllib.error
import urllib.request
from typing import Any

from .. import appfaults
from ..contract import LocalCtl
from ..model import NotYet

PUBLIC = {"sre-app": ("app", "/"), "crm-app": ("crm", "/api/customers?limit=1")}


def snapshot(ctl: LocalCtl, params: dict[str, Any]) -> dict[str, Any]:
    """Save the app's fault settings."""
    return appfaults.snapshot(ctl, params["target"])


def inject(ctl: LocalCtl, params: dict[str, Any]) -> None:
    """Fail that share of the app's requests."""
    appfaults.put(ctl, params["target"], {"error_rate": params["rate"]})


def verify(ctl: LocalCtl, params: dict[str, Any]) -> str:
    """Evidence: some of a few requests through the public entry point answer 500."""
    endpoint, path = PUBLIC[params["target"]]
    url = ctl.settings.endpoints[endpoint] + path
    statuses = [_status(url) for _ in range(10)]
    if 500 not in statuses:
        raise NotYet(f"GET {url}: {statuses}")
    return f"GET {url}: {statuses.count(500)} of 10 answered 500"


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - the stack's loopback entry point
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


def active(ctl: LocalCtl, params: dict[str, Any]) -> bool | None:
    """True while the app fails requests on purpose."""
    return appfaults.active(ctl, params["target"], lambda s: s["error_rate"] > 0)


def clear(ctl: LocalCtl, params: dict[str, Any], saved: dict[str, Any]) -> None:
    """Put the saved settings back."""
    appfaults.restore(ctl, params["target"], saved)
