"""ELBv2 target health of the three target groups, with the reason code and its description, against the
targets the deployed template registers.

A target the template registers that the group does not list was deregistered (on AWS CloudFormation registers
every target of the template; a target being deregistered is listed as draining until its delay is over): it
is reported as AWS reports an unregistered target (unused, Target.NotRegistered), with `"registered": "no"`,
so its repair is to register it again. A group whose template entry names no target and that lists none is
unknown: its health cannot be read.
"""

from __future__ import annotations

from typing import Any

from ...aws.control import TARGET_GROUPS, AwsControl
from . import template

NOT_REGISTERED = "Target.NotRegistered: Target is not registered to the target group"


def read(ctl: AwsControl, unknown: dict[str, str]) -> list[dict[str, str]]:
    """Return every target as {"target_group", "target", "state", "reason", "registered", "target_group_arn"}
    (reason: "Code: description"; registered: "yes" when the group lists it, "no" for one of the template's
    that it does not)."""
    client, found = ctl.client("elbv2"), []
    expected = template_targets(ctl, template.resources(ctl))
    for logical in TARGET_GROUPS:
        arn = ctl.physical(logical)
        described = client.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]
        listed = set()
        for target in described:
            health = target["TargetHealth"]
            reason = ": ".join(x for x in (health.get("Reason", ""), health.get("Description", "")) if x)
            listed.add(target["Target"]["Id"])
            where = f"{target['Target']['Id']}:{target['Target'].get('Port', '')}"
            found.append({"target_group": logical, "target": where, "state": health["State"], "reason": reason,
                          "registered": "yes", "target_group_arn": arn})
        missing = [(i, port) for i, port in expected.get(logical, []) if i not in listed]
        for instance, port in missing:
            found.append({"target_group": logical, "target": f"{instance}:{port}", "state": "unused",
                          "reason": NOT_REGISTERED, "registered": "no", "target_group_arn": arn})
        if not described and not missing:
            unknown[f"{logical} targets"] = "no registered target: its health cannot be read"
    return found


def template_targets(ctl: AwsControl, resources: dict[str, Any]) -> dict[str, list[tuple[str, str]]]:
    """Return the (instance id, port) pairs each target group's template entry registers (`Targets` with `Id:
    !Ref Instance`)."""
    found: dict[str, list[tuple[str, str]]] = {}
    for logical in TARGET_GROUPS:
        for target in resources.get(logical, {}).get("Properties", {}).get("Targets", []) or []:
            ref = target.get("Id")
            if isinstance(ref, dict) and "Ref" in ref:
                found.setdefault(logical, []).append((ctl.physical(ref["Ref"]), str(target.get("Port", ""))))
    return found
