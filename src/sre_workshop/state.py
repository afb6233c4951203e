"""One local stack's state: what `up` chose, the changes made to its configs, and who holds the stack.

Every entry point (CLI, doctor, the MCP server) reads it through `StateStore`, so they agree on it:

    run/state.json   {"dynamodb_endpoint": "http://..." | null, "engine": "dynalite" | "moto",
                      "metrics_period": 10 | null}
    examiner/faults.json
                     {"overlays": [{"owner": "nginx-timeout", "target": "nginx.conf",
                                    "replace": {"proxy_read_timeout 60s;": "proxy_read_timeout 1s;"}}],
                      "faults": {"<name>": {...what the fault saved before changing anything...}},
                      "pending_events": [...ledger events not yet written...]}
    run/stack.lock   held (flock) by the command that is changing the stack; holds its pid and command
    run/faults.lock  held while a fault is injected or cleared

Overlays are the local twin of editing a file on an instance: a restart renders the configs again from
the templates *with* the overlays, so a change survives `service restart` until its owner removes it, as
an edited /etc/nginx/nginx.conf survives `systemctl restart nginx`.

What names a fault (its record, an overlay's owner, a pending ledger event) is the examiner's: it is kept in
the examiner's directory (Settings.examiner_dir, 0700, hidden in every instance's view), never in run/, so a
learner who reads the state directory as an instance's /etc finds what `up` chose, not the answer.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .errors import StackBusy, StateError
from .settings import Settings


@dataclass(frozen=True)
class Overlay:
    """A change to one rendered config, made by `owner`.

    `target` is a rendered file's name ("nginx.conf", "public-alb.cfg"); `replace` maps exact text of the
    rendered config to its replacement (each must be found). (An app's settings are its env file, which it
    reads at each start: twin/hostview.py.)
    """

    owner: str
    target: str
    replace: dict[str, str]


@dataclass
class StackState:
    """What the stack's state file holds."""

    dynamodb_endpoint: str | None = None
    engine: str | None = None
    metrics_period: int | None = None  # `up --metrics-period`: the twin's seconds per datapoint
    overlays: list[Overlay] = field(default_factory=list)
    faults: dict[str, dict[str, Any]] = field(default_factory=dict)
    pending_events: list[dict[str, Any]] = field(default_factory=list)  # ledger events not yet written

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StackState:
        """Build the state from its JSON form."""
        return cls(dynamodb_endpoint=data.get("dynamodb_endpoint"), engine=data.get("engine"),
                   metrics_period=data.get("metrics_period"),
                   overlays=[Overlay(**o) for o in data.get("overlays", [])],
                   faults=dict(data.get("faults", {})), pending_events=list(data.get("pending_events", [])))

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form."""
        return asdict(self)

    def overlays_for(self, target: str) -> list[Overlay]:
        """Return the overlays on one config, oldest first."""
        return [o for o in self.overlays if o.target == target]


# The fields of StackState that are the examiner's (kept in examiner/faults.json, not in run/state.json).
EXAMINER_FIELDS = ("overlays", "faults", "pending_events")


class StateStore:
    """Reads and changes one stack's state file; every change is atomic and made under a file lock."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.path = settings.run_dir / "state.json"
        self.examiner_path = settings.examiner_dir / "faults.json"

    def read(self) -> StackState:
        """Return the state (empty when the stack never ran)."""
        # A state.json written before the split may still hold the examiner's fields: the examiner's file wins.
        try:
            return StackState.from_dict({**_read_json(self.path), **_read_json(self.examiner_path)})
        except (TypeError, AttributeError) as exc:
            raise StateError(f"cannot read {self.path} or {self.examiner_path} ({exc}): fix or remove them") from exc

    @contextlib.contextmanager
    def update(self) -> Iterator[StackState]:
        """Yield the state to change; write it back atomically when the block ends without error."""
        with _flock(self.settings.run_dir / "state.lock"):
            state = self.read()
            yield state
            data = state.to_dict()
            examiner = {k: data.pop(k) for k in EXAMINER_FIELDS}
            # The examiner's file first: a fault's record is durable before anything else is written.
            private_dir(self.settings.examiner_dir)
            _write_atomically(self.examiner_path, json.dumps(examiner, indent=1))
            _write_atomically(self.path, json.dumps(data, indent=1))


