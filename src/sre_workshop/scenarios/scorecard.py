"""The scorecard: totals over results, a table for the terminal, and the `--json` shape.

`scenario run --json`: {"scorecards": [{"scorer": "doctor", "results": [Result.to_dict()...], "totals": {...}},
...one more per agent]}
"""

from __future__ import annotations

import statistics
from typing import Any

from .result import Result
from .variants import groups

# Categories whose symptom builds up (a leak, a share of errors, slowness, load): detected from a trend over
# readings. The others are hard-down: a process gone or frozen, a refusal, a missing resource, a target out.
TRENDS = frozenset({"memory", "cpu", "latency", "errors", "throttling"})


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 2) if values else None


def totals(results: list[Result]) -> dict[str, Any]:
    """Return the counts over a scorer's results: detected, localized, category, recovered, false positives."""
    faults = [r for r in results if not r.control]
    mttds = [r.mttd_s for r in faults if r.mttd_s is not None]
    trend = [r.mttd_s for r in faults if r.mttd_s is not None and r.truth and r.truth["category"] in TRENDS]
    hard = [r.mttd_s for r in faults if r.mttd_s is not None and r.truth and r.truth["category"] not in TRENDS]
    return {"scenarios": len(results), "passed": sum(r.passed for r in results), "faults": len(faults),
            "detected": sum(r.detected for r in faults), "localized": sum(r.localized for r in faults),
            "category_match": sum(r.category_match for r in faults),
            "recovered": sum(r.recovered_at is not None for r in faults),
            "mitigated": sum(bool(r.agent.get("mitigated")) for r in faults),
            "median_mttd_s": _median(mttds), "median_mttd_hard_down_s": _median(hard),
            "median_mttd_trend_s": _median(trend),
            "false_positives": sum(r.false_positives for r in results if r.control),
            "errors": sum(r.error is not None for r in results)}


def card(scorer: str, results: list[Result]) -> dict[str, Any]:
    """Return one scorer's scorecard as plain data."""
    return {"scorer": scorer, "results": [r.to_dict() for r in results], "totals": totals(results),
            "spread": spread(results)}


def spread(results: list[Result]) -> list[dict[str, Any]]:
    """Return the results grouped by scenario (a scenario's variants together), with the spread of each group:
    runs, detected, localized, MTTD min/median/max, and each run's parameters."""
    found = []
    for name, indexes in groups([r.scenario for r in results]).items():
        members = [results[i] for i in indexes]
        mttds = sorted(r.mttd_s for r in members if r.mttd_s is not None)
        found.append({"scenario": name, "runs": len(members), "passed": sum(r.passed for r in members),
                      "detected": sum(r.detected for r in members), "localized": sum(r.localized for r in members),
                      "mttd_s": {"min": mttds[0], "median": _median(mttds), "max": mttds[-1]}
                      if mttds else None,
                      "params": [r.params for r in members]})
    return found


def spread_table(results: list[Result]) -> str:
    """Return the spread of each scenario that ran more than once (variants), one line each."""
    lines = [["scenario", "runs", "passed", "localized", "MTTD min / median / max", "parameters drawn"]]
    for group in spread(results):
        if group["runs"] < 2:
            continue
        mttd = group["mttd_s"]
        times = f"{mttd['min']:g} / {mttd['median']:g} / {mttd['max']:g} s" if mttd else "-"
        drawn = "; ".join(",".join(p) for p in group["params"])
        lines.append([group["scenario"], str(group["runs"]), str(group["passed"]), str(group["localized"]), times,
                      drawn[:100]])
    return _columns(lines) if len(lines) > 1 else ""


def _yes(value: bool | None) -> str:
    return "-" if value is None else ("yes" if value else "NO")


def row(result: Result) -> list[str]:
    """Return one result's cells: detected (time), localized, category, recovered or mitigated, alarms."""
    if result.error:
        return ["error", "", "", "", result.error[:60]]
    if result.control and result.scorer != "doctor":
        said = "no submission" if not result.agent.get("submitted") else (
            "FALSE ALARM" if result.false_positives else "no false alarm")
        return ["-", "-", "-", "-", f"{said} ({result.agent.get('tool_calls', 0)} calls)"]
    if result.control:
        return ["-", "-", "-", "-", f"{result.false_positives} false positive(s) in {result.diagnoses}"]
    detected = f"{result.mttd_s:.1f}s" if result.detected else "NO"
    if result.scorer == "doctor":
        recovered = _yes(result.recovered_at is not None)
    else:
        recovered = "mitigated" if result.agent.get("mitigated") else "not mitigated"
    calls = f"{result.agent['tool_calls']} calls" if "tool_calls" in result.agent else ""
    return [detected, _yes(result.localized), _yes(result.category_match), recovered, calls]


def table(cards: list[tuple[str, list[Result]]]) -> str:
    """Return the scorecards side by side: one line per scenario, a block of columns per scorer."""
    names = [r.scenario for r in cards[0][1]]
    truths = {r.scenario: (f"{r.truth['component']}/{r.truth['category']}" if r.truth else "none")
              for r in cards[0][1]}
    header = ["scenario", "ground truth"]
    for scorer, _ in cards:
        header += [f"{scorer}: detected", "localized", "category", "recovered", "notes"]
    lines = [header]
    for index, name in enumerate(names):
        cells = [name, truths[name]]
        for _, results in cards:
            cells += row(results[index])
        lines.append(cells)
    for scorer, results in cards:
        t = totals(results)
        lines.append([f"{scorer}: total", f"{t['passed']}/{t['scenarios']} passed",
                      f"localized {t['localized']}/{t['faults']}", f"category {t['category_match']}/{t['faults']}",
                      f"median MTTD {t['median_mttd_s']}s (hard-down {t['median_mttd_hard_down_s']}s, trends "
                      f"{t['median_mttd_trend_s']}s)", f"false positives {t['false_positives']}"])
    return _columns(lines)


def _columns(lines: list[list[str]]) -> str:
    width = max(len(line) for line in lines)
    lines = [line + [""] * (width - len(line)) for line in lines]
    sizes = [max(len(line[i]) for line in lines) for i in range(width)]
    return "\n".join("  ".join(cell.ljust(size) for cell, size in zip(line, sizes, strict=True)).rstrip()
                     for line in lines)
