"""Scenarios beyond one catalogue fault, as data in scenarios/data/extra/*.toml: run by name, not by --all.

    compound   two faults at once, on different layers; each part is scored on its own (found or not, when,
               and which was found first)
    cascade    one fault whose symptom shows tiers away from its cause (a slow app exhausting the pool in
               front of it); scored as one part
    manual     a breakage by hand: shell steps with their undo and a declared ground truth, so cases outside
               the catalogue are scored on the same scorecard

    title = "..."
    kind = "compound"                     # compound | cascade | manual
    time_limit_s = 60
    ticket = "..."
    [load]  users = 4, rate = 8.0, target = "both"
    [[parts]]                             # a catalogue fault ...
    fault = "nginx-bad-upstream"
    params = []
    [[parts]]                             # ... or a breakage by hand
    label = "crm-app-frozen"
    steps = ["kill -STOP -- -$PID_CRM_APP"]   # run by `sh -c`, in order; env: below
    undo = ["kill -CONT -- -$PID_CRM_APP"]    # always run, in order, even after a failed step
    ground_truth = { component = "crm-app", category = "crash", cause = "..." }

A manual step's environment: SRE_WORKSHOP_STATE_DIR, SRE_WORKSHOP_PORT_OFFSET, SRE_WORKSHOP_HOST (it runs on the
stack's host, as a fault's script does) and PID_<COMPONENT> (the process group leader of each running
component, e.g. PID_CRM_APP).
"""

from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..faults.catalogue import get as get_fault
from ..faults.model import GroundTruth
from ..vocabulary import CATEGORIES, COMPONENTS
from .catalogue import DATA_DIR, scenarios
from .model import LoadSpec, Scenario

EXTRA_DIR = DATA_DIR / "extra"
KINDS = ("compound", "cascade", "manual")


@dataclass(frozen=True)
class Part:
    """One thing a multi-part scenario breaks: a catalogue fault with parameters, or shell steps by hand."""

    label: str
    fault: str | None = None
    params: tuple[str, ...] = ()
    steps: tuple[str, ...] = ()
    undo: tuple[str, ...] = ()
    declared: dict[str, str] = field(default_factory=dict)  # a manual part's ground truth

    @classmethod
    def load(cls, data: dict[str, Any]) -> Part:
        """Return a part from its [[parts]] table, checked against the catalogue and the vocabulary."""
        part = cls(data.get("label") or data.get("fault", ""), data.get("fault"), tuple(data.get("params", ())),
                   tuple(data.get("steps", ())), tuple(data.get("undo", ())), dict(data.get("ground_truth", {})))
        if bool(part.fault) == bool(part.steps) or not part.label:
            raise ValueError(f"a part is a fault or shell steps with a label, not both: {data}")
        part.truth()
        return part

    @property
    def manual(self) -> bool:
        """True for a breakage by hand."""
        return self.fault is None

    def truth(self) -> GroundTruth:
        """Return what really broke (a manual part's declared truth, checked against the vocabulary)."""
        if self.fault:
            fault = get_fault(self.fault)
            return fault.ground_truth(fault.parse(list(self.params)))
        component, category = self.declared.get("component"), self.declared.get("category")
        if component not in COMPONENTS or category not in CATEGORIES or not self.declared.get("cause"):
            raise ValueError(f"part {self.label}: ground_truth needs a component, category and cause "
                             f"of the vocabulary, not {self.declared}")
        return GroundTruth(component, COMPONENTS[component], category, self.declared["cause"])


@dataclass(frozen=True)
class Multi:
    """A compound, cascading or manual scenario: parts injected together, each scored on its own."""

    name: str
    title: str
    kind: str
    parts: tuple[Part, ...]
    time_limit_s: float
    ticket: str
    load: LoadSpec = field(default_factory=LoadSpec)
    is_control = False

    @classmethod
    def load_file(cls, path: Path) -> Multi:
        """Read one extra scenario file."""
        data = tomllib.loads(path.read_text())
        multi = cls(path.stem, data["title"], data["kind"], tuple(Part.load(p) for p in data["parts"]),
                    float(data.get("time_limit_s", 60)), data["ticket"].strip(), LoadSpec(**data.get("load", {})))
        if multi.kind not in KINDS or not multi.parts:
            raise ValueError(f"scenario {multi.name}: kind must be one of {', '.join(KINDS)}, with parts")
        return multi

    def to_dict(self, reveal: bool = True) -> dict[str, Any]:
        """Return the scenario as `scenario list --json` shows it."""
        data: dict[str, Any] = {"name": self.name, "title": self.title, "kind": self.kind,
                                "time_limit_s": self.time_limit_s, "load": self.load.to_dict(), "ticket": self.ticket}
        if reveal:
            data["parts"] = [{"label": p.label, "fault": p.fault, "params": list(p.params),
                              "ground_truth": p.truth().to_dict()} for p in self.parts]
            data["ground_truth"] = data["parts"][0]["ground_truth"]
        return data


@functools.cache
def extras() -> dict[str, Multi]:
    """Return every extra scenario by name."""
    return {m.name: m for m in (Multi.load_file(p) for p in sorted(EXTRA_DIR.glob("*.toml")))}


def get_any(name: str) -> Scenario | Multi:
    """Return a catalogue or extra scenario by name, or raise UsageError naming the valid ones."""
    found = {**scenarios(), **extras()}
    if name not in found:
        raise UsageError(f"no scenario named {name!r}; scenarios: {', '.join(found)}")
    return found[name]
