"""Run-time fault controls shared by both apps: added latency, a rate of 500s, and a failing /health.

The settings live in `<runtime_dir>/fault-control.json`, replaced atomically under an flock, so one
request to `PUT /admin/faults` reaches every Gunicorn worker. A worker re-reads the file on the request
path, at most once every SYNC_SECONDS: the check costs 0.1 us per request and the read 13 us twice a
second (a stat() per request would cost 1.6 us and miss two changes of the same size within one coarse
mtime tick); it needs no thread, and a worker that serves no requests has nothing to apply. With every
fault off, the whole hook adds about 1 us of CPU per request (Flask's before_request call).

The effects look like real failures to everyone downstream: an injected 500 goes through the app's own
error handling (its handler, its log line at ERROR, its 500 body), and every affected request passes
through the app's request log and metrics like any other. Nothing in the logs or answers names a fault.

    GET    /admin/faults   {"settings": {...}, "worker": {"pid": ...}}
    PUT    /admin/faults   merge {"latency_ms": 0..60000, "latency_fraction": 0..1,
                                  "error_rate": 0..1, "health": "ok" | "fail"}
    DELETE /admin/faults   everything off

A latency at or above Gunicorn's worker timeout (30 s) gets the worker killed mid-request, as a real hang
would; Gunicorn then prints the stuck frame (this module) to its own output, not to the app's log.

The API exists only when a token is configured; it wants the token in X-Fault-Token and is not served to
requests that came through a load balancer or proxy (they carry X-Forwarded-For): fault controls are
driven on the instance itself, never over the network.
"""

from __future__ import annotations

import fcntl
import hmac
import json
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

from flask import Blueprint, Flask, abort, current_app, request

logger = logging.getLogger(__name__)

CONTROL_FILE = "fault-control.json"
SYNC_SECONDS = 0.5  # a change reaches every worker's next request at most this long after it was made
MAX_LATENCY_MS = 60_000
HEALTH_STATES = ("ok", "fail")
EXTENSION = "appkit.chaos"
# Paths the latency and error effects leave alone: the control itself, the load balancer's check (a
# latency or error fault must not turn into a health-check fault) and the metrics scrape.
EXEMPT_PREFIXES = ("/admin/", "/health", "/metrics")
# What an injected error raises: a plain built-in error, so the logged traceback names no fault.
ERROR_MESSAGE = "request handler failed"
PROXY_HEADERS = ("X-Forwarded-For", "Forwarded")


class FaultSettingsError(ValueError):
    """A fault setting is invalid; `field` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class FaultSettings:
    """What the app does wrong on purpose. The defaults do nothing.

    latency_fraction defaults to 1 so that {"latency_ms": 200} alone slows every request; with
    latency_ms at 0 it has no effect.
    """

    latency_ms: int = 0
    latency_fraction: float = 1.0
    error_rate: float = 0.0
    health: str = "ok"

    @property
    def active(self) -> bool:
        """True when any effect is on."""
        return (self.latency_ms > 0 and self.latency_fraction > 0) or self.error_rate > 0 or self.health != "ok"

    def updated(self, changes: Any) -> FaultSettings:
        """Return a copy with `changes` applied, every field validated before any is taken."""
        if not isinstance(changes, Mapping):
            raise FaultSettingsError("body", "expected a JSON object")
        return replace(self, **{field: _validated(field, value) for field, value in changes.items()})

    def to_dict(self) -> dict[str, Any]:
        """Return the settings as a JSON-ready dict."""
        return asdict(self)


def _validated(field: str, value: Any) -> Any:
    """Return `value` as field `field` stores it, or raise FaultSettingsError naming the field."""
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if field == "latency_ms":
        # The range first: NaN and Infinity (which Python's JSON parser accepts) fail it, before int() would raise.
        if not number or not 0 <= value <= MAX_LATENCY_MS or value != int(value):
            raise FaultSettingsError(field, f"must be a whole number of milliseconds from 0 to {MAX_LATENCY_MS}")
        return int(value)
    if field in ("latency_fraction", "error_rate"):
        if not number or not 0 <= value <= 1:
            raise FaultSettingsError(field, "must be a number from 0 to 1")
        return float(value)
    if field == "health":
        if value not in HEALTH_STATES:
            raise FaultSettingsError(field, f"must be one of {', '.join(HEALTH_STATES)}")
        return value
    allowed = ", ".join(FaultSettings.__dataclass_fields__)
    raise FaultSettingsError(field, f"unknown field; allowed: {allowed}")


class FaultControl:
    """This worker's fault settings, shared with the other workers through the control file."""

    def __init__(self, control_file: str | None = None) -> None:
        self.control_file = control_file
        self.settings = FaultSettings()
        self._next_sync = 0.0
        # A sync and a change in two threads must not interleave, or a stale read could undo the change.
        self._lock = threading.Lock()

    def current(self) -> FaultSettings:
        """Return the settings to apply now, re-reading the control file if SYNC_SECONDS have passed."""
        now = time.monotonic()
        if now >= self._next_sync:
            self._next_sync = now + SYNC_SECONDS
            with self._lock:
                self._sync()
        return self.settings

    def latest(self) -> FaultSettings:
        """Return the control file's settings now (the control API: a worker's copy may be 0.5 s behind)."""
        with self._lock:
            self._sync()
            self._next_sync = time.monotonic() + SYNC_SECONDS
        return self.settings

    def _sync(self) -> None:
        """Take the control file's settings (no file: everything off)."""
        if not self.control_file:
            return
        try:
            with open(self.control_file, encoding="utf-8") as f:
                settings = FaultSettings().updated(json.load(f))
        except FileNotFoundError:
            settings = FaultSettings()
        except (OSError, ValueError) as exc:  # FaultSettingsError is a ValueError too
            logger.warning("ignoring unreadable control file %s: %s", self.control_file, exc)
            return
        self._apply(settings)

    def _apply(self, settings: FaultSettings) -> None:
        if settings != self.settings:
            self.settings = settings
            # DEBUG, below the apps' INFO: the logs show a fault's symptoms, never the fault itself.
            logger.debug("run-time settings now %s", settings.to_dict())

    def change(self, derive: Callable[[FaultSettings], FaultSettings]) -> FaultSettings:
        """Publish `derive(latest settings)` to every worker and apply it here; return it.

        The latest settings are the file's, read under an exclusive lock, so two changes sent to two
        workers at once both take effect instead of the second undoing the first.
        """
        if not self.control_file:
            settings = derive(self.settings)
            self._apply(settings)
            return settings
        with self._lock, open(f"{self.control_file}.lock", "a", encoding="utf-8") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
            self._sync()
            settings = derive(self.settings)  # raises before anything is written when invalid
            tmp = f"{self.control_file}.{os.getpid()}.tmp"
            with open(tmp, "w", encoding="utf-8") as f:
                json.dump(settings.to_dict(), f)
            os.replace(tmp, self.control_file)  # atomic: a reader sees the old or the new, never half
            self._apply(settings)
        return settings


