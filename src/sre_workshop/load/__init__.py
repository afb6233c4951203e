"""Realistic traffic on demand, built on Locust: user flows, a bounded runner, and a background handle.

    from sre_workshop.load import local_targets, start
    handle = start(local_targets(settings), users=10, rate=50, duration="2m")
    ...                                   # inject a fault, watch
    summary = handle.stop()               # LoadSummary; summary.to_dict() is the `load --json` shape

Importing this package imports no Locust and patches nothing: Locust (and gevent's monkey-patching)
only ever runs in the child process that start() launches (see child.py). The names below are loaded
on first use so that the child, which imports this package too, can patch before anything else loads.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "start": "handle", "LoadHandle": "handle", "LoadFailed": "errors",
    "LoadSummary": "summary", "EndpointSummary": "summary", "Progress": "summary",
    "Targets": "targets", "local_targets": "targets",
    "aws_targets": "stack_outputs",
    "cleanup": "cleanup", "CleanupResult": "cleanup",
    "LoadOptions": "options", "parse_duration": "options",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    """Import the module that defines `name` on first use."""
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
