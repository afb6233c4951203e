"""CloudWatch Logs where moto falls short: FilterLogEvents with real filter patterns, Logs Insights queries,
and metric filters that turn matching log events into metrics.

The events themselves stay in moto's logs backend (PutLogEvents, GetLogEvents, DescribeLogStreams are
moto's); these plug-ins read them there. The patterns and the query language are logfilter.py and
insights.py, which know nothing of HTTP or moto.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from typing import Any

from moto.logs.models import logs_backends

from . import protocol
from .insights import LogEvent, QueryError, run_query
from .logfilter import FilterPatternError, compile_pattern
from .protocol import Call

ACCOUNT = "123456789012"
MAX_EVENTS = 10_000  # FilterLogEvents' limit and default


def _backend(call: Call) -> Any:
    return logs_backends[ACCOUNT][call.region or "us-east-1"]


def _group(call: Call, name: str | None) -> Any:
    """Return a log group by name or ARN, or None."""
    if not name:
        return None
    if name.startswith("arn:"):
        name = name.split(":log-group:", 1)[-1].removesuffix(":*")
    return _backend(call).groups.get(name)


def _not_found(call: Call) -> protocol.Answer:
    return protocol.error(call, "ResourceNotFoundException", "The specified log group does not exist.")


def filter_log_events(call: Call, environ: dict) -> protocol.Answer:
    """Answer FilterLogEvents: events of the chosen streams in the time range that match the pattern, oldest
    first, at most `limit` a page, with a nextToken while more remain."""
    params = call.params
    group = _group(call, params.get("logGroupIdentifier") or params.get("logGroupName"))
    if group is None:
        return _not_found(call)
    try:
        pattern = compile_pattern(params.get("filterPattern") or "")
    except FilterPatternError:
        return protocol.error(call, "InvalidParameterException", "Invalid filter pattern")
    limit = params.get("limit", MAX_EVENTS)
    if not isinstance(limit, int) or not 1 <= limit <= MAX_EVENTS:
        return protocol.error(call, "InvalidParameterException",
                              "1 validation error detected: Value at 'limit' failed to satisfy constraint: "
                              "Member must have value less than or equal to 10000")
    names, prefix = params.get("logStreamNames"), params.get("logStreamNamePrefix")
    if names and prefix:
        return protocol.error(call, "InvalidParameterException",
                              "Cannot specify both logStreamNames and logStreamNamePrefix")
    streams = [s for n, s in list(group.streams.items())
               if (not names or n in names) and (not prefix or n.startswith(prefix))]
    start, end = params.get("startTime"), params.get("endTime")
    found = sorted(((e.timestamp, e.event_id, s.log_stream_name, e) for s in streams for e in list(s.events)
                    if (start is None or e.timestamp >= start) and (end is None or e.timestamp <= end)
                    and pattern.matches(e.message)), key=lambda row: (row[0], row[1]))
    skip = _token(params.get("nextToken"))
    if skip is None:
        return protocol.error(call, "InvalidParameterException", "The specified nextToken is invalid.")
    page = found[skip:skip + limit]
    answer: dict[str, Any] = {"events": [{"logStreamName": stream, "timestamp": e.timestamp, "message": e.message,
                                          "ingestionTime": e.ingestion_time, "eventId": str(e.event_id)}
                                         for _, _, stream, e in page],
                              "searchedLogStreams": []}
    if skip + limit < len(found):
        answer["nextToken"] = base64.b64encode(f"{skip + limit}".encode()).decode()
    return protocol.json_answer(answer)


def _token(value: Any) -> int | None:
    if value is None:
        return 0
    try:
        return int(base64.b64decode(str(value), validate=True).decode())
    except ValueError:
        return None


class Queries:
    """Logs Insights: StartQuery runs the query at once over the groups' events (the local data is small),
    GetQueryResults returns what it found, as AWS does once a query is Complete."""

    def __init__(self) -> None:
        self.done: dict[str, dict[str, Any]] = {}
        self.lock = threading.Lock()

    def start(self, call: Call, environ: dict) -> protocol.Answer:
        """Answer StartQuery."""
        params = call.params
        names = params.get("logGroupIdentifiers") or params.get("logGroupNames") or (
            [params["logGroupName"]] if params.get("logGroupName") else [])
        if not names or not params.get("queryString"):
            return protocol.error(call, "InvalidParameterException",
                                  "Provide a queryString and at least one log group")
        groups = [_group(call, n) for n in names]
        if any(g is None for g in groups):
            return _not_found(call)
        start_ms, end_ms = int(params.get("startTime", 0)) * 1000, int(params.get("endTime", 2**40)) * 1000
        events = [LogEvent(e.timestamp, e.message, s.log_stream_name, g.name, e.ingestion_time)
                  for g in groups for s in list(g.streams.values()) for e in list(s.events)
                  if start_ms <= e.timestamp <= end_ms]
        try:
            result = run_query(params["queryString"], events, [g.name for g in groups],
                               limit=params.get("limit") if isinstance(params.get("limit"), int) else None)
        except QueryError as exc:
            return protocol.error(call, "MalformedQueryException", str(exc))
        query_id = str(uuid.uuid4())
        with self.lock:
            self.done[query_id] = {"results": result.results, "statistics": result.statistics,
                                   "status": "Complete", "queryString": params["queryString"],
                                   "logGroupName": names[0], "createTime": int(time.time() * 1000)}
        return protocol.json_answer({"queryId": query_id})

    def results(self, call: Call, environ: dict) -> protocol.Answer:
        """Answer GetQueryResults."""
        query = self.done.get(call.params.get("queryId", ""))
        if query is None:
            return protocol.error(call, "ResourceNotFoundException", "Query does not exist.")
        return protocol.json_answer({"results": query["results"], "statistics": query["statistics"],
                                     "status": query["status"]})

    def stop(self, call: Call, environ: dict) -> protocol.Answer:
        """Answer StopQuery (every query has already ended)."""
        if call.params.get("queryId", "") not in self.done:
            return protocol.error(call, "ResourceNotFoundException", "Query does not exist.")
        return protocol.json_answer({"success": False})

    def describe(self, call: Call, environ: dict) -> protocol.Answer:
        """Answer DescribeQueries."""
        queries = [{"queryId": k, "queryString": v["queryString"], "status": v["status"],
                    "createTime": v["createTime"], "logGroupName": v["logGroupName"]}
                   for k, v in list(self.done.items())]
        return protocol.json_answer({"queries": queries[-1000:]})


def none_defined(key: str) -> Any:
    """Return a handler that lists resources the stack never creates (saved queries, anomaly detectors,
    anomalies): an empty page, as AWS answers an account without them, where moto knows no such operation."""
    def handler(call: Call, environ: dict) -> protocol.Answer:
        return protocol.json_answer({key: []})

    return handler


def apply_metric_filters(call: Call, answer: protocol.Answer, put_metric: Any) -> protocol.Answer:
    """After PutLogEvents: each metric filter of the group turns the matching events into datapoints, as the
    service does (moto stores filters but never applies them)."""
    group = _group(call, call.params.get("logGroupName") or call.params.get("logGroupIdentifier"))
    if group is None:
        return answer
    filters = _backend(call).filters.metric_filters if hasattr(_backend(call), "filters") else []
    for item in filters:
        if item.get("logGroupName") != group.name:
            continue
        try:
            pattern = compile_pattern(item.get("filterPattern") or "")
        except FilterPatternError:
            continue
        for event in call.params.get("logEvents") or []:
            message = event.get("message", "")
            if pattern.matches(message):
                for transformation in item.get("metricTransformations", []):
                    value = _metric_value(pattern, message, transformation)
                    if value is not None:
                        put_metric(call.region, transformation, value, event.get("timestamp"))
    return answer


def _metric_value(pattern: Any, message: str, transformation: dict) -> float | None:
    value = transformation.get("metricValue", "1")
    if isinstance(value, str) and value.startswith("$."):
        found = pattern.value(message, value)
        if found is None:
            return transformation.get("defaultValue")
        try:
            return float(found)
        except (TypeError, ValueError):
            return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def json_message(message: str) -> dict | None:
    """Return a JSON log line as a dict, or None."""
    try:
        value = json.loads(message)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
