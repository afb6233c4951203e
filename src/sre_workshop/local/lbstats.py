"""Read target health from a local load balancer (HAProxy) over its runtime API socket."""

from __future__ import annotations

import csv
import io
import os
import socket
from dataclasses import dataclass
from pathlib import Path

# A target the load balancer was told to leave alone: HAProxy's admin state -> the ALB's state and reason.
MAINTENANCE = ("unused", "Target.NotInUse: Target is in maintenance and receives no traffic")
DRAINING = ("draining", "Target.DeregistrationInProgress: Target deregistration is in progress")
DEREGISTERED = ("unused", "Target.NotRegistered: Target is not registered to the target group")
ADMIN = {"Target.NotInUse": "in maintenance", "Target.DeregistrationInProgress": "draining",
         "Target.NotRegistered": "deregistered"}


@dataclass(frozen=True)
class TargetHealth:
    """One target of a target group, as the ALB's DescribeTargetHealth would show it."""

    target_group: str
    target: str
    state: str  # healthy, unhealthy, initial (still being checked), unused (no check, or in maintenance), draining
    reason: str  # HAProxy's check text; a target taken out of service: the ALB's reason code and description

    @property
    def out_of_service(self) -> str:
        """How the target was taken out of service ("in maintenance", "draining", "deregistered"), or ""."""
        return ADMIN.get(self.reason.split(":", 1)[0], "")

    def to_dict(self) -> dict[str, str]:
        """Return the target as a JSON-ready dict."""
        return {"target_group": self.target_group, "target": self.target, "state": self.state,
                "reason": self.reason}


def command(sock_path: Path, line: str, timeout: float = 2.0) -> str:
    """Send one runtime API command and return the whole answer."""
    # A unix socket's path may not exceed 107 bytes, and a state dir can be deeper than that: connecting
    # through a descriptor of the socket's directory keeps the path short whatever the depth (Linux).
    directory = os.open(sock_path.parent, os.O_PATH | os.O_DIRECTORY)
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(f"/proc/self/fd/{directory}/{sock_path.name}")
            sock.sendall(line.encode() + b"\n")
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
    finally:
        os.close(directory)
    return b"".join(chunks).decode()


def target_health(sock_path: Path, registered: dict[str, list[str]] | None = None) -> list[TargetHealth]:
    """Return the health of every server (target) of every backend (target group); with `registered` (the
    targets its configuration registers, by group), each one the load balancer no longer has is deregistered."""
    rows = csv.DictReader(io.StringIO(command(sock_path, "show stat").lstrip("# ")))
    targets = []
    for row in rows:
        if row.get("svname") in ("FRONTEND", "BACKEND", None):
            continue
        state, reason = admin_state(row) or (row_state(row), row.get("check_desc") or row.get("check_status") or "")
        targets.append(TargetHealth(row["pxname"], row["svname"], state, reason))
    present = {(t.target_group, t.target) for t in targets}
    for group, servers in (registered or {}).items():
        targets += [TargetHealth(group, s, *DEREGISTERED) for s in servers if (group, s) not in present]
    return targets


def admin_state(row: dict[str, str]) -> tuple[str, str] | None:
    """The ALB's state and reason of a target taken out of service (maintenance, draining), else None."""
    status = row.get("status", "")
    if status.startswith("MAINT"):
        return MAINTENANCE
    if status.startswith("DRAIN") or status == "NOLB":
        return DRAINING
    return None


def registered(config: str) -> dict[str, list[str]]:
    """Return the servers each backend of an HAProxy configuration declares (its registered targets)."""
    found: dict[str, list[str]] = {}
    backend = None
    for line in config.splitlines():
        words = line.split()
        if words[:1] in (["backend"], ["listen"]) and len(words) > 1:
            backend = words[1]
        elif words[:1] in (["frontend"], ["defaults"], ["global"]):
            backend = None
        elif words[:1] == ["server"] and backend and len(words) > 1:
            found.setdefault(backend, []).append(words[1])
    return found


def row_state(row: dict[str, str]) -> str:
    """Map HAProxy's status to the ALB's vocabulary."""
    status = row.get("status", "")
    if status == "no check":
        return "unused"
    if status.startswith("UP") and row.get("check_status", "").startswith("L7OK"):
        return "healthy"
    if status.startswith("UP"):
        return "initial"  # HAProxy starts targets UP before the first check; an ALB would not
    return "unhealthy"
