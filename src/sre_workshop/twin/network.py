"""The security-group chain, enforced on the local stack's real connections from the twin's live rules.

Each ingress rule the template makes gates the hop it stands for. A hop is open while a live rule of its
destination group lets in what the template's rule does: from the source group (UserIdGroupPairs), or from
a CIDR that contains the template's (a group's rule: the VPC's CIDR, where every local source stands), on a
protocol and port range covering the port. A narrower CIDR lets no local source in: loopback clients have
no address of their own in the VPC or on the internet. IPv6 ranges and prefix lists are not looked at, nor
egress rules (the template keeps AWS's allow-all egress), nor port 443 (no local listener). The verdict is
diagnose/aws/network.present, the one doctor gives on AWS: a hop is closed exactly when doctor finds its rule
missing.

Loopback has no packet filter an unprivileged user can set, so a closed hop is made where its connections
are opened or accepted, through the load balancers' runtime API (nothing restarts, nothing in any config
file changes, as a revoked rule changes nothing on the instances):
- a load balancer's connections to a target (public ALB -> nginx, private ALB -> sre-app, public ALB ->
  CRM): the server moves to a blackhole, a listener of this process whose accept queue is kept full, so the
  kernel drops every SYN and connects time out, the health checks' with them;
- connections into a load balancer (nginx -> private ALB, the internet -> the public ALB's listeners): its
  listener stops (`disable frontend`) and a blackhole takes its port beside it (SO_REUSEPORT, which HAProxy
  binds with), so the kernel drops new SYNs there too. (Not `set maxconn frontend 0` with a filled queue:
  HAProxy 2.6 deadlocks when such a listener resumes, haproxy/haproxy#2726.)
Opened again, the server moves back to its target's port, or the blackhole closes and the listener starts
again (the port refuses for the millisecond between). Connections made before the change live on, as AWS's
connection tracking keeps them.

The wire re-reads the rules at each control-plane change the twin makes and every POLL_S, and applies a
hop's state again within WATCH_S of its load balancer starting (a new runtime socket). Limits: while the
twin is down the load balancers keep the last state (a blackhole that closed with the twin refuses instead
of dropping); a load balancer that restarts is open for up to WATCH_S, long enough for its first health
check to pass (so `up` can call a target healthy that turns unhealthy a few checks later).
"""

from __future__ import annotations

import logging
import select
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

from ..diagnose.aws.network import present, template_rules, vpc_cidr
from ..diagnose.aws.template import parse
from ..local import lbstats
from ..local.components import LOCAL_CREDENTIALS
from ..settings import LOOPBACK, Settings

logger = logging.getLogger(__name__)

POLL_S = 5.0  # a safety net: the twin wakes the wire at each control-plane change
WATCH_S = 0.1


@dataclass(frozen=True)
class Server:
    """A hop a load balancer opens: its connections to one target."""

    balancer: str
    backend: str
    server: str
    destination: str  # the component the target is


@dataclass(frozen=True)
class Listener:
    """A hop into a load balancer: the connections its listener accepts."""

    balancer: str
    frontend: str
    port_of: str  # the settings' name of the port it listens on


# (destination group, port) -> where the hop is gated locally; the template says who may connect.
POINTS: dict[tuple[str, int], Server | Listener] = {
    ("NginxSecurityGroup", 80): Server("public-alb", "PublicALBTargetGroup", "NginxInstance1", "nginx"),
    ("AppServerSecurityGroup", 8080): Server("private-alb", "PrivateALBTargetGroup", "AppServerInstance1", "sre-app"),
    ("CRMAppSecurityGroup", 8080): Server("public-alb", "CRMAppTargetGroup", "CRMAppInstance", "crm-app"),
    ("PrivateALBSecurityGroup", 80): Listener("private-alb", "listener_80", "private-alb"),
    ("PublicALBSecurityGroup", 80): Listener("public-alb", "listener_80", "public-alb"),
    ("PublicALBSecurityGroup", 8080): Listener("public-alb", "listener_8080", "public-alb-crm"),
}


class Blackhole:
    """A loopback listener whose one place in its accept queue is taken: every SYN to it is dropped.

    On a port of its own, or on a load balancer's port while its listener is stopped (with SO_REUSEPORT, as
    HAProxy binds: the kernel hands each new connection to a listening member of the port's group)."""

    def __init__(self, port: int = 0) -> None:
        self.listener = socket.socket()
        try:
            self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            self.listener.bind((LOOPBACK, port))
            self.listener.listen(0)
            self.filler = socket.create_connection(self.listener.getsockname(), timeout=1)
            if not select.select([self.listener], [], [], 0.5)[0]:
                self.filler.close()
                raise RuntimeError(f"another listener took the blackhole's connection on port {port}")
        except BaseException:
            self.listener.close()
            raise
        self.port = self.listener.getsockname()[1]

    def close(self) -> None:
        self.filler.close()
        self.listener.close()


