"""The catalogue: every folder under faults/ with a fault.toml is a fault; its backends are found by name.

Loading the catalogue holds every folder to the fault contract (contract.py): its fault.toml reads, and
each world's module exists and defines the contract's functions with the right arguments. A world that
fault.toml runs another way (`[worlds.local] via = "twin"`: aws.py against the AWS API twin,
through_twin.py) must have no module of its own: one implementation per world, never two that can drift.
A broken folder fails the load with one line naming it, before any fault runs.
"""

from __future__ import annotations

import functools
import importlib
from pathlib import Path
from typing import Any, cast

from ..errors import UsageError
from .contract import WORLDS, ContractError, FaultModule, PreBakedModule, check_module
from .model import Fault
from .through_twin import ThroughTwin

FAULTS_DIR = Path(__file__).resolve().parent


@functools.cache
def catalogue() -> dict[str, Fault]:
    """Return every fault by name, in name order."""
    return load(FAULTS_DIR, __package__)


def load(faults_dir: Path, package: str) -> dict[str, Fault]:
    """Return the faults of the folders in `faults_dir` (the package `package`), each checked against the
    contract; raise ContractError naming the first folder that breaks it."""
    faults = []
    for folder in sorted(p for p in faults_dir.iterdir() if p.is_dir()):
        if (folder / "fault.toml").exists():
            faults.append(_checked(folder, package))
        elif any((folder / f"{world}.py").exists() for world in WORLDS):
            raise ContractError(f"fault folder {folder.name} has backend modules but no fault.toml")
    return {fault.name: fault for fault in sorted(faults, key=lambda f: f.name)}


def _checked(folder: Path, package: str) -> Fault:
    """Read a folder's fault.toml and hold its modules to the contract."""
    try:
        fault = Fault.load(folder)
    except (KeyError, ValueError, TypeError) as exc:  # tomllib's TOMLDecodeError is a ValueError
        raise ContractError(f"fault folder {folder.name}: fault.toml: {type(exc).__name__}: {exc}") from exc
    for world in WORLDS:
        via, own = fault.via(world), (folder / f"{world}.py").exists()
        if via and own:
            raise ContractError(f"fault {fault.name}: {folder.name}/ has {world}.py, but its fault.toml runs the "
                                f"{world} world via the {via}: one implementation per world, remove one")
        if via:
            continue  # it runs aws.py, checked as the aws world's
        if not own:
            how = ' (or [worlds.local] via = "twin" in fault.toml: aws.py against the AWS API twin)' \
                if world == "local" else ""
            raise ContractError(f"fault {fault.name}: {folder.name}/ has no {world}.py{how}")
        module = importlib.import_module(f"{package}.{folder.name}.{world}")
        check_module(fault.name, world, module, pre_baked=fault.pre_baked)
    return fault


def get(name: str) -> Fault:
    """Return a fault by name, or raise UsageError naming the valid ones."""
    faults = catalogue()
    if name not in faults:
        raise UsageError(f"no fault named {name!r}; faults: {', '.join(faults)}")
    return faults[name]


def pre_baked() -> list[Fault]:
    """Return the faults the system starts with (fault.toml's [pre_baked])."""
    return [fault for fault in catalogue().values() if fault.pre_baked]


def backend_module(fault: Fault, backend: str) -> FaultModule[Any]:
    """Return a fault's functions for one backend ("local" or "aws"), as the load checked them: the world's
    own module, or aws.py's functions given the twin when fault.toml runs the world via the twin."""
    if fault.via(backend) == "twin":
        return ThroughTwin(_module(fault, "aws"), fault.params_for(backend, {}))
    return _module(fault, backend)


def _module(fault: Fault, world: str) -> FaultModule[Any]:
    return cast("FaultModule[Any]", importlib.import_module(f"{__package__}.{fault.folder.name}.{world}"))


def pre_baked_module(fault: Fault, backend: str) -> PreBakedModule[Any]:
    """Return a pre-baked fault's functions for one backend (the load checked current_params too)."""
    if not fault.pre_baked:
        raise ContractError(f"fault {fault.name} is not pre-baked")
    return cast("PreBakedModule[Any]", backend_module(fault, backend))
