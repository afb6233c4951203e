"""dynamodb-endpoint: an HTTP/1.1 reverse proxy for the DynamoDB JSON protocol that enforces what the twin says.

    python -m sre_workshop.twin.endpoint --listen 127.0.0.1:PORT --engine http://HOST:PORT
        [--iam-endpoint URL --role-name NAME] [--cloudwatch-endpoint URL] [--metrics-period 60]
        [--region us-east-1] [--account 123456789012] [--instance-id i-...] [--stats-file PATH]

Every POST is one DynamoDB call: the gate (gate.py) refuses it as DynamoDB would (AccessDeniedException from
the role's policies, throttling from the tables' throughput), or it goes to the engine on a kept-alive
connection, and the answer is metered on its way back. Other requests (GET / health checks) pass untouched.
Without --iam-endpoint nothing is authorized against IAM; on PAY_PER_REQUEST tables without a maximum
nothing is throttled: the endpoint then behaves as the plain HAProxy it replaces (same port, same answers).
This module only speaks HTTP; what decides is in gate.py, calls.py and enforce/.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import logging
import os
import signal
import sys
import time
import zlib
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

from .calls import BadCall, describe, error_body, operation_of, parse_body
from .enforce.capacity import BURST_SECONDS, CapacityBook
from .enforce.iam import principal_context
from .gate import Answer, Gate
from .metering import Meter
from .sources import PolicySource, Publisher, ThroughputSource, client, engine

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


def address(text: str) -> tuple[str, int]:
    """Parse HOST:PORT or http://HOST:PORT."""
    parts = urlsplit(text if "//" in text else f"//{text}")
    if not parts.hostname or not parts.port:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT or http://HOST:PORT, not {text!r}")
    return parts.hostname, parts.port


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(prog="python -m sre_workshop.twin.endpoint", description=__doc__.split("\n")[0])
    parser.add_argument("--listen", type=address, required=True, help="HOST:PORT to serve DynamoDB on")
    parser.add_argument("--engine", required=True, help="the DynamoDB engine's URL (dynalite, moto, external)")
    parser.add_argument("--iam-endpoint", help="the twin's IAM URL; without it no IAM enforcement")
    parser.add_argument("--role-name", help="the instance's role (needed with --iam-endpoint)")
    parser.add_argument("--cloudwatch-endpoint", help="the twin's CloudWatch URL; without it metrics are not sent")
    parser.add_argument("--metrics-period", type=float, default=60.0, help="seconds between PutMetricData (60)")
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--account", default="123456789012")
    parser.add_argument("--instance-id", default="i-0123456789abcdef0", help="the role session's name")
    parser.add_argument("--stats-file", type=Path, help="JSON file of totals and sources' state, rewritten each second")
    parser.add_argument("--refresh-interval", type=float, default=1.0, help="seconds between policy/table reads (1)")
    parser.add_argument("--burst-seconds", type=float, default=BURST_SECONDS, help="unused capacity kept (300)")
    parser.add_argument("--event-loop", choices=("auto", "uvloop", "asyncio"), default="auto",
                        help="uvloop if installed (auto, the default: about twice as fast), or asyncio's own")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    if args.iam_endpoint and not args.role_name:
        parser.error("--iam-endpoint needs --role-name")
    address(args.engine)
    return args


class Process:
    """The endpoint's process: the server, its sources, the meter's drain and the stats file."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.meter = Meter()
        self.policy_source = None
        if args.iam_endpoint:
            context = principal_context(args.account, args.role_name, args.instance_id, args.region)
            self.policy_source = PolicySource(client("iam", args.iam_endpoint, args.region), args.role_name,
                                              context, args.refresh_interval)
        policies = (lambda: self.policy_source.state.policies) if self.policy_source else None
        self.gate = Gate(args.region, args.account, args.role_name or "-", args.instance_id, policies,
                         CapacityBook(burst_seconds=args.burst_seconds), self.meter)
        self.publisher = (Publisher(client("cloudwatch", args.cloudwatch_endpoint, args.region), args.metrics_period)
                          if args.cloudwatch_endpoint else None)
        self.throughput: ThroughputSource | None = None
        self.started = time.time()

    async def run(self) -> int:
        """Serve until SIGTERM or SIGINT."""
        loop = asyncio.get_running_loop()
        self.throughput = ThroughputSource(engine(self.args.engine, self.args.region),
                                           lambda found: loop.call_soon_threadsafe(self.gate.configure, found),
                                           self.args.refresh_interval)
        if self.policy_source:
            await asyncio.to_thread(self.policy_source.poll)  # the first read before the first call
        for source in (self.policy_source, self.throughput, self.publisher):
            if source is not None:
                source.start()
        endpoint = Endpoint(self.gate, address(self.args.engine), self.args.region, self.args.account)
        server = await asyncio.start_server(endpoint.client, *self.args.listen, limit=MAX_HEAD, backlog=1024)
        stop = asyncio.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        logger.info("dynamodb-endpoint on %s:%s -> %s", *self.args.listen, self.args.engine)
        async with server:
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 1.0)
                self.tick(int(time.time()))
        for source in (self.policy_source, self.throughput, self.publisher):
            if source is not None:
                await asyncio.to_thread(source.stop)
        self.tick(int(time.time()) + 1)
        if self.publisher is not None:
            await asyncio.to_thread(self.publisher.flush)
        return 0

    def tick(self, now: int) -> None:
        """Hand the completed seconds' metrics to the publisher; rewrite the stats file."""
        data = self.meter.drain(before=now)
        if self.publisher is not None and data:
            self.publisher.inbox.put(data)
        if self.args.stats_file:
            self.write_stats()

    def write_stats(self) -> None:
        """Write the stats file whole (a reader never sees half of it)."""
        state = self.policy_source.state if self.policy_source else None
        stats = {
            "pid": os.getpid(), "started": self.started, "listen": "{}:{}".format(*self.args.listen),
            "engine": self.args.engine,
            "iam": None if state is None else {"role": self.args.role_name, "read": state.policies is not None,
                                               "read_at": state.read_at, "error": state.error},
            "throughput_error": self.throughput.error if self.throughput else None,
            "metrics": None if self.publisher is None else {"sent": self.publisher.sent, "error": self.publisher.error,
                                                             "backlog": len(self.publisher.pending)},
            "totals": self.meter.totals_json(),
        }
        path: Path = self.args.stats_file
        temporary = path.with_name(path.name + ".tmp")
        temporary.write_text(json.dumps(stats, indent=1))
        temporary.replace(path)


def loop_factory(choice: str):
    """Return the event loop factory: uvloop's when chosen or, for auto, when it is installed."""
    if choice == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        if choice == "uvloop":
            raise SystemExit("--event-loop uvloop: uvloop is not installed") from None
        return None
    return uvloop.new_event_loop


def main(argv: Sequence[str] | None = None) -> int:
    """Run the endpoint until SIGTERM or SIGINT; return the exit status."""
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        with asyncio.Runner(loop_factory=loop_factory(args.event_loop)) as runner:
            return runner.run(Process(args).run())
    except OSError as exc:  # the port is taken, most likely
        logger.error("cannot serve on %s:%s: %s", *args.listen, exc)
        return 1


if __name__ == "__main__":
    sys.exit(main())
