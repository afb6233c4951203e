"""Lingering close for the apps: read and discard what is left of a request body after the answer is sent.

An app may answer before it reads the body (413 for a body over its limit, 405, 404). Gunicorn then reads
at most 64 KiB of what is left and closes the connection; with megabytes still arriving the kernel resets
it, and a client still sending (Python's http.client sends the whole body before it reads) or the load
balancer relaying the body loses the answer: curl saw `100 Continue` then a closed connection, HAProxy
a reset. Like nginx's lingering close, DrainBody reads the rest of the body after the answer is written,
within a byte and a time budget, so the client can always read the answer; a body drained to its end
also leaves the connection fit for keep-alive.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterable, Iterator
from typing import Any

DRAIN_MAX_BYTES = 64 * 1024 * 1024  # what a client may make us read for nothing after an answer
DRAIN_SECONDS = 10.0  # the whole drain, however slowly the client sends (nginx lingers up to 30 s)
CHUNK = 64 * 1024


def has_body(environ: dict[str, Any]) -> bool:
    """True when the request announces a body (a length above 0, or chunked framing)."""
    if "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
        return True
    length = environ.get("CONTENT_LENGTH") or ""
    return length.isdigit() and int(length) > 0


def drain(stream, sock: socket.socket | None, max_bytes: int = DRAIN_MAX_BYTES,
          seconds: float = DRAIN_SECONDS) -> int:
    """Read and discard `stream` to its end, at most `max_bytes` within `seconds`; return the bytes read."""
    deadline, drained = time.monotonic() + seconds, 0
    previous = sock.gettimeout() if sock is not None else None
    try:
        while drained < max_bytes:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            if sock is not None:
                sock.settimeout(remaining)
            data = stream.read(min(CHUNK, max_bytes - drained))
            if not data:
                break
            drained += len(data)
    except (OSError, ValueError):  # the client went away or stalled; Gunicorn closes the connection
        pass
    finally:
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.settimeout(previous)
    return drained


class Drained:
    """The app's response iterable; closing it (after the server wrote the answer) drains the body."""

    def __init__(self, body: Iterable[bytes], environ: dict[str, Any], stream) -> None:
        self.body = body
        self.environ = environ
        self.stream = stream

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.body)

    def close(self) -> None:
        """Close the app's iterable, then drain the request body."""
        try:
            if hasattr(self.body, "close"):
                self.body.close()
        finally:
            drain(self.stream, self.environ.get("gunicorn.socket"))


class DrainBody:
    """WSGI middleware: after any answer to a request with a body, read what is left of the body."""

    def __init__(self, wsgi_app) -> None:
        self.wsgi_app = wsgi_app

    def __call__(self, environ: dict[str, Any], start_response) -> Iterable[bytes]:
        # The server's own stream, taken before the app may replace it (appkit.admission buffers the body
        # and drops the chunked framing).
        stream = environ.get("wsgi.input") if has_body(environ) else None
        body = self.wsgi_app(environ, start_response)
        return body if stream is None else Drained(body, environ, stream)


def install(app) -> None:
    """Wrap `app` (outermost) so that every request's unread body is drained after its answer."""
    app.wsgi_app = DrainBody(app.wsgi_app)
