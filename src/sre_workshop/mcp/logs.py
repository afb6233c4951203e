"""get_logs: one log group's lines over a window, filtered, summarised so that it fits an agent's context.

Groups are generated from the stack's components: each component's process output is `NAME.out`, and its
own log files are named by file (nginx-access, nginx-error, sre-app, crm-app).
"""

from __future__ import annotations

import re
import time
from collections import Counter
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ..aws.control import AwsControl
from ..diagnose.aws import logs as aws_logs
from ..diagnose.loglines import json_object, stamp, tail_lines
from ..errors import AwsError, UsageError
from ..local.stack import Stack

LINE_CHARS = 400  # a longer line is cut: a traceback's frame list is not what an agent needs
NGINX_LEVEL = re.compile(r"^\S+ \S+ \[(\w+)\]")
NOISE = re.compile(r"\b[0-9a-f]{16,}\b|\d+")


def groups(stack: Stack) -> dict[str, Path]:
    """Return every log group of the stack by name."""
    found = {}
    for name, component in stack.components.items():
        found[f"{name}.out"] = component.spec.log_path
        for path in component.logs:
            found[path.name.removesuffix(".log").removesuffix(".json")] = path
    return found


def _regex(pattern: str | None) -> re.Pattern[str] | None:
    """Compile the caller's pattern, or refuse it in one line."""
    try:
        return re.compile(pattern) if pattern else None
    except re.error as exc:
        raise UsageError(f"pattern is not a valid regular expression: {exc}") from None


def read(stack: Stack, group: str, pattern: str | None, window_s: float, limit: int) -> dict[str, Any]:
    """Return the group's matching lines in the window: counts, the most repeated messages, the last lines."""
    known = groups(stack)
    if group not in known:
        raise UsageError(f"no log group {group!r}; groups: {', '.join(sorted(known))}")
    regex = _regex(pattern)
    since = time.time() - window_s
    lines, timed = [], False
    for line in tail_lines(known[group]):
        at = stamp(line)
        timed = timed or at is not None
        if (at is None or at >= since) and (regex is None or regex.search(line)):
            lines.append(line)
    return summarise(group, lines, limit, window_s if timed else None)


def read_aws(ctl: AwsControl, group: str, pattern: str | None, window_s: float, limit: int) -> dict[str, Any]:
    """Return an AWS stack's log group over the window (CloudWatch FilterLogEvents), summarised as locally.

    The groups are doctor's: the CloudWatch agent ships the very lines the local stack writes to files."""
    if group not in aws_logs.GROUPS:
        raise UsageError(f"no log group {group!r}; groups: {', '.join(sorted(aws_logs.GROUPS))}")
    regex, now = _regex(pattern), time.time()
    try:
        found = aws_logs.events(ctl.client("logs"), ctl.physical(aws_logs.GROUPS[group]), now - window_s, now)
    except (ClientError, BotoCoreError) as exc:
        raise AwsError(f"cannot read log group {group}: {exc}") from exc
    return summarise(group, [m for m in found if regex is None or regex.search(m)], limit, window_s)


def summarise(group: str, lines: list[str], limit: int, window_s: float | None) -> dict[str, Any]:
    """Return counts by status and level, the five most repeated messages, and the last `limit` lines."""
    entries = [json_object(line) or {} for line in lines]
    statuses = Counter(str(e["status"]) for e in entries if "status" in e)
    levels = Counter(e["level"] for e in entries if "level" in e)
    levels.update(m.group(1) for line in lines if (m := NGINX_LEVEL.match(line)))
    repeated = Counter(NOISE.sub("N", _message(line))[:160] for line in lines)
    shown = [line if len(line) <= LINE_CHARS else line[:LINE_CHARS] + "...(cut)" for line in lines[-limit:]]
    return {"group": group, "matched": len(lines), "window_s": window_s,
            "note": None if window_s else "these lines carry no time: the window was not applied",
            "by_status": dict(statuses), "by_level": dict(levels),
            "most_repeated": [{"message": m, "count": n} for m, n in repeated.most_common(5)],
            "lines": shown, "omitted": max(0, len(lines) - limit)}


def _message(line: str) -> str:
    entry = json_object(line)
    if entry is not None and isinstance(entry.get("message"), str):
        return entry["message"]
    return re.sub(r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d ", "", line)
