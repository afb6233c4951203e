"""The Logs Insights functions usable in ``fields``, ``filter``, ``stats ... by`` and ``sort`` expressions."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from sre_workshop.twin.insights_values import Expr, QueryError, Row, Timestamp, as_number, as_text


def _text(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a string function: a missing argument gives a missing result."""
    return lambda first, *rest: None if first is None else fn(as_text(first), *rest)


def _number(fn: Callable[[float], Any]) -> Callable[..., Any]:
    """Wrap a one-argument numeric function: a missing or non-numeric argument gives a missing result."""
    return lambda value: None if (n := as_number(value)) is None else fn(n)


def _substr(text: str, start: Any, length: Any = None) -> str:
    begin = int(as_number(start) or 0)
    return text[begin:] if length is None else text[begin : begin + int(as_number(length) or 0)]


_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "ispresent": lambda value: value is not None,
    "isempty": lambda value: value is None or as_text(value) == "",
    "isblank": lambda value: value is None or as_text(value).strip() == "",
    "coalesce": lambda *values: next((v for v in values if v is not None), None),
    "concat": lambda *values: "".join(as_text(v) for v in values if v is not None),
    "tolower": _text(str.lower),
    "toupper": _text(str.upper),
    "strlen": _text(len),
    "trim": _text(lambda s, chars=None: s.strip(chars)),
    "ltrim": _text(lambda s, chars=None: s.lstrip(chars)),
    "rtrim": _text(lambda s, chars=None: s.rstrip(chars)),
    "strcontains": _text(lambda s, needle: int(as_text(needle) in s)),
    "replace": _text(lambda s, old, new: s.replace(as_text(old), as_text(new))),
    "substr": _text(_substr),
    "abs": _number(abs),
    "ceil": _number(math.ceil),
    "floor": _number(math.floor),
    "sqrt": _number(lambda n: math.sqrt(n) if n >= 0 else None),
    "log": _number(lambda n: math.log(n) if n > 0 else None),
    "greatest": lambda *values: max((n for v in values if (n := as_number(v)) is not None), default=None),
    "least": lambda *values: min((n for v in values if (n := as_number(v)) is not None), default=None),
    "tomillis": lambda value: None if value is None else int(value),
    "frommillis": _number(lambda n: Timestamp(int(n))),
}


def _floor_time(value: Any, period: int) -> Timestamp | None:
    millis = as_number(value)
    return None if millis is None else Timestamp(int(millis) // period * period)


def function_call(name: str, args: list[Any]) -> Expr:
    """Compile a call to a supported function; periods (``5m``) arrive as milliseconds, the rest as `Expr`."""
    if name == "bin":
        if len(args) != 1 or not isinstance(args[0], int):
            raise QueryError("bin() takes one period such as 5m")
        period = args[0]
        return lambda row: _floor_time(row.get("@timestamp"), period)
    if name == "datefloor":
        if len(args) != 2 or not isinstance(args[1], int):
            raise QueryError("datefloor() takes a timestamp and a period")
        source, period = args
        return lambda row: _floor_time(source(row), period)
    if name not in _FUNCTIONS:
        raise QueryError(f"unsupported function {name}()")
    if any(isinstance(arg, int) for arg in args):
        raise QueryError(f"{name}() does not take a period")
    function = _FUNCTIONS[name]

    def call(row: Row) -> Any:
        try:
            return function(*(arg(row) for arg in args))
        except TypeError as error:
            raise QueryError(f"wrong arguments to {name}(): {error}") from error

    return call