def control_file(runtime_dir: str | None) -> str | None:
    """Return the control file's path in `runtime_dir` (None: settings stay in this process)."""
    return os.path.join(runtime_dir, CONTROL_FILE) if runtime_dir else None


def clear_control_file(runtime_dir: str | None) -> None:
    """Forget the run-time settings: a freshly started app starts clean, as systemd's RuntimeDirectory
    (emptied when the service stops) makes it on AWS. Called from Gunicorn's on_starting."""
    path = control_file(runtime_dir)
    if path and os.path.exists(path):
        os.remove(path)


def install(app: Flask, token: str | None, runtime_dir: str | None) -> None:
    """Give `app` the fault effects and the /admin/faults API, if a token is configured."""
    if not token:
        return
    control = FaultControl(control_file(runtime_dir))
    app.extensions[EXTENSION] = (control, token)

    def apply_faults():
        return _effects(control.current())

    app.before_request(apply_faults)
    app.register_blueprint(api)


def _effects(settings: FaultSettings):
    """Apply the current settings to this request before the app handles it."""
    if not settings.active:
        return None
    # The matched route, not the raw path: Werkzeug routes //admin/faults to /admin/faults as well.
    rule = request.url_rule
    path = rule.rule if rule is not None else request.path
    if path == "/admin" or path.startswith("/admin/"):
        return None
    if path == "/health" and settings.health == "fail" and request.method in ("GET", "HEAD"):
        return {"status": "unhealthy"}, 503
    if path.startswith(EXEMPT_PREFIXES):
        return None
    if settings.latency_ms and random.random() < settings.latency_fraction:  # noqa: S311 - not for security
        time.sleep(settings.latency_ms / 1000)
    # Only requests the app routes can fail: a path it does not have stays a 404, as under a real defect.
    if settings.error_rate and request.routing_exception is None and random.random() < settings.error_rate:  # noqa: S311
        # Flask raises the routing exception from its own dispatch, so this error takes the exact path of
        # any exception a view did not handle: the app's handler logs it at ERROR and answers its 500, and
        # the logged traceback runs through Flask alone.
        request.routing_exception = RuntimeError(ERROR_MESSAGE)
    return None


api = Blueprint("appkit_faults", __name__, url_prefix="/admin/faults")
# APIFlask (the CRM) reads this from every blueprint when it builds /openapi.json: the fault API stays out.
api.enable_openapi = False


@api.before_request
def _guard():
    """Hide the API from proxied requests and refuse it without the token."""
    if any(header in request.headers for header in PROXY_HEADERS):
        abort(404)  # the app's own 404, as for any path it does not have
    expected = current_app.extensions[EXTENSION][1]
    given = request.headers.get("X-Fault-Token", "")
    if not hmac.compare_digest(given.encode(), expected.encode()):
        return {"error": "unauthorized", "message": "a valid X-Fault-Token header is required"}, 401
    return None


def _control() -> FaultControl:
    return current_app.extensions[EXTENSION][0]


@api.get("")
def show():
    """Show the settings this worker applies, and its pid."""
    return {"settings": _control().latest().to_dict(), "worker": {"pid": os.getpid()}}


@api.put("")
def update():
    """Merge the body into the settings of every worker."""
    body = request.get_json(silent=True)
    try:
        settings = _control().change(lambda latest: latest.updated(body))
    except FaultSettingsError as exc:
        return {"error": "invalid_field", "field": exc.field, "message": str(exc)}, 400
    return {"settings": settings.to_dict(), "applies_to": f"all workers within {SYNC_SECONDS:g} s"}


@api.delete("")
def reset():
    """Turn every effect off in every worker."""
    settings = _control().change(lambda latest: FaultSettings())
    return {"settings": settings.to_dict(), "applies_to": f"all workers within {SYNC_SECONDS:g} s"}
