"""latency on the local stack: the app's /admin/faults (latency_ms, latency_fraction)."""

from __future__ import annotations

import time
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
    """Delay the app's requests."""
    appfaults.put(ctl, params["target"], {"latency_ms": params["latency_ms"], "latency_fraction": params["fraction"]})


def verify(ctl: LocalCtl, params: dict[str, Any]) -> str:
    """Evidence: a request through the public entry point takes at least the delay (when all are delayed)."""
    endpoint, path = PUBLIC[params["target"]]
    url = ctl.settings.endpoints[endpoint] + path
    started = time.monotonic()
    with urllib.request.urlopen(url, timeout=60) as response:  # noqa: S310 - the stack's loopback entry point
        response.read()
    took = (time.monotonic() - started) * 1000
    if params["fraction"] >= 1.0 and took < params["latency_ms"]:
        raise NotYet(f"GET {url} took {took:.0f} ms")
    share = f"{params['fraction']:.0%}"
    return f"GET {url} took {took:.0f} ms ({params['target']} delays {share} by {params['latency_ms']} ms)"


def active(ctl: LocalCtl, params: dict[str, Any]) -> bool | None:
    """True while the app delays requests."""
    return appfaults.active(ctl, params["target"], lambda s: s["latency_ms"] > 0 and s["latency_fraction"] > 0)


def clear(ctl: LocalCtl, params: dict[str, Any], saved: dict[str, Any]) -> None:
    """Put the saved settings back."""
    appfaults.restore(ctl, params["target"], saved)
