"""The one reader of the stack's log lines, for doctor (both worlds), its charts and the MCP get_logs tool.

The apps and nginx's access log write one JSON object per line with an ISO "time"; nginx's error log
writes `YYYY/MM/DD HH:MM:SS [level] pid#tid: message` in the host's local time; each line of a component's
process output (its `NAME.log`) starts with the time it was written, `YYYY-MM-DDTHH:MM:SS+ZZZZ `, as journald
stamps a unit's output.
"""

from __future__ import annotations

import json
import os
import re
from datetime import datetime
from pathlib import Path
from typing import Any

TAIL_BYTES = 512 * 1024  # enough lines for a window of a minute or two under load
AWS_CODE = re.compile(r"\b([A-Z][A-Za-z]+(?:Exception|Error))\b")
NGINX_ERROR = re.compile(r"^(\d{4}/\d\d/\d\d \d\d:\d\d:\d\d) \[(\w+)\] \d+#\d+: (?:\*\d+ )?(.*?)(?:, client:.*)?$")
NGINX_TIME = re.compile(r"^(\d{4}/\d\d/\d\d \d\d:\d\d:\d\d) ")
PROCESS_TIME = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4}) ")


def tail_lines(path: Path) -> list[str]:
    """Return the last lines of a log (at most TAIL_BYTES of it)."""
    try:
        with open(path, "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - TAIL_BYTES))
            return f.read().decode(errors="replace").splitlines()[1:]
    except OSError:
        return []


def json_object(line: str) -> dict[str, Any] | None:
    """Return a JSON log line as a dict (None: the line is not a JSON object)."""
    if not line.lstrip().startswith("{"):
        return None
    try:
        entry = json.loads(line)
    except ValueError:
        return None
    return entry if isinstance(entry, dict) else None


def json_entry(line: str) -> tuple[float, dict[str, Any]] | None:
    """Return (epoch s, entry) of a JSON log line with a "time" (None for any other line)."""
    entry = json_object(line)
    if entry is None:
        return None
    try:
        return datetime.fromisoformat(entry["time"]).timestamp(), entry
    except (ValueError, KeyError, TypeError):
        return None


def nginx_error_entry(line: str) -> tuple[float, str, str] | None:
    """Return (epoch s, level, message) of an nginx error-log line (its time read as this host's local time)."""
    match = NGINX_ERROR.match(line)
    if not match:
        return None
    return datetime.strptime(match[1], "%Y/%m/%d %H:%M:%S").timestamp(), match[2], match[3]


def stamp(line: str) -> float | None:
    """Return a line's time (epoch s) if it carries one (a JSON log's "time", an nginx error-log line's, a
    process output line's stamp)."""
    parsed = json_entry(line)
    if parsed:
        return parsed[0]
    match = NGINX_TIME.match(line)
    if match:
        return datetime.strptime(match[1], "%Y/%m/%d %H:%M:%S").timestamp()
    match = PROCESS_TIME.match(line)
    return datetime.strptime(match[1], "%Y-%m-%dT%H:%M:%S%z").timestamp() if match else None
