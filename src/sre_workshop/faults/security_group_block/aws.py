"""security-group-block on AWS: the one ingress rule of the security-group chain that lets a hop in is
changed in place (ModifySecurityGroupRules) to a port nothing listens on, and changed back by clear. The
rule keeps its id: CloudFormation deletes an AWS::EC2::SecurityGroupIngress by the id it made, so a rule
revoked and authorized again (a new id) would outlive the stack's deletion and block its source group's
(DependencyViolation, DELETE_FAILED).

A revoked rule stops new connections; connections already tracked (a load balancer's keep-alive ones)
live on until they close, so the symptom can take a minute: verify polls for it.
"""

from __future__ import annotations

from typing import Any

from ...errors import ComponentFailed
from ..contract import AwsCtl
from ..model import NotYet

# hop (source->destination: the destination's inbound traffic is blocked) -> (its group, the group allowed
# in, port), as in
# the spec's chain, and where its loss shows at the public entry points.
HOPS = {"public-alb->nginx": ("NginxSecurityGroup", "PublicALBSecurityGroup", 80),
        "nginx->private-alb": ("PrivateALBSecurityGroup", "NginxSecurityGroup", 80),
        "private-alb->sre-app": ("AppServerSecurityGroup", "PrivateALBSecurityGroup", 8080),
        "public-alb->crm-app": ("CRMAppSecurityGroup", "PublicALBSecurityGroup", 8080)}
PUBLIC = {"public-alb->nginx": ("app", "/"), "nginx->private-alb": ("app", "/"), "private-alb->sre-app": ("app", "/"),
          "public-alb->crm-app": ("crm", "/health")}
# Long enough for nginx's 5 s connect timeout and a load balancer's 10 s one.
PROBE_SECONDS = 20.0
# While injected, the rule lets its source in on this port only, where nothing listens (tcpmux).
BLOCKED_PORT = 1
BLOCKED = "sre-workshop security-group-block: lets nothing in"


def rule(ctl: AwsCtl, hop: str) -> tuple[str, dict[str, Any] | None]:
    """Return the hop's group id and its chain rule as an IpPermission with the one source pair (None: gone)."""
    group_name, source_name, port = HOPS[hop]
    group, source = ctl.physical(group_name), ctl.physical(source_name)
    for permission in ctl.ingress(group):
        if (permission.get("IpProtocol"), permission.get("FromPort"), permission.get("ToPort")) != ("tcp", port, port):
            continue
        for pair in permission.get("UserIdGroupPairs", []):
            if pair.get("GroupId") == source:
                kept = {"GroupId": source, **({"Description": pair["Description"]} if pair.get("Description") else {})}
                return group, {"IpProtocol": "tcp", "FromPort": port, "ToPort": port, "UserIdGroupPairs": [kept]}
    return group, None


def chain_rule(ctl: AwsCtl, hop: str, port: int | None = None) -> tuple[str, str | None]:
    """Return the hop's group id and the id of its rule from the source group on `port` (the hop's: None)."""
    group_name, source_name, hop_port = HOPS[hop]
    group, source, wanted = ctl.physical(group_name), ctl.physical(source_name), port or hop_port
    for found in ctl.ingress_rules(group):
        if (found.get("IpProtocol"), found.get("FromPort"), found.get("ToPort")) == ("tcp", wanted, wanted) \
                and found.get("ReferencedGroupInfo", {}).get("GroupId") == source:
            return group, found["SecurityGroupRuleId"]
    return group, None


def rule_spec(source: str, port: int, description: str) -> dict[str, Any]:
    """Return a SecurityGroupRuleRequest: tcp on `port` from the `source` group (the whole rule is replaced)."""
    return {"IpProtocol": "tcp", "FromPort": port, "ToPort": port, "ReferencedGroupId": source,
            "Description": description}


def snapshot(ctl: AwsCtl, params: dict[str, Any]) -> dict[str, Any]:
    """Save the exact rule that lets the hop's traffic in, and its id."""
    group, permission = rule(ctl, params["hop"])
    _, rule_id = chain_rule(ctl, params["hop"])
    if permission is None or rule_id is None:
        raise ComponentFailed(f"{HOPS[params['hop']][0]} ({group}) has no rule from {HOPS[params['hop']][1]}: "
                              "put it back first")
    return {"group_id": group, "rule_id": rule_id, "permission": permission}


def inject(ctl: AwsCtl, params: dict[str, Any]) -> None:
    """Move the rule to BLOCKED_PORT: new connections into the hop are dropped (they time out, not refused)."""
    group, rule_id = chain_rule(ctl, params["hop"])
    if rule_id is not None:
        source = ctl.physical(HOPS[params["hop"]][1])
        ctl.modify_rule(group, rule_id, rule_spec(source, BLOCKED_PORT, BLOCKED))


def verify(ctl: AwsCtl, params: dict[str, Any]) -> str:
    """Evidence: the rule lets nothing in and the hop's public entry point fails (503, 504 or a timeout)."""
    group, permission = rule(ctl, params["hop"])
    if permission is not None:
        raise NotYet(f"the rule of {group} is still there")
    entry, path = PUBLIC[params["hop"]]
    status, seconds = ctl.probe(entry, path, timeout=PROBE_SECONDS)
    if status == 200:
        raise NotYet(f"GET {ctl.url(entry, path)} still answers 200 (tracked connections live on)")
    return (f"{HOPS[params['hop']][0]} ({group}) lets nothing in from {HOPS[params['hop']][1]}; "
            f"GET {ctl.url(entry, path)} answers {status or 'nothing'} after {seconds:.1f}s")


def active(ctl: AwsCtl, params: dict[str, Any]) -> bool:
    """True while the hop's chain rule is missing."""
    return rule(ctl, params["hop"])[1] is None


def clear(ctl: AwsCtl, params: dict[str, Any], saved: dict[str, Any]) -> None:
    """Change the saved rule back, keeping its id; a copy made by hand meanwhile is revoked first (it would
    be a duplicate, and one CloudFormation does not know of). A rule deleted by hand is authorized again."""
    group, permission = saved["group_id"], saved["permission"]
    live = {r["SecurityGroupRuleId"] for r in ctl.ingress_rules(group)}
    if saved.get("rule_id") not in live:  # gone, or recorded before rules kept their ids
        ctl.authorize_ingress(group, permission)
        return
    _, copy = chain_rule(ctl, params["hop"])
    if copy == saved["rule_id"]:
        return  # never blocked, or cleared already
    if copy is not None:
        ctl.revoke_rule(group, copy)
    pair = permission["UserIdGroupPairs"][0]
    ctl.modify_rule(group, saved["rule_id"], rule_spec(pair["GroupId"], permission["FromPort"],
                                                       pair.get("Description", "")))
