"""The HTTP side of dynamodb-endpoint: HTTP/1.1 with keep-alive and Content-Length bodies, as botocore speaks
it, to clients and to the engine. Every POST is a DynamoDB call that the gate (gate.py) decides on; other
requests (GET / health checks) pass untouched. A request that is not readable HTTP gets a DynamoDB-style 400
and the connection is closed; nothing a client sends can stop the server.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import os
import zlib
from collections.abc import Sequence

from .calls import BadCall, describe, error_body, operation_of, parse_body
from .gate import Answer, Gate

logger = logging.getLogger(__name__)
MAX_HEAD = 64 * 1024
MAX_BODY = 16 * 1024 * 1024  # DynamoDB's own request size limit
CLIENT_TIMEOUT = 30.0  # as HAProxy's `timeout client` and `timeout server`
ENGINE_TIMEOUT = 30.0
DRAIN_ABOVE = 256 * 1024
REASONS = {200: b"OK", 400: b"Bad Request", 413: b"Payload Too Large", 500: b"Internal Server Error"}
DROPPED = {b"content-length", b"connection", b"keep-alive", b"transfer-encoding", b"x-amz-crc32"}


class HttpError(Exception):
    """A request that is not HTTP the endpoint can read: answered with a DynamoDB-style 400, then closed."""


class Request:
    """One request read from a client: its head's parts and its body."""

    __slots__ = ("body", "head", "headers", "keep_alive", "length", "method", "target")

    def __init__(self, head: bytes) -> None:
        lines = head.split(b"\r\n")
        parts = lines[0].split(b" ")
        if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
            raise HttpError("malformed request line")
        self.method = parts[0]
        self.head = lines[0]
        self.headers: list[tuple[bytes, bytes]] = []
        self.target: bytes | None = None
        connection, length, chunked = b"", b"0", False
        for line in lines[1:]:
            name, sep, value = line.partition(b":")
            if not sep or not name or name != name.strip():
                raise HttpError("malformed header line")
            name, value = name.lower(), value.strip()
            self.headers.append((name, value))
            if name == b"x-amz-target":
                self.target = value
            elif name == b"content-length":
                length = value
            elif name == b"connection":
                connection = value.lower()
            elif name == b"transfer-encoding":
                chunked = True
        self.keep_alive = connection != b"close" if parts[2] == b"HTTP/1.1" else connection == b"keep-alive"
        self.length = self._length(length, chunked)
        self.body = b""

    @staticmethod
    def _length(raw: bytes, chunked: bool) -> int:
        """Return the body's length from Content-Length (0 without one); chunked bodies are refused."""
        if chunked:
            raise HttpError("chunked request bodies are not supported: send Content-Length")
        if not raw.isdigit():
            raise HttpError("malformed Content-Length")
        if int(raw) > MAX_BODY:
            raise HttpError("request too large")
        return int(raw)

    def forward_head(self, length: int) -> bytes:
        """Return the head to send the engine: the client's headers, a new Content-Length, kept alive."""
        lines = [self.head]
        lines += [name + b": " + value for name, value in self.headers if name not in DROPPED]
        lines.append(b"content-length: " + str(length).encode())
        return b"\r\n".join(lines) + b"\r\n\r\n"


class Engine:
    """One kept-alive connection to the engine, opened when first needed and again after it closes."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def exchange(self, head: bytes, body: bytes) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        """Send a request and return the engine's status, headers and body. A kept connection the engine
        closed meanwhile is opened again once (nothing was answered on it)."""
        reused = self.writer is not None
        try:
            return await self._exchange(head, body)
        except (ConnectionError, asyncio.IncompleteReadError):
            self.close()
            if not reused:
                raise
        return await self._exchange(head, body)

    async def _exchange(self, head: bytes, body: bytes) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        self.writer.write(head + body)
        raw = await self.reader.readuntil(b"\r\n\r\n")
        lines = raw[:-4].split(b"\r\n")
        status = int(lines[0][9:12])
        headers = [(n.strip().lower(), v.strip()) for n, _, v in (line.partition(b":") for line in lines[1:])]
        found = dict(headers)
        if status < 200 or status in (204, 304):
            payload = b""
        elif found.get(b"transfer-encoding", b"").lower() == b"chunked":
            payload = await self._chunks()
        elif b"content-length" in found:
            payload = await self.reader.readexactly(int(found[b"content-length"]))
        else:
            payload = await self.reader.read()
            found[b"connection"] = b"close"
        if found.get(b"connection", b"").lower() == b"close":
            self.close()
        return status, headers, payload

    async def _chunks(self) -> bytes:
        """Read a chunked body."""
        assert self.reader is not None
        parts = []
        while True:
            size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await self.reader.readuntil(b"\r\n")  # no trailers expected
                return b"".join(parts)
            parts.append(await self.reader.readexactly(size))
            await self.reader.readexactly(2)

    def close(self) -> None:
        """Close the connection (opened again on the next request)."""
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


def request_id() -> bytes:
    """Return a request id shaped like DynamoDB's (52 characters)."""
    return base64.b32encode(os.urandom(35))[:52]


