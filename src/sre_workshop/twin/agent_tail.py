"""Tail one log file for the cloudwatch-agent: lines as events, offsets that survive restarts, rotation.

A source is one file of one instance. Its offset (inode + byte offset of the first line not yet shipped)
only moves when a batch was accepted, so the file itself is the queue while the twin is away. Rotation:
a new inode at the path means the file was moved away (logrotate's create mode): what is left in the old
file is read first, through the descriptor still open or, after a restart, by finding the inode in the same
directory (access.log.1); then the new file is read from 0. A file shorter than the offset was truncated
(copytruncate) and is read from 0. A backlog beyond BACKLOG_LIMIT bytes is skipped up to the first line
boundary within the limit, and the lines skipped are counted and logged: nothing is silently lost.

Event timestamps: the line's own time when it carries one (JSON "time" / "timestamp", an ISO 8601 string or
epoch seconds / milliseconds; nginx's error log "YYYY/MM/DD HH:MM:SS", local time), else the time it was read.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

logger = logging.getLogger(__name__)

# PutLogEvents limits (CloudWatch Logs quotas): each event counts its UTF-8 size plus 26 bytes.
EVENT_OVERHEAD = 26
MAX_EVENT_BYTES = 262_144
MAX_BATCH_BYTES = 1_048_576
MAX_BATCH_EVENTS = 10_000
MAX_SPAN_MS = 24 * 3600 * 1000
TRUNCATED = "[Truncated...]"  # what the CloudWatch agent appends to an event it cut
READ_CHUNK = 65_536
BACKLOG_LIMIT = 64 * 1024 * 1024

_JSON_TIME = re.compile(rb'"(?:time|timestamp)"\s*:\s*(?:"([^"]{10,40})"|(\d{9,13}(?:\.\d+)?))')
_NGINX_TIME = re.compile(rb"^(\d{4})/(\d\d)/(\d\d) (\d\d):(\d\d):(\d\d) ")


@dataclass
class Event:
    """One log line ready for PutLogEvents, and where the next line starts in its file."""

    timestamp: int  # ms since the epoch
    message: str
    end: int

    @property
    def size(self) -> int:
        """Its size as PutLogEvents counts it."""
        return len(self.message.encode()) + EVENT_OVERHEAD


def line_time_ms(line: bytes) -> int | None:
    """Return the time a log line carries, in ms since the epoch, or None if it carries none."""
    if line.startswith(b"{") and (match := _JSON_TIME.search(line, 0, 400)):
        text, number = match.groups()
        if number:
            value = float(number)
            return int(value if value > 1e11 else value * 1000)
        with contextlib.suppress(ValueError):
            stamp = datetime.fromisoformat(text.decode().replace("Z", "+00:00"))
            return int(stamp.timestamp() * 1000)  # a naive stamp is local time, as nginx writes it
    if match := _NGINX_TIME.match(line):
        return int(time.mktime((*map(int, match.groups()), 0, 0, -1)) * 1000)
    return None


def truncate(message: str) -> str:
    """Cut a message that exceeds PutLogEvents' event size, marking it as the agent does."""
    room = MAX_EVENT_BYTES - EVENT_OVERHEAD
    data = message.encode()
    if len(data) <= room:
        return message
    return data[:room - len(TRUNCATED)].decode(errors="ignore") + TRUNCATED


def batches(events: list[Event]) -> list[list[Event]]:
    """Split events (in file order) into PutLogEvents batches of consecutive lines within every limit."""
    found: list[list[Event]] = []
    batch: list[Event] = []
    size = low = high = 0
    for event in events:
        span = max(high, event.timestamp) - min(low, event.timestamp)
        if batch and (size + event.size > MAX_BATCH_BYTES or len(batch) >= MAX_BATCH_EVENTS or span > MAX_SPAN_MS):
            found.append(batch)
            batch, size = [], 0
        if not batch:
            low = high = event.timestamp
        batch.append(event)
        size += event.size
        low, high = min(low, event.timestamp), max(high, event.timestamp)
    if batch:
        found.append(batch)
    return found


def log_events(batch: list[Event]) -> list[dict]:
    """Return a batch as PutLogEvents wants it: in time order (stable, so equal times keep file order)."""
    return [{"timestamp": e.timestamp, "message": e.message} for e in sorted(batch, key=lambda e: e.timestamp)]


def find_inode(directory: Path, inode: int) -> Path | None:
    """Return the file of `directory` with that inode (a rotated log), or None."""
    with contextlib.suppress(OSError), os.scandir(directory) as entries:
        for entry in entries:
            if entry.inode() == inode and entry.is_file():
                return Path(entry.path)
    return None


