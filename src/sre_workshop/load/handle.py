"""Run load in the background for other commands: `handle = start(targets, ...)`, `summary = handle.stop()`.

Locust runs in a child process (sre_workshop.load.child) so that its gevent monkey-patching never
reaches the caller: start() and stop() work from any thread of any program, install no signal handler,
and leave the caller's Ctrl-C alone (the child is in its own session; the caller decides when to stop).
The child stops by itself at the end of the duration, on stop(), or when its parent goes away.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import IO, Any

from ..errors import ExitStatus, UsageError, WorkshopError
from .errors import LoadFailed
from .options import LoadOptions, parse_duration
from .summary import LoadSummary, Progress
from .targets import Targets

STARTUP_TIMEOUT_S = 60.0   # importing Locust and spawning users takes about a second; a loaded machine more
STOP_GRACE_S = 30.0        # users finish their flow (at most 5 s), then the summary is built


class LoadHandle:
    """A load run in a child process: its live progress, its web UI's URL, and its summary when done."""

    def __init__(self, process: subprocess.Popen, stderr: IO[bytes], run_id: str) -> None:
        self.process = process
        self.run_id = run_id
        self.web_url: str | None = None
        self.progress: Progress | None = None
        self.summary: LoadSummary | None = None
        self._stderr = stderr
        self._error: dict[str, Any] | None = None
        self._started = threading.Event()
        self._ended = threading.Event()
        self._reader = threading.Thread(target=self._read, name=f"load-{run_id}", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        """Follow the child's events until it closes stdout."""
        try:
            for line in self.process.stdout:
                self._handle(json.loads(line))
        finally:
            self._started.set()
            self._ended.set()

    def _handle(self, event: dict[str, Any]) -> None:
        kind = event.pop("event")
        if kind == "started":
            self.web_url = event["web_url"]
            self._started.set()
        elif kind == "progress":
            self.progress = Progress(**event)
        elif kind == "summary":
            self.summary = LoadSummary.from_dict(event["summary"])
        elif kind == "error":
            self._error = event

    @property
    def running(self) -> bool:
        """True until the child has reported its end."""
        return not self._ended.is_set()

    def wait_started(self, timeout: float = STARTUP_TIMEOUT_S) -> None:
        """Block until users are running; raise LoadFailed if the child failed or took too long."""
        if not self._started.wait(timeout):
            self.kill()
            raise LoadFailed(f"the load generator did not start within {timeout:.0f}s")
        if self._ended.is_set() and self.summary is None:
            self.wait()  # raises the child's failure

    def wait(self, timeout: float | None = None) -> LoadSummary | None:
        """Wait up to `timeout` seconds for the run to end; return its summary, or None if still running."""
        if not self._ended.wait(timeout):
            return None
        self.process.wait()
        failure = self._failure() if self.summary is None else None
        self._close()
        if failure is not None:
            raise failure
        return self.summary

    def stop(self, timeout: float = STOP_GRACE_S) -> LoadSummary:
        """Stop the run now (or collect it if it ended) and return its summary."""
        if self.running:
            try:
                self.process.stdin.write(b"stop\n")
                self.process.stdin.flush()
            except (BrokenPipeError, OSError, ValueError):
                pass  # it is ending anyway
        summary = self.wait(timeout)
        if summary is None:
            self.kill()
            raise LoadFailed(f"the load generator did not stop within {timeout:.0f}s; it was killed")
        return summary

    def kill(self) -> None:
        """End the child at once (no summary)."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self._reader.join(timeout=5)
        self._close()

    def _failure(self) -> WorkshopError:
        """Return the child's own error, or LoadFailed with the end of its stderr."""
        if self._error is not None:
            return _as_error(self._error)
        self._stderr.seek(0)
        tail = self._stderr.read().decode(errors="replace").strip().splitlines()[-5:]
        return LoadFailed("the load generator ended without a summary: " + (" | ".join(tail) or "no output"))

    def _close(self) -> None:
        """Close the pipes and the stderr file of a child that has ended."""
        for stream in (self.process.stdin, self.process.stdout, self._stderr):
            if stream is not None and not stream.closed:
                with contextlib.suppress(OSError):  # a pipe whose other end is gone
                    stream.close()

    def __enter__(self) -> LoadHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.running:
            self.stop()


def _as_error(event: dict[str, Any]) -> WorkshopError:
    """Rebuild the child's expected failure as the same WorkshopError subclass (by its code)."""
    kinds, found = [WorkshopError], {}
    while kinds:
        kind = kinds.pop()
        found.setdefault(kind.code, kind)
        kinds.extend(kind.__subclasses__())
    error = found.get(event["error"], WorkshopError)(event["message"])
    error.exit_status = ExitStatus(event["exit_status"])
    return error


def start(targets: Targets, users: int = 10, rate: float | None = None, duration: float | str = 60.0, *,
          web_port: int | None = None, spawn_rate: float | None = None, trace_path: Path | None = None,
          startup_timeout: float = STARTUP_TIMEOUT_S) -> LoadHandle:
    """Start load against `targets` in a child process; return once its users run."""
    seconds = parse_duration(duration) if isinstance(duration, str) else float(duration)
    options = LoadOptions(users=users, rate=rate, duration_s=seconds, web_port=web_port, spawn_rate=spawn_rate)
    if users < len(targets.urls):
        raise UsageError(f"--users must be at least {len(targets.urls)} to load {len(targets.urls)} targets")
    run_id = f"load-{secrets.token_hex(4)}"
    config = {"targets": targets.to_dict(), "options": options.to_dict(), "run_id": run_id,
              "trace_path": str(trace_path) if trace_path else None}
    stderr = tempfile.TemporaryFile(prefix="sre-workshop-load-")  # noqa: SIM115 (lives as long as the handle)
    process = subprocess.Popen([sys.executable, "-m", "sre_workshop.load.child"], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=stderr, start_new_session=True)
    process.stdin.write(json.dumps(config).encode() + b"\n")
    process.stdin.flush()
    handle = LoadHandle(process, stderr, run_id)
    try:
        handle.wait_started(startup_timeout)
    except BaseException:  # Ctrl-C while it starts too: the child has its own session and would run on
        handle.kill()
        raise
    return handle