def lab_path(settings: Settings) -> Path:
    """Return where a running lab's state is kept (scenarios/lab.py): the examiner's, like the fault records."""
    return settings.examiner_dir / "lab.json"


def lab_running(settings: Settings) -> bool:
    """True while a lab runs on the stack: its fault is the learner's to find, and no tool may name it."""
    return lab_path(settings).exists()


def _read_json(path: Path) -> dict[str, Any]:
    """Return a state file's JSON object ({} when it does not exist)."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise StateError(f"cannot read {path} ({exc}): fix or remove it") from exc
    if not isinstance(data, dict):
        raise StateError(f"cannot read {path} (not a JSON object): fix or remove it")
    return data


def private_dir(path: Path) -> Path:
    """Create a directory only its user can read (the examiner's), or make an existing one so."""
    ensure_dir(path)
    path.chmod(0o700)
    return path


def ensure_dir(path: Path) -> Path:
    """Create a state directory, naming the path and the fix when that is impossible."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):  # a name of its own: two commands may check at once
            pass
    except OSError as exc:
        raise StateError(f"cannot write to {path} ({exc.strerror or exc}): choose a writable --state-dir "
                         "or fix its permissions") from exc
    return path


def _write_atomically(path: Path, text: str) -> None:
    """Write `text` to `path` so that a reader sees either the old or the new file, never a part."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text)
        tmp.replace(path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise StateError(f"cannot write {path} ({exc.strerror or exc}): fix the state directory's permissions") \
            from exc


@contextlib.contextmanager
def _flock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on `path` for the block (a short critical section)."""
    ensure_dir(path.parent)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


class StackLock:
    """The lock a command holds while it changes the stack (`up`, `down`, `service`, a fault).

    The holder writes its pid and command into the file, so that a refused command can say who holds
    the stack; the kernel drops the lock when the holder exits, however it exits.
    """

    def __init__(self, settings: Settings, name: str = "stack") -> None:
        self.path = settings.run_dir / f"{name}.lock"
        self._handle = None

    def holder(self) -> dict[str, Any] | None:
        """Return {"pid", "command", "since"} of the process holding the lock, or None if it is free."""
        if not self.path.exists():
            return None
        with open(self.path) as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                with contextlib.suppress(ValueError):
                    return json.loads(self.path.read_text() or "{}")
                return {}
            fcntl.flock(handle, fcntl.LOCK_UN)
        return None

    def acquire(self, command: str, wait: float = 0.0) -> None:
        """Take the lock for `command`, waiting up to `wait` seconds; raise StackBusy naming the holder."""
        ensure_dir(self.path.parent)
        handle = open(self.path, "a+")  # noqa: SIM115 - held until release()
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    handle.seek(0)
                    holder = handle.read()
                    handle.close()
                    raise StackBusy(f"{_describe(holder)} is changing this stack; wait for it or stop it") from None
                time.sleep(0.1)
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({"pid": os.getpid(), "command": command, "since": time.time()}))
        handle.flush()
        self._handle = handle

    def release(self) -> None:
        """Drop the lock (idempotent)."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def __enter__(self) -> StackLock:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()


def _describe(holder_json: str) -> str:
    """Name a lock holder from its JSON record: "`sre-workshop up` (pid 123)"."""
    with contextlib.suppress(ValueError):
        holder = json.loads(holder_json)
        return f"`sre-workshop {holder['command']}` (pid {holder['pid']})"
    return "another sre-workshop command"
