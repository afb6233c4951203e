"""Variants of a scenario: its fault's parameters drawn from their ranges, reproducibly from a seed.

`scenario run NAME --seed N --variants K` runs K variants of each scenario: variant i of scenario S under seed
N always draws the same values (a `random.Random` seeded by "N:S:i"), so a scorecard can be rerun exactly.
What is drawn: every parameter with choices (app-crash's target, security-group-block's hop) and the
fault's intensity knob; the others keep the scenario's values. A scenario file may narrow a range:

    [variants]
    latency_ms = [200, 5000]      # draw the intensity from this part of the fault's range
    target = ["sre-app"]          # or from these choices only

A numeric knob is drawn log-uniformly when its range spans more than a decade (10 ms and 25 s are both
plausible delays), uniformly otherwise.
"""

from __future__ import annotations

import dataclasses
import math
import random
from typing import Any

from ..faults.model import Param
from .model import Scenario

SEP = "~"  # a variant's name: SCENARIO~vI (the scorecard groups by what precedes it)


def variants(scenario: Scenario, seed: int, count: int) -> list[Scenario]:
    """Return `count` variants of `scenario` drawn under `seed` (the control has none: itself, once)."""
    if scenario.is_control:
        return [scenario]
    return [variant(scenario, seed, index) for index in range(1, count + 1)]


def variant(scenario: Scenario, seed: int, index: int) -> Scenario:
    """Return variant `index` of `scenario` under `seed`."""
    rng = random.Random(f"{seed}:{scenario.name}:{index}")  # noqa: S311 (reproducible draws, not secrets)
    values = dict(p.split("=", 1) for p in scenario.params)
    for param in scenario.fault_def().params_in("local"):
        if param.choices or param.intensity:
            values[param.name] = draw(param, rng, scenario.narrowed.get(param.name))
    params = tuple(f"{k}={v}" for k, v in values.items())
    drawn = dataclasses.replace(scenario, name=f"{scenario.name}{SEP}v{index}", params=params)
    drawn.parsed_params()  # a narrowed range outside the fault's is refused here
    return drawn


def draw(param: Param, rng: random.Random, narrowed: list[Any] | None = None) -> str:
    """Return one value of `param`, as `--set` takes it, from its range (or the narrowed one)."""
    if param.choices:
        return str(rng.choice(list(narrowed or param.choices)))
    low, high = narrowed or (param.minimum, param.maximum)
    if low > 0 and high / low > 10:
        value = math.exp(rng.uniform(math.log(low), math.log(high)))
    else:
        value = rng.uniform(low, high)
    return str(round(value)) if isinstance(param.default, int) else f"{value:.3g}"


def group_of(name: str) -> str:
    """Return the scenario a result's name belongs to (a variant's base name; others as they are)."""
    return name.split(SEP, 1)[0]


def groups(names: list[str]) -> dict[str, list[int]]:
    """Return the indexes of `names` by their group, in first-seen order."""
    found: dict[str, list[int]] = {}
    for index, name in enumerate(names):
        found.setdefault(group_of(name), []).append(index)
    return found
