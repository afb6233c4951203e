"""Per-request timing, request ids and the JSON access line, shared by both apps.

A WSGI middleware rather than Flask hooks: it reads the WSGI environ directly, so the whole per-request
cost of observability stays a few microseconds (bench/bench_app_overhead.py measures it).
"""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Callable, Iterable
from json.encoder import encode_basestring_ascii as quote
from typing import Any

from flask import Flask

from .aws import call_stats
from .jsonlog import AccessLog

Observer = Callable[[str, str, int, float], None]  # method, endpoint, status, seconds

logger = logging.getLogger(__name__)

# A request id a client or nginx may choose: what nginx's map accepts too (infra/nginx/nginx.conf). It is
# echoed in a response header and written to logs, so it is short and plain; anything else is replaced.
REQUEST_ID = re.compile(r"[A-Za-z0-9._:+/=@-]{1,128}")
# X-Forwarded-For is written to the access line: at most the last hops (the ones our load balancers add),
# each an address, so a client cannot fill the log with what it sends.
FORWARDED_HOPS = 4
ADDRESS = re.compile(r"[0-9A-Fa-f.:\[\]]{1,47}")


def request_id(environ: dict[str, Any]) -> str:
    """Return the request id the client or nginx sent if it is a valid one, else a fresh one (logged)."""
    sent = environ.get("HTTP_X_REQUEST_ID")
    if sent and REQUEST_ID.fullmatch(sent):
        return sent
    # getrandbits, not uuid4: no system call per request, and `random` is reseeded in each forked worker.
    fresh = f"{random.getrandbits(128):032x}"
    if sent is not None:
        logger.warning("X-Request-ID replaced: %d characters, not 1 to 128 of A-Z a-z 0-9 . _ : + / = @ -",
                       len(sent), extra={"request_id": fresh})
    return fresh


def remote_address(environ: dict[str, Any]) -> str:
    """Return the client's address chain for the log: the last hops of X-Forwarded-For that are addresses."""
    forwarded = environ.get("HTTP_X_FORWARDED_FOR")
    if not forwarded:
        return environ.get("REMOTE_ADDR") or ""
    hops = [hop.strip() for hop in forwarded[-FORWARDED_HOPS * 50:].split(",")[-FORWARDED_HOPS:]]
    return ", ".join(hop if ADDRESS.fullmatch(hop) else "invalid" for hop in hops)


class RequestLog:
    """Time each request, give it an id, log it as one JSON line and pass it to `observe`.

    The request id comes from nginx's X-Request-ID when there is a valid one, so a request can be followed
    from the nginx access log to the app's log; it is echoed in the response and left in the environ
    (`request_id`) for the app's own log lines. A client's id that is too long or has other characters is
    replaced by a fresh one (a WARNING line says so): echoed, it could make the response's headers larger
    than nginx takes from its upstream (a 502).
    """

    def __init__(self, wsgi_app, access_log: AccessLog, logger_name: str, observe: Observer | None) -> None:
        self.wsgi_app = wsgi_app
        self.access_log = access_log
        self.quoted_logger = quote(logger_name)
        self.observe = observe

    def __call__(self, environ: dict[str, Any], start_response) -> Iterable[bytes]:
        started = time.perf_counter()
        environ["request_id"] = rid = request_id(environ)
        call_stats.reset()
        status, endpoint = [500], ["unmatched"]

        def start(status_line: str, headers: list[tuple[str, str]], exc_info=None):
            status[0] = int(status_line[:3])
            # The request is still in the environ here; Flask removes it once the response is made.
            rule = getattr(environ.get("werkzeug.request"), "url_rule", None)
            if rule is not None:
                endpoint[0] = rule.rule
            headers.append(("X-Request-ID", rid))
            return start_response(status_line, headers, *([exc_info] if exc_info else []))

        body = self.wsgi_app(environ, start)
        self.finish(environ, rid, endpoint[0], status[0], time.perf_counter() - started)
        return body

    def finish(self, environ: dict[str, Any], request_id: str, endpoint: str, status: int, seconds: float) -> None:
        """Observe and log one finished request."""
        method, path = environ.get("REQUEST_METHOD", ""), environ.get("PATH_INFO", "")
        if is_control(path, endpoint):
            return  # the operator's fault control is not a user's request: logs and metrics show symptoms only
        if self.observe is not None:
            self.observe(method, endpoint, status, seconds)
        # The same fields JsonFormatter writes, formatted by hand: this line is on every request's path.
        remote = remote_address(environ)
        self.access_log.write_fields(
            f'"level":"INFO","logger":{self.quoted_logger},"message":{quote(f"{method} {path} {status}")},'
            f'"request_id":{quote(request_id)},"method":{quote(method)},"path":{quote(path)},"status":{status},'
            f'"duration_ms":{seconds * 1000:.3f},"remote_addr":{quote(remote)},'
            f'"dynamodb_calls":{call_stats.calls},"dynamodb_scanned":{call_stats.scanned}')


def is_control(path: str, endpoint: str) -> bool:
    """True for a request to the apps' control API (/admin, however the path is spelled)."""
    return any(p == "/admin" or p.startswith("/admin/") for p in (endpoint, "/" + path.lstrip("/")))


def install(app: Flask, log_file: str | None, logger_name: str, observe: Observer | None = None) -> None:
    """Wrap `app` so that every request is timed, logged to `log_file` and observed."""
    app.wsgi_app = RequestLog(app.wsgi_app, AccessLog(log_file), logger_name, observe)
