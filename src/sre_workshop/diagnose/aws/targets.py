"""ELBv2 target health of the three target groups, with the reason code and its description.

A target group with no registered target is reported as unknown, not as a finding: the template registers
one instance in each, so on AWS this is a stack in the making or taken apart, and moto registers none.
"""

from __future__ import annotations

from ...aws.control import TARGET_GROUPS, AwsControl


def read(ctl: AwsControl, unknown: dict[str, str]) -> list[dict[str, str]]:
    """Return every target as {"target_group", "target", "state", "reason"} (reason: "Code: description")."""
    client, found = ctl.client("elbv2"), []
    for logical in TARGET_GROUPS:
        described = client.describe_target_health(TargetGroupArn=ctl.physical(logical))["TargetHealthDescriptions"]
        if not described:
            unknown[f"{logical} targets"] = "no registered target: its health cannot be read"
        for target in described:
            health = target["TargetHealth"]
            reason = ": ".join(x for x in (health.get("Reason", ""), health.get("Description", "")) if x)
            where = f"{target['Target']['Id']}:{target['Target'].get('Port', '')}"
            found.append({"target_group": logical, "target": where, "state": health["State"], "reason": reason})
    return found
