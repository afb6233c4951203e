"""dynamodb-throttling on the local stack: the AWS implementation (aws.py) in its workshop form, run against
the AWS API twin: the CRM tables and their indexes switched to PROVISIONED at 1 RCU / 1 WCU.

`dynamodb-endpoint` keeps a token bucket per table and index from the tables' throughput (with DynamoDB's
300 s of burst capacity), so the throttling appears under load and not on an idle stack, as on AWS. The
local engine (dynalite) has no on-demand maximum (OnDemandThroughput), hence the provisioned form here. The
repair is the one on AWS: raise the capacity, or switch the tables back to on-demand
(`aws dynamodb update-table --billing-mode PAY_PER_REQUEST` through `sre-workshop aws-env`).
"""

from __future__ import annotations

from typing import Any

from ..contract import LocalCtl
from . import aws


def _provisioned(params: dict[str, Any]) -> dict[str, Any]:
    return {**params, "mode": "provisioned"}


def snapshot(ctl: LocalCtl, params: dict[str, Any]) -> dict[str, Any]:
    """Save each CRM table's billing mode and throughput settings (its indexes' too)."""
    return aws.snapshot(ctl.twin(), _provisioned(params))


def inject(ctl: LocalCtl, params: dict[str, Any]) -> None:
    """Switch every CRM table and index to PROVISIONED 1/1."""
    aws.inject(ctl.twin(), _provisioned(params))


def verify(ctl: LocalCtl, params: dict[str, Any]) -> str:
    """Evidence: every CRM table and index runs at 1 unit per second (the throttling shows under load)."""
    return aws.verify(ctl.twin(), _provisioned(params))


def active(ctl: LocalCtl, params: dict[str, Any]) -> bool:
    """True while any CRM table runs PROVISIONED."""
    return aws.active(ctl.twin(), _provisioned(params))


def clear(ctl: LocalCtl, params: dict[str, Any], saved: dict[str, Any]) -> None:
    """Put each table's saved billing mode and throughput back."""
    aws.clear(ctl.twin(), _provisioned(params), saved)
