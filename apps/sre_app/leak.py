"""The workshop's deliberate memory leak, and the runtime control that shares its settings across workers.

DELIBERATE: this module simulates a memory leak in a production service (a cache that is never evicted).
Every leaked byte is really allocated, written to (so the kernel counts it in RSS) and kept reachable
until released, so `memory_leak_size_mb` agrees with the worker's RSS growth. Two modes: per request
(KB per GET /) and over time (MB per minute); a hard cap stops a worker from taking the whole instance.

Each Gunicorn worker leaks on its own, as a real leak would. Settings changed at run time are written to a
control file that every worker re-reads on its one-second tick, so one request to /admin/leak reaches
all workers.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import fcntl
import json
import logging
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

from .config import LEAK_MODES, Settings

logger = logging.getLogger(__name__)

MIB = 1024 * 1024


class LeakSettingsError(ValueError):
    """A leak setting sent to the control endpoint is invalid; `field` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class LeakSettings:
    """How the leak behaves. `generation` changes when retained memory is to be released."""

    mode: str
    kb_per_request: float
    mb_per_minute: float
    cap_mb: float
    generation: int = 0

    @classmethod
    def from_settings(cls, settings: Settings) -> LeakSettings:
        """Take the start-up leak settings from the app's environment settings."""
        return cls(settings.leak_mode, settings.leak_kb_per_request, settings.leak_mb_per_minute,
                   settings.leak_cap_mb)

    def updated(self, changes: Mapping[str, Any]) -> LeakSettings:
        """Return a copy with `changes` applied, validating each field."""
        if not isinstance(changes, Mapping):
            raise LeakSettingsError("body", "expected a JSON object")
        allowed = {"mode", "kb_per_request", "mb_per_minute", "cap_mb"}
        for field in changes:
            if field not in allowed:
                raise LeakSettingsError(field, f"unknown field; allowed: {', '.join(sorted(allowed))}")
        if "mode" in changes and changes["mode"] not in LEAK_MODES:
            raise LeakSettingsError("mode", f"must be one of {', '.join(LEAK_MODES)}")
        limits = {"kb_per_request": 100 * 1024, "mb_per_minute": 10 * 1024, "cap_mb": 16 * 1024}
        for field, limit in limits.items():
            if field in changes:
                value = changes[field]
                if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= limit:
                    raise LeakSettingsError(field, f"must be a number from 0 to {limit}")
        return replace(self, **{k: (v if k == "mode" else float(v)) for k, v in changes.items()})

    def to_dict(self) -> dict[str, Any]:
        """Return the settings as a JSON-ready dict."""
        return asdict(self)


class Leak:
    """Memory this worker retains on purpose, growing by the current LeakSettings."""

    def __init__(self, settings: LeakSettings, control_file: str | None = None) -> None:
        self.settings = settings
        self.control_file = control_file
        # DELIBERATE: the "cache" that is never evicted. Chunks stay reachable from this list.
        self._retained: list[bytes] = []
        self._retained_bytes = 0
        self._lock = threading.Lock()
        # The ticker's sync() and a request's change() must not interleave, or a stale read could undo a change.
        self._control_lock = threading.RLock()

    @property
    def retained_bytes(self) -> int:
        """Bytes this worker holds on purpose."""
        return self._retained_bytes

    @property
    def size_mb(self) -> float:
        """Retained memory in MiB, as reported in `memory_leak_size_mb`."""
        return round(self._retained_bytes / MIB, 2)

    def on_request(self) -> None:
        """Leak the per-request amount (request mode only)."""
        if self.settings.mode == "request" and self.settings.kb_per_request > 0:
            self._grow(int(self.settings.kb_per_request * 1024))

    def on_tick(self, seconds: float) -> None:
        """Leak the amount due after `seconds` of wall time (time mode only)."""
        if self.settings.mode == "time" and self.settings.mb_per_minute > 0:
            self._grow(int(self.settings.mb_per_minute * MIB * seconds / 60))

    def _grow(self, nbytes: int) -> None:
        """Allocate, touch and keep up to `nbytes` more, never beyond the cap."""
        with self._lock:
            room = int(self.settings.cap_mb * MIB) - self._retained_bytes
            nbytes = min(nbytes, room)
            if nbytes <= 0:
                return
            # DELIBERATE: a filled (not zeroed) buffer, so every page is resident and shows in RSS.
            self._retained.append(b"\xa5" * nbytes)
            self._retained_bytes += nbytes

    def release(self) -> None:
        """Free the retained memory and hand it back to the OS."""
        with self._lock:
            self._retained.clear()
            self._retained_bytes = 0
        _malloc_trim()

    def apply(self, settings: LeakSettings) -> None:
        """Switch to `settings`; a new generation releases what was retained."""
        old = self.settings
        if settings.generation != old.generation:
            self.release()
        self.settings = settings  # after the release: whoever sees the new generation sees the memory freed
        if settings != old:
            logger.debug("run-time settings now %s", settings.to_dict())

    def change(self, derive: Callable[[LeakSettings], LeakSettings]) -> LeakSettings:
        """Publish `derive(latest settings)` to every worker and apply it here; return it.

        The latest settings are the control file's, read under an exclusive lock: two changes that reach
        two workers within one tick both take effect, instead of the second one undoing the first.
        """
        if not self.control_file:
            settings = derive(self.settings)
            self.apply(settings)
            return settings
        with self._control_lock, open(f"{self.control_file}.lock", "a", encoding="utf-8") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
            self.sync()
            settings = derive(self.settings)
            tmp = f"{self.control_file}.{os.getpid()}.tmp"
            with open(tmp, "w", encoding="utf-8") as f:
                json.dump(settings.to_dict(), f)
            os.replace(tmp, self.control_file)  # atomic: a reader sees old or new, never half
            self.apply(settings)
        return settings

    def sync(self) -> None:
        """Apply the control file's settings if they differ from this worker's.

        The file is read on every tick: it is tiny, and its mtime would miss a second change made within
        the same clock tick of the kernel's coarse file timestamps.
        """
        if not self.control_file:
            return
        with self._control_lock:
            try:
                with open(self.control_file, encoding="utf-8") as f:
                    settings = LeakSettings(**json.load(f))
            except FileNotFoundError:
                return
            except (OSError, ValueError, TypeError) as exc:
                logger.warning("ignoring unreadable leak control file: %s", exc)
                return
            if settings != self.settings:
                self.apply(settings)


def _malloc_trim() -> None:
    """Ask glibc to return freed heap pages to the OS, so releasing the leak shows in RSS."""
    libc_name = ctypes.util.find_library("c")
    if libc_name:
        libc = ctypes.CDLL(libc_name)
        if hasattr(libc, "malloc_trim"):
            libc.malloc_trim(0)


def rss_bytes() -> int:
    """Return this process's resident set size, read from /proc."""
    with open("/proc/self/statm", encoding="ascii") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
