"""What doctor sees (Observations, the same shape in both worlds) and what it says (Findings).

The import rule that keeps scoring honest: nothing under diagnose/ imports faults/, scenarios/ or the
incident ledger, and nothing reads the stack state's fault records or overlays. Observations come from
symptoms only: probes, target health, processes, logs, metrics and configs against their templates.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ..vocabulary import layer_of

SEVERITY_RANK = {"critical": 3, "major": 2, "minor": 1}
# Keys of Observations.metrics that the rules read (CloudWatch sums over the window; AWS only).
METRIC_THROTTLED = "DynamoDB ThrottledRequests"
METRIC_THROTTLE_EVENTS = "DynamoDB read/write throttle events"
METRIC_USER_ERRORS = "DynamoDB UserErrors"


@dataclass
class Probe:
    """One HTTP (or DynamoDB) request to one hop, as doctor made it."""

    name: str  # e.g. "nginx /" : the hop's component and what was asked
    component: str
    url: str
    status: int  # 0: nothing answered (refused, timed out)
    seconds: float
    error: str = ""  # refused | reset | timeout | dns | unreachable, or the error code in the answer's body

    @property
    def ok(self) -> bool:
        """True for a 200 that came quickly."""
        return self.status == 200 and self.seconds < 1.0

    def describe(self) -> str:
        """One line: what was asked and what came back."""
        answer = f"{self.status}" if self.status else (self.error or "no answer")
        extra = f" ({self.error})" if self.status and self.error else ""
        return f"{self.name}: {answer}{extra} in {self.seconds * 1000:.0f} ms"


@dataclass
class ComponentState:
    """A component's processes as `ps` and `systemctl status` would show them."""

    name: str
    state: str  # running | exited | stopped
    pid: int | None = None
    cpu_percent: float = 0.0
    rss_mb: float = 0.0
    uptime_s: float = 0.0
    # Processes of the component stopped by a signal (state T: SIGSTOP, a debugger): alive, answering nothing.
    suspended: int = 0


@dataclass
class LogSummary:
    """What one log says over the window: statuses, error lines and the AWS error codes in them."""

    source: str
    lines: int = 0
    statuses: dict[str, int] = field(default_factory=dict)  # "502" -> count
    errors: dict[str, int] = field(default_factory=dict)  # normalised message -> count
    aws_codes: dict[str, int] = field(default_factory=dict)  # "AccessDeniedException" -> count
    slow: int = 0  # requests slower than a second

    def count(self, *statuses: str) -> int:
        """Return how many requests answered one of `statuses` (prefixes: "5" counts all 5xx)."""
        return sum(n for s, n in self.statuses.items() if any(s.startswith(p) for p in statuses))


@dataclass
class Observations:
    """Everything doctor looked at in one run."""

    checked_at: str
    world: str  # local | aws
    components: dict[str, ComponentState] = field(default_factory=dict)
    targets: list[dict[str, str]] = field(default_factory=list)
    probes: dict[str, Probe] = field(default_factory=dict)
    logs: dict[str, LogSummary] = field(default_factory=dict)
    config_drift: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # file -> (template, now)
    app_tables: dict[str, dict[str, str]] = field(default_factory=dict)  # app -> setting -> table it names
    tables: list[str] = field(default_factory=list)  # tables that exist
    memory: dict[str, list[tuple[float, float, float]]] = field(default_factory=dict)  # worker -> (t, leak, rss)
    host_cpu_percent: float = 0.0
    # outside the stack: (pid, command, % of a core it wants: ran or waited to run)
    top_processes: list[tuple[int, str, float]] = field(default_factory=list)
    process_instances: dict[int, str] = field(default_factory=dict)  # a top process -> the instance it runs on
    # One-line facts of how the instances' role and the security-group chain differ from the template (locally
    # both are the AWS API twin's: the DynamoDB endpoint enforces the role, the twin the rules on the hops).
    policy_drift: list[str] = field(default_factory=list)  # a Deny, a missing or changed DynamoDBAccess
    network_drift: list[str] = field(default_factory=list)  # an ingress rule of the chain that is gone
    metrics: dict[str, float] = field(default_factory=dict)  # CloudWatch totals over the window (METRIC_*)
    # What the template deploys, to tell a resource gone from a setting that points elsewhere: per app, each
    # setting's value as the template (its user data) writes it; and the tables the template defines.
    template_settings: dict[str, dict[str, str]] = field(default_factory=dict)
    template_tables: list[str] = field(default_factory=list)
    missing_indexes: dict[str, list[str]] = field(default_factory=dict)  # table -> the template's indexes it lacks
    # Log groups the template defines that CloudWatch Logs says do not exist: source -> (group, the template's
    # RetentionInDays, None if the template could not be read).
    missing_log_groups: dict[str, tuple[str, int | None]] = field(default_factory=dict)
    # Per app, the settings it runs with that differ from the template's: (setting, template, now).
    settings_drift: dict[str, list[tuple[str, str, str]]] = field(default_factory=dict)
    # Finite resources: per app, (connections open to its port, its workers); per component, the process
    # nearest its file-descriptor limit as (open, soft limit); per directory the stack writes, % of disk free.
    connections: dict[str, tuple[int, int]] = field(default_factory=dict)
    descriptors: dict[str, tuple[int, int]] = field(default_factory=dict)
    disk_free: dict[str, float] = field(default_factory=dict)
    # More answers of the engine (and of the endpoint), staggered over the run: slowness that lasts, not a pause.
    dependency_samples: dict[str, list[Probe]] = field(default_factory=dict)
    # Busy processes of the machine outside the stack: context, never a finding ((pid, command, % CPU)).
    host_context: list[tuple[int, str, float]] = field(default_factory=list)
    # What could not be read, and why: never a finding, and never taken as healthy either.
    unknown: dict[str, str] = field(default_factory=dict)


@dataclass
class Finding:
    """One root cause, with its consequences as evidence and the fix."""

    component: str
    category: str
    severity: str
    summary: str
    evidence: list[str]
    remediation: str

    @property
    def layer(self) -> str:
        """The component's layer (vocabulary)."""
        return layer_of(self.component)

    def to_dict(self) -> dict[str, Any]:
        """Return the finding as `doctor --json` prints it."""
        return {"component": self.component, "layer": self.layer, **asdict(self)}


@dataclass
class Report:
    """doctor's answer."""

    checked_at: str
    findings: list[Finding]
    observations: Observations
    seconds: float = 0.0

    @property
    def healthy(self) -> bool:
        """True when nothing was found and everything could be read (an unread signal is not a healthy one)."""
        return not self.findings and not self.observations.unknown

    def to_dict(self) -> dict[str, Any]:
        """Return the report as `doctor --json` prints it."""
        return {"healthy": self.healthy, "checked_at": self.checked_at, "seconds": round(self.seconds, 2),
                "findings": [f.to_dict() for f in self.findings], "unknown": dict(self.observations.unknown),
                "context": self.context()}

    def context(self) -> list[str]:
        """Describe what the machine does outside the stack: busy processes of no instance of the stack (another
        stack's, a build, a browser). Context for a reader, never a finding."""
        return [f"pid {pid} {name!r}: wants {cpu:.0f}% of a core, not a process of this stack's instances"
                for pid, name, cpu in self.observations.host_context]
