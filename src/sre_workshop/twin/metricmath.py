"""CloudWatch metric math, the subset alarms need: parse an expression and evaluate it on per-period series.

A series is a dict {period start: value}; a scalar is a float. Supported, as AWS documents them:
numbers, query ids, `+ - * /` (series with series aligned by timestamp, or with a scalar), unary minus,
comparisons `> < >= <= == !=` (1 or 0), `AND` / `OR` / `&&` / `||`, parentheses, and the functions
IF(cond, a[, b]), FILL(s, value | REPEAT | LINEAR), SUM / AVG / MIN / MAX over `[a, b, ...]` (per timestamp)
or over one series (a scalar), and METRICS() (every MetricStat query's series, in query order).
A division by zero, or a timestamp one operand lacks, gives no datapoint. Anything else raises MathError.
"""

from __future__ import annotations

import itertools
import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

Series = dict[datetime, float]
Value = float | Series | list  # a list only as a function argument ([a, b] or METRICS())

_TOKEN = re.compile(
    r"\s*(?:(?P<num>\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<str>\"[^\"]*\"|'[^']*')"
    r"|(?P<op>>=|<=|==|!=|&&|\|\||[-+*/^(),\[\]<>]))"
)
_BINARY = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
    "^": operator.pow,
    ">": lambda a, b: float(a > b),
    "<": lambda a, b: float(a < b),
    ">=": lambda a, b: float(a >= b),
    "<=": lambda a, b: float(a <= b),
    "==": lambda a, b: float(a == b),
    "!=": lambda a, b: float(a != b),
    "AND": lambda a, b: float(bool(a) and bool(b)),
    "OR": lambda a, b: float(bool(a) or bool(b)),
}
_ALIASES = {"&&": "AND", "||": "OR"}
# Lowest precedence first, as AWS documents: logical, then comparison, then arithmetic.
_LEVELS = (("OR",), ("AND",), (">", "<", ">=", "<=", "==", "!="), ("+", "-"), ("*", "/"), ("^",))


class MathError(ValueError):
    """A metric-math expression that cannot be parsed or evaluated."""


@dataclass(frozen=True)
class Context:
    """What an expression sees: the query series by id and the period starts of the evaluation range."""

    series: dict[str, Series]
    grid: Sequence[datetime]
    metric_ids: Sequence[str] = ()


def tokenize(text: str) -> list[tuple[str, str]]:
    """Split an expression into (kind, text) tokens; raise MathError on a character that fits none."""
    tokens, pos, text = [], 0, text.rstrip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise MathError(f"unexpected character {text[pos:].strip()[:1]!r} at position {pos + 1}")
        kind = match.lastgroup or "op"
        word = match.group(kind)
        if kind == "name" and word.upper() in ("AND", "OR"):
            kind, word = "op", word.upper()
        tokens.append((kind, _ALIASES.get(word, word)))
        pos = match.end()
    return tokens


def evaluate(expression: str, context: Context) -> Value:
    """Evaluate an expression on the context's series; raise MathError if it is malformed."""
    parser = _Parser(tokenize(expression), context)
    result = parser.expression(0)
    if parser.pos != len(parser.tokens):
        raise MathError(f"unexpected {parser.tokens[parser.pos][1]!r} after a complete expression")
    if isinstance(result, list):
        raise MathError("an expression must give one time series, not a list")
    return result


def as_series(value: Value, grid: Sequence[datetime]) -> Series:
    """A scalar as a constant series over the grid; a series as it is."""
    if isinstance(value, dict):
        return value
    return {stamp: float(value) for stamp in grid}  # type: ignore[arg-type]


def apply(op: Callable[[float, float], float], left: Value, right: Value) -> Value:
    """Apply a binary operation; series are aligned by timestamp and a division by zero drops the point."""
    if isinstance(left, list) or isinstance(right, list):
        raise MathError("an operator cannot take a list")
    if not isinstance(left, dict) and not isinstance(right, dict):
        return _safe(op, left, right)  # type: ignore[arg-type]
    stamps = _common(left, right)
    out = {stamp: _safe(op, _at(left, stamp), _at(right, stamp)) for stamp in stamps}
    return {stamp: value for stamp, value in out.items() if value is not None}


def _safe(op: Callable[[float, float], float], a: float, b: float) -> float | None:
    """One operation on two numbers; None where AWS gives no datapoint (x / 0)."""
    try:
        return float(op(a, b))
    except (ZeroDivisionError, OverflowError):
        return None


def _at(value: Value, stamp: datetime) -> float:
    """The value of a series at a timestamp, or the scalar itself."""
    return value[stamp] if isinstance(value, dict) else value  # type: ignore[return-value]


def _common(*values: Value) -> list[datetime]:
    """The timestamps every series operand has (scalars do not restrict)."""
    sets = [set(v) for v in values if isinstance(v, dict)]
    return sorted(set.intersection(*sets)) if sets else []


