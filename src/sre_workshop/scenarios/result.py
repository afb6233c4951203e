"""What a scenario run produced: the diagnoses over time and the score, as plain data."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any


def iso(epoch_s: float | None) -> str | None:
    """Return an epoch time as ISO-8601 UTC (milliseconds), or None."""
    return None if epoch_s is None else datetime.fromtimestamp(epoch_s, UTC).isoformat(timespec="milliseconds")


@dataclass
class Mark:
    """One point of a run's timeline: seconds since injection, what happened, and a detail line."""

    at_s: float
    kind: str  # injected | diagnosis | detected | submitted | tool call | action | cleared | recovered | error
    detail: str
    ok: bool | None = None  # for diagnoses: True healthy or right, False wrong, None neutral


@dataclass
class Result:
    """The score of one scenario run by one scorer (doctor, or an agent by name)."""

    scenario: str
    scorer: str
    truth: dict[str, str] | None
    incident_id: str | None = None
    injected_at: float | None = None
    detected_at: float | None = None
    mttd_s: float | None = None
    localized: bool = False
    category_match: bool = False
    recovered_at: float | None = None
    recovery_s: float | None = None
    diagnoses: int = 0
    false_positives: int = 0  # the control: diagnoses (or an agent's report) that named a fault
    finding: dict[str, Any] | None = None  # the detecting diagnosis (or the agent's submission)
    agent: dict[str, Any] = field(default_factory=dict)  # agent runs: submitted, mitigated, tool_calls, ...
    timeline: list[Mark] = field(default_factory=list)
    error: str | None = None
    params: list[str] = field(default_factory=list)  # the fault's parameters as run (a variant's drawn values)
    group: dict[str, Any] = field(default_factory=dict)  # compound runs: the scenario, the part, its rank found
    # The page's charts of the run (chart -> series -> [(epoch s, value)]); not part of `--json`.
    signals: dict[str, dict[str, list[tuple[float, float]]]] = field(default_factory=dict, repr=False)

    @property
    def control(self) -> bool:
        """True for the no-fault control."""
        return self.truth is None

    @property
    def detected(self) -> bool:
        """True when a diagnosis named the ground-truth component in time (the control: never applies)."""
        return self.detected_at is not None

    @property
    def passed(self) -> bool:
        """The scenario's verdict: the fault found where it is and recovered; the control with no alarm."""
        if self.error:
            return False
        if self.control:
            return self.false_positives == 0
        return self.localized and self.recovered_at is not None

    def mark(self, kind: str, detail: str, ok: bool | None = None, at: float | None = None) -> None:
        """Add a point to the timeline (now, unless `at` is given), relative to the injection."""
        start = self.injected_at or time.time()
        self.timeline.append(Mark(round((at or time.time()) - start, 2), kind, detail, ok))

    def to_dict(self) -> dict[str, Any]:
        """Return the result as `scenario run --json` prints it."""
        data = asdict(self)
        data.pop("signals")
        data.update(detected=self.detected, passed=self.passed, control=self.control,
                    injected_at=iso(self.injected_at), detected_at=iso(self.detected_at),
                    recovered_at=iso(self.recovered_at))
        return data
