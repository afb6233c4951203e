"""dynamodb-throttling on AWS: the CRM tables (and their indexes) capped at 1 request unit per second.

mode=on-demand (the default): UpdateTable's OnDemandThroughput, a maximum of 1 read and 1 write request
unit per second; the tables stay on-demand, so clear can always put the saved maximum back.
mode=provisioned (the workshop's fault): the tables switched to PROVISIONED at 1 RCU / 1 WCU. DynamoDB
lets a table switch back to on-demand at most four times in 24 hours (and, by some accounts of the rule,
not within 24 hours of its creation); when it refuses, clear raises the capacity to RESCUE_UNITS so the
CRM works, says so, and keeps the incident open until a later clear completes the switch.
"""

from __future__ import annotations

from typing import Any

from ...errors import AwsError, ComponentFailed
from ..contract import AwsCtl
from ..model import NotYet

TABLES = ("CRMCustomersTable", "CRMDealsTable", "CRMActivitiesTable")
UNITS = 1
NO_LIMIT = -1  # what OnDemandThroughput takes to remove a maximum
RESCUE_UNITS = 25
ON_DEMAND, PROVISIONED = "PAY_PER_REQUEST", "PROVISIONED"
LIMIT = {"MaxReadRequestUnits": UNITS, "MaxWriteRequestUnits": UNITS}


def capacity(units: int) -> dict[str, int]:
    """Return a ProvisionedThroughput of `units` reads and writes."""
    return {"ReadCapacityUnits": units, "WriteCapacityUnits": units}


def throughput(description: dict[str, Any], mode: str) -> dict[str, int]:
    """Return the throughput settings of a table or index in `mode` (no on-demand maximum: -1)."""
    if mode == ON_DEMAND:
        limit = description.get("OnDemandThroughput") or {}
        return {k: int(limit.get(k, NO_LIMIT)) for k in LIMIT}
    provisioned = description.get("ProvisionedThroughput") or {}
    return {k: int(provisioned.get(k, 0)) for k in ("ReadCapacityUnits", "WriteCapacityUnits")}


def state(table: dict[str, Any]) -> dict[str, Any]:
    """Return what the fault changes on one table: its billing mode and the throughput of it and its indexes."""
    mode = (table.get("BillingModeSummary") or {}).get("BillingMode", PROVISIONED)
    return {"billing_mode": mode, "throughput": throughput(table, mode),
            "indexes": {i["IndexName"]: throughput(i, mode) for i in table.get("GlobalSecondaryIndexes", [])}}


def _tables(ctl: AwsCtl) -> list[str]:
    return [ctl.table_name(logical) for logical in TABLES]


def snapshot(ctl: AwsCtl, params: dict[str, Any]) -> dict[str, Any]:
    """Save each CRM table's billing mode and throughput settings (its indexes' too)."""
    saved = {name: state(ctl.describe_table(name)) for name in _tables(ctl)}
    provisioned = [name for name, s in saved.items() if s["billing_mode"] != ON_DEMAND]
    if params["mode"] == "on-demand" and provisioned:
        raise ComponentFailed(f"{', '.join(provisioned)} run PROVISIONED, where an on-demand maximum does "
                              "not apply: use --set mode=provisioned, or put them back on-demand first")
    return saved


def inject(ctl: AwsCtl, params: dict[str, Any]) -> None:
    """Cap every CRM table and index at UNITS request units per second."""
    for name in _tables(ctl):
        indexes = [i["IndexName"] for i in ctl.describe_table(name).get("GlobalSecondaryIndexes", [])]
        if params["mode"] == "provisioned":
            ctl.update_table(name, BillingMode=PROVISIONED, ProvisionedThroughput=capacity(UNITS),
                             **_index_updates(indexes, "ProvisionedThroughput", capacity(UNITS)))
            continue
        ctl.update_table(name, OnDemandThroughput=LIMIT)
        for index in indexes:  # one index per call: an index update waits for the table to be ACTIVE
            ctl.update_table(name, **_index_updates([index], "OnDemandThroughput", LIMIT))


def _index_updates(indexes: list[str], key: str, value: dict[str, int]) -> dict[str, Any]:
    updates = [{"Update": {"IndexName": index, key: value}} for index in indexes]
    return {"GlobalSecondaryIndexUpdates": updates} if updates else {}


