"""Per-request timing, request ids and the JSON access line, shared by both apps.

A WSGI middleware rather than Flask hooks: it reads the WSGI environ directly, so the whole per-request
cost of observability stays a few microseconds (bench/bench_app_overhead.py measures it).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable
from json.encoder import encode_basestring_ascii as quote
from typing import Any

from flask import Flask

from .aws import call_stats
from .jsonlog import AccessLog

Observer = Callable[[str, str, int, float], None]  # method, endpoint, status, seconds


class RequestLog:
    """Time each request, give it an id, log it as one JSON line and pass it to `observe`.

    The request id comes from nginx's X-Request-ID when there is one, so a request can be followed from
    the nginx access log to the app's log; it is echoed in the response and left in the environ
    (`request_id`) for the app's own log lines.
    """

    def __init__(self, wsgi_app, access_log: AccessLog, logger_name: str, observe: Observer | None) -> None:
        self.wsgi_app = wsgi_app
        self.access_log = access_log
        self.quoted_logger = quote(logger_name)
        self.observe = observe

    def __call__(self, environ: dict[str, Any], start_response) -> Iterable[bytes]:
        started = time.perf_counter()
        # getrandbits, not uuid4: no system call per request, and `random` is reseeded in each forked worker.
        request_id = environ.get("HTTP_X_REQUEST_ID") or f"{random.getrandbits(128):032x}"
        environ["request_id"] = request_id
        call_stats.reset()
        status, endpoint = [500], ["unmatched"]

        def start(status_line: str, headers: list[tuple[str, str]], exc_info=None):
            status[0] = int(status_line[:3])
            # The request is still in the environ here; Flask removes it once the response is made.
            rule = getattr(environ.get("werkzeug.request"), "url_rule", None)
            if rule is not None:
                endpoint[0] = rule.rule
            headers.append(("X-Request-ID", request_id))
            return start_response(status_line, headers, *([exc_info] if exc_info else []))

        body = self.wsgi_app(environ, start)
        self.finish(environ, request_id, endpoint[0], status[0], time.perf_counter() - started)
        return body

    def finish(self, environ: dict[str, Any], request_id: str, endpoint: str, status: int, seconds: float) -> None:
        """Observe and log one finished request."""
        method, path = environ.get("REQUEST_METHOD", ""), environ.get("PATH_INFO", "")
        if self.observe is not None:
            self.observe(method, endpoint, status, seconds)
        # The same fields JsonFormatter writes, formatted by hand: this line is on every request's path.
        remote = environ.get("HTTP_X_FORWARDED_FOR") or environ.get("REMOTE_ADDR") or ""
        self.access_log.write_fields(
            f'"level":"INFO","logger":{self.quoted_logger},"message":{quote(f"{method} {path} {status}")},'
            f'"request_id":{quote(request_id)},"method":{quote(method)},"path":{quote(path)},"status":{status},'
            f'"duration_ms":{seconds * 1000:.3f},"remote_addr":{quote(remote)},'
            f'"dynamodb_calls":{call_stats.calls},"dynamodb_scanned":{call_stats.scanned}')


def install(app: Flask, log_file: str | None, logger_name: str, observe: Observer | None = None) -> None:
    """Wrap `app` so that every request is timed, logged to `log_file` and observed."""
    app.wsgi_app = RequestLog(app.wsgi_app, AccessLog(log_file), logger_name, observe)
