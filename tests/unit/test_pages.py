"""The pages' chart specs, without a browser: series to aligned columns with units, marks and honest labels;
doctor's report and the scorecard escape what the system says and load nothing; the vendored uPlot is the
published one."""

from __future__ import annotations

import hashlib
import json
import re

from pages_samples import HOSTILE, T0, cards, doctor_charts, doctor_report
from sre_workshop.diagnose.report import first_symptom, render, signals_of
from sre_workshop.pages import spec
from sre_workshop.pages.document import ASSETS, json_script
from sre_workshop.scenarios.html import cells, marks, page

PUBLISHED = {"uPlot.iife.min.js": "19c8d4c6ad88929a79f4ae49d6f7161566dfd0ba3d15cc495e974f787eb78f1f",
             "uPlot.min.css": "df630c6a8d6f8eeaff264b50f73ce5b114f646ffd9a0bb74f049b0a00135fa04"}


def chart_data(html: str) -> dict:
    """Return the page's chart specs as the script reads them."""
    return json.loads(re.search(r"<script type=application/json id=chart-data>(.*?)</script>", html, re.S).group(1))


def test_units_come_from_the_titles():
    assert spec.unit_of("latency p95 per hop (ms)") == "ms" and spec.unit_of("5xx per second by hop") == "/s"
    assert spec.unit_of("requests") == ""


def test_series_are_aligned_on_the_union_of_their_times_without_filling_gaps():
    columns = spec.align([[(1, 5.0), (3, 7.0)], [(2, 1.0), (3, float("nan"))]])
    assert columns == [[1, 2, 3], [5.0, None, 7.0], [None, 1.0, None]]


def test_equal_series_are_told_apart_and_said_so():
    built = spec.chart("5xx per second", {"a": [(1, 2.0)], "b": [(1, 2.0)], "c": [(1, 0.0)]})
    labels = [s["label"] for s in built["series"]]
    assert labels == ["a", "b (same values as a)", "c (all 0)"]
    styles = [(s["colour"], s["width"], tuple(s["dash"])) for s in built["series"]]
    assert len(set(styles)) == 3 and styles[0][1] > styles[1][1] > styles[2][1]  # the first drawn is widest


def test_a_chart_without_readings_says_so_and_invents_nothing():
    built = spec.chart("CPU (%)", {"host": []})
    assert built["series"] == [] and built["note"] == spec.NO_DATA and built["data"] == [[]]
    assert built["range"] == [0, 100.0]


def test_the_span_covers_every_chart_and_mark():
    charts = [spec.chart("x", {"a": [(10, 1.0), (20, 1.0)]}), spec.chart("y", {})]
    assert spec.span(charts, [spec.Mark(5, "injected", "incident")]) == [5, 20]


def test_json_in_the_page_cannot_close_its_script():
    text = json_script({"label": "</script><script>alert(1)</script>&"})
    assert "<" not in text and ">" not in text and "&" not in text and json.loads(text)["label"].startswith("</")


def test_the_vendored_library_is_the_published_one_with_its_licence():
    for name, digest in PUBLISHED.items():
        assert hashlib.sha256((ASSETS / name).read_bytes()).hexdigest() == digest
    assert "MIT" in (ASSETS / "uPlot.LICENSE").read_text() and "1.6.32" in (ASSETS / "README.md").read_text()


def test_each_finding_gets_the_charts_of_its_signals():
    report = doctor_report()
    charts = doctor_charts()
    assert signals_of(report.findings[2], charts) == ["5xx per second by hop"]
    assert signals_of(report.findings[0], {}) == ["CPU (%)"]  # missing: drawn as "no data"
    assert first_symptom(charts) == (T0 + 360, "nginx (5xx per second by hop)")


