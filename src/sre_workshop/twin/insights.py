"""CloudWatch Logs Insights queries (StartQuery / GetQueryResults) over a list of log events; moto has none.

`run_query(query, events, log_group_names)` runs a query to completion and returns the rows as
GetQueryResults gives them (each row a list of ``{"field", "value"}``, values as strings) and the statistics.

The subset supported, which covers what the AWS Labs CloudWatch MCP server sends and what an on-call engineer
types:

- Commands, joined by ``|``: ``fields`` (expressions, ``as`` aliases), ``display``, ``filter``, ``parse``
  (a glob ``"[*] *" as a, b`` or a regex with named groups ``/(?<name>...)/``), ``stats`` (``count(*)``,
  ``count(f)``, ``sum``, ``avg``, ``min``, ``max``, ``stddev``, ``pct(f, 95)``, ``count_distinct``,
  ``earliest``, ``latest``; ``by`` fields, expressions and ``bin(5m)``; a second ``stats`` reads the rows of
  the first), ``sort f [asc|desc], ...`` (ascending unless told), ``limit N`` (1 to 10,000), ``dedup``,
  ``pattern @message`` (rows with ``@pattern``, ``@sampleCount``, ``@ratio``, ``@severityLabel``,
  ``@logSamples``, ``@tokens``, ``@patternId``; variable tokens, those with digits, become ``<*>``).
- Expressions: =, !=, <, <=, >, >= (numbers as numbers, otherwise strings), ``like`` / ``not like`` / ``=~``
  with a "substring" or a /regex/ (``(?i)`` anywhere), ``in [..]`` / ``not in``, ``and``, ``or``, ``not``,
  parentheses, + - * / % ^, and the functions ``ispresent``, ``isempty``, ``isblank``, ``coalesce``,
  ``concat``, ``tolower``, ``toupper``, ``strlen``, ``trim``, ``ltrim``, ``rtrim``, ``strcontains``,
  ``replace``, ``substr``, ``abs``, ``ceil``, ``floor``, ``sqrt``, ``log``, ``greatest``, ``least``,
  ``bin``, ``datefloor``, ``fromMillis``, ``toMillis``. Field names with other characters go in backticks.
- ``#`` starts a comment to the end of the line.
- Fields: ``@timestamp``, ``@message``, ``@logStream``, ``@log`` (``account:group``), ``@ingestionTime``,
  and the fields of JSON messages, found automatically and flattened (``a.b``, arrays as ``a.0``).
- Results: events newest first unless sorted; without ``fields`` or ``display`` a row shows ``@timestamp``
  and ``@message``; event rows end with ``@ptr``, stats rows have none; stats groups come in the order they
  first appear (newest first), by-columns before aggregates; at most 1,000 rows unless a limit says otherwise.
  Times print as ``2024-05-01 12:00:00.000`` (UTC); a missing value leaves its field out of the row.

Not supported (a `QueryError`, which the twin answers as MalformedQueryException): ``unmask``, ``unnest``,
``lookup``, ``diff``, ``anomaly``, ``filterIndex``, ``SOURCE``, the SQL and PPL languages, the IP and most
date/time functions, the ``sortsFirst``/``sortsLast`` aggregates, periods in months, quarters or years. Field
discovery covers JSON messages only (not the fields of AWS's vended log formats). ``count_distinct`` and
``pct`` are exact here where AWS approximates.
"""

from __future__ import annotations

import base64
import json
import math
import re
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sre_workshop.twin.insights_parse import MAX_LIMIT, Aggregate, Command, parse_query
from sre_workshop.twin.insights_values import QueryError, Row, Timestamp, as_number, as_text

__all__ = ["LogEvent", "QueryError", "QueryResult", "run_query"]

DEFAULT_LIMIT = 1000
DEFAULT_COLUMNS = ["@timestamp", "@message"]
_AGGREGATING = {"stats", "pattern"}


@dataclass(frozen=True)
class LogEvent:
    """One log event as CloudWatch Logs stores it (times in milliseconds since the epoch)."""

    timestamp: int
    message: str
    log_stream: str = ""
    log_group: str = ""
    ingestion_time: int | None = None


@dataclass
class QueryResult:
    """What GetQueryResults returns for a complete query."""

    results: list[list[dict[str, str]]]
    statistics: dict[str, float] = field(default_factory=dict)


@dataclass
class _State:
    """The rows flowing through the pipeline and the columns they will show."""

    rows: list[Row]
    columns: list[str] = field(default_factory=list)
    display: list[str] | None = None
    aggregated: bool = False
    matched: int | None = None


