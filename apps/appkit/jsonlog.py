"""JSON-lines logging for the apps, shaped for the CloudWatch agent.

One object per line: time, level, logger, message, and the request fields (request_id, method, path,
status, duration_ms) when a record is about a request. The CloudWatch agent ships the file as is, and
CloudWatch Logs Insights can query the fields without a parse step.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import os
import sys
import time
from datetime import UTC, datetime

# Fields a record may carry through `extra=` that belong in the JSON object. (Access lines are written by
# AccessLog, not through logging.)
EXTRA_FIELDS = ("request_id", "error_code", "rss_mb", "memory_leak_size_mb")


class JsonFormatter(logging.Formatter):
    """Format a record as one JSON object on one line."""

    def format(self, record: logging.LogRecord) -> str:
        """Return the record as a JSON line."""
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        for field in EXTRA_FIELDS:
            value = getattr(record, field, None)
            if value is not None:
                entry[field] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure(log_file: str | None, level: str = "INFO") -> None:
    """Send every log record of the process to `log_file` (stderr if None) as JSON lines.

    WatchedFileHandler reopens the file after logrotate moves it, and several Gunicorn workers can
    append to the same file safely because each line is one write in O_APPEND mode.
    """
    if log_file:
        handler: logging.Handler = logging.handlers.WatchedFileHandler(log_file)
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        if isinstance(old.formatter, JsonFormatter):
            root.removeHandler(old)
            old.close()
    root.addHandler(handler)
    root.setLevel(level)


class AccessLog:
    """A fast appender of JSON access lines to the same file as the log records.

    Each line is one os.write in O_APPEND mode, so lines from several workers and from the logging
    handler never interleave. Like WatchedFileHandler it reopens the file after logrotate moves it, but
    looks at most once a second instead of on every line.
    """

    CHECK_SECONDS = 1.0

    def __init__(self, path: str | None) -> None:
        self.path = path
        self.pid = os.getpid()
        self.fd = self._open() if path else sys.stderr.fileno()
        self._checked = time.monotonic()
        self._second = 0
        self._second_text = ""

    def _open(self) -> int:
        return os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def write_fields(self, fields: str) -> None:
        """Append a JSON line made of the time, the pid and `fields` (JSON members, without braces)."""
        now = time.time()
        second = int(now)
        if second != self._second:  # the formatted second changes once a second, not per line
            self._second = second
            self._second_text = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        if self.path and time.monotonic() - self._checked > self.CHECK_SECONDS:
            self._reopen_if_moved()
        line = f'{{"time":"{self._second_text}.{int((now - second) * 1000):03d}+00:00","pid":{self.pid},{fields}}}\n'
        os.write(self.fd, line.encode())

    def _reopen_if_moved(self) -> None:
        self._checked = time.monotonic()
        try:
            on_disk = os.stat(self.path)
            current = os.fstat(self.fd)
            if (on_disk.st_dev, on_disk.st_ino) == (current.st_dev, current.st_ino):
                return
        except FileNotFoundError:
            pass
        old, self.fd = self.fd, self._open()
        os.close(old)
