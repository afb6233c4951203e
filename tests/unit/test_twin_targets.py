"""The twin's target registrations on the local ALBs: what runtime-API commands follow an accepted
RegisterTargets / DeregisterTargets, and which servers enforcement puts in maintenance."""

from __future__ import annotations

from pathlib import Path

from sre_workshop.twin import targets
from sre_workshop.twin.protocol import Call

LOGICAL = {"arn:tg/private": "PrivateALBTargetGroup", "i-0app": "AppServerInstance1"}
SOCKETS = [Path("/run/public-alb.sock"), Path("/run/private-alb.sock")]


def commands(monkeypatch) -> list[tuple[str, str]]:
    """Record each runtime-API command; only the private ALB has PrivateALBTargetGroup."""
    sent: list[tuple[str, str]] = []

    def command(sock: Path, line: str, timeout: float = 2.0) -> str:
        sent.append((sock.name, line))
        return "" if sock.name == "private-alb.sock" or "PrivateALB" not in line else "No such backend.\n"

    monkeypatch.setattr(targets.lbstats, "command", command)
    return sent


def call(operation: str) -> Call:
    return Call("elasticloadbalancing", operation, "query", "AKIA", "us-east-1", b"",
                {"TargetGroupArn": "arn:tg/private", "Targets.member.1.Id": "i-0app",
                 "Targets.member.1.Port": "8080"})


def test_an_accepted_deregistration_puts_the_server_in_maintenance_and_a_registration_makes_it_ready(monkeypatch):
    sent = commands(monkeypatch)
    answer = (200, {}, b"<ok/>")
    assert targets.follow(call("DeregisterTargets"), answer, SOCKETS, LOGICAL.get) is answer
    assert sent[-1] == ("private-alb.sock", "set server PrivateALBTargetGroup/AppServerInstance1 state maint")
    targets.follow(call("RegisterTargets"), answer, SOCKETS, LOGICAL.get)
    assert sent[-1] == ("private-alb.sock", "set server PrivateALBTargetGroup/AppServerInstance1 state ready")
    sent.clear()
    targets.follow(call("DeregisterTargets"), (400, {}, b"<error/>"), SOCKETS, LOGICAL.get)
    assert sent == []  # a call moto refused changes nothing


def test_enforcement_puts_only_servers_the_api_does_not_register_in_maintenance(monkeypatch):
    sent = commands(monkeypatch)
    rows = {("PrivateALBTargetGroup", ""): {"status": "UP"},
            ("PrivateALBTargetGroup", "AppServerInstance1"): {"status": "UP"},
            ("PublicALBTargetGroup", "NginxInstance1"): {"status": "UP"},
            ("CRMAppTargetGroup", "CRMAppInstance"): {"status": "MAINT"}}
    monkeypatch.setattr(targets, "live_rows", lambda sockets: rows)
    targets.enforce(SOCKETS, {"PrivateALBTargetGroup": {"AppServerInstance1"}, "PublicALBTargetGroup": set(),
                              "CRMAppTargetGroup": set()})
    # registered: left alone; not registered: maintenance; already in maintenance: nothing to send
    assert [line for _, line in sent] == ["set server PublicALBTargetGroup/NginxInstance1 state maint"]
    sent.clear()
    targets.enforce(SOCKETS, {})  # groups moto does not know: left alone
    assert sent == []
