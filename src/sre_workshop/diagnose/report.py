"""doctor's report as one self-contained offline HTML page: the verdict, each finding with charts of the
signals it rests on, then every signal of the window; all charts share one time axis, with the first symptom
and doctor's check marked on each. Charts are drawn with the vendored uPlot (pages/); every text from the
system is escaped.

The first symptom is read from the charts themselves (the first 5xx, DynamoDB error or failed health check of
the window), never from the incident ledger: doctor reports what it sees.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from html import escape
from typing import Any

from ..pages import spec
from ..pages.document import Page
from ..pages.spec import Mark
from .model import Finding, Observations, Report
from .rules import LEAK_CAP_MB, recent_trend

Series = list[tuple[float, float]]
Charts = dict[str, dict[str, Series]]
# The signals a finding of each category rests on: words of the charts' titles.
SIGNALS = {"cpu": ("CPU",), "memory": ("leak size", "RSS"), "latency": ("latency", "response time"),
           "errors": ("5xx",), "health-check": ("health", "5xx"), "crash": ("health", "5xx", "requests"),
           "config": ("5xx", "DynamoDB"), "throttling": ("DynamoDB",), "permissions": ("DynamoDB", "5xx"),
           "network": ("5xx", "latency", "response time")}
# What a signal's chart is called when no series of it exists.
MISSING = {"CPU": "CPU (%)", "health": "health checks answered OK (%)", "latency": "latency per hop (ms)"}
SYMPTOMS = ("5xx", "DynamoDB", "throttles")  # charts where any reading above 0 is a symptom
CPU_READINGS = "CPU at doctor's check"
NOTES = {CPU_READINGS: "one sample at doctor's check (the local stack keeps no CPU history), each process as a "
                      "share of all the host's cores, as the host total is"}


def render(report: Report, charts: Charts) -> str:
    """Return the whole page."""
    obs = report.observations
    charts = {**charts, **_cpu_readings(obs)}
    charts.update(_fits(obs, charts))
    marks = _marks(report, charts)
    specs = {title: spec.chart(title, series, marks, note=_note(title, series)) for title, series in charts.items()}
    page = Page("sre-workshop doctor")
    gid = page.group("the window", spec.span(specs.values(), marks))
    shown: set[str] = set()
    findings = "".join(_finding(page, gid, f, specs, marks, shown) for f in report.findings)
    rest = "".join(page.figure(gid, s) for title, s in specs.items() if title not in shown)
    body = (f"<main><h1>sre-workshop doctor</h1><p class=meta>checked at {escape(report.checked_at)} "
            f"({escape(obs.world)}), in {report.seconds:.1f}s; times in UTC</p>{_verdict(report)}"
            f"{_first(charts, report)}{findings}"
            f"{_unknown(obs)}{_context(report)}<h2>All signals of the window</h2><div class=grid>{rest}</div></main>")
    return page.html(body)


def _note(title: str, series: dict[str, Series]) -> str:
    """Return what a chart says besides its lines: for a single sample, its figures too."""
    note = next((note for start, note in NOTES.items() if title.startswith(start)), "")
    if note and all(len(points) == 1 for points in series.values()):
        note += ": " + ", ".join(f"{name} {points[0][1]:g}%" for name, points in series.items())
    return note


def _verdict(report: Report) -> str:
    unknown = report.observations.unknown
    if report.healthy:
        return "<p class=ok>healthy</p>"
    if report.findings:
        return f"<p class=bad>{len(report.findings)} finding(s)</p>"
    # as the CLI says it: an unread signal is not a healthy one
    return f"<p class=bad>no finding, but {len(unknown)} signal(s) could not be read: not known to be healthy</p>"


def _first(charts: Charts, report: Report) -> str:
    first = first_symptom(charts) if report.findings else None
    if first is None:
        return ""
    at = datetime.fromtimestamp(first[0], UTC).strftime("%H:%M:%S")
    return f"<p>first symptom in the window (marked on every chart): {at} UTC, {escape(first[1])}</p>"


def _unknown(obs: Observations) -> str:
    if not obs.unknown:
        return ""
    items = "".join(f"<li>{escape(what)}: {escape(why)}</li>" for what, why in obs.unknown.items())
    return f"<h2>Not read</h2><ul>{items}</ul>"


def _context(report: Report) -> str:
    if not report.context():
        return ""
    items = "".join(f"<li>{escape(line)}</li>" for line in report.context())
    return f"<h2>The machine, outside the stack (context)</h2><ul>{items}</ul>"


def _finding(page: Page, gid: str, finding: Finding, specs: dict[str, dict[str, Any]], marks: list[Mark],
             shown: set[str]) -> str:
    """One finding: what, its evidence, the fix, and a chart of each signal it rests on."""
    figures = []
    for title in signals_of(finding, specs):
        if title not in specs:
            specs[title] = spec.chart(title, {}, marks, note="no data: doctor has no series of this signal here")
        shown.add(title)
        figures.append(page.figure(gid, specs[title]))
    evidence = "".join(f"<li>{escape(e)}</li>" for e in finding.evidence)
    return (f"<section class='card finding {escape(finding.severity)}'><h3>[{escape(finding.severity)}] "
            f"{escape(finding.component)} ({escape(finding.layer)}) / {escape(finding.category)}: "
            f"{escape(finding.summary)}</h3><ul class=evidence>{evidence}</ul><p>fix: {escape(finding.remediation)}"
            f"</p><div class=grid>{''.join(figures)}</div></section>")


def signals_of(finding: Finding, charts: dict[str, Any]) -> list[str]:
    """Return the titles of the charts a finding rests on (a missing signal by the title it would have)."""
    titles = []
    for word in SIGNALS.get(finding.category, ()):
        found = [t for t in charts if word.lower() in t.lower()]
        titles += found or ([MISSING[word]] if word in MISSING else [])
    return list(dict.fromkeys(titles))


def _epoch(iso: str) -> float | None:
    try:
        return datetime.fromisoformat(iso).timestamp()
    except ValueError:
        return None


def _marks(report: Report, charts: Charts) -> list[Mark]:
    """doctor's check, and (when something is found) the first symptom its charts show."""
    marks = []
    checked = _epoch(report.checked_at)
    if checked is not None:
        marks.append(Mark(checked, "doctor's check", "check"))
    first = first_symptom(charts) if report.findings else None
    if first is not None:
        marks.append(Mark(first[0], "first symptom", "incident"))
    return marks


