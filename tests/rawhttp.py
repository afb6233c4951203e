"""A raw HTTP/1.1 client for hostile-input tests: it sends what urllib and http.client refuse to send (any
header bytes, any framing, Expect: 100-continue) and tells an answer apart from a connection dropped
without one.

`exchange` sends like the clients of issue 21: the head, then (after a 100 Continue if it asked for one)
the whole body at once, and only then reads. A server that stops reading and closes early makes that send
fail, exactly as it made Python's http.client fail, so it counts as no answer.
"""

from __future__ import annotations

import contextlib
import re
import socket
from dataclasses import dataclass, field


class NoAnswer(AssertionError):
    """The connection ended, or went quiet, before a whole answer arrived."""


@dataclass
class Answer:
    """A whole HTTP answer: status, headers (names lowercased, last one wins) and body."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


def request_head(method: str, path: str, headers: list[tuple[bytes, bytes]]) -> bytes:
    """Return a request's head: the request line, `headers` as given (a Host first unless one is given)."""
    lines = [f"{method} {path} HTTP/1.1".encode()]
    if not any(name.lower() == b"host" for name, _ in headers):
        lines.append(b"Host: hostile.test")
    lines += [name + b": " + value for name, value in headers]
    return b"\r\n".join(lines) + b"\r\n\r\n"


def framed(body: bytes, chunked: bool, chunk_size: int = 0) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """Return the framing header and the bytes on the wire for `body`: Content-Length, or chunked in
    chunks of `chunk_size` (0: one chunk)."""
    if not chunked:
        return [(b"Content-Length", str(len(body)).encode())], body
    size = chunk_size or max(len(body), 1)
    chunks = [body[i:i + size] for i in range(0, len(body), size)]
    wire = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for chunk in chunks) + b"0\r\n\r\n"
    return [(b"Transfer-Encoding", b"chunked")], wire


def read_answer(sock: socket.socket, data: bytes = b"") -> Answer:
    """Read one final answer (skipping 100 Continue) with its Content-Length or chunked body."""
    while b"\r\n\r\n" not in data:
        data += receive(sock, data)
    head, rest = data.split(b"\r\n\r\n", 1)
    match = re.match(rb"HTTP/1\.[01] (\d{3})", head)
    if not match:
        raise NoAnswer(f"not an HTTP answer: {head[:80]!r}")
    status = int(match.group(1))
    if status == 100:
        return read_answer(sock, rest)
    headers = {}
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
    if headers.get("transfer-encoding", "").lower() == "chunked":
        while not rest.endswith(b"0\r\n\r\n"):
            rest += receive(sock, rest)
        return Answer(status, headers, rest)
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        rest += receive(sock, rest)
    return Answer(status, headers, rest[:length])


def receive(sock: socket.socket, so_far: bytes) -> bytes:
    """Return the next bytes of an answer; NoAnswer if the connection ends or stays quiet."""
    try:
        data = sock.recv(65536)
    except OSError as exc:
        raise NoAnswer(f"{type(exc).__name__} after {so_far[:80]!r}") from exc
    if not data:
        raise NoAnswer(f"closed after {so_far[:80]!r}")
    return data


def exchange(port: int, head: bytes, wire: bytes = b"", expect: bool = False, timeout: float = 15) -> Answer:
    """Send `head`, then `wire` (the framed body) all at once, then read the answer. With `expect` (the head
    carries Expect: 100-continue), wait up to a second for 100 Continue or an early final answer first."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(head)
        early = b""
        if expect:
            sock.settimeout(1.0)
            with contextlib.suppress(TimeoutError):  # as curl: no word within a second, send the body anyway
                early = sock.recv(65536)
            sock.settimeout(timeout)
            if early and b"\r\n\r\n" in early and not early.startswith(b"HTTP/1.1 100"):
                return read_answer(sock, early)  # refused before the body, as it should be
        try:
            if wire:
                sock.sendall(wire)
        except OSError as exc:
            raise NoAnswer(f"{type(exc).__name__} while sending {len(wire)} bytes") from exc
        return read_answer(sock, early)
