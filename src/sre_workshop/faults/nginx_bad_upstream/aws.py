"""nginx-bad-upstream on AWS: nginx.conf's upstream pointed away from the private ALB (saved first), reload."""

from __future__ import annotations

from typing import Any

from ...aws.control import NGINX_CONF, NGINX_RELOAD
from ...errors import AwsError, ComponentFailed
from ..contract import AwsCtl
from ..model import NotYet

APP = "nginx"
# Port 1 on the loopback of nginx's own instance (tcpmux): nothing listens there, so connections are refused.
WRONG = "127.0.0.1:1"


def _line(address: str) -> str:
    return f'set $private_alb "{address}";'


def _right(ctl: AwsCtl) -> str:
    return _line(ctl.outputs()["PrivateALBDNSName"])


def snapshot(ctl: AwsCtl, params: dict[str, Any]) -> dict[str, Any]:
    """Save nginx.conf as it is, byte for byte (it must point at the private ALB)."""
    return ctl.save_file(APP, NGINX_CONF, must_have=(_right(ctl),))


def inject(ctl: AwsCtl, params: dict[str, Any]) -> None:
    """Point the upstream at a port where nothing listens on the nginx instance itself, check, reload."""
    ctl.replace_in_file(APP, NGINX_CONF, {_right(ctl): _line(WRONG)}, *NGINX_RELOAD)


def verify(ctl: AwsCtl, params: dict[str, Any]) -> str:
    """Evidence: the public entry point answers 502."""
    status, _ = ctl.probe("app", "/")
    if status != 502:
        raise NotYet(f"GET {ctl.url('app', '/')} answers {status or 'nothing'}")
    return f"GET {ctl.url('app', '/')} answers 502"


def active(ctl: AwsCtl, params: dict[str, Any]) -> bool | None:
    """True while nginx.conf names the wrong upstream (None when the file cannot be read)."""
    try:
        return _line(WRONG) in ctl.read_file(APP, NGINX_CONF).decode(errors="replace")
    except (AwsError, ComponentFailed):
        return None


def clear(ctl: AwsCtl, params: dict[str, Any], saved: dict[str, Any]) -> None:
    """Put the saved nginx.conf back exactly, check it and reload a running nginx."""
    ctl.restore_file(APP, saved, *NGINX_RELOAD)
