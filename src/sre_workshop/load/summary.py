"""What a load run reports: per-endpoint counts, failures by status, latency percentiles and rates.

Plain data only (no Locust here), so the parent process, the CLI and other commands read it without
importing Locust. `LoadSummary.to_dict()` is the `--json` shape (documented in sre_workshop.cli.load).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class EndpointSummary:
    """One endpoint (target + method + path pattern), or the total over all of them."""

    name: str                                   # e.g. "crm GET /api/customers"
    count: int
    failures: int
    failures_by_status: dict[str, int] = field(default_factory=dict)  # "503": 4, "connection": 1
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    rps: float = 0.0
    # The part of failures_by_status that the public ALB answered itself (no target answered: the reply
    # carries no X-Request-ID echo), e.g. its 503 when the target group has no healthy target.
    public_alb_failures: dict[str, int] = field(default_factory=dict)

    def status_count(self, low: int, high: int, *, by_public_alb: bool | None = None) -> int:
        """Return the failures with an HTTP status in [low, high]: all, or only those the ALB (True) or a target
        (False) answered."""
        counts = Counter(self.failures_by_status)
        if by_public_alb is not None:
            alb = Counter(self.public_alb_failures)
            counts = alb if by_public_alb else counts - alb
        return sum(n for s, n in counts.items() if s.isdigit() and low <= int(s) <= high)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EndpointSummary:
        """Build from `asdict()`'s shape."""
        return cls(**data)


@dataclass(frozen=True)
class LoadSummary:
    """The outcome of one load run."""

    run_id: str                  # prefix of every X-Request-ID the run sent: finds its lines in the apps' logs
    targets: dict[str, str]
    users: int
    rate: float | None
    duration_s: float            # as asked
    elapsed_s: float             # as run (shorter when stopped early)
    stopped_early: bool
    flows: dict[str, int]        # user flow -> times it ran
    endpoints: list[EndpointSummary]
    total: EndpointSummary
    flow_errors: dict[str, int] = field(default_factory=dict)  # exceptions raised inside flows (bugs), by message

    @property
    def server_errors(self) -> int:
        """Return the number of 5xx answers over all endpoints."""
        return self.total.status_count(500, 599)

    def endpoint(self, name: str) -> EndpointSummary | None:
        """Return one endpoint's summary by name, or None if it saw no request."""
        return next((e for e in self.endpoints if e.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        """Return the summary as JSON-ready data."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LoadSummary:
        """Build from `to_dict()`'s shape."""
        values = dict(data)
        values["endpoints"] = [EndpointSummary.from_dict(e) for e in data["endpoints"]]
        values["total"] = EndpointSummary.from_dict(data["total"])
        return cls(**values)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}" if value >= 10 else f"{value:.1f}"


def _statuses(entry: EndpointSummary) -> str:
    """Return e.g. "503:12 (ALB 9)": per status, how many, and how many the public ALB answered itself."""
    parts = []
    for status, count in sorted(entry.failures_by_status.items()):
        alb = entry.public_alb_failures.get(status, 0)
        parts.append(f"{status}:{count}" + (f" (ALB {alb})" if alb else ""))
    return " ".join(parts) or "-"


def render_table(summary: LoadSummary) -> str:
    """Return the summary as a text table, one endpoint a row, then the total and the flows."""
    width = max([len(e.name) for e in summary.endpoints] + [len("ENDPOINT")])
    rows = [f"{'ENDPOINT':<{width}} {'COUNT':>7} {'FAIL':>6} {'P50':>6} {'P95':>6} {'P99':>6} {'RPS':>7}  "
            "FAILURES BY STATUS"]
    for e in [*summary.endpoints, summary.total]:
        rows.append(f"{e.name:<{width}} {e.count:>7} {e.failures:>6} {_ms(e.p50_ms):>6} {_ms(e.p95_ms):>6} "
                    f"{_ms(e.p99_ms):>6} {e.rps:>7.1f}  {_statuses(e)}")
    flows = ", ".join(f"{name} {count}" for name, count in sorted(summary.flows.items()))
    ended = "stopped early" if summary.stopped_early else "completed"
    rows.append(f"\n{ended} after {summary.elapsed_s:.1f}s; latencies in ms; flows run: {flows or 'none'}")
    for message, count in summary.flow_errors.items():
        rows.append(f"error inside a flow ({count}x): {message}")
    return "\n".join(rows)


@dataclass(frozen=True)
class Progress:
    """A live reading of the run so far."""

    elapsed_s: float
    duration_s: float
    requests: int
    rps: float
    failures: int
    p50_ms: float | None
    p95_ms: float | None
    users: int

    def line(self) -> str:
        """Return the one-line progress text."""
        return (f"load {self.elapsed_s:5.0f}/{self.duration_s:.0f}s  users {self.users}  requests {self.requests}  "
                f"rps {self.rps:.1f}  failures {self.failures}  p50 {_ms(self.p50_ms)} ms  p95 {_ms(self.p95_ms)} ms")