def capped(table: dict[str, Any], mode: str) -> bool:
    """True if the table and its indexes run at UNITS in `mode`."""
    current = state(table)
    want = LIMIT if mode == "on-demand" else capacity(UNITS)
    billing = ON_DEMAND if mode == "on-demand" else PROVISIONED
    return current["billing_mode"] == billing and all(t == want for t in
                                                      [current["throughput"], *current["indexes"].values()])


def verify(ctl: AwsCtl, params: dict[str, Any]) -> str:
    """Evidence: every CRM table and index runs capped (the throttling itself shows under load)."""
    for name in _tables(ctl):
        if not capped(ctl.describe_table(name), params["mode"]):
            raise NotYet(f"{name} does not run at {UNITS} request unit per second yet")
    what = "on-demand maximum" if params["mode"] == "on-demand" else "PROVISIONED capacity"
    return f"{', '.join(_tables(ctl))} and their indexes: {what} of {UNITS} read / {UNITS} write unit per second"


def active(ctl: AwsCtl, params: dict[str, Any]) -> bool:
    """True while any CRM table runs capped (mode=provisioned: while any runs PROVISIONED, as the stack's
    tables are on-demand)."""
    tables = [ctl.describe_table(name) for name in _tables(ctl)]
    if params["mode"] == "provisioned":
        return any(state(t)["billing_mode"] == PROVISIONED for t in tables)
    return any(_any_capped(state(t)) for t in tables)


def _any_capped(current: dict[str, Any]) -> bool:
    limits = [current["throughput"], *current["indexes"].values()]
    return current["billing_mode"] == ON_DEMAND and any(UNITS in (t[k] for k in LIMIT) for t in limits)


def clear(ctl: AwsCtl, params: dict[str, Any], saved: dict[str, Any]) -> None:
    """Put each table's saved billing mode and throughput back; say so when DynamoDB refuses the switch back."""
    stuck = {}
    for name, was in saved.items():
        try:
            restore_table(ctl, name, was)
        except AwsError as exc:
            if was["billing_mode"] != ON_DEMAND or state(ctl.describe_table(name))["billing_mode"] == ON_DEMAND:
                raise
            rescue(ctl, name)
            stuck[name] = str(exc)
    if stuck:
        raise AwsError(f"cannot switch {', '.join(stuck)} back to on-demand ({next(iter(stuck.values()))}); "
                       f"DynamoDB allows four switches to on-demand per table in 24 hours. They run PROVISIONED "
                       f"at {RESCUE_UNITS} RCU / {RESCUE_UNITS} WCU meanwhile; run `sre-workshop fault clear "
                       "dynamodb-throttling --aws` again later")


def restore_table(ctl: AwsCtl, name: str, was: dict[str, Any]) -> None:
    """Put one table's saved billing mode and throughput back, changing only what differs."""
    now = state(ctl.describe_table(name))
    if was["billing_mode"] == PROVISIONED:
        if now != was:
            updates = [{"Update": {"IndexName": i, "ProvisionedThroughput": t}} for i, t in was["indexes"].items()]
            ctl.update_table(name, BillingMode=PROVISIONED, ProvisionedThroughput=was["throughput"],
                             **({"GlobalSecondaryIndexUpdates": updates} if updates else {}))
        return
    if now["billing_mode"] != ON_DEMAND:
        ctl.update_table(name, BillingMode=ON_DEMAND)
        now = state(ctl.describe_table(name))
    if now["throughput"] != was["throughput"]:
        ctl.update_table(name, OnDemandThroughput=was["throughput"])
    for index, limit in was["indexes"].items():
        if now["indexes"].get(index) != limit:
            ctl.update_table(name, **_index_updates([index], "OnDemandThroughput", limit))


def rescue(ctl: AwsCtl, name: str) -> None:
    """Give a table stuck in PROVISIONED enough capacity for the CRM."""
    indexes = [i["IndexName"] for i in ctl.describe_table(name).get("GlobalSecondaryIndexes", [])]
    ctl.update_table(name, ProvisionedThroughput=capacity(RESCUE_UNITS),
                     **_index_updates(indexes, "ProvisionedThroughput", capacity(RESCUE_UNITS)))