def run_query(
    query: str,
    events: Iterable[LogEvent],
    log_group_names: Sequence[str] | None = None,
    *,
    limit: int | None = None,
    account_id: str = "123456789012",
) -> QueryResult:
    """Run a Logs Insights query over the events of the named log groups (all events when None)."""
    commands = parse_query(query)
    if limit is not None and not 0 < limit <= MAX_LIMIT:
        raise QueryError(f"limit must be between 1 and {MAX_LIMIT}")
    groups = None if log_group_names is None else set(log_group_names)
    scanned = [e for e in events if groups is None or e.log_group in groups]
    scanned.sort(key=lambda e: e.timestamp, reverse=True)
    state = _State([_event_row(e, i, account_id) for i, e in enumerate(scanned)])
    for command in commands:
        if state.matched is None and command.name in _AGGREGATING | {"limit", "dedup"}:
            state.matched = len(state.rows)
        _STEPS[command.name](state, command)
    matched = len(state.rows) if state.matched is None else state.matched
    # Without a limit command or parameter, Insights returns at most 1,000 rows.
    has_limit = any(command.name == "limit" for command in commands)
    rows = state.rows[: limit or (MAX_LIMIT if has_limit else DEFAULT_LIMIT)]
    statistics = {
        "recordsMatched": float(matched),
        "recordsScanned": float(len(scanned)),
        "bytesScanned": float(sum(len(e.message.encode()) for e in scanned)),
    }
    return QueryResult([_result_row(state, row) for row in rows], statistics)


# --- rows --------------------------------------------------------------------------------------------------


def _event_row(event: LogEvent, index: int, account_id: str) -> Row:
    """Build the row of one event: its system fields, its JSON fields and its @ptr."""
    row: Row = {}
    _discover_json(event.message, row)
    row.update(
        {
            "@timestamp": Timestamp(event.timestamp),
            "@message": event.message,
            "@logStream": event.log_stream,
            "@log": f"{account_id}:{event.log_group}",
            "@ingestionTime": Timestamp(event.ingestion_time if event.ingestion_time is not None else event.timestamp),
        }
    )
    pointer = f"{event.log_group}|{event.log_stream}|{event.timestamp}|{index}"
    row["@ptr"] = base64.urlsafe_b64encode(pointer.encode()).decode()
    return row


def _discover_json(message: str, row: Row) -> None:
    """Add the flattened fields of a JSON object message (``a.b``, ``list.0``) to the row."""
    text = message.strip()
    if not text.startswith("{"):
        return
    try:
        document = json.loads(text)
    except ValueError:
        return
    if isinstance(document, dict):
        _flatten(document, "", row)


def _flatten(node: Any, prefix: str, row: Row) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            _flatten(value, f"{prefix}{key}.", row)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            _flatten(value, f"{prefix}{index}.", row)
    elif node is not None:
        row[prefix[:-1]] = ("true" if node else "false") if isinstance(node, bool) else node


def _result_row(state: _State, row: Row) -> list[dict[str, str]]:
    """Render a row as GetQueryResults does, leaving out missing values."""
    columns = state.display if state.display is not None else (state.columns or DEFAULT_COLUMNS)
    cells = [{"field": c, "value": as_text(row[c])} for c in columns if row.get(c) is not None]
    if not state.aggregated and "@ptr" in row:
        cells.append({"field": "@ptr", "value": row["@ptr"]})
    return cells


# --- commands ----------------------------------------------------------------------------------------------


def _fields(state: _State, command: Command) -> None:
    for row in state.rows:
        computed = {item.name: item.expr(row) for item in command.items}
        row.update(computed)
    for item in command.items:
        if item.name not in state.columns:
            state.columns.append(item.name)


def _display(state: _State, command: Command) -> None:
    for row in state.rows:
        row.update({item.name: item.expr(row) for item in command.items})
    state.display = [item.name for item in command.items]  # the last display wins


def _filter(state: _State, command: Command) -> None:
    condition = command.condition
    assert condition is not None
    state.rows = [row for row in state.rows if condition(row)]


def _parse(state: _State, command: Command) -> None:
    source, regex = command.source, command.regex
    assert source is not None and regex is not None
    for row in state.rows:
        value = source(row)
        found = None if value is None else regex.search(as_text(value))
        if found is None:
            continue
        if regex.groupindex:
            row.update({name: found[name] for name in command.group_names if found[name] is not None})
        else:
            row.update(zip(command.group_names, found.groups(), strict=True))


def _sort(state: _State, command: Command) -> None:
    # Stable sorts from the last key to the first give a multi-key sort; missing values go last either way.
    for item, descending in reversed(list(zip(command.items, command.descending, strict=True))):
        state.rows.sort(key=lambda row, e=item.expr, d=descending: _sort_key(e(row), d), reverse=descending)


def _sort_key(value: Any, descending: bool) -> tuple[int, int, Any]:
    if value is None:
        return (0 if descending else 1, 0, 0)
    number = as_number(value)
    if number is not None:
        return (1 if descending else 0, 0, number)
    return (1 if descending else 0, 1, as_text(value))


def _limit(state: _State, command: Command) -> None:
    state.rows = state.rows[: command.count]


