"""One self-contained offline page: its HTML, the vendored uPlot and our charts.js inlined, and the charts'
specs as JSON that the script reads. A Content-Security-Policy forbids the page to load anything at all.

Every text from the system reaches the page escaped: in HTML through html.escape, in the JSON with <, > and &
as \\u escapes (so no string can close the script element), and uPlot writes labels with textContent.
"""

from __future__ import annotations

import json
from html import escape
from importlib.resources import files
from typing import Any

ASSETS = files(__package__) / "assets"
CSP = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:; "
       "base-uri 'none'; form-action 'none'")


def asset(name: str) -> str:
    """Return a vendored or own asset's text."""
    return (ASSETS / name).read_text(encoding="utf-8")


def json_script(data: Any) -> str:
    """Return `data` as JSON that is safe inside a <script> element."""
    text = json.dumps(data, separators=(",", ":"), allow_nan=False)
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


class Page:
    """A page being built: its figures, and the groups of charts that share a time axis and marks."""

    def __init__(self, title: str) -> None:
        self.title = title
        self.groups: dict[str, dict[str, Any]] = {}
        self.charts: dict[str, dict[str, Any]] = {}

    def group(self, name: str, span: list[float], origin: float | None = None, axis: str = "time (UTC)") -> str:
        """Declare charts sharing one time axis: `span` [first, last] in epoch seconds; with `origin`, the axis
        counts seconds from it. Return the group's id."""
        gid = f"g{len(self.groups) + 1}"
        self.groups[gid] = {"name": name, "span": span, "origin": origin, "axis": axis}
        return gid

    def figure(self, gid: str, spec: dict[str, Any], height: int = 220) -> str:
        """Return the HTML of one chart of group `gid` (its title and note as text, the plot drawn by script)."""
        cid = f"c{len(self.charts) + 1}"
        self.charts[cid] = {**spec, "group": gid, "height": height}
        note = f"<p class=note>{escape(spec['note'])}</p>" if spec.get("note") else ""
        kind = " timeline" if spec.get("timeline") else ""
        return (f"<figure class='chart{kind}' id={cid} data-title='{escape(spec['title'])}'>"
                f"<figcaption>{escape(spec['title'])}</figcaption>{note}<div class=plot></div></figure>")

    def html(self, body: str) -> str:
        """Return the whole page around `body`."""
        data = json_script({"groups": self.groups, "charts": self.charts})
        return ("<!doctype html><html lang=en><head><meta charset=utf-8>"
                f"<meta http-equiv=Content-Security-Policy content=\"{CSP}\">"
                "<meta name=viewport content='width=device-width, initial-scale=1'>"
                f"<title>{escape(self.title)}</title><style>{asset('uPlot.min.css')}\n{asset('pages.css')}</style>"
                f"</head><body>{body}<script type=application/json id=chart-data>{data}</script>"
                f"<script>{asset('uPlot.iife.min.js')}</script><script>{asset('charts.js')}</script></body></html>")
