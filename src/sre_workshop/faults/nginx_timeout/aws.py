"""nginx-timeout on AWS: /etc/nginx/nginx.conf edited on the web instance (saved first), `nginx -t`, reload."""

from __future__ import annotations

from typing import Any

from ...aws.control import NGINX_CONF, NGINX_RELOAD
from ...errors import AwsError, ComponentFailed
from ..contract import AwsCtl
from ..model import NotYet

APP = "nginx"
# The template's lines and what the fault makes of them.
LINES = {"proxy_connect_timeout 5s;": "proxy_connect_timeout {t}s;",
         "proxy_send_timeout 60s;": "proxy_send_timeout {t}s;",
         "proxy_read_timeout 60s;": "proxy_read_timeout {t}s;"}


def _changes(params: dict[str, Any]) -> dict[str, str]:
    return {old: new.format(t=params["timeout_s"]) for old, new in LINES.items()}


def snapshot(ctl: AwsCtl, params: dict[str, Any]) -> dict[str, Any]:
    """Save nginx.conf as it is, byte for byte (it must have the template's timeout lines)."""
    return ctl.save_file(APP, NGINX_CONF, must_have=tuple(LINES))


def inject(ctl: AwsCtl, params: dict[str, Any]) -> None:
    """Cut the three proxy timeouts, check the file and reload nginx."""
    ctl.replace_in_file(APP, NGINX_CONF, _changes(params), *NGINX_RELOAD)


def verify(ctl: AwsCtl, params: dict[str, Any]) -> str:
    """Evidence: the file carries the new timeouts and nginx runs (it was reloaded with them)."""
    if not active(ctl, params) or not ctl.running(APP):
        raise NotYet("nginx.conf does not carry the new timeouts yet")
    return f"{NGINX_CONF} on {ctl.instance(APP)}: proxy_read_timeout {params['timeout_s']}s (reloaded)"


def active(ctl: AwsCtl, params: dict[str, Any]) -> bool | None:
    """True while nginx.conf has the cut timeouts (None when the file cannot be read)."""
    try:
        text = ctl.read_file(APP, NGINX_CONF).decode(errors="replace")
    except (AwsError, ComponentFailed):
        return None
    return f"proxy_read_timeout {params['timeout_s']}s;" in text


def clear(ctl: AwsCtl, params: dict[str, Any], saved: dict[str, Any]) -> None:
    """Put the saved nginx.conf back exactly, check it and reload a running nginx."""
    ctl.restore_file(APP, saved, *NGINX_RELOAD)
