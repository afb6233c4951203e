"""What a scenario is: data in one TOML file under scenarios/data/ (see nginx-crash.toml).

    name = "nginx-crash"                  # the scenario's name (the file's stem)
    title = "..."                         # one line
    fault = "nginx-crash"                 # a fault of the catalogue; omitted for the no-fault control
    params = ["timeout_s=1"]              # the fault's parameters as `fault inject --set` takes them
    time_limit_s = 60                     # detection (and an agent's submission) must happen within this
    ticket = "..."                        # the symptom as a user would report it (lab, agents' task)
    hints = ["...", "..."]                # graded hints for `lab hint`, vaguest first, down to the repair
    [variants] latency_ms = [200, 5000]  # optional: narrow what `--variants` draws (scenarios/variants.py)
    [load]   users = 4, rate = 8.0, target = "both"
    [writeup] happened = "...", see = "...", fix = "..."
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..faults.catalogue import get as get_fault
from ..faults.model import Fault, GroundTruth

CONTROL = "control"


@dataclass(frozen=True)
class LoadSpec:
    """The traffic a scenario runs under."""

    users: int = 4
    rate: float = 8.0
    target: str = "both"

    def to_dict(self) -> dict[str, Any]:
        """Return the load as plain data."""
        return {"users": self.users, "rate": self.rate, "target": self.target}


@dataclass(frozen=True)
class Writeup:
    """What happened, how to see it, and the fix: shown after a lab ends."""

    happened: str
    see: str
    fix: str

    def to_dict(self) -> dict[str, str]:
        """Return the write-up as plain data."""
        return {"happened": self.happened, "see": self.see, "fix": self.fix}


@dataclass(frozen=True)
class Scenario:
    """One scenario: a fault (None for the control), its parameters, load and time limit, and its texts."""

    name: str
    title: str
    fault: str | None
    params: tuple[str, ...]
    time_limit_s: float
    ticket: str
    hints: tuple[str, ...]
    writeup: Writeup
    load: LoadSpec = field(default_factory=LoadSpec)
    narrowed: dict[str, list[Any]] = field(default_factory=dict)  # [variants]: narrower ranges to draw from

    @classmethod
    def load_file(cls, path: Path) -> Scenario:
        """Read one scenario file and check it against the fault catalogue."""
        data = tomllib.loads(path.read_text())
        writeup = Writeup(**{k: v.strip() for k, v in data["writeup"].items()})
        scenario = cls(path.stem, data["title"], data.get("fault"), tuple(data.get("params", ())),
                       float(data.get("time_limit_s", 60)), data["ticket"].strip(),
                       tuple(h.strip() for h in data.get("hints", ())), writeup, LoadSpec(**data.get("load", {})),
                       dict(data.get("variants", {})))
        if scenario.fault:
            scenario.parsed_params()  # an unknown fault or a bad parameter fails when the catalogue loads
        elif scenario.name != CONTROL:
            raise ValueError(f"scenario {scenario.name}: only the control scenario has no fault")
        return scenario

    @property
    def is_control(self) -> bool:
        """True for the no-fault control."""
        return self.fault is None

    def fault_def(self) -> Fault:
        """Return the scenario's fault."""
        if self.fault is None:
            raise ValueError("the control scenario has no fault")
        return get_fault(self.fault)

    def parsed_params(self) -> dict[str, Any]:
        """Return the fault's parameters with this scenario's values."""
        return self.fault_def().parse(list(self.params))

    def truth(self) -> GroundTruth | None:
        """Return the ground truth (None for the control)."""
        return None if self.fault is None else self.fault_def().ground_truth(self.parsed_params())

    def to_dict(self, reveal: bool = True) -> dict[str, Any]:
        """Return the scenario as `scenario list --json` shows it; without `reveal`, no fault or truth."""
        data: dict[str, Any] = {"name": self.name, "title": self.title, "time_limit_s": self.time_limit_s,
                                "load": self.load.to_dict(), "ticket": self.ticket}
        if reveal:
            truth = self.truth()
            data.update(fault=self.fault, params=list(self.params),
                        ground_truth=truth.to_dict() if truth else None)
        return data
