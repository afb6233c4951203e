"""The knobs of a load run, parsed and checked before anything starts."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

from ..errors import UsageError

MAX_DURATION_S = 24 * 3600.0  # load is always bounded; a day is more than any exercise needs
MAX_USERS = 1000
MAX_RATE = 10_000.0
UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")


def parse_duration(text: str) -> float:
    """Return seconds for '90', '60s', '2m', '1h', '1m30s' or '500ms'; raise UsageError otherwise."""
    value = text.strip().lower()
    if re.fullmatch(r"\d+(?:\.\d+)?", value):
        seconds = float(value)
    elif value and _PART.sub("", value) == "":
        seconds = sum(float(n) * UNIT_SECONDS[u] for n, u in _PART.findall(value))
    else:
        raise UsageError(f"--duration: {text!r} is not a duration (e.g. 90, 60s, 2m, 1m30s)")
    if not 0 < seconds <= MAX_DURATION_S:
        raise UsageError(f"--duration must be more than 0 and at most 24h, not {text!r}")
    return seconds


@dataclass(frozen=True)
class LoadOptions:
    """How much load, for how long: users, an optional total request rate, a bounded duration."""

    users: int = 10
    rate: float | None = None       # total requests per second over all users; None: users with think time
    duration_s: float = 60.0
    web_port: int | None = None     # Locust's web UI on 127.0.0.1:web_port instead of headless
    spawn_rate: float | None = None  # users started per second; None: all within the first second

    def __post_init__(self) -> None:
        if not 1 <= self.users <= MAX_USERS:
            raise UsageError(f"--users must be between 1 and {MAX_USERS}, not {self.users}")
        if self.rate is not None and not 0 < self.rate <= MAX_RATE:
            raise UsageError(f"--rate must be more than 0 and at most {MAX_RATE:.0f} requests/s, not {self.rate}")
        if not 0 < self.duration_s <= MAX_DURATION_S:
            raise UsageError(f"--duration must be more than 0 and at most 24h, not {self.duration_s}s")
        if self.web_port is not None and not 1 <= self.web_port <= 65535:
            raise UsageError(f"web port out of range: {self.web_port}")

    def to_dict(self) -> dict:
        """Return the options as plain data (for the child process)."""
        return asdict(self)
