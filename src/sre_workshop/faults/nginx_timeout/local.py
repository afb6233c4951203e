"""nginx-timeout on the local stack: the AWS implementation (aws.py), run through the AWS API twin.

The edit is made on the nginx instance's /etc/nginx/nginx.conf by SSM Run Command (the twin runs it in the
instance's view, where that file is the one the stack's nginx reads), checked with `nginx -t` and
followed by `systemctl reload nginx`, as on AWS. The file is the instance's: it keeps an edit across
restarts and `down`/`up` until a deployment or a repair changes it (local/configs.py). The repair is AWS's
too: put the line back (`sre-workshop shell sre-workshop-nginx`, or Run Command) and reload nginx.
"""

from __future__ import annotations

from typing import Any

from ..contract import LocalCtl
from . import aws


def snapshot(ctl: LocalCtl, params: dict[str, Any]) -> dict[str, Any]:
    """Save nginx.conf as it is, byte for byte."""
    return aws.snapshot(ctl.twin(), params)


def inject(ctl: LocalCtl, params: dict[str, Any]) -> None:
    """Edit nginx.conf on the instance, check it and reload nginx."""
    aws.inject(ctl.twin(), params)


def verify(ctl: LocalCtl, params: dict[str, Any]) -> str:
    """Evidence, as on AWS."""
    return aws.verify(ctl.twin(), params)


def active(ctl: LocalCtl, params: dict[str, Any]) -> bool | None:
    """True while nginx.conf carries the edit (None when it cannot be read)."""
    return aws.active(ctl.twin(), params)


def clear(ctl: LocalCtl, params: dict[str, Any], saved: dict[str, Any]) -> None:
    """Put the saved nginx.conf back exactly and reload a running nginx."""
    aws.clear(ctl.twin(), params, saved)
