"""What a fault is: data (its fault.toml) plus the functions of each backend (local.py, aws.py).

A fault's folder holds:
    fault.toml   name, description, symptom, parameters, ground truth, and per world what differs (the
                 verify bound), whether the system starts with it ([pre_baked]), and the probes of its
                 symptom at the public entry points ([[probes]]); see memory_leak/ and app_crash/fault.toml
    aws.py       the functions below, for an AWS stack made by `sre-workshop deploy`
    local.py     the same for the local stack, only where no AWS path works there: a fault whose fault.toml
                 says `[worlds.local] via = "twin"` runs aws.py locally against the stack's AWS API twin
                 (`ctl.twin()`), with `[worlds.local] params` fixed over the given ones (catalogue.py)

Each backend module satisfies contract.FaultModule, taking the world's control object and the parameters:
    snapshot(ctl, params) -> dict        what inject is about to change, read before anything changes
    inject(ctl, params) -> None          make the change
    verify(ctl, params) -> str           evidence that it is in effect; raise NotYet while it is not
    active(ctl, params) -> bool          is it in effect now (the truth `fault status` reports)
    clear(ctl, params, saved) -> None    put back exactly what snapshot saved; idempotent
A pre-baked fault (the leak the workshop's app starts with) also defines current_params(ctl) (the
parameters in effect); its fault.toml's [pre_baked] steady is what clear restores.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..vocabulary import CATEGORIES, COMPONENTS
from .contract import WORLDS

# [worlds.local] via: how the local world runs the fault; "twin" is its AWS implementation against the twin.
VIA = ("twin",)


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
    worlds: tuple[str, ...] = WORLDS  # where the parameter has an effect (dynamodb-throttling's mode: aws)

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
                "intensity": self.intensity, "help": self.help, "worlds": list(self.worlds)}

    @classmethod
    def load(cls, data: dict[str, Any]) -> Param:
        """Return a parameter from its [[params]] table."""
        worlds = tuple(data.get("worlds", WORLDS))
        if not worlds or set(worlds) - set(WORLDS):
            raise ValueError(f"parameter {data['name']}: worlds must be some of {', '.join(WORLDS)}, not {worlds}")
        return cls(data["name"], data["default"], data.get("help", ""), data.get("min"), data.get("max"),
                   tuple(data.get("choices", ())), data.get("unit", ""), data.get("intensity", False), worlds)


def _strings(value: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value)


@dataclass(frozen=True)
class Probe:
    """One symptom at a public entry point ("app": the public ALB, "crm": its :8080), in both worlds.

    GET entry+path answers one of `status` (every one of `seen`, over `tries` answers), with one of `body`
    in it (a string or a list of alternatives: what DynamoDB says can depend on whether IAM is enforced),
    taking at least `min_s` / at most `max_s` seconds; `within_s` allows time for it to show (health checks
    must fail first). `when` limits the probe to parameters (app-crash's target)."""

    entry: str
    path: str
    status: tuple[int, ...] = ()
    seen: tuple[int, ...] = ()
    tries: int = 1
    body: tuple[str, ...] = ()
    min_s: float = 0.0
    max_s: float | None = None
    within_s: float = 0.0
    when: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, data: dict[str, Any]) -> Probe:
        """Return a probe from its [[probes]] table."""
        if data["entry"] not in ("app", "crm") or not (data.get("status") or data.get("seen")):
            raise ValueError(f"a probe needs entry app or crm and a status (or seen): {data}")
        return cls(data["entry"], data["path"], tuple(data.get("status", ())), tuple(data.get("seen", ())),
                   data.get("tries", len(data.get("seen", ())) * 10 or 1), _strings(data.get("body", ())),
                   data.get("min_s", 0.0), data.get("max_s"), data.get("within_s", 0.0), dict(data.get("when", {})))

    def applies(self, params: dict[str, Any]) -> bool:
        """True if the probe holds for these parameters."""
        return all(params.get(k) == v for k, v in self.when.items())

    def holds(self, answers: list[tuple[int, bytes, float]]) -> bool:
        """True if these answers (status, body, seconds) show the symptom."""
        if not answers:
            return False
        statuses = {status for status, _, _ in answers}
        if self.seen:
            return set(self.seen) <= statuses
        return all(self._one(*answer) for answer in answers)

    def _one(self, status: int, body: bytes, seconds: float) -> bool:
        said = not self.body or any(b.encode() in body for b in self.body)
        return status in self.status and said and seconds >= self.min_s and (
            self.max_s is None or seconds <= self.max_s)

    def to_dict(self) -> dict[str, Any]:
        """Return the probe as JSON-ready data."""
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}


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
    worlds: dict[str, dict[str, Any]] = field(default_factory=dict)  # [worlds.NAME]: what differs per world
    steady: dict[str, Any] | None = None  # [pre_baked] steady: the system starts with the fault; clear restores this
    probes: tuple[Probe, ...] = ()

    @classmethod
    def load(cls, folder: Path) -> Fault:
        """Read a fault's fault.toml."""
        data = tomllib.loads((folder / "fault.toml").read_text())
        params = tuple(Param.load(p) for p in data.get("params", []))
        steady = data["pre_baked"]["steady"] if "pre_baked" in data else None
        fault = cls(data["name"], data["description"].strip(), data["symptom"].strip(), dict(data["ground_truth"]),
                    params, data.get("needs_load", False), data.get("verify_seconds", 30.0), folder,
                    data.get("expires_after", ""), dict(data.get("worlds", {})), steady,
                    tuple(Probe.load(p) for p in data.get("probes", [])))
        fault.ground_truth(fault.defaults())  # the vocabulary is checked when the catalogue loads
        if fault.expires_after and fault.expires_after not in fault.defaults():
            raise ValueError(f"{fault.name}: expires_after names no parameter: {fault.expires_after!r}")
        if set(fault.worlds) - set(WORLDS):
            raise ValueError(f"{fault.name}: [worlds] names {set(fault.worlds) - set(WORLDS)}; worlds: {WORLDS}")
        fault._check_via()
        return fault

    def _check_via(self) -> None:
        """Refuse a `via` that names no path, or one given where only the local world can take it."""
        for world, data in self.worlds.items():
            if "via" in data and (world != "local" or data["via"] not in VIA):
                raise ValueError(f"{self.name}: [worlds.{world}] via = {data['via']!r}: only [worlds.local] "
                                 f"takes via, one of {', '.join(VIA)}")
            if "params" in data and "via" not in data:
                raise ValueError(f"{self.name}: [worlds.{world}] params are the parameters a via path runs with: "
                                 "they need a via")
            unknown = set(data.get("params", {})) - set(self.defaults())
            if unknown:
                raise ValueError(f"{self.name}: [worlds.{world}] params names no parameter: {sorted(unknown)}")

    def via(self, world: str) -> str | None:
        """Return how `world` runs this fault when not with its own module: "twin" (aws.py against the AWS
        API twin), or None (the world's own module, local.py or aws.py)."""
        return self.worlds.get(world, {}).get("via")

    def path(self, world: str) -> str:
        """Return what runs the fault in `world`: its own module ("local.py", "aws.py") or "aws.py via the twin"."""
        return "aws.py via the twin" if self.via(world) == "twin" else f"{world}.py"

    def params_for(self, world: str, params: dict[str, Any]) -> dict[str, Any]:
        """Return the parameters `world`'s via path runs with: `params`, with [worlds.W] params over them."""
        return {**params, **self.worlds.get(world, {}).get("params", {})}

    @property
    def pre_baked(self) -> bool:
        """True if the system starts with this fault in effect (the workshop's leaking app)."""
        return self.steady is not None

    def verify_seconds_in(self, world: str) -> float:
        """Return how long inject waits for the effect in `world` (AWS is slower for some: IAM propagation)."""
        return float(self.worlds.get(world, {}).get("verify_seconds", self.verify_seconds))

    def params_in(self, world: str) -> tuple[Param, ...]:
        """Return the parameters that have an effect in `world`."""
        return tuple(p for p in self.params if world in p.worlds)

    def probes_for(self, params: dict[str, Any]) -> tuple[Probe, ...]:
        """Return the probes of the symptom for these parameters."""
        return tuple(p for p in self.probes if p.applies(params))

    def defaults(self) -> dict[str, Any]:
        """Return every parameter at its default."""
        return {p.name: p.default for p in self.params}

    def parse(self, assignments: list[str], world: str | None = None) -> dict[str, Any]:
        """Return the parameters from `key=value` strings over the defaults; raise UsageError on bad ones
        (with `world`, also on one that has no effect there)."""
        known = {p.name: p for p in self.params}
        values = self.defaults()
        for assignment in assignments:
            key, sep, text = assignment.partition("=")
            if not sep:
                raise UsageError(f"--set takes key=value, not {assignment!r}")
            if key not in known:
                valid = ", ".join(known) or "none"
                raise UsageError(f"{self.name} has no parameter {key!r}; parameters: {valid}")
            if world and world not in known[key].worlds:
                raise UsageError(f"{self.name}: {key} has an effect only on {', '.join(known[key].worlds)}, "
                                 f"not {world}")
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
                "ground_truth": self.ground_truth(self.defaults()).to_dict(), "pre_baked": self.pre_baked,
                "paths": {world: self.path(world) for world in WORLDS}}
