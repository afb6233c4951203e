"""What every part of the local stack stands on: its components, their pid records, and its lock.

A component is running when its pid record names a live process (process.py): records are kept in
run/pids/, one file per component, and a record whose process died is stale.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from ..errors import UsageError
from ..settings import Settings
from ..state import StackLock, StateStore, ensure_dir
from .components import ORDER, Component, components
from .process import ProcessRecord, is_alive, stop

Progress = Callable[[str], None]


class StackRecords:
    """The components of the stack described by `settings` and their pid records. Creating one reads
    nothing and writes nothing."""

    def __init__(self, settings: Settings, progress: Progress | None = None) -> None:
        self.settings = settings
        self.progress = progress or (lambda message: None)
        self.components: dict[str, Component] = components(settings)
        self.pid_dir = settings.run_dir / "pids"
        self.store = StateStore(settings)
        self.lock = StackLock(settings)

    def record(self, name: str) -> ProcessRecord | None:
        """Return the pid record of a component, or None if it was never started or was stopped."""
        return ProcessRecord.load(self.pid_dir / f"{name}.json")

    def running(self, name: str) -> bool:
        """True if the component's recorded process is alive."""
        record = self.record(name)
        return record is not None and is_alive(record)

    def component(self, name: str) -> Component:
        """Return a component by name, or raise UsageError naming the valid ones."""
        if name not in self.components:
            raise UsageError(f"no component named {name!r}; components: {', '.join(self.components)}")
        return self.components[name]

    def recover_stale(self) -> list[str]:
        """Forget records of processes that died (a crashed or killed run); return their names."""
        stale = []
        for name in ORDER:
            record = self.record(name)
            if record is not None and not is_alive(record):
                stop(record, timeout=5)  # its children (workers) may have outlived it
                (self.pid_dir / f"{name}.json").unlink(missing_ok=True)
                stale.append(name)
        return stale

    @contextlib.contextmanager
    def _locked(self, command: str, wait: float = 0.0) -> Iterator[None]:
        ensure_dir(self.settings.run_dir)
        self.lock.acquire(command, wait)
        try:
            yield
        finally:
            self.lock.release()