def _dedup(state: _State, command: Command) -> None:
    seen: set[tuple[str, ...]] = set()
    kept = []
    for row in state.rows:
        values = [item.expr(row) for item in command.items]
        if any(v is None for v in values):
            kept.append(row)  # as AWS: rows missing a dedup field are kept
            continue
        key = tuple(as_text(v) for v in values)
        if key not in seen:
            seen.add(key)
            kept.append(row)
    state.rows = kept


def _stats(state: _State, command: Command) -> None:
    groups: dict[tuple[str, ...], tuple[Row, list[Row]]] = {}
    for row in state.rows:
        by = {item.name: item.expr(row) for item in command.items}
        key = tuple("" if v is None else as_text(v) for v in by.values())
        groups.setdefault(key, (by, []))[1].append(row)
    if not command.items and not groups:
        groups[()] = ({}, [])  # stats over no events still gives one row (count 0)
    state.rows = []
    for by, members in groups.values():
        out = dict(by)
        out.update({agg.name: _aggregate(agg, members) for agg in command.aggregates})
        state.rows.append(out)
    state.columns = [item.name for item in command.items] + [agg.name for agg in command.aggregates]
    state.display, state.aggregated = None, True


def _aggregate(agg: Aggregate, rows: list[Row]) -> Any:
    """Compute one aggregate over the rows of a group."""
    if agg.arg is None:
        return len(rows)
    present = [(row, v) for row in rows if (v := agg.arg(row)) is not None]
    values = [v for _, v in present]
    numbers = sorted(n for v in values if (n := as_number(v)) is not None)
    if agg.function == "count":
        return len(values)
    if agg.function == "count_distinct":
        return len({as_text(v) for v in values})
    if agg.function in ("earliest", "latest"):
        if not present:
            return None
        pick = min if agg.function == "earliest" else max
        return pick(present, key=lambda pair: int(pair[0]["@timestamp"]))[1]
    if agg.function in ("min", "max") and not numbers and values:
        return (min if agg.function == "min" else max)(as_text(v) for v in values)
    return _numeric_aggregate(agg, numbers)


def _numeric_aggregate(agg: Aggregate, numbers: list[float]) -> float | None:
    if agg.function == "sum":
        return sum(numbers)
    if not numbers:
        return None
    if agg.function == "avg":
        return sum(numbers) / len(numbers)
    if agg.function == "min":
        return numbers[0]
    if agg.function == "max":
        return numbers[-1]
    if agg.function == "pct":
        rank = max(1, math.ceil(agg.percent / 100 * len(numbers)))
        return numbers[min(rank, len(numbers)) - 1]
    mean = sum(numbers) / len(numbers)  # stddev (sample)
    if len(numbers) == 1:
        return 0.0
    return math.sqrt(sum((n - mean) ** 2 for n in numbers) / (len(numbers) - 1))


# --- pattern -----------------------------------------------------------------------------------------------

_VARIABLE = re.compile(r"[\w.:/+-]*\d[\w.:/+-]*")
_SEVERITY = re.compile(r"\b(FATAL|CRITICAL|ERROR|WARN(?:ING)?|INFO|DEBUG|TRACE)\b", re.IGNORECASE)


def pattern_of(message: str) -> str:
    """Return the pattern of a message: each token with a digit becomes ``<*>``."""
    return _VARIABLE.sub("<*>", message.strip())


def _pattern(state: _State, command: Command) -> None:
    source = command.source
    assert source is not None
    groups: dict[str, list[str]] = {}
    for row in state.rows:
        value = source(row)
        if value is not None:
            groups.setdefault(pattern_of(as_text(value)), []).append(as_text(value))
    total = sum(len(samples) for samples in groups.values()) or 1
    state.rows = [_pattern_row(p, samples, total) for p, samples in groups.items()]
    state.rows.sort(key=lambda row: row["@sampleCount"], reverse=True)
    state.columns = ["@pattern", "@sampleCount", "@ratio", "@severityLabel", "@logSamples", "@tokens", "@patternId"]
    state.display, state.aggregated = None, True


def _pattern_row(pattern: str, samples: list[str], total: int) -> Row:
    severity = _SEVERITY.search(pattern)
    tokens = [{"dynamicTokenPosition": i, "tokenString": "<*>"} for i in range(pattern.count("<*>"))]
    return {
        "@pattern": pattern,
        "@sampleCount": len(samples),
        "@ratio": round(len(samples) / total, 6),
        "@severityLabel": severity[1].upper().replace("WARNING", "WARN") if severity else "UNKNOWN",
        "@logSamples": json.dumps([{"value": s} for s in samples[:5]]),
        "@tokens": json.dumps(tokens),
        "@patternId": format(zlib.crc32(pattern.encode()), "08x"),
    }


_STEPS = {
    "fields": _fields,
    "display": _display,
    "filter": _filter,
    "parse": _parse,
    "sort": _sort,
    "limit": _limit,
    "dedup": _dedup,
    "stats": _stats,
    "pattern": _pattern,
}
