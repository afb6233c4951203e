"""bad-config-deploy on the local stack: an overlay on crm-app's environment, then a restart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ...settings import TABLE_NAMES
from ..contract import LocalCtl
from ..crash import public_status
from ..model import NotYet

OWNER = "bad-config-deploy"
TARGET = "env:crm-app"
# What the bad deploy sets: the right name with a "-v2" suffix, a table that was never created.
SUFFIX = "-v2"
PROBES = {"CUSTOMERS_TABLE": "/api/customers?limit=1", "DEALS_TABLE": "/api/deals?limit=1",
          "ACTIVITIES_TABLE": "/api/activities?limit=1"}


def snapshot(ctl: LocalCtl, params: dict[str, Any]) -> dict[str, Any]:
    """Save the setting the deploy breaks."""
    return {params["variable"]: TABLE_NAMES[params["variable"]]}


def inject(ctl: LocalCtl, params: dict[str, Any]) -> None:
    """Deploy the bad setting and restart crm-app."""
    variable = params["variable"]
    ctl.add_overlay(OWNER, TARGET, {variable: TABLE_NAMES[variable] + SUFFIX})
    ctl.restart("crm-app")


def verify(ctl: LocalCtl, params: dict[str, Any]) -> str:
    """Evidence: the CRM answers 503 where it reads that table."""
    url = ctl.settings.endpoints["crm"] + PROBES[params["variable"]]
    status = public_status(url)
    if status != 503:
        raise NotYet(f"GET {url} answers {status}")
    return f"GET {url} answers 503"


def active(ctl: LocalCtl, params: dict[str, Any]) -> bool | None:
    """True while the running crm-app has the bad setting in its environment (None when it is down)."""
    record = ctl.stack.record("crm-app")
    if record is None or not ctl.running("crm-app"):
        return None
    try:
        environ = Path(f"/proc/{record.pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return None
    variable = params["variable"]
    return f"{variable}={TABLE_NAMES[variable]}{SUFFIX}".encode() in environ


def clear(ctl: LocalCtl, params: dict[str, Any], saved: dict[str, Any]) -> None:
    """Deploy the right setting again and restart crm-app."""
    ctl.remove_overlays(OWNER)
    ctl.restart("crm-app")
