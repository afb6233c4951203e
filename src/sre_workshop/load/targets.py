"""Where load may go: the stack's public entry points, and nothing else.

Load is only ever sent to loopback (the local stack) or to the public ALB of the workshop's own
CloudFormation stack; any other host is refused before a request is made.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from ..errors import ComponentFailed, UsageError
from ..settings import Settings

TARGET_CHOICES = ("app", "crm", "both")
ENTRY_POINTS = ("app", "crm")  # the public ALB's listener 80 (sre-app via nginx) and 8080 (crm-app)


@dataclass(frozen=True)
class Targets:
    """The base URLs load goes to, by entry point ("app", "crm"), and the ALB hosts allowed besides loopback."""

    urls: dict[str, str]
    alb_hosts: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        if not self.urls:
            raise UsageError("no target: choose --target app, crm or both")
        for name, url in self.urls.items():
            if name not in ENTRY_POINTS:
                raise UsageError(f"unknown target {name!r}: choose app, crm or both")
            check_url(url, self.alb_hosts)
        # Base URLs without the trailing slash: the flows append absolute paths ("/api/customers").
        object.__setattr__(self, "urls", {name: url.rstrip("/") for name, url in self.urls.items()})

    def only(self, which: str) -> Targets:
        """Return these targets narrowed to `which` (app, crm or both)."""
        names = ENTRY_POINTS if which == "both" else (parse_target(which),)
        return Targets({n: self.urls[n] for n in names if n in self.urls}, self.alb_hosts)

    def to_dict(self) -> dict:
        """Return the targets as plain data (for the child process and --json)."""
        return {"urls": dict(self.urls), "alb_hosts": sorted(self.alb_hosts)}

    @classmethod
    def from_dict(cls, data: dict) -> Targets:
        """Build targets from `to_dict()`'s shape, checking every host again."""
        return cls(dict(data["urls"]), frozenset(data.get("alb_hosts", ())))


def parse_target(value: str) -> str:
    """Return `value` if it names app, crm or both; raise UsageError otherwise."""
    if value not in TARGET_CHOICES:
        raise UsageError(f"--target must be app, crm or both, not {value!r}")
    return value


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses (127.0.0.0/8, ::1)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_url(url: str, alb_hosts: frozenset[str]) -> None:
    """Raise UsageError unless `url` is http(s) on loopback or on one of the stack's ALB DNS names."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("http", "https") or not host:
        raise UsageError(f"not an http URL: {url!r}")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise UsageError(f"a target is a base URL (scheme://host:port), not {url!r}")
    if not (is_loopback(host) or host in {h.lower() for h in alb_hosts}):
        raise UsageError(f"refusing to send load to {host}: only loopback or the stack's own ALB")


def local_targets(settings: Settings, which: str = "both") -> Targets:
    """Return the local stack's public entry points (Settings.endpoints), narrowed to `which`."""
    return Targets(dict(settings.endpoints)).only(which)


def check_reachable(targets: Targets, hint: str, timeout: float = 3.0) -> None:
    """Raise ComponentFailed naming the first entry point that refuses connections, with `hint`."""
    for name, url in targets.urls.items():
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            socket.create_connection((parts.hostname, port), timeout=timeout).close()
        except OSError as exc:
            raise ComponentFailed(f"nothing answers at {url} ({name}): {exc.strerror or exc}; {hint}") from None
