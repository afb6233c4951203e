"""security-group-block on AWS: the one ingress rule of the security-group chain that lets a hop in is
revoked; the exact rule (protocol, ports, source group, description) is saved and re-authorized by clear.

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


def snapshot(ctl: AwsCtl, params: dict[str, Any]) -> dict[str, Any]:
    """Save the exact rule that lets the hop's traffic in."""
    group, permission = rule(ctl, params["hop"])
    if permission is None:
        raise ComponentFailed(f"{HOPS[params['hop']][0]} ({group}) has no rule from {HOPS[params['hop']][1]}: "
                              "put it back first")
    return {"group_id": group, "permission": permission}


def inject(ctl: AwsCtl, params: dict[str, Any]) -> None:
    """Revoke the rule: new connections into the hop are dropped (they time out, they are not refused)."""
    group, permission = rule(ctl, params["hop"])
    if permission is not None:
        pair = {"GroupId": permission["UserIdGroupPairs"][0]["GroupId"]}
        ctl.revoke_ingress(group, {**permission, "UserIdGroupPairs": [pair]})


def verify(ctl: AwsCtl, params: dict[str, Any]) -> str:
    """Evidence: the rule is gone and the hop's public entry point fails (503, 504 or a timeout)."""
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
    """Authorize exactly the saved rule again (nothing to do if it is there)."""
    ctl.authorize_ingress(saved["group_id"], saved["permission"])
