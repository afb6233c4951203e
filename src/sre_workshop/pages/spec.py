"""Chart specs: series and the incident's marks turned into plain data that assets/charts.js draws with uPlot.

A spec is JSON-able and needs no browser to test:
    {"title": "5xx per second", "unit": "/s", "range": [0, null], "note": "",
     "series": [{"label": "app (nginx)", "colour": "#0072B2", "width": 3.5, "dash": []}, ...],
     "data": [[t, ...], [v or null, ...], ...],          # uPlot's aligned columns: the times, then one per series
     "marks": [{"at": t, "label": "injected", "kind": "incident", "minor": false}, ...]}
A chart without a single reading has "series": [] and says why in "note": it never draws invented values.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

Series = list[tuple[float, float]]
# Okabe-Ito: told apart with every common colour-vision deficiency, and dark enough on white and in print.
COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#8C564B")
DASHES = ([], [10, 4], [3, 3], [14, 4, 3, 4])
NO_DATA = "no data in the window"


@dataclass(frozen=True)
class Mark:
    """An event on the page's time axis: when, what (the label drawn), its kind (the colour) and whether it is
    minor (a tick without a label, such as each diagnosis or tool call)."""

    at: float
    label: str
    kind: str
    minor: bool = False


def unit_of(title: str) -> str:
    """Return the unit a chart's title names: "latency (ms)" -> "ms", "5xx per second" -> "/s"."""
    found = re.search(r"\(([^()]*)\)\s*$", title)
    if found:
        return found.group(1)
    return "/s" if "per second" in title else ""


def chart(title: str, series: dict[str, Series], marks: Iterable[Mark] = (), unit: str | None = None,
          note: str = "") -> dict[str, Any]:
    """Return the spec of one line chart of `series` (name -> [(time, value)]) with `marks` drawn on it."""
    unit = unit_of(title) if unit is None else unit
    named = sorted((name, points) for name, points in series.items() if points)
    columns = align([points for _, points in named])
    styles = [style(index, len(named)) for index in range(len(named))]
    labels = distinct_labels([name for name, _ in named], columns[1:])
    top = max((v for column in columns[1:] for v in column if v is not None), default=0.0)
    return {"title": title, "unit": unit, "note": note or ("" if named else NO_DATA),
            "range": [0, max(100.0, top)] if unit.startswith("%") else [0, None],
            "series": [{"label": label, **s} for label, s in zip(labels, styles, strict=True)],
            "data": columns, "marks": [asdict(m) for m in sorted(marks, key=lambda m: m.at)]}


def align(all_points: list[Series]) -> list[list[float | None]]:
    """Return uPlot's columns: the union of the times, then each series' value at each time (None: no reading)."""
    times = sorted({t for points in all_points for t, _ in points})
    columns: list[list[float | None]] = [list(times)]
    for points in all_points:
        at = {t: v for t, v in points if math.isfinite(v)}
        columns.append([at.get(t) for t in times])
    return columns


def style(index: int, count: int) -> dict[str, Any]:
    """Return how the `index`th of `count` series is drawn: the first ones widest (drawn first, beneath), each
    with its own colour and dash, so that series with equal values still show one under the other."""
    return {"colour": COLOURS[index % len(COLOURS)], "dash": DASHES[index % len(DASHES)],
            "width": round(1.5 + 1.5 * min(count - 1 - index, 3), 1)}


def distinct_labels(names: list[str], columns: list[list[float | None]]) -> list[str]:
    """Return the legend's labels, each saying when its series is all 0 or has the very values of an earlier
    one (drawn on top of it)."""
    labels = []
    for index, (name, column) in enumerate(zip(names, columns, strict=True)):
        same = next((names[j] for j in range(index) if columns[j] == column), None)
        if same is not None:
            name += f" (same values as {same})"
        elif all(v in (None, 0) for v in column):
            name += " (all 0)"
        labels.append(name)
    return labels


def span(charts: Iterable[dict[str, Any]], marks: Iterable[Mark] = ()) -> list[float]:
    """Return the page's shared time axis [first, last] over every chart's readings and every mark."""
    times = [t for c in charts for t in (c["data"][0] if c["data"] else [])] + [m.at for m in marks]
    if not times:
        return [0.0, 1.0]
    first, last = min(times), max(times)
    return [first, last if last > first else first + 1.0]
