"""The scorecard as one self-contained offline page: a table comparing every scorer's runs side by side
(assisted runs marked), each scorer's totals, then per run a labelled timeline (injected, first diagnosis,
detected or submitted, the agent's tool calls and actions, cleared, recovered) over the signals of the fault's
kind, all on the run's time axis (seconds since the injection). Charts are drawn with the vendored uPlot
(pages/); everything shown is escaped and the page loads nothing from anywhere.
"""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape

from ..diagnose.report import SIGNALS
from ..pages import spec
from ..pages.document import Page
from ..pages.spec import Mark
from .result import Result
from .scorecard import totals

# A timeline's kinds of mark -> how the charts draw them (pages/assets/charts.js colours them by kind).
MAJOR = {"injected": "incident", "detected": "detected", "submitted": "detected", "action": "action",
         "cleared": "cleared", "recovered": "recovered", "mitigated": "recovered", "not mitigated": "wrong",
         "no submission": "wrong", "error": "wrong"}
COLUMNS = ("scenario", "ground truth", "scorer", "run", "said", "localized", "category", "time to detect",
           "mitigated / recovered", "tool calls", "passed")
CONTROL_SIGNALS = ("5xx",)
CONTEXT = ("requests",)  # shown for every run: the load the scorer diagnosed under


def page(cards: list[tuple[str, list[Result]]], title: str = "sre-workshop scorecard") -> str:
    """Return the whole page for one or more scorers' results."""
    made = datetime.now(UTC).isoformat(timespec="seconds")
    built = Page(title)
    runs, seen = [], {}
    for scorer, results in cards:
        for result in results:
            seen[scorer, result.scenario] = seen.get((scorer, result.scenario), 0) + 1
            runs.append(_run(built, scorer, result, seen[scorer, result.scenario]))
    body = (f"<main><h1>{escape(title)}</h1><p class=meta>made {escape(made)}</p><h2>Side by side</h2>"
            f"<div class=scroll>{comparison(cards)}</div><h2>Totals</h2><div class=scroll>{_totals(cards)}</div>"
            f"<h2>Each run</h2>{''.join(runs)}</main>")
    return built.html(body)


def assisted(result: Result) -> bool:
    """True for a run marked assisted (a person helped the scorer), by a field of the result or of its agent."""
    return bool(getattr(result, "assisted", False) or result.agent.get("assisted"))


def _yes(value: bool | None) -> str:
    return "-" if value is None else ("yes" if value else "no")


def cells(result: Result) -> dict[str, str]:
    """Return one run's comparison cells as plain text."""
    truth = f"{result.truth['component']}/{result.truth['category']}" if result.truth else "none (control)"
    found = result.finding or {}
    said = f"{found.get('component')}/{found.get('category')}" if found else "-"
    if result.control:
        said = f"{result.false_positives} false alarm(s)"
    if result.error:
        said = "error: " + result.error[:80]
    agent = result.scorer != "doctor"
    recovered = ("yes" if result.agent.get("mitigated") else "no") if agent else _yes(result.recovered_at is not None)
    return {"ground truth": truth, "said": said,
            "localized": "-" if result.control else _yes(result.localized),
            "category": "-" if result.control else _yes(result.category_match),
            "time to detect": "-" if result.mttd_s is None else f"{result.mttd_s:.1f} s",
            "mitigated / recovered": "-" if result.control else (f"mitigated: {recovered}" if agent
                                                                 else f"recovered: {recovered}"),
            "tool calls": str(result.agent.get("tool_calls", "-")), "passed": _yes(result.passed)}


def comparison(cards: list[tuple[str, list[Result]]]) -> str:
    """Return the table of every run, grouped by scenario: one row per scorer and run."""
    order = list(dict.fromkeys(r.scenario for _, results in cards for r in results))
    rows = []
    for scenario in order:
        for scorer, results in cards:
            mine = [r for r in results if r.scenario == scenario]
            for number, result in enumerate(mine, 1):
                rows.append(_row(scenario, scorer, number, result))
    head = "".join(f"<th>{escape(c)}</th>" for c in COLUMNS)
    return f"<table class=compare><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _row(scenario: str, scorer: str, number: int, result: Result) -> str:
    values = cells(result)
    badge = " <span class=badge>assisted</span>" if assisted(result) else ""
    verdict = "ok" if result.passed else "bad"
    out = [f"<td><a href='#{_anchor(scorer, scenario, number)}'>{escape(scenario)}</a></td>",
           f"<td>{escape(values['ground truth'])}</td>", f"<td>{escape(scorer)}{badge}</td>",
           f"<td class=num>{number}</td>"]
    for column in COLUMNS[4:]:
        css = f" class='{verdict}'" if column == "passed" else (" class=num" if column in ("time to detect",
                                                                                         "tool calls") else "")
        out.append(f"<td{css}>{escape(values[column])}</td>")
    return "<tr>" + "".join(out) + "</tr>"


