"""The scorecard as one self-contained HTML page: the tables and a timeline per scenario (inline SVG).

Everything shown is escaped; the page loads nothing from anywhere.
"""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape

from .result import Result
from .scorecard import row, totals

STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:1em 0}
td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}th{background:#f3f3f3}.ok{color:#176c2f}
.bad{color:#b00020}svg{background:#fafafa;border:1px solid #ddd}h3{margin-top:2em}small{color:#666}
"""
COLOURS = {True: "#2e9d4d", False: "#d0342c", None: "#777"}
WIDTH, HEIGHT, PAD = 760, 70, 30


def page(cards: list[tuple[str, list[Result]]], title: str = "sre-workshop scorecard") -> str:
    """Return the whole page for one or more scorers' results."""
    made = datetime.now(UTC).isoformat(timespec="seconds")
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title>",
             f"<style>{STYLE}</style></head><body><h1>{escape(title)}</h1><p><small>made {escape(made)}</small></p>"]
    for scorer, results in cards:
        parts.append(_table(scorer, results))
    for scorer, results in cards:
        for result in results:
            parts.append(_timeline(scorer, result))
    parts.append("</body></html>")
    return "\n".join(parts)


def _table(scorer: str, results: list[Result]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in ("scenario", "ground truth", "detected", "localized",
                                                     "category", "recovered", "notes"))
    body = []
    for result in results:
        truth = f"{result.truth['component']}/{result.truth['category']}" if result.truth else "none"
        verdict = "ok" if result.passed else "bad"
        cells = [f"<td class='{verdict}'>{escape(result.scenario)}</td>", f"<td>{escape(truth)}</td>"]
        cells += [f"<td>{escape(cell)}</td>" for cell in row(result)]
        body.append("<tr>" + "".join(cells) + "</tr>")
    t = totals(results)
    summary = (f"{t['passed']}/{t['scenarios']} passed; localized {t['localized']}/{t['faults']}; category "
               f"{t['category_match']}/{t['faults']}; median MTTD {t['median_mttd_s']} s; "
               f"false positives {t['false_positives']}")
    return (f"<h2>{escape(scorer)}</h2><p>{escape(summary)}</p><table><tr>{head}</tr>"
            + "".join(body) + "</table>")


def _timeline(scorer: str, result: Result) -> str:
    """One scenario's timeline: a dot per diagnosis (green right, red wrong), a tick per event."""
    span = max([m.at_s for m in result.timeline] + [1.0])
    x = lambda at: PAD + (WIDTH - 2 * PAD) * max(at, 0.0) / span  # noqa: E731
    shapes = [f"<line x1='{PAD}' y1='{HEIGHT / 2}' x2='{WIDTH - PAD}' y2='{HEIGHT / 2}' stroke='#bbb'/>"]
    for mark in result.timeline:
        tip = escape(f"{mark.at_s:g}s {mark.kind}: {mark.detail}")
        if mark.kind == "diagnosis":
            shapes.append(f"<circle cx='{x(mark.at_s):.1f}' cy='{HEIGHT / 2}' r='5' fill='{COLOURS[mark.ok]}'>"
                          f"<title>{tip}</title></circle>")
        else:
            shapes.append(f"<line x1='{x(mark.at_s):.1f}' y1='8' x2='{x(mark.at_s):.1f}' y2='{HEIGHT - 8}' "
                          f"stroke='{COLOURS[mark.ok]}' stroke-dasharray='3'><title>{tip}</title></line>")
    shapes.append(f"<text x='{WIDTH - PAD}' y='{HEIGHT - 4}' font-size='10' text-anchor='end'>{span:.0f} s</text>")
    rows = "".join(f"<tr><td>{m.at_s:g}s</td><td>{escape(m.kind)}</td><td>{escape(m.detail)}</td></tr>"
                   for m in result.timeline)
    error = f"<p class='bad'>{escape(result.error)}</p>" if result.error else ""
    return (f"<h3>{escape(scorer)}: {escape(result.scenario)}</h3>{error}"
            f"<svg width='{WIDTH}' height='{HEIGHT}' role='img' aria-label='timeline'>{''.join(shapes)}</svg>"
            f"<table><tr><th>at</th><th>event</th><th>detail</th></tr>{rows}</table>")
