"""nginx-timeout on the local stack: an overlay on nginx.conf (kept across restarts), then a reload."""

from __future__ import annotations

from typing import Any

from ..contract import LocalCtl
from ..model import NotYet

OWNER = "nginx-timeout"
TARGET = "nginx.conf"
# The template's lines and what the fault makes of them.
LINES = {"proxy_connect_timeout 5s;": "proxy_connect_timeout {t}s;",
         "proxy_send_timeout 60s;": "proxy_send_timeout {t}s;",
         "proxy_read_timeout 60s;": "proxy_read_timeout {t}s;"}


def _changes(params: dict[str, Any]) -> dict[str, str]:
    return {old: new.format(t=params["timeout_s"]) for old, new in LINES.items()}


def snapshot(ctl: LocalCtl, params: dict[str, Any]) -> dict[str, Any]:
    """Save the lines the fault replaces (the template's)."""
    return {"nginx.conf": list(LINES)}


def inject(ctl: LocalCtl, params: dict[str, Any]) -> None:
    """Edit the timeouts and reload nginx."""
    ctl.add_overlay(OWNER, TARGET, _changes(params))
    ctl.reload("nginx")


def verify(ctl: LocalCtl, params: dict[str, Any]) -> str:
    """Evidence: nginx runs with the edited file."""
    if not active(ctl, params) or not ctl.running("nginx"):
        raise NotYet("nginx.conf does not carry the new timeouts yet")
    return f"nginx.conf: proxy_read_timeout {params['timeout_s']}s (reloaded)"


def active(ctl: LocalCtl, params: dict[str, Any]) -> bool:
    """True while nginx's config has the cut timeouts."""
    return f"proxy_read_timeout {params['timeout_s']}s;" in ctl.rendered(TARGET)


def clear(ctl: LocalCtl, params: dict[str, Any], saved: dict[str, Any]) -> None:
    """Drop the edit; reload nginx if it runs (a stopped one starts from the template)."""
    ctl.remove_overlays(OWNER)
    ctl.refresh("nginx")  # a stopped nginx gets the template's file too, and reads it when it starts
