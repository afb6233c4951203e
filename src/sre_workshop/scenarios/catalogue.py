"""The scenario catalogue: every TOML file under scenarios/data/, one per fault plus the no-fault control."""

from __future__ import annotations

import functools
from pathlib import Path

from ..errors import UsageError
from .model import Scenario

DATA_DIR = Path(__file__).resolve().parent / "data"


@functools.cache
def scenarios() -> dict[str, Scenario]:
    """Return every scenario by name, in name order (the control last)."""
    found = [Scenario.load_file(path) for path in sorted(DATA_DIR.glob("*.toml"))]
    return {s.name: s for s in sorted(found, key=lambda s: (s.is_control, s.name))}


def get(name: str) -> Scenario:
    """Return a scenario by name, or raise UsageError naming the valid ones."""
    found = scenarios()
    if name not in found:
        raise UsageError(f"no scenario named {name!r}; scenarios: {', '.join(found)}")
    return found[name]