def response(status: int, body: bytes, headers: Sequence[tuple[bytes, bytes]] = (), keep_alive: bool = True,
             reason: bytes | None = None) -> bytes:
    """Return a whole HTTP response: the engine's headers (or DynamoDB's own) with a fresh CRC and length."""
    lines = [b"HTTP/1.1 " + str(status).encode() + b" " + (reason or REASONS.get(status, b"Error"))]
    if headers:
        lines += [name + b": " + value for name, value in headers if name not in DROPPED]
    else:
        lines += [b"x-amzn-RequestId: " + request_id(), b"Content-Type: application/x-amz-json-1.0"]
    lines.append(b"x-amz-crc32: " + str(zlib.crc32(body)).encode())
    lines.append(b"Content-Length: " + str(len(body)).encode())
    lines.append(b"Connection: keep-alive" if keep_alive else b"Connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


class Endpoint:
    """The proxy: reads clients' requests, asks the gate, forwards to the engine, answers."""

    def __init__(self, gate: Gate, engine: tuple[str, int], region: str, account: str) -> None:
        self.gate = gate
        self.engine = engine
        self.region, self.account = region, account
        self.engine_error: str | None = None  # the engine's last failure, logged once per outage

    async def client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Serve one client connection until it closes (keep-alive)."""
        engine = Engine(*self.engine)
        try:
            while True:
                try:
                    request = await self._read(reader)
                except HttpError as exc:
                    writer.write(response(400, error_body("SerializationException", str(exc)), keep_alive=False))
                    break
                if request is None:
                    break
                writer.write(await self.serve(request, engine))
                if writer.transport.get_write_buffer_size() > DRAIN_ABOVE:  # a slow reader: wait for it
                    await writer.drain()
                if not request.keep_alive:
                    break
        except (ConnectionError, TimeoutError, asyncio.IncompleteReadError):
            pass
        finally:
            engine.close()
            with contextlib.suppress(ConnectionError):
                writer.close()

    async def _read(self, reader: asyncio.StreamReader) -> Request | None:
        """Read one request; None at a clean end of the connection."""
        async with asyncio.timeout(CLIENT_TIMEOUT):
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError as exc:
                if exc.partial.strip():
                    raise HttpError("incomplete request head") from exc
                return None
            except asyncio.LimitOverrunError as exc:
                raise HttpError("request head too large") from exc
            request = Request(head[:-4])
            request.body = await reader.readexactly(request.length) if request.length else b""
        return request

    async def serve(self, request: Request, engine: Engine) -> bytes:
        """Return the whole response to one request."""
        if request.method != b"POST":  # health checks and the like: passed through
            status, headers, body = await self._forward(engine, request.forward_head(len(request.body)), request.body)
            return response(status, body, headers, request.keep_alive)
        started = self.gate.timer()
        try:
            operation = operation_of(request.target.decode("latin-1") if request.target else None)
            call = describe(operation, parse_body(request.body), self.region, self.account)
        except BadCall as exc:
            return self._answer(self.gate.refuse_bad(exc), request)
        refusal = self.gate.admit(call)
        if refusal is not None:
            return self._answer(refusal, request)
        body = self.gate.forwarded_body(call, request.body)
        status, headers, answer = await self._forward(engine, request.forward_head(len(body)), body)
        return response(status, self.gate.settle(call, status, answer, started), headers, request.keep_alive)

    async def _forward(self, engine: Engine, head: bytes, body: bytes) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        """Send to the engine; an engine that cannot be reached is DynamoDB's InternalServerError (500)."""
        try:
            async with asyncio.timeout(ENGINE_TIMEOUT):
                answer = await engine.exchange(head, body)
        except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError) as exc:
            engine.close()
            if self.engine_error is None:
                logger.warning("engine %s:%s failed (answering 500 until it works again): %r", *self.engine, exc)
            self.engine_error = repr(exc)
            return 500, [], error_body("InternalServerError", "Internal server error")
        if self.engine_error is not None:
            logger.info("engine %s:%s works again", *self.engine)
            self.engine_error = None
        return answer

    @staticmethod
    def _answer(answer: Answer, request: Request) -> bytes:
        """Return a response the endpoint gives itself."""
        return response(answer.status, answer.body, keep_alive=request.keep_alive)
