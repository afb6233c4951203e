"""The reference agent: find the root cause through MCP, repair it as an operator would, submit.

    python -m sre_workshop.agents.reference [URL]      (URL defaults to $SRE_WORKSHOP_MCP_URL)

It uses only the MCP tools it is offered. Unassisted (no `diagnose`: the default of an evaluated run) it
reads the raw signals and applies its own rules (agents/rules.py) until the same diagnosis shows twice in a
row, then takes the rule's repair: `service`, `run_command` on an instance, `aws_call` with its own IAM
identity. Assisted (`--assist` offers doctor) it calls `diagnose` until the same top finding shows twice,
then the action the finding's remediation names when the tools offer it (`service start|restart X`). With
no diagnosis within its patience it reports nothing wrong. Then `submit_diagnosis`; exit 0 once submitted.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
import time
from typing import Any

from mcp import Client

from . import rules

URL_ENV = "SRE_WORKSHOP_MCP_URL"
LIMIT_ENV = "SRE_WORKSHOP_TIME_LIMIT_S"
INTERVAL_S = 2.0
CONFIRMATIONS = 2  # the same top finding this many times in a row
ACTIONS = ((re.compile(r"`sre-workshop service (?:start|restart) ([\w-]+)`"), "restart_service"),)


def action_for(remediation: str) -> tuple[str, str] | None:
    """Return (tool, name) for the first remediation step the MCP tools can take, or None."""
    found = [(m.start(), tool, m.group(1)) for pattern, tool in ACTIONS for m in pattern.finditer(remediation)]
    return min(found)[1:] if found else None


async def call(client: Client, tool: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
    """Call a tool; return its structured answer (an error's dict too)."""
    result = await client.call_tool(tool, arguments or {})
    if result.structured_content is not None:
        return result.structured_content
    return json.loads(result.content[0].text)


async def confirmed_finding(client: Client, patience_s: float) -> dict[str, Any] | None:
    """Diagnose until one top finding repeats CONFIRMATIONS times; None if healthy through the patience."""
    deadline, last, streak = time.monotonic() + patience_s, None, 0
    while time.monotonic() < deadline:
        report = await call(client, "diagnose")
        top = report["findings"][0] if report.get("findings") else None
        key = (top["component"], top["category"]) if top else None
        streak = streak + 1 if key == last else 1
        last = key
        if top and streak >= CONFIRMATIONS:
            return top
        await asyncio.sleep(INTERVAL_S)
    return None


async def by_rules(client: Client, patience_s: float) -> dict[str, Any]:
    """Diagnose from the raw signals with the rules, repair, submit; return what was submitted."""
    async def ask(tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
        return await call(client, tool, arguments)

    deadline, last, streak, found = time.monotonic() + patience_s, None, 0, None
    while time.monotonic() < deadline:
        found = rules.diagnose(await rules.observe(ask))
        key = found[:2] if found else None
        streak = streak + 1 if key == last else 1
        last = key
        if found and streak >= CONFIRMATIONS:
            break
        found = None
        await asyncio.sleep(INTERVAL_S)
    if found is None:
        return await call(client, "submit_diagnosis", {"component": "none", "category": "none",
                                                       "cause": "every signal looked healthy", "actions": []})
    component, category, why = found
    try:
        actions = await rules.repair(ask, component, category)
    except Exception as exc:  # a repair that failed is said in the submission, not a crash
        actions = [f"repair failed: {exc}"]
    return await call(client, "submit_diagnosis", {"component": component, "category": category, "cause": why,
                                                   "actions": actions})


async def investigate(url: str, patience_s: float) -> dict[str, Any]:
    """Diagnose, remediate, submit; return what was submitted."""
    async with Client(url) as client:
        offered = {tool.name for tool in (await client.list_tools()).tools}
        if "diagnose" not in offered:
            return await by_rules(client, patience_s)
        top = await confirmed_finding(client, patience_s)
        if top is None:
            return await call(client, "submit_diagnosis", {"component": "none", "category": "none",
                                                           "cause": "every diagnosis was healthy", "actions": []})
        actions = []
        step = action_for(top["remediation"])
        if step:
            answer = await call(client, step[0], {"name": step[1]})
            actions.append(f"{step[0]}({step[1]}): " + (answer.get("message", "failed") if "error" in answer else "ok"))
        return await call(client, "submit_diagnosis", {"component": top["component"], "category": top["category"],
                                                       "cause": top["summary"], "actions": actions})


def main(argv: list[str] | None = None) -> int:
    """Run the agent against the URL given (argument or environment)."""
    args = sys.argv[1:] if argv is None else argv
    url = args[-1] if args else os.environ.get(URL_ENV)
    if not url:
        print(f"usage: python -m sre_workshop.agents.reference URL (or set {URL_ENV})", file=sys.stderr)
        return 2
    patience = min(60.0, float(os.environ.get(LIMIT_ENV, "60")) * 0.6)  # leave time to act and submit
    submitted = asyncio.run(investigate(url, patience))
    print(json.dumps(submitted))
    return 0 if "error" not in submitted else 1


if __name__ == "__main__":
    sys.exit(main())
