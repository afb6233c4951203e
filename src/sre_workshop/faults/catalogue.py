"""The catalogue: every folder under faults/ with a fault.toml is a fault; its backends are found by name."""

from __future__ import annotations

import functools
import importlib
from pathlib import Path
from types import ModuleType

from ..errors import UsageError
from .model import Fault

FAULTS_DIR = Path(__file__).resolve().parent


@functools.cache
def catalogue() -> dict[str, Fault]:
    """Return every fault by name, in name order."""
    faults = [Fault.load(folder) for folder in sorted(FAULTS_DIR.iterdir()) if (folder / "fault.toml").exists()]
    return {fault.name: fault for fault in sorted(faults, key=lambda f: f.name)}


def get(name: str) -> Fault:
    """Return a fault by name, or raise UsageError naming the valid ones."""
    faults = catalogue()
    if name not in faults:
        raise UsageError(f"no fault named {name!r}; faults: {', '.join(faults)}")
    return faults[name]


def backend_module(fault: Fault, backend: str) -> ModuleType:
    """Return a fault's functions for one backend ("local" or "aws")."""
    return importlib.import_module(f"{__package__}.{fault.folder.name}.{backend}")