class _Parser:
    """A precedence-climbing parser that evaluates while it parses (expressions are short)."""

    def __init__(self, tokens: list[tuple[str, str]], context: Context):
        self.tokens, self.pos, self.context = tokens, 0, context

    def peek(self) -> str | None:
        return self.tokens[self.pos][1] if self.pos < len(self.tokens) else None

    def take(self, expected: str | None = None) -> tuple[str, str]:
        if self.pos >= len(self.tokens):
            raise MathError("the expression ends too early")
        token = self.tokens[self.pos]
        if expected is not None and token[1] != expected:
            raise MathError(f"expected {expected!r}, found {token[1]!r}")
        self.pos += 1
        return token

    def expression(self, level: int) -> Value:
        if level == len(_LEVELS):
            return self.unary()
        left = self.expression(level + 1)
        while self.peek() in _LEVELS[level] and self.tokens[self.pos][0] == "op":
            symbol = self.take()[1]
            left = apply(_BINARY[symbol], left, self.expression(level + 1))
        return left

    def unary(self) -> Value:
        if self.peek() in ("-", "+"):
            sign = -1.0 if self.take()[1] == "-" else 1.0
            return apply(operator.mul, sign, self.unary())
        return self.primary()

    def primary(self) -> Value:
        kind, word = self.take()
        if kind == "num":
            return float(word)
        if word == "(":
            value = self.expression(0)
            self.take(")")
            return value
        if word == "[":
            return self.items("]")
        if kind == "name" and self.peek() == "(":
            self.take("(")
            return _call(word.upper(), self.items(")"), self.context)
        if kind == "name" and word in self.context.series:
            return dict(self.context.series[word])
        if kind == "name" and word.upper() in ("REPEAT", "LINEAR"):
            return word.upper()  # type: ignore[return-value]  # only FILL accepts these
        if kind == "str":
            return word[1:-1]  # type: ignore[return-value]  # METRICS("filter")
        raise MathError(f"unknown id or unexpected token {word!r}")

    def items(self, closer: str) -> list:
        values: list = []
        while self.peek() != closer:
            if values:
                self.take(",")
            values.append(self.expression(0))
        self.take(closer)
        return values


def _call(name: str, args: list, context: Context) -> Value:
    """Call a metric-math function by name."""
    functions = {
        "IF": _if,
        "FILL": _fill,
        "METRICS": _metrics,
        "SUM": _reduce,
        "AVG": _reduce,
        "MIN": _reduce,
        "MAX": _reduce,
    }
    if name not in functions:
        raise MathError(f"unsupported function {name}")
    if functions[name] is _reduce:
        return _reduce(name, args)
    return functions[name](args, context)


def _if(args: list, context: Context) -> Value:
    """IF(cond, a[, b]): a where cond is non-zero, else b (no datapoint where b is absent)."""
    if len(args) not in (2, 3):
        raise MathError("IF takes a condition and one or two values")
    cond, then = args[0], args[1]
    other = args[2] if len(args) == 3 else None
    if not isinstance(cond, dict):
        return then if cond else (other if other is not None else {})
    out: Series = {}
    for stamp, flag in cond.items():
        chosen = then if flag else other
        if chosen is None or (isinstance(chosen, dict) and stamp not in chosen):
            continue
        out[stamp] = _at(chosen, stamp)
    return out


def _fill(args: list, context: Context) -> Value:
    """FILL(s, value | REPEAT | LINEAR): give every period of the range a value."""
    if len(args) != 2 or not isinstance(args[0], dict):
        raise MathError("FILL takes a time series and a value, REPEAT or LINEAR")
    series, how = args[0], args[1]
    if how == "REPEAT":
        return _repeat(series, context.grid)
    if how == "LINEAR":
        return _linear(series, context.grid)
    if isinstance(how, (str, list)):
        raise MathError("FILL's second argument must be a number, a series, REPEAT or LINEAR")
    filled = {stamp: series.get(stamp) for stamp in context.grid}
    return {
        s: v if v is not None else _at(how, s)
        for s, v in filled.items()
        if v is not None or not isinstance(how, dict) or s in how
    }


def _repeat(series: Series, grid: Sequence[datetime]) -> Series:
    """Fill a gap with the last value before it (or, at the start, the first value after it)."""
    known = sorted(series.items())
    if not known:
        return {}
    out, last = {}, known[0][1]
    for stamp in grid:
        last = series.get(stamp, last)
        out[stamp] = last
    return out


def _linear(series: Series, grid: Sequence[datetime]) -> Series:
    """Fill a gap between two values linearly; gaps at either end are left empty."""
    known = sorted(series.items())
    out = dict(series)
    for (t0, v0), (t1, v1) in itertools.pairwise(known):
        for stamp in grid:
            if t0 < stamp < t1:
                out[stamp] = v0 + (v1 - v0) * (stamp - t0) / (t1 - t0)
    return out


def _metrics(args: list, context: Context) -> list:
    """METRICS([filter]): the MetricStat queries' series whose id contains the filter."""
    text = args[0] if args else ""
    if not isinstance(text, str):
        raise MathError("METRICS takes an optional string")
    return [dict(context.series[i]) for i in context.metric_ids if text in i]


_REDUCERS: dict[str, Callable[[list[float]], float]] = {
    "SUM": sum,
    "AVG": lambda v: sum(v) / len(v),
    "MIN": min,
    "MAX": max,
}


def _reduce(name: str, args: list) -> Value:
    """SUM/AVG/MIN/MAX: per timestamp over a list, or over one series' values (a scalar)."""
    if len(args) != 1:
        raise MathError(f"{name} takes one argument")
    arg, reducer = args[0], _REDUCERS[name]
    if isinstance(arg, dict):
        if not arg:
            raise MathError(f"{name} of an empty series")
        return reducer(list(arg.values()))
    if not isinstance(arg, list) or not arg:
        raise MathError(f"{name} takes a time series or a non-empty list")
    stamps = sorted(set().union(*(v for v in arg if isinstance(v, dict))))
    out: Series = {}
    for stamp in stamps:
        present = [_at(v, stamp) for v in arg if not isinstance(v, dict) or stamp in v]
        out[stamp] = reducer(present)
    return out
