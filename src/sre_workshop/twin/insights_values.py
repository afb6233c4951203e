"""Values in Logs Insights queries: how they compare, print and count time; the error a bad query raises."""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable
from typing import Any

Row = dict[str, Any]
Expr = Callable[[Row], Any]


class QueryError(ValueError):
    """A malformed or unsupported query; the twin answers MalformedQueryException."""

    aws_code = "MalformedQueryException"


class Timestamp(int):
    """Milliseconds since the epoch that print as Insights prints times (``2024-05-01 12:00:00.000``)."""


# --- values ------------------------------------------------------------------------------------------------


def as_number(value: Any) -> float | None:
    """Return a value as a number (numeric strings included), or None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def as_text(value: Any) -> str:
    """Render a value as GetQueryResults prints it."""
    if isinstance(value, Timestamp):
        return _format_time(int(value))
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer():
            return str(int(value))
        return repr(value)
    return str(value)


def _format_time(millis: int) -> str:
    moment = dt.datetime.fromtimestamp(millis / 1000, tz=dt.UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{millis % 1000:03d}"


def compare(left: Any, op: str, right: Any) -> bool:
    """Compare two values as Insights does: numbers as numbers, else as strings; a missing side never matches."""
    if left is None or right is None:
        return False
    a, b = as_number(left), as_number(right)
    if a is None or b is None or (isinstance(left, str) and isinstance(right, str)):
        a, b = as_text(left), as_text(right)  # type: ignore[assignment]
    return {
        "=": a == b,
        "!=": a != b,
        "<": a < b,  # type: ignore[operator]
        "<=": a <= b,  # type: ignore[operator]
        ">": a > b,  # type: ignore[operator]
        ">=": a >= b,  # type: ignore[operator]
    }[op]


_PERIOD = re.compile(r"(\d+)(ms|mo|s|m|h|d|w|q|y)")
_PERIOD_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}


def period_ms(text: str) -> int:
    """Return a period such as ``5m`` in milliseconds (months, quarters and years are not supported)."""
    found = _PERIOD.fullmatch(text)
    if found is None or found[2] not in _PERIOD_MS or int(found[1]) == 0:
        raise QueryError(f"unsupported time period {text!r}")
    return int(found[1]) * _PERIOD_MS[found[2]]
