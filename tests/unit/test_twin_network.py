"""The twin's security groups on the local network: which live rules let a hop's source in (the verdict doctor
gives too), and the blackhole that drops a closed hop's SYNs (real sockets)."""

from __future__ import annotations

import socket

import pytest

from sre_workshop.diagnose.aws.network import Rule, present
from sre_workshop.twin.network import POINTS, Blackhole

VPC = "10.0.0.0/16"
FROM_NGINX = Rule("PrivateALBFromNginx", "PrivateALBSecurityGroup", "tcp", 80, 80, source="NginxSecurityGroup")
INTERNET = Rule("PublicALBSecurityGroup (HTTP)", "PublicALBSecurityGroup", "tcp", 80, 80, cidr="0.0.0.0/0")


def group(source: str, protocol: str = "tcp", low: int = 80, high: int = 80) -> dict:
    return {"IpProtocol": protocol, "FromPort": low, "ToPort": high, "UserIdGroupPairs": [{"GroupId": source}]}


def cidr(block: str, protocol: str = "tcp", low: int = 80, high: int = 80) -> dict:
    return {"IpProtocol": protocol, "FromPort": low, "ToPort": high, "IpRanges": [{"CidrIp": block}]}


@pytest.mark.parametrize(("permissions", "expected"), [
    ([group("sg-nginx")], True),
    ([group("sg-nginx", low=0, high=1024)], True),
    ([{"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": "sg-nginx"}]}], True),
    ([cidr("10.0.0.0/8")], True),  # contains the VPC, where every local source stands
    ([cidr("0.0.0.0/0")], True),
    ([], False),
    ([group("sg-other")], False),
    ([group("sg-nginx", low=1, high=1)], False),  # the rule moved to a port nothing listens on
    ([group("sg-nginx", protocol="udp")], False),
    ([cidr("10.0.1.0/24")], False),  # narrower than the VPC: no local source has an address in it
    ([cidr("not-a-cidr")], False),
])
def test_a_group_rule_lets_its_source_in(permissions, expected):
    assert present(FROM_NGINX, permissions, "sg-nginx", VPC) is expected


@pytest.mark.parametrize(("permissions", "expected"), [
    ([cidr("0.0.0.0/0")], True),
    ([cidr("0.0.0.0/0", low=0, high=65535)], True),
    ([cidr("203.0.113.0/24")], False),  # the internet's clients are not in it
    ([group("sg-nginx")], False),
    ([cidr("0.0.0.0/0", low=8080, high=8080)], False),
])
def test_a_cidr_rule_lets_the_internet_in(permissions, expected):
    assert present(INTERNET, permissions, "", VPC) is expected


def test_every_gated_hop_is_a_rule_of_the_templates_chain():
    from pathlib import Path

    from sre_workshop.diagnose.aws.network import template_rules
    from sre_workshop.diagnose.aws.template import parse

    template = Path(__file__).parents[2] / "infra" / "cloudformation" / "sre-workshop.yaml"
    rules = template_rules(parse(template.read_text())["Resources"])
    for group_name, port in POINTS:
        assert any(r.group == group_name and r.from_port <= port <= r.to_port for r in rules), (group_name, port)


def test_a_blackhole_drops_connections_they_time_out():
    hole = Blackhole()
    try:
        with pytest.raises(TimeoutError):
            socket.create_connection(("127.0.0.1", hole.port), timeout=0.5)
    finally:
        hole.close()
    with pytest.raises(ConnectionRefusedError):  # closed: the port refuses again
        socket.create_connection(("127.0.0.1", hole.port), timeout=0.5)


def test_a_blackhole_takes_a_port_whose_listener_stopped_and_gives_it_back():
    """As beside a load balancer's disabled listener: same port, SO_REUSEPORT."""
    owner = socket.socket()
    owner.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    owner.bind(("127.0.0.1", 0))
    port = owner.getsockname()[1]
    hole = Blackhole(port)  # the owner is bound but not listening (a stopped listener)
    try:
        with pytest.raises(TimeoutError):
            socket.create_connection(("127.0.0.1", port), timeout=0.5)
    finally:
        hole.close()
    owner.listen(8)
    socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    owner.close()


def test_a_blackhole_refuses_a_port_another_listener_still_serves():
    owner = socket.socket()
    owner.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    owner.bind(("127.0.0.1", 0))
    owner.listen(8)
    try:
        with pytest.raises(RuntimeError, match="another listener"):
            for _ in range(20):  # the kernel hashes each connection to one member; some reach the owner
                Blackhole(owner.getsockname()[1]).close()
    finally:
        owner.close()
