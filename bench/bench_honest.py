"""The cheater suite over the whole catalogue (CI runs a few faults in tests/integration/test_scenarios.py).

1. For every fault: inject it with its defaults, gather everything an examinee can read (tests/exposure.py:
   the examinee's MCP tools, log files, rendered configs, the stack's command lines, metric names), clear
   it; any fault name or marker found is a leak. A DynamoDB fault must not restart dynamodb-endpoint.
2. Every scenario (the control too) with the cheater (tests/cheater.py) as the evaluated agent: it never
   reads a symptom and tries every channel; it must score 0 detected, 0 localized, 0 mitigated.

Writes bench/out/honest.json; exit 0 when both hold.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

from sre_workshop.cli.main import main
from sre_workshop.faults.catalogue import catalogue
from sre_workshop.local.stack import Stack
from sre_workshop.scenarios.agent import AgentOptions, run_agent_many
from sre_workshop.scenarios.catalogue import scenarios
from sre_workshop.scenarios.runner import Options
from sre_workshop.settings import Settings

from common import ROOT, machine
from conftest import examinee_python

OFFSET = int(os.environ.get("SRE_WORKSHOP_PORT_OFFSET", "22400"))
CHEATER = f"{examinee_python()} {ROOT / 'tests' / 'cheater.py'}"


def say(message: str) -> None:
    print(f"  {message}", file=sys.stderr, flush=True)


def scan_all(stack: Stack, state: Path) -> dict[str, dict]:
    """Inject, scan and clear each fault; return fault -> {leaks, endpoint_restarted, seconds}."""
    import exposure

    os.environ[exposure.TOKEN_ENV] = token = f"bench-{os.getpid()}"
    found = {}
    for name in catalogue():
        started = time.monotonic()
        endpoint = stack.record("dynamodb-endpoint").pid
        if main(["--state-dir", str(state), "fault", "inject", name]) != 0:
            found[name] = {"error": "inject failed"}
            continue
        with tempfile.TemporaryDirectory() as folder:
            channels = exposure.collect(stack, Path(folder), token)
        main(["--state-dir", str(state), "fault", "clear", name])
        found[name] = {"leaks": {k: sorted(v) for k, v in channels.items() if v}, "channels": len(channels),
                       "endpoint_restarted": stack.record("dynamodb-endpoint").pid != endpoint,
                       "seconds": round(time.monotonic() - started, 1)}
        say(f"scan {name}: {found[name]}")
    return found


def cheat_all(stack: Stack) -> list[dict]:
    """Every scenario with the cheater; return each one's score."""
    import site

    os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), *site.getsitepackages()])
    _, results = run_agent_many(stack, list(scenarios().values()), CHEATER, Options(), say,
                                AgentOptions(env=("PYTHONPATH",)))
    rows = []
    for r in results:
        submission = r.agent.get("submission") or {}
        report = json.loads(submission.get("cause", "{}")) if submission.get("cause", "").startswith("{") else {}
        rows.append({"scenario": r.scenario, "detected": bool(r.detected_at), "localized": bool(r.localized),
                     "mitigated": bool(r.agent.get("mitigated")), "false_alarm": bool(r.agent.get("false_alarm")),
                     "submitted": r.agent.get("submitted"), "tool_calls": r.agent.get("tool_calls"),
                     "leaks": report.get("leaks", "no report"), "error": r.error})
    return rows


def main_bench() -> int:
    """Run both on a fresh stack; print and save the result."""
    os.environ["SRE_WORKSHOP_PORT_OFFSET"] = str(OFFSET)
    state = Path(tempfile.mkdtemp(prefix="bench-honest-"))
    assert main(["--state-dir", str(state), "up", "--detach"]) == 0
    assert main(["--state-dir", str(state), "fault", "clear", "--all"]) == 0  # the pre-baked leak, for its own scan
    started = time.monotonic()
    try:
        stack = Stack.open(Settings.from_env(state_dir=state))
        scans = scan_all(stack, state)
        cheats = cheat_all(stack)
    finally:
        main(["--state-dir", str(state), "fault", "clear", "--all"])
        main(["--state-dir", str(state), "down"])
    met = (not any(s.get("leaks") or s.get("error") or s.get("endpoint_restarted") for s in scans.values())
           and not any(c["detected"] or c["localized"] or c["mitigated"] or c["leaks"] or c["error"] for c in cheats))
    data = {"machine": machine(), "minutes": round((time.monotonic() - started) / 60, 1), "met": met,
            "scans": scans, "cheater": cheats}
    out = ROOT / "bench" / "out"
    out.mkdir(exist_ok=True)
    (out / "honest.json").write_text(json.dumps(data, indent=2, default=str))
    print(json.dumps(data, indent=2, default=str))
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main_bench())