def test_the_report_marks_the_incident_and_shares_one_time_axis():
    html = render(doctor_report(), doctor_charts())
    data = chart_data(html)
    assert len(data["groups"]) == 1 and data["groups"]["g1"]["span"] == [T0, T0 + 600]
    for chart in data["charts"].values():
        assert [m["label"] for m in chart["marks"]] == ["first symptom", "doctor's check"]
    assert "first symptom in the window (marked on every chart): 16:06:00 UTC, nginx (5xx per second by hop)" in html
    titles = [c["title"] for c in data["charts"].values()]
    cpu = next(c for c in data["charts"].values() if c["title"].startswith("CPU at doctor's check"))
    labels = [s["label"] for s in cpu["series"]]
    assert labels[:2] == ["host total", f"pid 999 burn {HOSTILE} (outside the stack, wanted)"]
    fit = next(c for c in data["charts"].values() if "fitted trend" in c["title"])
    assert any("+3.0 MB/min, the 200 MB cap in" in s["label"] for s in fit["series"])
    assert "latency p95 per hop (ms)" in titles and "DynamoDB errors per second by code and table" in titles


def test_the_report_escapes_what_it_shows_and_loads_nothing():
    html = render(doctor_report(), doctor_charts())
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "Content-Security-Policy" in html and "default-src 'none'" in html
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)


def test_the_scorecard_compares_scorers_and_marks_assisted_runs():
    html = page(cards())
    table = html.split("<table class=compare>")[1].split("</table>")[0]
    assert table.count("<tr>") == 4 and "assisted" in table  # latency: doctor, the agent; control: doctor
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    data = chart_data(html)
    assert len(data["groups"]) == 3 and data["groups"]["g1"]["origin"] == T0 + 120


def test_a_runs_timeline_labels_its_events():
    doctor, _ = cards()[0][1]
    labels = [m.label for m in marks(doctor) if not m.minor]
    assert labels == ["injected", "first diagnosis", "detected", "cleared", "recovered"]
    agent = cards()[1][1][0]
    found = marks(agent)
    assert [m.label for m in found if not m.minor] == ["injected", "restart_service", "submitted", "mitigated",
                                                       "recovered"]
    assert sum(m.minor for m in found) == 3  # each tool call a tick
    assert cells(agent)["category"] == "no" and cells(agent)["mitigated / recovered"] == "mitigated: yes"


def test_the_local_signals_come_from_the_logs_per_hop(tmp_path):
    from sre_workshop.diagnose.local import series

    line = ('{{"time":"2025-11-24T16:00:0{s}+00:00","uri":"{uri}","status":{status},"request_time":{rt},'
            '"upstream_status":"{up}","upstream_response_time":"{rt}"}}')
    nginx = tmp_path / "nginx.log"
    nginx.write_text("\n".join(["skipped first line",
                                line.format(s=1, uri="/", status=200, rt=0.01, up="200"),
                                line.format(s=2, uri="/", status=502, rt=0.5, up="502, 504"),
                                line.format(s=3, uri="/health", status=200, rt=0, up="-")]) + "\n")
    app = tmp_path / "app.log"
    app.write_text("x\n" + "\n".join([
        '{"time":"2025-11-24T16:00:01+00:00","path":"/health","status":503,"duration_ms":1}',
        '{"time":"2025-11-24T16:00:12+00:00","level":"ERROR","error_code":"AccessDeniedException",'
        '"message":"not authorized on resource: arn:aws:dynamodb:r:1:table/Customers"}']) + "\n")
    entries = series._entries(nginx, T0 - 1)
    assert series._rate(entries) == [(T0, 0.2)] and series._rate(entries, series._5xx("upstream_status")) == [(T0, 0.1)]
    assert series._p95(entries, "request_time", 1000) == [(T0, 500.0)]
    assert series._health(entries, "uri") == [(T0, 100.0)]
    logged = series._entries(app, T0 - 1)
    assert series._health(logged, "path") == [(T0, 0.0)]
    assert series._aws_errors("crm-app", logged) == {"crm-app: AccessDeniedException (Customers)": [(T0, 0.0),
                                                                                                    (T0 + 10, 0.1)]}
