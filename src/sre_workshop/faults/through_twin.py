"""A fault's local functions when its local world is its AWS implementation, run against the AWS API twin.

A fault whose fault.toml says

    [worlds.local]
    via = "twin"

has no local.py: locally each of aws.py's functions is called with `ctl.twin()` (local/control.py: the
stack's resources in the twin, whose Run Command runs a script in the instance's view of the machine),
with [worlds.local] params fixed over the given ones (dynamodb-throttling's provisioned form). So one
implementation serves both worlds, as an operator's repair does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .contract import FaultModule, LocalCtl, Params, Saved


@dataclass(frozen=True)
class ThroughTwin:
    """aws.py's functions, given the local stack's control object: each call goes to `ctl.twin()`."""

    aws: FaultModule[Any]
    fixed: Params = field(default_factory=dict)  # [worlds.local] params

    def _params(self, params: Params) -> Params:
        return {**params, **self.fixed}

    def snapshot(self, ctl: LocalCtl, params: Params) -> Saved:
        """Return what aws.py's inject is about to change, read in the twin."""
        return self.aws.snapshot(ctl.twin(), self._params(params))

    def inject(self, ctl: LocalCtl, params: Params) -> None:
        """Make aws.py's change in the twin."""
        self.aws.inject(ctl.twin(), self._params(params))

    def verify(self, ctl: LocalCtl, params: Params) -> str:
        """Return aws.py's evidence, read in the twin."""
        return self.aws.verify(ctl.twin(), self._params(params))

    def active(self, ctl: LocalCtl, params: Params) -> bool | None:
        """Return whether aws.py finds the fault in effect in the twin."""
        return self.aws.active(ctl.twin(), self._params(params))

    def clear(self, ctl: LocalCtl, params: Params, saved: Saved) -> None:
        """Put back what aws.py saved, in the twin."""
        self.aws.clear(ctl.twin(), self._params(params), saved)

    def current_params(self, ctl: LocalCtl) -> Params:
        """Return a pre-baked fault's parameters in effect, read in the twin (the load checked aws.py has it)."""
        return self.aws.current_params(ctl.twin())  # type: ignore[attr-defined]
