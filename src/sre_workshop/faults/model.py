"""What a fault is: data (its fault.toml) plus the functions of each backend (local.py, aws.py).

A fault's folder holds:
    fault.toml   name, description, symptom, parameters, ground truth (see memory_leak/fault.toml)
    local.py     the functions below, for the local stack
    aws.py       the same for an AWS stack made by `sre-workshop deploy`

Each backend module defines, taking the backend's control object and the parsed parameters:
    snapshot(ctl, params) -> dict        what inject is about to change, read before anything changes
    inject(ctl, params) -> None          make the change
    verify(ctl, params) -> str           evidence that it is in effect; raise NotYet while it is not
    active(ctl, params) -> bool          is it in effect now (the truth `fault status` reports)
    clear(ctl, params, saved) -> None    put back exactly what snapshot saved; idempotent
A fault the system starts with (the pre-baked leak) also defines STEADY (what clear restores) and
current_params(ctl) (the parameters in effect).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..vocabulary import CATEGORIES, COMPONENTS


class NotYet(Exception):
    """The fault's effect is not visible yet; the runner polls verify() again."""


@dataclass(frozen=True)
class Param:
    """One parameter: a default, a range or choices, and whether it is the fault's intensity knob."""

    name: str
    default: Any
    help: str = ""
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    unit: str = ""
    intensity: bool = False

    def parse(self, text: str) -> Any:
        """Return the value of `text` for this parameter, or raise UsageError naming the valid range."""
        if self.choices:
            if text not in self.choices:
                raise UsageError(f"{self.name} must be one of {', '.join(self.choices)}, not {text!r}")
            return text
        kind = float if isinstance(self.default, float) else int
        try:
            value = kind(text)
        except ValueError:
            raise UsageError(f"{self.name} must be a {kind.__name__} {self.range()}, not {text!r}") from None
        if not self.minimum <= value <= self.maximum:
            raise UsageError(f"{self.name} must be {self.range()}, not {text}")
        return value

    def range(self) -> str:
        """Describe the valid values: "from 1 to 30 s" or "one of a, b"."""
        if self.choices:
            return "one of " + ", ".join(self.choices)
        return f"from {self.minimum:g} to {self.maximum:g}{' ' + self.unit if self.unit else ''}"

    def to_dict(self) -> dict[str, Any]:
        """Return the parameter as `fault list --json` shows it."""
        return {"name": self.name, "default": self.default, "range": self.range(), "unit": self.unit,
                "intensity": self.intensity, "help": self.help}


@dataclass(frozen=True)
class GroundTruth:
    """What really broke: the root-cause component, its layer, the category and a one-line cause."""

    component: str
    layer: str
    category: str
    cause: str

    def to_dict(self) -> dict[str, str]:
        """Return the ground truth as JSON-ready data."""
        return {"component": self.component, "layer": self.layer, "category": self.category, "cause": self.cause}


@dataclass(frozen=True)
class Fault:
    """One fault of the catalogue, as its fault.toml declares it."""

    name: str
    description: str
    symptom: str
    truth: dict[str, str]  # component may be "{target}": the ground truth follows the target parameter
    params: tuple[Param, ...] = ()
    needs_load: bool = False
    verify_seconds: float = 30.0
    folder: Path = field(default=Path(), compare=False)
    expires_after: str = ""  # the parameter (seconds) after which the fault ends by itself, if it does

    @classmethod
    def load(cls, folder: Path) -> Fault:
        """Read a fault's fault.toml."""
        data = tomllib.loads((folder / "fault.toml").read_text())
        params = tuple(Param(p["name"], p["default"], p.get("help", ""), p.get("min"), p.get("max"),
                             tuple(p.get("choices", ())), p.get("unit", ""), p.get("intensity", False))
                       for p in data.get("params", []))
        fault = cls(data["name"], data["description"].strip(), data["symptom"].strip(), dict(data["ground_truth"]),
                    params, data.get("needs_load", False), data.get("verify_seconds", 30.0), folder,
                    data.get("expires_after", ""))
        fault.ground_truth(fault.defaults())  # the vocabulary is checked when the catalogue loads
        if fault.expires_after and fault.expires_after not in fault.defaults():
            raise ValueError(f"{fault.name}: expires_after names no parameter: {fault.expires_after!r}")
        return fault

    def defaults(self) -> dict[str, Any]:
        """Return every parameter at its default."""
        return {p.name: p.default for p in self.params}

    def parse(self, assignments: list[str]) -> dict[str, Any]:
        """Return the parameters from `key=value` strings over the defaults; raise UsageError on bad ones."""
        known = {p.name: p for p in self.params}
        values = self.defaults()
        for assignment in assignments:
            key, sep, text = assignment.partition("=")
            if not sep:
                raise UsageError(f"--set takes key=value, not {assignment!r}")
            if key not in known:
                valid = ", ".join(known) or "none"
                raise UsageError(f"{self.name} has no parameter {key!r}; parameters: {valid}")
            values[key] = known[key].parse(text)
        return values

    def ground_truth(self, params: dict[str, Any]) -> GroundTruth:
        """Return the ground truth for these parameters (the component may follow the target)."""
        component = self.truth["component"].format(**params)
        if component not in COMPONENTS or self.truth["category"] not in CATEGORIES:
            raise ValueError(f"fault {self.name}: {component!r} or {self.truth['category']!r} "
                             "is not in the vocabulary")
        cause = self.truth["cause"].format(**params)
        return GroundTruth(component, COMPONENTS[component], self.truth["category"], cause)

    def to_dict(self) -> dict[str, Any]:
        """Return the fault as `fault list --json` shows it."""
        return {"name": self.name, "description": self.description, "symptom": self.symptom,
                "needs_load": self.needs_load, "params": [p.to_dict() for p in self.params],
                "ground_truth": self.ground_truth(self.defaults()).to_dict()}
