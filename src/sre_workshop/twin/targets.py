"""The target groups' registrations, live on the local ALBs, and DescribeTargetHealth from their state.

moto knows which targets are registered (it validates the call and lists them); their health is read from
the local ALBs (HAProxy's runtime API: each backend is a target group named by its logical id, each server a
target named by its instance's logical id) and written into moto's answer.

Registration is enforced, as an ALB does it: DeregisterTargets puts the target's server in maintenance (the
balancer sends it nothing), RegisterTargets makes it ready again, and `enforce` keeps every server whose target
moto does not register in maintenance (an ALB restarted from its configuration gets its servers back; the
API's registrations win). A deregistered target is then not listed, as on AWS once its draining is over (the
twin does not hold it in `draining` for the deregistration delay).
"""

from __future__ import annotations

import csv
import io
import logging
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable
from pathlib import Path

from ..local import lbstats
from .protocol import Call

logger = logging.getLogger(__name__)

# HAProxy's check status -> the ALB's reason and description for an unhealthy target.
REASONS = {
    "L4TOUT": ("Target.Timeout", "Request timed out"),
    "L7TOUT": ("Target.Timeout", "Request timed out"),
    "L7STS": ("Target.ResponseCodeMismatch", "Health checks failed with these codes: [{code}]"),
    "L4CON": ("Target.FailedHealthChecks", "Health checks failed"),
    "L7RSP": ("Target.FailedHealthChecks", "Health checks failed"),
    "SOCKERR": ("Target.FailedHealthChecks", "Health checks failed"),
}


def health(row: dict[str, str]) -> tuple[str, str | None, str | None]:
    """Return (state, reason, description) of one HAProxy server row, in the ALB's vocabulary."""
    status, check = row.get("status", ""), row.get("check_status", "").lstrip("* ")
    if status.startswith("MAINT"):
        return "unused", "Target.NotInUse", "Target is in maintenance and receives no traffic"
    if status.startswith("DRAIN") or status == "NOLB":
        return "draining", "Target.DeregistrationInProgress", "Target deregistration is in progress"
    if status == "no check":
        return "unavailable", "Elb.InternalError", "Health checks are not running"
    if check.startswith("INI") or (status.startswith("UP") and not check.startswith("L7OK")):
        return "initial", "Elb.InitialHealthChecking", "Initial health checks in progress"
    if status.startswith("UP"):
        return "healthy", None, None
    reason, description = REASONS.get(check, ("Target.FailedHealthChecks", "Health checks failed"))
    return "unhealthy", reason, description.format(code=row.get("check_code") or "unknown")


def live_rows(sockets: list[Path]) -> dict[tuple[str, str], dict[str, str]]:
    """Return HAProxy's server rows by (target group logical id, instance logical id), and each live target
    group's own row by (its logical id, ""); an ALB down gives none."""
    rows = {}
    for sock in sockets:
        try:
            text = lbstats.command(sock, "show stat")
        except OSError:
            continue
        for row in csv.DictReader(io.StringIO(text.lstrip("# "))):
            if row.get("svname") == "BACKEND":  # the target group is live, whatever servers it has left
                rows[(row["pxname"], "")] = row
            elif row.get("svname") not in ("FRONTEND", None):
                rows[(row["pxname"], row["svname"])] = row
    return rows


def rewrite(call: Call, answer: tuple, sockets: list[Path], logical_of: Callable[[str], str | None]) -> tuple:
    """Put the live health of each target into moto's DescribeTargetHealth answer."""
    status, headers, body = answer
    group = logical_of(call.params.get("TargetGroupArn", ""))
    rows = live_rows(sockets)
    root = ET.fromstring(body)  # noqa: S314 - moto's own answer, made in this process
    namespace = root.tag.split("}")[0] + "}" if root.tag.startswith("{") else ""
    for member in root.iter(f"{namespace}member"):
        target_id = member.findtext(f"{namespace}Target/{namespace}Id")
        health_node = member.find(f"{namespace}TargetHealth")
        if target_id is None or health_node is None:
            continue
        row = rows.get((group or "", logical_of(target_id) or ""))
        if row:
            state, reason, description = health(row)
        elif (group or "", "") in rows:  # the load balancer answers without this target: taken out of its group
            state, reason, description = ("unused", "Target.NotRegistered",
                                          "Target is not registered to the target group")
        else:
            state, reason, description = "unavailable", "Elb.InternalError", "The load balancer does not answer"
        for child in list(health_node):
            health_node.remove(child)
        for tag, text in (("State", state), ("Reason", reason), ("Description", description)):
            if text:
                ET.SubElement(health_node, f"{namespace}{tag}").text = text
    if namespace:
        ET.register_namespace("", namespace.strip("{}"))
    return status, headers, ET.tostring(root, xml_declaration=True, encoding="utf-8")


TARGET_ID = re.compile(r"^Targets\.member\.\d+\.Id$")


def follow(call: Call, answer: tuple, sockets: list[Path], logical_of: Callable[[str], str | None]) -> tuple:
    """After moto accepted a RegisterTargets or DeregisterTargets: make the ALB's server ready, or put it in
    maintenance."""
    if answer[0] != 200:
        return answer
    state = "ready" if call.operation == "RegisterTargets" else "maint"
    group = logical_of(call.params.get("TargetGroupArn", ""))
    instances = [logical_of(v) for k, v in call.params.items() if TARGET_ID.match(k)]
    if group:
        _set_state(sockets, [(group, i) for i in instances if i], state)
    return answer


def enforce(sockets: list[Path], registered: dict[str, set[str]]) -> None:
    """Put in maintenance every live server whose target group (by logical id, in `registered`) does not
    register its instance; servers of groups moto does not know are left alone."""
    rows = live_rows(sockets)
    stray = [(group, server) for (group, server), row in rows.items()
             if server and group in registered and server not in registered[group]
             and not row.get("status", "").startswith("MAINT")]
    if stray:
        logger.info("servers not registered in the API put in maintenance: %s", stray)
        _set_state(sockets, stray, "maint")


def _set_state(sockets: list[Path], servers: Iterable[tuple[str, str]], state: str) -> None:
    for group, server in servers:
        for sock in sockets:  # the group lives on one of the two ALBs: the other answers "No such backend"
            try:
                said = lbstats.command(sock, f"set server {group}/{server} state {state}").strip()
            except OSError as exc:
                logger.warning("%s: set server %s/%s state %s: %s", sock.name, group, server, state, exc)
                continue
            if not said:
                break
