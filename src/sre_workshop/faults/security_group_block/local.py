"""security-group-block on the local stack: the AWS implementation (aws.py), run through the AWS API twin.

The twin's security groups gate the local hops (twin/network.py): the rule aws.py moves to a port nothing
listens on stops letting the hop's source in within a second, new connections on that hop time out and
health checks with them, as on AWS. The repair is AWS's too: the template's rule authorized again
(`aws ec2 authorize-security-group-ingress` through `sre-workshop aws-env`), or modified back.
"""

from __future__ import annotations

from typing import Any

from ..contract import LocalCtl
from . import aws


def snapshot(ctl: LocalCtl, params: dict[str, Any]) -> dict[str, Any]:
    """Save the exact rule that lets the hop's traffic in, and its id."""
    return aws.snapshot(ctl.twin(), params)


def inject(ctl: LocalCtl, params: dict[str, Any]) -> None:
    """Move the rule to a port nothing listens on."""
    aws.inject(ctl.twin(), params)


def verify(ctl: LocalCtl, params: dict[str, Any]) -> str:
    """Evidence: the rule lets nothing in and the hop's public entry point fails."""
    return aws.verify(ctl.twin(), params)


def active(ctl: LocalCtl, params: dict[str, Any]) -> bool:
    """True while the hop's chain rule is missing (a rule authorized by hand ends it)."""
    return aws.active(ctl.twin(), params)


def clear(ctl: LocalCtl, params: dict[str, Any], saved: dict[str, Any]) -> None:
    """Change the saved rule back (or authorize it again if it was deleted)."""
    aws.clear(ctl.twin(), params, saved)