class Source:
    """One log file of one instance, tailed from a persisted offset."""

    def __init__(self, key: str, path: Path, group: str, stream: str, saved: dict | None = None) -> None:
        saved = saved or {}
        self.key, self.path, self.group, self.stream = key, path, group, stream
        self.inode: int | None = saved.get("inode")
        self.offset: int = saved.get("offset", 0)
        self.dropped_events: int = saved.get("dropped_events", 0)
        self.dropped_bytes: int = saved.get("dropped_bytes", 0)
        self._file = None
        self._file_inode: int | None = None
        self.size = 0  # the size of the file being read, at the last read

    def state(self) -> dict:
        """What is persisted between runs."""
        return {"inode": self.inode, "offset": self.offset, "dropped_events": self.dropped_events,
                "dropped_bytes": self.dropped_bytes}

    @property
    def backlog(self) -> int:
        """Bytes written but not yet shipped (of the file being read)."""
        return max(self.size - self.offset, 0)

    def read(self, budget: int = MAX_BATCH_BYTES) -> list[Event]:
        """Return the complete lines after the offset (about `budget` bytes at most); the offset does not move."""
        current = self._current_inode()
        if current is None:
            return []
        if not self._open(current):
            return []
        events = self._read_lines(budget)
        if not events and self.inode != current:  # the rotated file is done: go on with the new one
            logger.info("%s: %s was rotated; reading the new file from its start", self.key, self.path)
            self._switch(current)
            return self.read(budget) if self._open(current) else []
        return events

    def commit(self, end: int) -> None:
        """Record that every line before byte `end` was shipped."""
        self.offset = end

    def close(self) -> None:
        """Close the file being read."""
        if self._file is not None:
            self._file.close()
            self._file, self._file_inode = None, None

    def _current_inode(self) -> int | None:
        """Return the inode at the path (None if missing), deciding where reading starts on a first sight."""
        try:
            inode = os.stat(self.path).st_ino
        except OSError:
            return self.inode if self._file is not None else None
        if self.inode is None:
            self._switch(inode)
        return inode

    def _switch(self, inode: int) -> None:
        self.close()
        self.inode, self.offset = inode, 0

    def _open(self, current: int) -> bool:
        """Open the file of the saved inode (the path, or where rotation moved it); False if it is gone."""
        if self._file is not None and self._file_inode == self.inode:
            return True
        self.close()
        path = self.path if self.inode == current else find_inode(self.path.parent, self.inode or -1)
        if path is None:
            logger.warning("%s: the file of inode %s is gone (rotated away while the agent was stopped); "
                           "reading %s from its start", self.key, self.inode, self.path)
            self._switch(current)
            path = self.path
        try:
            self._file = open(path, "rb")  # noqa: SIM115 - kept open across polls, closed by close()
        except OSError as exc:
            logger.warning("%s: cannot open %s: %s", self.key, path, exc)
            return False
        self._file_inode = self.inode
        return True

    def _read_lines(self, budget: int) -> list[Event]:
        """Read complete lines from the offset, after checking for truncation and a backlog too large."""
        self.size = os.fstat(self._file.fileno()).st_size
        if self.size < self.offset:
            logger.warning("%s: %s is shorter than the offset (truncated): reading it from its start", self.key,
                           self.path)
            self.offset = 0
        if self.size - self.offset > BACKLOG_LIMIT:
            self._skip(self.size - BACKLOG_LIMIT)
        self._file.seek(self.offset)
        data = self._file.read(min(budget, MAX_BATCH_BYTES))
        cut = data.rfind(b"\n") + 1
        if cut == 0 and len(data) >= MAX_EVENT_BYTES:
            cut = len(data)  # one line longer than an event may be: ship what there is, truncated
        now = int(time.time() * 1000)
        events, position = [], self.offset
        for line in data[:cut].splitlines(keepends=True):
            position += len(line)
            text = line.rstrip(b"\r\n")
            if text:
                events.append(Event(line_time_ms(text) or now, truncate(text.decode(errors="replace")), position))
        if not events and cut:
            self.offset = position  # only empty lines: nothing to ship, move past them
        return events

    def _skip(self, target: int) -> None:
        """Move the offset to the first line start at or after `target`, counting the lines skipped."""
        self._file.seek(self.offset)
        lines, position = 0, self.offset
        while position < target:
            chunk = self._file.read(min(1 << 20, target - position))
            if not chunk:
                break
            lines += chunk.count(b"\n")
            position += len(chunk)
        rest = self._file.readline()  # the line cut by `target`: skipped too
        lines, position = lines + (1 if rest.endswith(b"\n") else 0), position + len(rest)
        self.dropped_events += lines
        self.dropped_bytes += position - self.offset
        logger.error("%s: backlog over %d MiB: skipped %d lines (%d bytes) of %s", self.key, BACKLOG_LIMIT >> 20,
                     lines, position - self.offset, self.path)
        self.offset = position
