"""Noise beside a scenario: what a real system shows on a good day, so that a diagnosis cannot lean on
"anything unusual is the fault". Runnable with any scenario and with the control (`scenario run --noise`).

    client-errors   requests for pages that do not exist: 404s at both public entry points
    error-lines     ERROR lines in the apps' logs about things that are not wrong with the stack
                    (a partner's webhook, a newsletter export): the kind of line every real log carries
    deploy          a routine restart of a healthy component, as a deploy does: crm-app's workers rolled
                    one at a time (Gunicorn's SIGTTIN adds a new worker, SIGTTOU then retires the oldest)
    busy-process    a busy process outside the stack (a batch job's loop), for the whole run
    load-burst      a short burst of extra load on both entry points

Noise is the examinee's to see, so nothing in it names a fault or says it is noise: the busy process is a
plain interpreter loop, the log lines read as an application's own. Each injector fires on a schedule drawn
from the run's seed; stopping ends every process noise started.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime

from ..errors import UsageError
from ..local.process import group_members
from ..local.stack import Stack

logger = logging.getLogger(__name__)

KINDS = ("client-errors", "error-lines", "deploy", "busy-process", "load-burst")
PERIOD_S = 3.0  # one round of the periodic injectors
DEPLOY_AFTER_S = 8.0  # the restart happens once, this long into the run
# Between two steps of the rolling deploy: time for the new worker to boot on a busy 2-core host. A SIGHUP
# would be quicker, but it retires every old worker before the new ones can serve: a gap of seconds under
# load, which is an outage (a true positive), not a routine deploy.
DEPLOY_STEP_S = 4.0
BURST = {"users": 6, "rate": 20.0, "duration": 8}
# What a busy batch job looks like from outside: an interpreter in a loop, no socket, no name of ours.
BUSY = "while True:\n    sum(i * i for i in range(10000))\n"
LINES = (
    ("crm-app", "webhook delivery to partner endpoint failed: 410 Gone (subscription expired)"),
    ("crm-app", "newsletter export skipped 3 contacts with malformed e-mail addresses"),
    ("sre-app", "feature flag service returned an unknown flag 'beta-dashboard'; using the default"),
)


def parse_kinds(text: str | None) -> tuple[str, ...]:
    """Return the noise kinds named by `--noise` (comma-separated, or "all"); raise UsageError on unknown ones."""
    if not text:
        return ()
    kinds = KINDS if text == "all" else tuple(k.strip() for k in text.split(",") if k.strip())
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise UsageError(f"no noise named {', '.join(unknown)}; noise: {', '.join(KINDS)} (or all)")
    return kinds


class Noise:
    """The chosen injectors, running in a thread (and a process or two) until stop()."""

    def __init__(self, stack: Stack, kinds: tuple[str, ...], seed: int = 0) -> None:
        self.stack = stack
        self.kinds = kinds
        self.rng = random.Random(f"noise:{seed}")  # noqa: S311 (a reproducible schedule, not a secret)
        self.stopping = threading.Event()
        self.thread: threading.Thread | None = None
        self.busy: subprocess.Popen | None = None
        self.burst = None
        self.fired: dict[str, int] = dict.fromkeys(kinds, 0)
        self.deploy_steps: list[signal.Signals] = []  # the rolling deploy's signals still to send
        self.deploy_step_at = 0.0

    def __enter__(self) -> Noise:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> Noise:
        """Start the busy process (if chosen) and the thread that fires the others."""
        if not self.kinds:
            return self
        if "busy-process" in self.kinds:
            env = {k: v for k, v in os.environ.items() if not k.startswith("SRE_WORKSHOP")}  # not the stack's
            self.busy = subprocess.Popen([sys.executable, "-c", BUSY], cwd="/", env=env, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                         start_new_session=True)
            self.fired["busy-process"] = 1
        self.thread = threading.Thread(target=self._loop, name="noise", daemon=True)
        self.thread.start()
        return self

    def stop(self) -> dict[str, int]:
        """Stop every injector and what it started; return how often each fired."""
        self.stopping.set()
        if self.thread:
            self.thread.join(timeout=30)
        if len(self.deploy_steps) % 2:  # stopped between adding a worker and retiring one: back to the count
            self._signal_crm(signal.SIGTTOU)
        self.deploy_steps = []
        if self.busy and self.busy.poll() is None:
            self.busy.kill()
            self.busy.wait()
        burst, self.burst = self.burst, None
        if burst is not None:
            try:
                burst.stop()
            except Exception as exc:  # noise that failed to stop cleanly must not hide the score
                logger.warning("load burst: %s", exc)
                burst.kill()
        return self.fired

    def _loop(self) -> None:
        started = time.monotonic()
        while not self.stopping.wait(PERIOD_S * self.rng.uniform(0.5, 1.5)):
            elapsed = time.monotonic() - started
            for kind in self.kinds:
                try:
                    self._fire(kind, elapsed)
                except Exception as exc:  # noise is best effort: one failure is logged, the run goes on
                    logger.warning("noise %s: %s", kind, exc)

    def _fire(self, kind: str, elapsed: float) -> None:
        if kind == "client-errors":
            self._client_errors()
        elif kind == "error-lines":
            self._error_line()
        elif kind == "deploy" and not self.fired["deploy"] and elapsed >= DEPLOY_AFTER_S:
            self.fired["deploy"] += 1
            self._deploy(elapsed)
            return
        elif kind == "deploy" and self.deploy_steps and elapsed - self.deploy_step_at >= DEPLOY_STEP_S:
            self._signal_crm(self.deploy_steps.pop(0))
            self.deploy_step_at = elapsed
            return
        elif kind == "load-burst" and self.burst is None and elapsed >= DEPLOY_AFTER_S / 2:
            from ..load import local_targets, start

            self.burst = start(local_targets(self.stack.settings, "both"), **BURST)
        else:
            return
        self.fired[kind] += 1

    def _deploy(self, elapsed: float) -> None:
        """Start rolling crm-app's workers as a deploy does, one at a time: a new worker first, then the
        oldest retired gracefully (it finishes its requests), so some worker always serves."""
        record = self.stack.record("crm-app")
        if record is None:
            return
        workers = sum(1 for pid in group_members(record.pid) if pid != record.pid)
        self.deploy_steps = [signal.SIGTTIN, signal.SIGTTOU] * max(1, workers)
        self._signal_crm(self.deploy_steps.pop(0))
        self.deploy_step_at = elapsed

    def _signal_crm(self, signum: signal.Signals) -> None:
        """Send a signal to crm-app's Gunicorn master (its recorded pid), if it runs."""
        record = self.stack.record("crm-app")
        if record is not None:
            with contextlib.suppress(ProcessLookupError):  # it stopped since: nothing left to roll
                os.kill(record.pid, signum)

    def _client_errors(self) -> None:
        """A few requests for pages that do not exist, at both public entry points."""
        for base in self.stack.settings.endpoints.values():
            path = self.rng.choice(("/wp-login.php", "/favicon.ico", "/old-page", "/api/customers/none-such"))
            try:
                urllib.request.urlopen(base + path, timeout=5).close()  # noqa: S310 (the stack's own http URL)
            except urllib.error.HTTPError as exc:
                exc.close()

    def _error_line(self) -> None:
        """One ERROR line, as the app writes its own, about something outside the stack's health."""
        app, message = self.rng.choice(LINES)
        entry = {"time": datetime.now(UTC).isoformat(timespec="milliseconds"), "level": "ERROR",
                 "logger": "app.jobs", "message": message}
        with (self.stack.settings.logs_dir / f"{app}.json.log").open("a") as log:
            log.write(json.dumps(entry) + "\n")
