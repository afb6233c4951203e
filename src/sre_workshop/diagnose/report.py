"""doctor's report as one self-contained HTML page: the verdict, the findings, and charts (inline SVG, no
script, no network) of the window's request rate, 5xx, latency, leak size and RSS per worker, and DynamoDB
errors. Every text from the system is escaped."""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape

from .model import Report

Series = list[tuple[float, float]]
WIDTH, HEIGHT, PAD = 640, 170, 36
COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]
STYLE = """body{font:14px/1.4 system-ui,sans-serif;margin:2em auto;max-width:720px;color:#222}
h1{font-size:1.4em}.ok{color:#2a7d2a}.bad{color:#b22}.f{border-left:4px solid #b22;padding:.2em .8em;margin:1em 0}
.minor{border-color:#d90}.major{border-color:#e60}code{background:#f3f3f3;padding:0 .2em}
svg{background:#fafafa;border:1px solid #ddd;margin:.3em 0}.legend span{margin-right:1em}"""


def render(report: Report, charts: dict[str, dict[str, Series]]) -> str:
    """Return the whole page."""
    unknown = report.observations.unknown
    if report.healthy:
        verdict = "<p class=ok>healthy</p>"
    elif report.findings:
        verdict = f"<p class=bad>{len(report.findings)} finding(s)</p>"
    else:  # as the CLI says it: an unread signal is not a healthy one
        verdict = (f"<p class=bad>no finding, but {len(unknown)} signal(s) could not be read: "
                   "not known to be healthy</p>")
    findings = "".join(_finding(f) for f in report.findings)
    if unknown:
        findings += "<h2>Not read</h2><ul>" + "".join(f"<li>{escape(what)}: {escape(why)}</li>"
                                                      for what, why in unknown.items()) + "</ul>"
    pictures = "".join(_chart(title, series) for title, series in charts.items())
    return (f"<!doctype html><html lang=en><head><meta charset=utf-8><title>sre-workshop doctor</title>"
            f"<style>{STYLE}</style></head><body><h1>sre-workshop doctor</h1>"
            f"<p>checked at {escape(report.checked_at)} ({escape(report.observations.world)}), "
            f"in {report.seconds:.1f}s</p>{verdict}{findings}<h2>The last minutes</h2>{pictures}</body></html>")


def _finding(finding) -> str:
    evidence = "".join(f"<li>{escape(e)}</li>" for e in finding.evidence)
    return (f"<div class='f {escape(finding.severity)}'><h3>[{escape(finding.severity)}] {escape(finding.component)} "
            f"({escape(finding.layer)}) / {escape(finding.category)}: {escape(finding.summary)}</h3>"
            f"<ul>{evidence}</ul><p>fix: {escape(finding.remediation)}</p></div>")


def _chart(title: str, series: dict[str, Series]) -> str:
    """One line chart; a chart without data says so instead of drawing nothing."""
    points = [p for s in series.values() for p in s]
    if not points:
        return f"<h3>{escape(title)}</h3><p class=nodata>no data in the window</p>"
    t0, t1 = min(p[0] for p in points), max(p[0] for p in points)
    top = max(p[1] for p in points) or 1.0
    lines, legend = [], []
    for colour, (name, values) in zip(COLOURS * 3, sorted(series.items()), strict=False):
        coords = " ".join(f"{_x(t, t0, t1):.1f},{_y(v, top):.1f}" for t, v in values)
        lines.append(f"<polyline fill=none stroke='{colour}' stroke-width=2 points='{coords}'>"
                     f"<title>{escape(name)}</title></polyline>")
        legend.append(f"<span style='color:{colour}'>&#9632; {escape(name)}</span>")
    axis = (f"<text x=2 y={PAD - 6} font-size=11>{top:.3g}</text><text x=2 y={HEIGHT - 4} font-size=11>0</text>"
            f"<text x={PAD} y={HEIGHT - 4} font-size=11>{_clock(t0)}</text>"
            f"<text x={WIDTH - 60} y={HEIGHT - 4} font-size=11>{_clock(t1)}</text>")
    return (f"<h3>{escape(title)}</h3><svg class=chart width={WIDTH} height={HEIGHT} role=img "
            f"aria-label='{escape(title)}'>{axis}{''.join(lines)}</svg><div class=legend>{''.join(legend)}</div>")


def _x(t: float, t0: float, t1: float) -> float:
    return PAD + (WIDTH - 2 * PAD) * ((t - t0) / (t1 - t0) if t1 > t0 else 0.5)


def _y(v: float, top: float) -> float:
    return HEIGHT - PAD + (PAD * 2 - HEIGHT) * (v / top)


def _clock(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%H:%M:%S")
