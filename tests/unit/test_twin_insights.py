"""Logs Insights queries: AWS's documented examples (CWL_QuerySyntax), the queries the AWS Labs CloudWatch MCP
server sends, and the shape of GetQueryResults."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sre_workshop.twin.insights import LogEvent, QueryError, run_query

T0 = 1_714_557_600_000  # 2024-05-01 10:00:00 UTC


def event(minute: int, message: str | dict, stream: str = "web-1", group: str = "/sre/app") -> LogEvent:
    text = message if isinstance(message, str) else json.dumps(message)
    return LogEvent(T0 + minute * 60_000, text, stream, group, T0 + minute * 60_000 + 5)


EVENTS = [
    event(0, {"level": "INFO", "path": "/api/items", "status": 200, "latency": 40, "user": {"id": "u1"}}),
    event(1, {"level": "ERROR", "path": "/api/items", "status": 503, "latency": 900, "tags": ["db", "timeout"]}),
    event(2, "25 May 2019 10:24:39,474 [ERROR] {foo=2, bar=data} The error was: DataIntegrityException"),
    event(3, {"level": "WARN", "path": "/api/orders", "status": 429, "latency": 120}),
    event(7, {"level": "INFO", "path": "/api/orders", "status": 200, "latency": 60}, stream="web-2"),
    event(8, "user=alice, method:GET, latency := 35", stream="web-2"),
    event(9, "user=bob, method:POST, latency := 85", stream="web-2"),
    event(12, "java.lang.IllegalStateException: pool exhausted", stream="web-2", group="/sre/other"),
]


def rows(query: str, events=EVENTS, groups=("/sre/app",), **kwargs) -> list[dict[str, str]]:
    """Run a query and return its rows as {field: value} (as the MCP server reshapes them)."""
    result = run_query(query, events, list(groups) if groups is not None else None, **kwargs)
    return [{cell["field"]: cell["value"] for cell in row} for row in result.results]


# --- AWS's documented examples --------------------------------------------------------------------------------


def test_documented_parse_glob_and_regex_give_the_same_fields():
    glob = rows(
        'parse @message "[*] * The error was: *" as level, config, exception | display level, config, exception'
    )
    regex = rows(
        r"parse @message /\[(?<level>\S+)\]\s+(?<config>\{.*\})\s+The error was: (?<exception>\S+)/"
        " | filter ispresent(exception) | display level, config, exception"
    )
    expected = {"level": "ERROR", "config": "{foo=2, bar=data}", "exception": "DataIntegrityException"}
    assert [{k: v for k, v in r.items() if k != "@ptr"} for r in glob if "exception" in r] == [expected]
    assert [{k: v for k, v in r.items() if k != "@ptr"} for r in regex] == [expected]


def test_documented_parse_regex_then_stats_by_two_fields():
    query = (
        "parse @message /user=(?<user2>.*?), method:(?<method2>.*?), latency := (?<latency2>.*?)$/"
        " | stats avg(latency2) by method2, user2"
    )
    found = rows(query)
    assert {"method2": "GET", "user2": "alice", "avg(latency2)": "35"} in found
    assert {"method2": "POST", "user2": "bob", "avg(latency2)": "85"} in found


def test_documented_display_example():
    query = 'fields @message | parse @message "[*] *" as loggingType, loggingMessage'
    query += ' | filter loggingType = "ERROR" | display loggingMessage'
    (row,) = rows(query)
    assert set(row) == {"loggingMessage", "@ptr"}
    assert row["loggingMessage"].startswith("{foo=2, bar=data}")


@pytest.mark.parametrize(
    ("query", "expected_statuses"),
    [
        ("fields status | filter (latency>100)", ["429", "503"]),
        ("fields status | filter (latency>100 and status=503)", ["503"]),
        ("fields status | filter (status=200 or latency>800)", ["200", "503", "200"]),
        ("fields status | filter status in [429,503]", ["429", "503"]),
        ('fields status | filter level not in ["INFO","WARN",1]', ["503"]),
        ("fields status | filter path like /orders/", ["200", "429"]),
        ("fields status | filter path =~ /orders/", ["200", "429"]),
        ('fields status | filter path like "orders"', ["200", "429"]),
        ("fields status | filter level like /(?i)error/", ["503"]),
        ("fields status | filter level =~ /^(?i)warn$/", ["429"]),
        ("fields status | filter level like /warn/", []),
        ("fields status | filter status like /2\\d\\d/", ["200", "200"]),
    ],
)
def test_documented_filter_examples(query, expected_statuses):
    assert [r["status"] for r in rows(query)] == expected_statuses


def test_documented_aliases_and_sort_by_alias():
    found = rows("filter ispresent(path) | stats avg(latency) as myAvg by path | sort myAvg desc")
    assert found == [{"path": "/api/items", "myAvg": "470"}, {"path": "/api/orders", "myAvg": "90"}]
    found = rows("filter ispresent(path) | stats avg(latency) as myAvg by path | sort myAvg asc")
    assert [r["myAvg"] for r in found] == ["90", "470"]


def test_documented_comment_lines_are_ignored():
    query = "fields @timestamp, @message\n    # | filter @message like /delay/\n    | limit 20"
    assert len(rows(query)) == 7


def test_documented_limit_and_sort_example():
    found = rows("sort @timestamp desc | limit 2 | display @message")
    assert [r["@message"] for r in found] == [EVENTS[6].message, EVENTS[5].message]


# --- the AWS Labs CloudWatch MCP server's queries -----------------------------------------------------------


def test_mcp_exceptions_per_hour():
    events = [*EVENTS, event(70, "ERROR Exception again"), event(71, "NullPointerException")]
    query = (
        "filter @message like /Exception/\n| stats count(*) as exceptionCount by bin(1h)\n| sort exceptionCount desc"
    )
    assert rows(query, events) == [
        {"bin(1h)": "2024-05-01 11:00:00.000", "exceptionCount": "2"},
        {"bin(1h)": "2024-05-01 10:00:00.000", "exceptionCount": "1"},
    ]


def test_mcp_top_patterns():
    events = [event(i, f"GET /api/items/{i} 200 in {10 + i}ms") for i in range(6)] + [event(9, "db down")]
    found = rows("pattern @message | sort @sampleCount desc | limit 5", events)
    assert found[0]["@pattern"] == "GET <*> <*> in <*>"
    assert found[0]["@sampleCount"] == "6"
    assert json.loads(found[0]["@logSamples"])[:1]  # the MCP server keeps one sample
    assert found[1]["@pattern"] == "db down"
    assert "@ptr" not in found[0]


def test_mcp_error_patterns():
    query = (
        "fields @timestamp, @message | filter @message like /(?i)(error|exception|fail|timeout|fatal)/"
        " | pattern @message | limit 5"
    )
    found = rows(query)
    labels = {r["@severityLabel"] for r in found}
    assert sum(int(r["@sampleCount"]) for r in found) == 2  # the ERROR JSON event and the DataIntegrity line
    assert labels == {"ERROR"}


def test_mcp_field_existence_and_cardinality_checks():
    (row,) = rows("fields level, path, nosuchfield | limit 1", EVENTS[:5])
    assert row["level"] == "INFO" and "nosuchfield" not in row
    assert rows("stats count_distinct(path) as card_0, count_distinct(level) as card_1 | limit 1") == [
        {"card_0": "2", "card_1": "3"}
    ]


# --- results and statistics -------------------------------------------------------------------------------------


def test_default_columns_newest_first_and_ptr():
    found = rows("filter status = 200")
    assert [set(r) for r in found] == [{"@timestamp", "@message", "@ptr"}] * 2
    assert found[0]["@timestamp"] == "2024-05-01 10:07:00.000"
    assert found[1]["@timestamp"] == "2024-05-01 10:00:00.000"
    assert found[0]["@ptr"] != found[1]["@ptr"]


def test_system_fields_and_nested_json_fields():
    (row,) = rows(
        "fields @logStream, @log, @ingestionTime, user.id, tags.1 | filter ispresent(user.id) or tags.0 = 'db'"
    )[:1]
    assert row["@logStream"] == "web-1"
    assert row["@log"] == "123456789012:/sre/app"
    assert row["tags.1"] == "timeout"
    assert row["@ingestionTime"] == "2024-05-01 10:01:00.005"


def test_statistics_count_scanned_and_matched_events():
    result = run_query("filter level = 'ERROR' | stats count(*)", EVENTS, ["/sre/app"])
    assert result.results == [[{"field": "count(*)", "value": "1"}]]
    scanned = [e for e in EVENTS if e.log_group == "/sre/app"]
    assert result.statistics == {
        "recordsMatched": 1.0,
        "recordsScanned": float(len(scanned)),
        "bytesScanned": float(sum(len(e.message.encode()) for e in scanned)),
    }


def test_log_group_selection():
    assert len(rows("fields @message", groups=None)) == 8
    assert [r["@message"] for r in rows("fields @message", groups=["/sre/other"])] == [EVENTS[7].message]


def test_stats_functions():
    (row,) = rows(
        "filter ispresent(latency) | stats count(*) as n, count(tags.0) as tagged, sum(latency) as total,"
        " min(latency) as lo, max(latency) as hi, pct(latency, 50) as p50, pct(latency, 99) as p99,"
        " avg(latency) as mean, earliest(status) as first, latest(status) as last"
    )
    assert row == {
        "n": "4", "tagged": "1", "total": "1120", "lo": "40", "hi": "900", "p50": "60", "p99": "900",
        "mean": "280", "first": "200", "last": "200",
    }  # fmt: skip


def test_stats_by_bin_and_field_then_second_stats():
    found = rows("filter ispresent(status) | stats count(*) as c by bin(5m) as t, path | stats sum(c) as total by path")
    assert sorted(found, key=lambda r: r["path"]) == [
        {"path": "/api/items", "total": "2"},
        {"path": "/api/orders", "total": "2"},
    ]


def test_sort_asc_desc_and_missing_values_last():
    assert [r.get("latency") for r in rows("fields latency | sort latency asc")] == ["40", "60", "120", "900"] + [
        None
    ] * 3
    assert [r.get("latency") for r in rows("fields latency | sort latency desc")][:4] == ["900", "120", "60", "40"]
    assert [r["status"] for r in rows("fields status, path | filter ispresent(status) | sort path desc, status")] == [
        "200",
        "429",
        "200",
        "503",
    ]


def test_dedup_keeps_the_first_row_of_each_value():
    found = rows("filter ispresent(path) | sort @timestamp desc | dedup path | display path, status")
    assert [(r["path"], r["status"]) for r in found] == [("/api/orders", "200"), ("/api/items", "503")]


def test_fields_expressions_and_functions():
    query = (
        "filter ispresent(status) | fields concat(level, '-', status) as opStatus, latency / 1000 as seconds,"
        " toupper(path) as p, strlen(level) as n, abs(0 - latency) as a | limit 1"
    )
    (row,) = rows(query)
    assert row["opStatus"] == "INFO-200" and row["seconds"] == "0.06" and row["p"] == "/API/ORDERS"
    assert row["n"] == "4" and row["a"] == "60"


def test_backticked_field_names():
    events = [event(0, {"foo-bar": "x", "action": "go"})]
    (row,) = rows("fields `foo-bar`, action | filter `foo-bar` = 'x'", events)
    assert (row["foo-bar"], row["action"]) == ("x", "go")


def test_default_and_requested_row_limits():
    events = [event(i % 600, f"line {i}") for i in range(1200)]
    assert len(rows("fields @message", events)) == 1000
    assert len(rows("fields @message | limit 1100", events)) == 1100
    assert len(rows("fields @message", events, limit=10)) == 10


@pytest.mark.parametrize(
    "query",
    [
        "",
        "fields",
        "fields @message |",
        "frobnicate @message",
        "filter status ==== 5",
        "filter @message like /unterminated",
        "stats nosuch(x)",
        "stats avg()",
        "limit 0",
        "limit 20000",
        'parse @message "* *" as onlyone',
        "parse @message /no named groups/",
        "stats count(*) by bin(1mo)",
        "filter (status = 1",
        "fields unknownfn(x)",
        "unmask @message",
    ],
)
def test_malformed_queries_raise(query):
    with pytest.raises(QueryError) as raised:
        run_query(query, EVENTS, ["/sre/app"])
    assert raised.value.aws_code == "MalformedQueryException"


# --- properties -------------------------------------------------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(values=st.lists(st.integers(0, 10_000), min_size=1, max_size=30), bound=st.integers(0, 10_000))
def test_filter_and_stats_agree_with_python(values, bound):
    events = [event(i, {"v": v}) for i, v in enumerate(values)]
    (row,) = rows(f"filter v > {bound} | stats count(*) as n, sum(v) as s", events)
    kept = [v for v in values if v > bound]
    assert row == {"n": str(len(kept)), "s": str(sum(kept))}
    found = rows("fields v | sort v desc | limit 5", events)
    assert [int(r["v"]) for r in found] == sorted(values, reverse=True)[:5]
