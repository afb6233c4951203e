"""nginx-bad-upstream on the local stack: an overlay on nginx.conf's upstream (loopback only), then a reload."""

from __future__ import annotations

from typing import Any

from ..contract import LocalCtl
from ..crash import public_status
from ..model import NotYet

OWNER = "nginx-bad-upstream"
TARGET = "nginx.conf"
# Port 1 on loopback (tcpmux): nothing listens there, so connections are refused, and traffic never
# leaves the machine.
WRONG = "127.0.0.1:1"


def _line(address: str) -> str:
    return f'set $private_alb "{address}";'


def snapshot(ctl: LocalCtl, params: dict[str, Any]) -> dict[str, Any]:
    """Save the upstream the template sets."""
    return {"upstream": f"127.0.0.1:{ctl.settings.port('private-alb')}"}


def inject(ctl: LocalCtl, params: dict[str, Any]) -> None:
    """Point the upstream elsewhere and reload nginx."""
    right = snapshot(ctl, params)["upstream"]
    ctl.add_overlay(OWNER, TARGET, {_line(right): _line(WRONG)})
    ctl.reload("nginx")


def verify(ctl: LocalCtl, params: dict[str, Any]) -> str:
    """Evidence: the public entry point answers 502."""
    status = public_status(ctl.settings.endpoints["app"] + "/")
    if status != 502:
        raise NotYet(f"GET / answers {status}")
    return "GET / through the public entry point answers 502"


def active(ctl: LocalCtl, params: dict[str, Any]) -> bool:
    """True while nginx's config names the wrong upstream."""
    return _line(WRONG) in ctl.rendered(TARGET)


def clear(ctl: LocalCtl, params: dict[str, Any], saved: dict[str, Any]) -> None:
    """Drop the edit; reload nginx if it runs."""
    ctl.remove_overlays(OWNER)
    ctl.refresh("nginx")  # a stopped nginx gets the template's file too, and reads it when it starts
