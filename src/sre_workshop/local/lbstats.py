"""Read target health from a local load balancer (HAProxy) over its runtime API socket."""

from __future__ import annotations

import csv
import io
import os
import socket
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class TargetHealth:
    """One target of a target group, as the ALB's DescribeTargetHealth would show it."""

    target_group: str
    target: str
    state: str  # healthy, unhealthy, initial (still being checked), unused (no check)
    reason: str

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


def target_health(sock_path: Path) -> list[TargetHealth]:
    """Return the health of every server (target) of every backend (target group)."""
    rows = csv.DictReader(io.StringIO(command(sock_path, "show stat").lstrip("# ")))
    targets = []
    for row in rows:
        if row.get("svname") in ("FRONTEND", "BACKEND", None):
            continue
        targets.append(TargetHealth(row["pxname"], row["svname"], row_state(row),
                                    row.get("check_desc") or row.get("check_status") or ""))
    return targets


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
