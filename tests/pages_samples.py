"""Sample reports and results for the pages' tests: a doctor's report and scorecards with signals, built in
process (no stack), with hostile text where the system's text goes."""

from __future__ import annotations

from sre_workshop.diagnose.model import ComponentState, Finding, Observations, Report
from sre_workshop.scenarios.result import Mark, Result

T0 = 1_764_000_000.0  # a whole minute (UTC)
HOSTILE = "<script>alert(1)</script>"


def ramp(start: float, step: float, count: int, every: float = 10.0, at: float = T0) -> list[tuple[float, float]]:
    """Return `count` readings every `every` seconds from `at`, rising by `step` from `start`."""
    return [(at + every * i, round(start + step * i, 2)) for i in range(count)]


def doctor_charts() -> dict[str, dict[str, list[tuple[float, float]]]]:
    """Return a window of 10 minutes: 5xx from minute 6, two series with equal values, a big latency."""
    flat = ramp(2.0, 0.0, 60)
    errors = [(t, 0.0 if t < T0 + 360 else 1.5) for t, _ in flat]
    return {"requests per second": {"app (nginx)": flat, "crm-app": list(flat)},
            "5xx per second by hop": {"nginx": errors, "sre-app": list(errors), f"crm-app {HOSTILE}": ramp(0, 0, 60)},
            "latency p95 per hop (ms)": {"nginx": [(t, 1510.0 if t >= T0 + 360 else 12.0) for t, _ in flat]},
            "DynamoDB errors per second by code and table": {},
            "sre-app leak size per worker (MB)": {"pid 41": ramp(1.0, 0.5, 60)}}


def doctor_report() -> Report:
    """Return a report with a CPU, a memory and an errors finding, checked at the window's end."""
    checked = "2025-11-24T16:10:00+00:00"
    obs = Observations(checked, "local", host_cpu_percent=96.0, top_processes=[(999, f"burn {HOSTILE}", 180.0)],
                       components={"sre-app": ComponentState("sre-app", "running", 41, cpu_percent=12.0)},
                       memory={"pid 41": [(t, v, 60 + v) for t, v in ramp(1.0, 0.5, 30, at=T0 + 300)]},
                       unknown={f"nginx {HOSTILE}": "no answer"})
    findings = [Finding("sre-app", "cpu", "major", f"the host's CPU is saturated {HOSTILE}",
                        ["host CPU 96%", f"pid 999 'burn {HOSTILE}': wants 180% of a core"], "kill it"),
                Finding("sre-app", "memory", "minor", "sre-app's workers leak memory", ["pid 41: +3 MB/min"],
                        "restart"),
                Finding("nginx", "errors", "major", "public-alb :80 / fails", ["nginx /: 502"], "look")]
    return Report(checked, findings, obs, 1.2)


def _timeline(result: Result, marks: list[tuple[float, str, str, bool | None]]) -> None:
    result.timeline = [Mark(at, kind, detail, ok) for at, kind, detail, ok in marks]


def doctor_result() -> Result:
    """Return doctor's run of latency: injected at T0 + 120, found at +20 s, recovered."""
    result = Result("latency", "doctor", {"component": "sre-app", "category": "latency"}, injected_at=T0 + 120,
                    detected_at=T0 + 140, mttd_s=20.0, localized=True, category_match=True, recovered_at=T0 + 170,
                    diagnoses=5, finding={"component": "sre-app", "category": "latency"})
    _timeline(result, [(0, "injected", "latency 2000 ms", None), (4, "diagnosis", "healthy", False),
                       (9, "diagnosis", f"nginx/errors {HOSTILE}", False), (14, "diagnosis", "healthy", False),
                       (20, "diagnosis", "sre-app/latency", True), (20, "detected", "after 20s", True),
                       (21, "cleared", "fault clear by the tool", None), (50, "recovered", "steady for 5s", True)])
    result.signals = {"latency p95 per hop (ms)": {"sre-app": [(t, 2000.0 if T0 + 120 <= t < T0 + 141 else 8.0)
                                                               for t, _ in ramp(0, 0, 24, at=T0 + 60)]},
                      "requests per second": {"app (nginx)": ramp(3, 0, 24, at=T0 + 60)}}
    return result


def agent_result(assisted: bool) -> Result:
    """Return an agent's run of latency, with tool calls and a restart."""
    result = Result("latency", "agent:ref", {"component": "sre-app", "category": "latency"}, injected_at=T0 + 120,
                    detected_at=T0 + 150, mttd_s=30.0, localized=True, category_match=False, recovered_at=T0 + 190,
                    finding={"component": "sre-app", "category": "cpu"},
                    agent={"submitted": True, "tool_calls": 6, "mitigated": True, "assisted": assisted})
    _timeline(result, [(0, "injected", "the agent is not told which", None), (3, "tool call", "get_logs()", None),
                       (6, "tool call", "diagnose()", None), (12, "tool call", "get_metrics()", None),
                       (25, "action", "restart_service(name=sre-app)", None), (30, "submitted", "sre-app/cpu", True),
                       (40, "mitigated", "after the agent's actions", True), (70, "recovered", "after clear", True)])
    result.signals = doctor_result().signals
    return result


def control_result() -> Result:
    """Return doctor's control run with one false alarm."""
    result = Result("control", "doctor", None, injected_at=T0, diagnoses=3, false_positives=1)
    _timeline(result, [(0, "injected", "nothing", None), (5, "diagnosis", "healthy", True),
                       (10, "diagnosis", f"nginx/errors {HOSTILE}", False)])
    return result


def cards() -> list[tuple[str, list[Result]]]:
    """Return doctor's and an assisted agent's scorecards."""
    return [("doctor", [doctor_result(), control_result()]), ("agent:ref", [agent_result(True)])]
