"""Per-request timing, request ids and the JSON access line, shared by both apps."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable

from flask import Flask, Response, g, request

Observer = Callable[[str, str, int, float], None]  # method, endpoint, status, seconds


def install(app: Flask, logger: logging.Logger, observe: Observer | None = None) -> None:
    """Time every request of `app`, log it as one JSON line and pass it to `observe`.

    The request id comes from nginx's X-Request-ID when there is one, so a request can be followed
    from the nginx access log to the app's log; it is echoed in the response.
    """

    def start() -> None:
        g.started = time.perf_counter()
        g.request_id = request.headers.get("X-Request-ID") or uuid.uuid4().hex

    def finish(response: Response) -> Response:
        seconds = time.perf_counter() - g.get("started", time.perf_counter())
        endpoint = request.url_rule.rule if request.url_rule else "unmatched"
        if observe is not None:
            observe(request.method, endpoint, response.status_code, seconds)
        response.headers["X-Request-ID"] = g.get("request_id", "")
        logger.info("%s %s %s", request.method, request.path, response.status_code, extra={
            "request_id": g.get("request_id"), "method": request.method, "path": request.path,
            "status": response.status_code, "duration_ms": round(seconds * 1000, 3),
            "remote_addr": request.headers.get("X-Forwarded-For", request.remote_addr)})
        return response

    app.before_request(start)
    app.after_request(finish)
