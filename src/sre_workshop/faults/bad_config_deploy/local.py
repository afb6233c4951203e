"""bad-config-deploy on the local stack: the AWS implementation (aws.py), run through the AWS API twin.

crm-app reads its settings from its env file at each start, as systemd's EnvironmentFile on AWS (locally
run/hosts/CRMAppInstance/etc-sre-workshop/crm-app.env, /etc/sre-workshop/crm-app.env in the instance's
view). The bad deploy is the SSM Run Command of AWS (env-set.sh, then `systemctl restart crm-app`) sent to
the twin, which runs it in the instance's view; the repair is the one on AWS: put the setting back in the
env file (`sre-workshop shell sre-workshop-crm-app`, or Run Command) and restart crm-app.
"""

from __future__ import annotations

from typing import Any

from ..contract import LocalCtl
from . import aws


def snapshot(ctl: LocalCtl, params: dict[str, Any]) -> dict[str, Any]:
    """Save the setting the deploy breaks (its line of the env file)."""
    return aws.snapshot(ctl.twin(), params)


def inject(ctl: LocalCtl, params: dict[str, Any]) -> None:
    """Deploy the bad setting and restart crm-app."""
    aws.inject(ctl.twin(), params)


def verify(ctl: LocalCtl, params: dict[str, Any]) -> str:
    """Evidence: the CRM answers 503 where it reads that table."""
    return aws.verify(ctl.twin(), params)


def active(ctl: LocalCtl, params: dict[str, Any]) -> bool | None:
    """True while the env file holds the bad setting (a restart keeps it)."""
    return aws.active(ctl.twin(), params)


def clear(ctl: LocalCtl, params: dict[str, Any], saved: dict[str, Any]) -> None:
    """Deploy the saved setting again and restart crm-app."""
    aws.clear(ctl.twin(), params, saved)