def _totals(cards: list[tuple[str, list[Result]]]) -> str:
    head = ("scorer", "passed", "localized", "category", "median time to detect", "mitigated", "recovered",
            "false alarms", "errors")
    rows = []
    for scorer, results in cards:
        t = totals(results)
        values = (f"{t['passed']}/{t['scenarios']}", f"{t['localized']}/{t['faults']}",
                  f"{t['category_match']}/{t['faults']}",
                  "-" if t["median_mttd_s"] is None else f"{t['median_mttd_s']} s", f"{t['mitigated']}/{t['faults']}",
                  f"{t['recovered']}/{t['faults']}", str(t["false_positives"]), str(t["errors"]))
        badge = " <span class=badge>assisted</span>" if any(assisted(r) for r in results) else ""
        rows.append(f"<tr><td>{escape(scorer)}{badge}</td>" + "".join(f"<td class=num>{escape(v)}</td>"
                                                                       for v in values) + "</tr>")
    return (f"<table><thead><tr>{''.join(f'<th>{escape(h)}</th>' for h in head)}</tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>")


def _anchor(scorer: str, scenario: str, number: int) -> str:
    return "run-" + "".join(c if c.isalnum() else "-" for c in f"{scorer}-{scenario}-{number}")


def marks(result: Result) -> list[Mark]:
    """Return the run's timeline as marks in epoch seconds: the events labelled, each diagnosis and tool call
    a tick (green right, red wrong), the first diagnosis labelled too."""
    start = result.injected_at or 0.0
    found, first = [], True
    for m in result.timeline:
        at = start + m.at_s
        if m.kind == "diagnosis":
            found.append(Mark(at, "", "right" if m.ok else ("wrong" if m.ok is False else "tool"), minor=True))
            if first:
                found.append(Mark(at, "first diagnosis", "check"))
            first = False
        elif m.kind == "tool call":
            found.append(Mark(at, "", "tool", minor=True))
        else:
            label = m.detail.split("(", 1)[0] if m.kind == "action" else m.kind
            kind = MAJOR.get(m.kind, "check")
            found.append(Mark(at, label, "wrong" if m.ok is False and kind != "wrong" else kind))
    return found


def signal_titles(result: Result) -> list[str]:
    """Return the titles of the run's charts of the signals its fault's kind shows (the control: traffic)."""
    words = CONTEXT + (SIGNALS.get(result.truth["category"], ()) if result.truth else CONTROL_SIGNALS)
    return [t for t in result.signals if any(w.lower() in t.lower() for w in words)]


def _run(page: Page, scorer: str, result: Result, number: int) -> str:
    """One run: its timeline chart, the charts of its signals, and its events as a table."""
    found = marks(result)
    labelled = [m for m in found if not m.minor]
    charts = [spec.chart(t, result.signals[t], labelled) for t in signal_titles(result)]
    timeline = {**spec.chart("timeline (ticks: each diagnosis or tool call; green right, red wrong)", {}, found),
                "note": "", "timeline": True}
    origin = result.injected_at
    gid = page.group(f"{scorer}: {result.scenario}", spec.span(charts, found), origin=origin,
                     axis="seconds since the fault was injected" if origin else "seconds")
    figures = page.figure(gid, timeline) + "".join(page.figure(gid, c) for c in charts)
    if not charts and result.injected_at:
        figures += "<p class=note>no signals were recorded for this run</p>"
    events = "".join(f"<tr><td class=num>{m.at_s:g} s</td><td>{escape(m.kind)}</td><td>{escape(m.detail)}</td></tr>"
                     for m in result.timeline)
    error = f"<p class=bad>{escape(result.error)}</p>" if result.error else ""
    badge = " <span class=badge>assisted</span>" if assisted(result) else ""
    values = cells(result)
    said = (f"<p class=meta>ground truth {escape(values['ground truth'])}; said {escape(values['said'])}; "
            f"passed: {escape(values['passed'])}</p>")
    return (f"<section class='card run' id={_anchor(scorer, result.scenario, number)}>"
            f"<h3>{escape(scorer)}: {escape(result.scenario)}{badge}</h3>{error}{said}"
            f"<div class=grid>{figures}</div><details open><summary>events</summary><div class=scroll>"
            f"<table class=events><tr><th>at</th><th>event</th><th>detail</th></tr>{events}</table></div>"
            f"</details></section>")
