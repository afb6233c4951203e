"""Run doctor's readers side by side under one deadline: a reader that hangs costs the deadline, never a wait.

Each reader runs in a daemon thread (a reader stuck on a frozen process cannot keep doctor, or the
interpreter at exit, waiting). At the deadline, whatever has not answered is noted in `unknown` with the
reason, and its value is the default: a signal that could not be read is neither a finding nor healthy.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)


class Readers:
    """Readers started at once, collected by one deadline."""

    def __init__(self, deadline_s: float, unknown: dict[str, str]) -> None:
        self.deadline = time.monotonic() + deadline_s
        self.deadline_s = deadline_s
        self.unknown = unknown
        self._threads: dict[str, threading.Thread] = {}
        self._results: dict[str, Any] = {}

    def start(self, name: str, read: Callable[[], Any]) -> None:
        """Start `read` now, in its own daemon thread."""
        thread = threading.Thread(target=self._run, args=(name, read), name=f"doctor {name}", daemon=True)
        self._threads[name] = thread
        thread.start()

    def _run(self, name: str, read: Callable[[], Any]) -> None:
        try:
            self._results[name] = read()
        except Exception as exc:  # a reader's failure is what could not be read, never doctor's crash
            logger.debug("reader %s failed", name, exc_info=True)
            self._results[name] = _Failed(f"{type(exc).__name__}: {exc}"[:200])

    def result(self, name: str, default: Any) -> Any:
        """Return the reader's value, waiting at most until the deadline; else note it unknown, return default."""
        thread = self._threads[name]
        thread.join(max(0.0, self.deadline - time.monotonic()))
        value = self._results.get(name) if not thread.is_alive() else None
        if thread.is_alive():
            self.unknown[name] = f"did not answer within doctor's {self.deadline_s:g} s deadline"
            return default
        if isinstance(value, _Failed):
            self.unknown[name] = value.reason
            return default
        return value


class _Failed:
    def __init__(self, reason: str) -> None:
        self.reason = reason
