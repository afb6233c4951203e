"""The one reader of JSON log lines: doctor's summaries, its charts and the MCP get_logs tool read alike."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from sre_workshop.diagnose import loglines
from sre_workshop.diagnose.local import readers
from sre_workshop.mcp import logs

entries = st.fixed_dictionaries(
    {"time": st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2035, 1, 1), timezones=st.just(UTC))},
    optional={"status": st.sampled_from([200, 404, 500, 503]), "level": st.sampled_from(["INFO", "ERROR"]),
              "message": st.text(max_size=30)})


def line_of(entry: dict) -> str:
    return json.dumps({**entry, "time": entry["time"].isoformat()})


@given(entries)
def test_a_json_line_reads_back_with_its_time(entry):
    stamp, parsed = loglines.json_entry(line_of(entry))
    assert stamp == entry["time"].timestamp() and parsed["time"] == entry["time"].isoformat()
    assert loglines.stamp(line_of(entry)) == stamp


@given(st.lists(entries, max_size=15))
def test_doctor_and_get_logs_count_the_same_statuses(found):
    lines = [line_of(e) for e in found]
    summary = readers.json_lines("x", lines, None)
    assert logs.summarise("x", lines, 5, None)["by_status"] == summary.statuses


@given(st.text(max_size=40))
def test_any_other_line_is_no_entry_and_never_raises(text):
    if loglines.json_object(text) is None:
        assert loglines.json_entry(text) is None
    loglines.stamp(text)
    loglines.nginx_error_entry(text)


def test_an_nginx_error_line_gives_its_level_and_message():
    stamp, level, message = loglines.nginx_error_entry(
        "2026/01/01 00:00:00 [error] 12#12: *3 upstream timed out (110: Connection timed out), client: 127.0.0.1")
    assert level == "error" and message == "upstream timed out (110: Connection timed out)" and stamp > 0


def test_a_process_output_line_carries_its_time():
    from sre_workshop.diagnose.loglines import stamp

    assert stamp("2026-12-05T13:55:37+0000 [2026-12-05 13:55:37 +0000] [7] [INFO] Booting worker") == 1796478937.0
    assert stamp("2026-12-05T14:55:37+0100 listening") == 1796478937.0
    assert stamp("no time here") is None
