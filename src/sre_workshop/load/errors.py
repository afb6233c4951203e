"""The load generator's own expected failure."""

from __future__ import annotations

from ..errors import WorkshopError


class LoadFailed(WorkshopError):
    """The load generator could not start, or ended without a summary."""

    code = "load_failed"
