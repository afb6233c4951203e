"""The fault contract: what a fault's backend module defines, and what each world's control object offers it.

A fault folder's `aws.py` (and `local.py`, where its fault.toml does not run the local world via the twin:
through_twin.py) are modules that satisfy `FaultModule` (with `AwsCtl` or `LocalCtl` as `ctl`); a fault its
fault.toml declares pre-baked also satisfies `PreBakedModule`. The runner
calls the modules only through these names, and `check_module` holds every folder to them when the
catalogue loads, so a broken folder names itself before any fault runs (as chaostoolkit validates an
experiment before anything runs).

The control objects are Protocols, not the classes: a fault depends on what it may do to a world
(local/control.py's `LocalControl`, aws/control.py's `AwsControl`), not on how that is done, and a
stand-in (a test's fake, an AWS twin) can take a class's place.
"""

from __future__ import annotations

import inspect
from types import ModuleType
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

from ..errors import WorkshopError

if TYPE_CHECKING:
    from ..aws.ssm import Step
    from ..local.stack import Stack
    from ..settings import Settings

Params = dict[str, Any]  # the fault's parameters, parsed (fault.toml declares them)
Saved = dict[str, Any]  # what snapshot() read before inject changed it: JSON-ready, kept in the ledger
WORLDS = ("local", "aws")
FUNCTIONS = ("snapshot", "inject", "verify", "active", "clear")
# The parameters each function takes after `ctl` (clear also takes `saved`).
ARITY = {"snapshot": 2, "inject": 2, "verify": 2, "active": 2, "clear": 3, "current_params": 1}

Ctl = TypeVar("Ctl", contravariant=True)


class ContractError(WorkshopError):
    """A fault folder breaks the fault contract: a missing file or function, or one of the wrong shape."""

    code = "fault_contract"


class FaultModule(Protocol[Ctl]):
    """A fault's functions in one world (its local.py or aws.py), each taking that world's control object."""

    def snapshot(self, ctl: Ctl, params: Params) -> Saved:
        """Return what inject is about to change, read before anything changes."""

    def inject(self, ctl: Ctl, params: Params) -> None:
        """Make the change."""

    def verify(self, ctl: Ctl, params: Params) -> str:
        """Return evidence that the fault is in effect; raise model.NotYet while it is not."""

    def active(self, ctl: Ctl, params: Params) -> bool | None:
        """Return whether the fault is in effect now (None: it cannot be told now, its component is down)."""

    def clear(self, ctl: Ctl, params: Params, saved: Saved) -> None:
        """Put back exactly what snapshot saved; idempotent."""


class PreBakedModule(FaultModule[Ctl], Protocol[Ctl]):
    """A fault the system starts with (fault.toml's [pre_baked]): it also reads the parameters in effect."""

    def current_params(self, ctl: Ctl) -> Params:
        """Return the fault's parameters as they are in effect (the pre-baked leak's settings)."""


@runtime_checkable
class LocalCtl(Protocol):
    """What a fault may do to the local stack (local/control.py's LocalControl): its AWS resources in the AWS
    API twin, as a fault acts on them on AWS."""

    settings: Settings
    stack: Stack

    def running(self, name: str) -> bool: ...
    def twin(self) -> AwsCtl: ...


@runtime_checkable
class AwsCtl(Protocol):
    """What a fault may do to an AWS stack (aws/control.py's AwsControl)."""

    stack_name: str

    def client(self, service: str) -> Any: ...
    def outputs(self) -> dict[str, str]: ...
    def physical(self, logical: str) -> str: ...
    def instance(self, component: str) -> str: ...
    def run(self, component: str, *steps: Step, label: str = "") -> str: ...
    def run_json(self, component: str, *steps: Step, label: str = "") -> dict[str, Any]: ...
    def unit_state(self, component: str) -> str: ...
    def running(self, component: str) -> bool: ...
    def kill(self, component: str) -> None: ...
    def start(self, component: str) -> None: ...
    def restart(self, component: str) -> None: ...
    def read_file(self, component: str, path: str) -> bytes: ...
    def save_file(self, component: str, path: str, must_have: tuple[str, ...] = ()) -> dict[str, str]: ...
    def restore_file(self, component: str, saved: dict[str, str], *then: Step) -> None: ...
    def replace_in_file(self, component: str, path: str, changes: dict[str, str], *then: Step) -> None: ...
    def app_port(self, app: str) -> int: ...
    def app_faults(self, app: str, action: str, settings: dict[str, Any] | None = None) -> dict[str, Any]: ...
    def app_leak(self, action: str, settings: dict[str, Any] | None = None) -> dict[str, Any]: ...
    def put_app_faults(self, app: str, settings: dict[str, Any]) -> None: ...
    def put_leak(self, settings: dict[str, Any]) -> None: ...
    def app_fault_settings(self, app: str) -> dict[str, Any]: ...
    def restore_app_faults(self, app: str, saved: dict[str, Any]) -> None: ...
    def role_name(self) -> str: ...
    def role_policy(self, name: str) -> dict[str, Any] | None: ...
    def put_role_policy(self, name: str, document: dict[str, Any]) -> None: ...
    def table_name(self, logical: str) -> str: ...
    def describe_table(self, name: str) -> dict[str, Any]: ...
    def update_table(self, name: str, wait: float = 300.0, **changes: Any) -> dict[str, Any]: ...
    def ingress(self, group_id: str) -> list[dict[str, Any]]: ...
    def revoke_ingress(self, group_id: str, permission: dict[str, Any]) -> bool: ...
    def authorize_ingress(self, group_id: str, permission: dict[str, Any]) -> bool: ...
    def ingress_rules(self, group_id: str) -> list[dict[str, Any]]: ...
    def modify_rule(self, group_id: str, rule_id: str, rule: dict[str, Any]) -> None: ...
    def revoke_rule(self, group_id: str, rule_id: str) -> None: ...
    def target_health(self) -> dict[str, list[dict[str, str]]]: ...
    def url(self, entry: str, path: str = "/") -> str: ...
    def probe(self, entry: str, path: str = "/", timeout: float = ...) -> tuple[int, float]: ...


def check_module(fault: str, world: str, module: ModuleType, pre_baked: bool = False) -> None:
    """Raise ContractError naming everything in `module` (fault's `world`.py) that breaks the contract."""
    wanted = [*FUNCTIONS, *(("current_params",) if pre_baked else ())]
    problems = [problem for name in wanted if (problem := _function_problem(module, name))]
    if problems:
        raise ContractError(f"fault {fault}: {world}.py {'; '.join(problems)}")


def _function_problem(module: ModuleType, name: str) -> str | None:
    """Return what is wrong with the module's function `name` (None: it takes ctl and its arguments)."""
    function = getattr(module, name, None)
    if function is None:
        return f"lacks {name}()"
    if not callable(function):
        return f"has {name}, but it is not a function"
    try:
        inspect.signature(function).bind(*range(ARITY[name]))
    except TypeError:
        return f"{name}() must take {ARITY[name]} arguments ({_arguments(name)})"
    except ValueError:  # a builtin without a signature: it is called and will tell
        return None
    return None


def _arguments(name: str) -> str:
    return {"clear": "ctl, params, saved", "current_params": "ctl"}.get(name, "ctl, params")
