"""JSON-lines logging for the apps, shaped for the CloudWatch agent.

One object per line: time, level, logger, message, and the request fields (request_id, method, path,
status, duration_ms) when a record is about a request. The CloudWatch agent ships the file as is, and
CloudWatch Logs Insights can query the fields without a parse step.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import sys
from datetime import UTC, datetime

# Fields a record may carry through `extra=` that belong in the JSON object.
REQUEST_FIELDS = ("request_id", "method", "path", "status", "duration_ms", "remote_addr", "error_code")


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
        for field in REQUEST_FIELDS:
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
    root.addHandler(handler)
    root.setLevel(level)