class Wire:
    """Keeps the load balancers' hops as the twin's security groups say; run() on a daemon thread."""

    def __init__(self, settings: Settings, physical: dict[str, str], url: str) -> None:
        self.settings, self.physical, self.url = settings, physical, url
        resources = parse((settings.infra_dir / "cloudformation" / "sre-workshop.yaml").read_text())["Resources"]
        self.vpc_cidr = vpc_cidr(resources)
        self.rules = {key: [r for r in template_rules(resources) if r.group == key[0]
                            and r.from_port <= key[1] <= r.to_port] for key in POINTS}
        self.wake = threading.Event()
        self.stopping = threading.Event()
        self.blackhole: Blackhole | None = None  # the targets' (one for all)
        self.holes: dict[tuple[str, int], Blackhole] = {}  # the listeners', on their ports
        self.applied: dict[tuple[str, int], tuple[bool, int]] = {}  # -> (open, its balancer's socket inode)
        self._client: Any = None

    def run(self) -> None:
        """Apply the rules until stopped: read them at each change and every POLL_S, and look every WATCH_S
        for a load balancer that started (it must be told before its first health check passes)."""
        verdicts: dict[tuple[str, int], bool] | None = None
        read_at = 0.0
        while not self.stopping.is_set():
            woken = self.wake.is_set()
            self.wake.clear()
            try:
                if verdicts is None or woken or time.monotonic() - read_at >= POLL_S:
                    verdicts, read_at = self.verdicts(), time.monotonic()
                self.apply(verdicts)
            except Exception:
                logger.exception("could not apply the security groups to the local network; trying again")
                verdicts = None
            self.wake.wait(WATCH_S)

    def stop(self) -> None:
        """End run() (the load balancers keep the last state)."""
        self.stopping.set()
        self.wake.set()

    def verdicts(self) -> dict[tuple[str, int], bool]:
        """Return, per gated hop, whether the live rules let its source in."""
        groups = sorted({self.physical[group] for group, _ in POINTS})
        live = {g["GroupId"]: g.get("IpPermissions", [])
                for g in self.client().describe_security_groups(GroupIds=groups)["SecurityGroups"]}
        return {key: all(present(r, live.get(self.physical[key[0]], []), self.physical.get(r.source, ""),
                                 self.vpc_cidr) for r in rules)
                for key, rules in self.rules.items()}

    def apply(self, verdicts: dict[tuple[str, int], bool]) -> None:
        """Make each hop open or closed as its verdict says, where it is not already (a load balancer that
        started again since, a new runtime socket, is told again)."""
        for key, is_open in verdicts.items():
            point = POINTS[key]
            sock = self.settings.run_dir / f"{point.balancer}.sock"
            try:
                inode = sock.stat().st_ino
            except FileNotFoundError:
                self.applied.pop(key, None)  # not running: it starts open, as its config says
                continue
            if self.applied.get(key) == (is_open, inode):
                continue
            if isinstance(point, Server):
                self._server(sock, point, is_open)
            else:
                self._listener(sock, key, point, is_open)
            self.applied[key] = (is_open, inode)
            logger.debug("security groups: %s port %d is %s", key[0], key[1], "open" if is_open else "closed")

    def _server(self, sock: Path, point: Server, is_open: bool) -> None:
        if is_open:
            port = self.settings.port(point.destination)
        else:
            self.blackhole = self.blackhole or Blackhole()
            port = self.blackhole.port
        answer = lbstats.command(sock, f"set server {point.backend}/{point.server} addr {LOOPBACK} port {port}")
        if "changed" not in answer and "no need to change" not in answer:
            raise RuntimeError(f"{point.balancer} refused to move {point.server}: {answer.strip()[:200]}")

    def _listener(self, sock: Path, key: tuple[str, int], point: Listener, is_open: bool) -> None:
        hole = self.holes.pop(key, None)
        if hole:
            hole.close()
        _command(sock, f"{'enable' if is_open else 'disable'} frontend {point.frontend}")
        if not is_open:
            self.holes[key] = Blackhole(self.settings.port(point.port_of))

    def client(self) -> Any:
        """The twin's EC2 API, as the stack's own tools call it."""
        if self._client is None:
            session = boto3.session.Session(region_name=self.settings.region,
                                            **{k.lower(): v for k, v in LOCAL_CREDENTIALS.items()})
            self._client = session.client("ec2", endpoint_url=self.url)
        return self._client


def _command(sock: Path, line: str) -> None:
    """Send a runtime API command that answers nothing when it succeeds (or that it is done already)."""
    answer = lbstats.command(sock, line).strip()
    if answer and "already" not in answer:
        raise RuntimeError(f"{line}: {answer[:200]}")
