"""Graceful overload for a threaded app: bounded concurrency, a bounded queue, fast 503s with Retry-After.

Under more load than DynamoDB (or the emulator) can serve, letting every request in makes each one slower
until all of them time out, and a health check queued behind them fails too, so the load balancer takes
the target out and answers 503 for everything. Admission keeps the work in progress bounded instead:

- at most `active` requests run at once in a worker; up to `waiting` more wait for a slot, each for at
  most `wait_seconds`; everything beyond that, and every wait that runs out, is answered at once with
  503 and Retry-After, costing well under a millisecond;
- the request body is read before a slot is taken, so a client that sends slowly holds a thread, never
  a slot;
- exempt paths (the load balancer's /health) never wait, so a busy target still answers its checks.
"""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterable
from typing import Any

RETRY_AFTER_SECONDS = 1


class Admission:
    """WSGI middleware that admits at most `active` requests at once, queueing at most `waiting` more."""

    def __init__(self, wsgi_app, active: int, waiting: int, wait_seconds: float, max_body: int,
                 exempt: tuple[str, ...] = ("/health", "/static/")) -> None:
        self.wsgi_app = wsgi_app
        self.waiting_max = waiting
        self.wait_seconds = wait_seconds
        self.max_body = max_body
        self.exempt = exempt
        self.slots = threading.BoundedSemaphore(active)
        self.waiting = 0
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response) -> Iterable[bytes]:
        if environ.get("PATH_INFO", "").startswith(self.exempt):
            return self.wsgi_app(environ, start_response)
        buffer_body(environ, self.max_body)
        if not self.acquire():
            return overloaded(environ, start_response)
        try:
            # Flask builds the whole body before it returns, so the slot covers all of the request's work.
            return self.wsgi_app(environ, start_response)
        finally:
            self.slots.release()

    def acquire(self) -> bool:
        """Take a slot, waiting in the bounded queue if there is room; False if the request is refused."""
        if self.slots.acquire(blocking=False):
            return True
        with self._lock:
            if self.waiting >= self.waiting_max:
                return False
            self.waiting += 1
        try:
            return self.slots.acquire(timeout=self.wait_seconds)
        finally:
            with self._lock:
                self.waiting -= 1


def buffer_body(environ: dict[str, Any], max_body: int) -> None:
    """Read the request body into memory, at most `max_body` + 1 bytes (the app refuses more with 413).

    A body announced as larger than `max_body` is left unread, so the app answers 413 without reading it.
    A chunked body becomes a plain one of known length.
    """
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return
    chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
    if not (chunked or 0 < length <= max_body):
        return
    body = environ["wsgi.input"].read(max_body + 1 if chunked else length)
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    environ.pop("HTTP_TRANSFER_ENCODING", None)


def overloaded(environ: dict[str, Any], start_response) -> list[bytes]:
    """Answer 503 with Retry-After: JSON for the API, a short page for people."""
    message = f"the service is busy: try again in {RETRY_AFTER_SECONDS} s"
    if environ.get("PATH_INFO", "").startswith(("/api/", "/openapi")):
        body, kind = json.dumps({"error": "overloaded", "message": message}).encode(), "application/json"
    else:
        body = f"<!doctype html><title>Busy</title><h1>Busy</h1><p>The CRM is busy: {message}.</p>".encode()
        kind = "text/html; charset=utf-8"
    start_response("503 SERVICE UNAVAILABLE", [
        ("Content-Type", kind), ("Content-Length", str(len(body))), ("Retry-After", str(RETRY_AFTER_SECONDS)),
        ("X-Content-Type-Options", "nosniff"), ("Cache-Control", "no-store")])
    return [body]