def first_symptom(charts: Charts) -> tuple[float, str] | None:
    """Return when and where the window shows its first symptom: a 5xx or DynamoDB error above 0, or a
    health check not answered OK."""
    found = []
    for title, series in charts.items():
        healthy = 100.0 if "health" in title else 0.0
        if "health" not in title and not any(word in title for word in SYMPTOMS):
            continue
        for name, points in series.items():
            bad = [t for t, v in points if v != healthy]
            if bad:
                found.append((bad[0], f"{name} ({title})"))
    return min(found) if found else None


def _cpu_readings(obs: Observations) -> Charts:
    """Locally: the CPU doctor sampled at its check, all in one unit (% of the host's cores) so that the
    components add up to the host total, and the busy processes outside the stack with what they wanted (on a
    host with cores to spare, what they used); there is no CPU history locally (no chart is made of one)."""
    checked, cores = _epoch(obs.checked_at), os.cpu_count() or 1
    if obs.world != "local" or checked is None or not obs.components:
        return {}
    readings = {"host total": [(checked, obs.host_cpu_percent)]}
    for pid, name, cpu in obs.top_processes:
        readings[f"pid {pid} {name[:40]} (outside the stack, wanted)"] = [(checked, round(cpu / cores, 1))]
    for state in obs.components.values():
        if state.state == "running":
            readings[state.name] = [(checked, round(state.cpu_percent / cores, 1))]
    return {f"{CPU_READINGS}, {cores} cores (% of host)": readings}


def _fits(obs: Observations, charts: Charts) -> Charts:
    """The leak's chart with the fitted trend of each worker over the readings the rule used, labelled with
    its slope and the time to the cap."""
    series: dict[str, Series] = {}
    for worker, points in obs.memory.items():
        readings = [(t, leak) for t, leak, _ in points]
        trend = recent_trend(readings)
        used = readings[-trend.points:] if trend.points >= 2 else []
        if not used:
            continue
        series[worker] = readings
        mean_t, mean_v = sum(t for t, _ in used) / len(used), sum(v for _, v in used) / len(used)
        per_s = trend.slope_mb_per_min / 60
        to_cap = trend.minutes_to(LEAK_CAP_MB)
        cap = f", the {LEAK_CAP_MB:.0f} MB cap in {to_cap:.0f} min" if to_cap else ""
        series[f"{worker} fit: {trend.slope_mb_per_min:+.1f} MB/min{cap}"] = [
            (t, round(mean_v + per_s * (t - mean_t), 2)) for t in (used[0][0], used[-1][0])]
    return {"sre-app leak size per worker, with the fitted trend (MB)": series} if series else {}
