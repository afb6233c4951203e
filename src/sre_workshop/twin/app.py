"""The twin's WSGI application: moto's server behind a thin dispatcher that hands some operations to plug-ins.

A plug-in answers an operation moto lacks or answers from a snapshot where the twin knows the live truth
(FilterLogEvents with real filter patterns, Logs Insights, LookupEvents, DescribeTargetHealth from the
load balancers, DynamoDB from the real engine). Everything else is moto's. Every call that changes
something is recorded in the trail once it succeeded, and marks the state to be saved.
"""

from __future__ import annotations

import io
import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

from . import protocol
from .protocol import Call

logger = logging.getLogger(__name__)

Answer = tuple[int, list[tuple[str, str]], bytes]
Handler = Callable[[Call, dict], Answer | None]  # None: let moto answer
After = Callable[[Call, Answer], Answer]  # may rewrite moto's answer
MAX_BODY = 16 * 1024 * 1024  # larger than any AWS API accepts (PutLogEvents: 1 MB)
STATUS_TEXT = {200: "OK", 400: "Bad Request", 403: "Forbidden", 404: "Not Found", 413: "Payload Too Large",
               500: "Internal Server Error", 501: "Not Implemented", 503: "Service Unavailable"}


class TwinApp:
    """Dispatch each request to a plug-in or to moto; record changes; never let an exception escape."""

    def __init__(self, moto_app: Callable, on_change: Callable[[Call, Answer], None]) -> None:
        self.moto_app = moto_app
        self.on_change = on_change
        self.handlers: dict[tuple[str, str], Handler] = {}
        self.services: dict[str, Handler] = {}  # every operation of a service (DynamoDB: the engine)
        self.after: dict[tuple[str, str], After] = {}
        self.write_lock = threading.RLock()  # changes are serialised, and a snapshot sees none half-done

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        status, headers, body = self.answer(environ)
        start_response(f"{status} {STATUS_TEXT.get(status, 'Unknown')}", [*headers,
                                                                           ("Content-Length", str(len(body)))])
        return [body]

    def answer(self, environ: dict) -> Answer:
        """Return the answer to one HTTP request."""
        length = int(environ.get("CONTENT_LENGTH") or 0)
        if length > MAX_BODY:
            return 413, [("Content-Type", "application/json")], b'{"message": "Request entity too large"}'
        body = environ["wsgi.input"].read(length) if length else b""
        call = protocol.parse(environ, body)
        refused = protocol.refuse(call)
        if refused:
            return refused
        try:
            if call.read_only:
                return self._dispatch(call, environ, body)
            with self.write_lock:
                answer = self._dispatch(call, environ, body)
                if answer[0] < 300 and call.operation:
                    self.on_change(call, answer)
                return answer
        except Exception:  # the twin stays up whatever one call does, as a service would
            logger.exception("%s %s failed", call.service, call.operation)
            return protocol.error(call, "InternalFailure", "The request processing has failed because of an "
                                  "unknown error, exception or failure.", 500)

    def _dispatch(self, call: Call, environ: dict, body: bytes) -> Answer:
        handler = self.handlers.get((call.service, call.operation)) or self.services.get(call.service)
        answer = handler(call, environ) if handler else None
        if answer is None:
            answer = self._moto(call, environ, body)
            rewrite = self.after.get((call.service, call.operation))
            if rewrite and answer[0] < 300:
                answer = rewrite(call, answer)
        return answer

    def _moto(self, call: Call, environ: dict, body: bytes) -> Answer:
        """Return moto's answer; an operation moto does not implement answers as AWS does for an unknown one."""
        captured: dict[str, Any] = {}

        def start_response(status: str, headers: list, exc_info: Any = None) -> None:
            captured["status"], captured["headers"] = int(status.split()[0]), headers

        environ = {**environ, "wsgi.input": io.BytesIO(body), "CONTENT_LENGTH": str(len(body))}
        try:
            chunks = self.moto_app(environ, start_response)
            payload = b"".join(chunks)
        except NotImplementedError:
            return protocol.unknown_operation(call)
        except Exception as exc:
            if type(exc).__name__ == "OperationNotFoundError":  # botocore's, raised by moto's request parser
                return protocol.unknown_operation(call)
            raise
        status = captured["status"]
        if status >= 500 and (b"NotImplemented" in payload or b"not yet implemented" in payload):
            return protocol.unknown_operation(call)
        if status == 404 and not call.operation:
            return protocol.unknown_operation(call)
        headers = [(k, v) for k, v in captured["headers"] if k.lower() != "content-length"]
        return status, headers, payload
