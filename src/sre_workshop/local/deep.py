"""Whether each component does its job, not only whether it is up: the checks behind an honest `status`.

A process that is alive and listening can still be useless: an engine frozen by SIGSTOP accepts
connections (the kernel queues them) but answers nothing, and an app answers its shallow health check while
the table it needs is gone. So, with a deadline each and all at once (a hung component costs one deadline,
not one per check):
    the DynamoDB engine   answers ListTables within ENGINE_DEADLINE_S, and lists every table of the template
    each app              answers `/health?deep=1` (it reads every table it uses) within APP_DEADLINE_S
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..tables import table_definitions
from .components import Component
from .engines import READY_HEADERS

ENGINE_DEADLINE_S = 1.0  # the engine answers a ListTables in milliseconds when it works
APP_DEADLINE_S = 2.0  # an app's deep check makes one DynamoDB call per table, each a few milliseconds
KIND = "data-path"  # a Problem kind: alive and answering its health check, but its function fails

Found = list[tuple[str, str]]  # (component, what is wrong)


def engine_problems(url: str, component: str = "dynamodb") -> Found:
    """Ask the engine for its tables; name a silence past the deadline and each template table missing."""
    request = urllib.request.Request(url, data=b"{}", headers=READY_HEADERS, method="POST")  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=ENGINE_DEADLINE_S) as response:  # noqa: S310 (our URL)
            listed = json.loads(response.read()).get("TableNames")
    except urllib.error.HTTPError as exc:  # it answers, but refuses our unsigned call (another endpoint)
        exc.close()
        return []
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return [(component, f"does not answer a DynamoDB call within {ENGINE_DEADLINE_S:g} s "
                            f"({_reason(exc)})")]
    if not isinstance(listed, list):
        return []
    return [(component, f"table {d['TableName']} is missing: `sre-workshop restore {d['TableName']}` recreates "
                        "it from the template with the last snapshot's items")
            for d in table_definitions() if d["TableName"] not in listed]


def app_problems(component: Component) -> Found:
    """Ask an app's deep health check; name each table it cannot use, or its silence past the deadline."""
    url = f"{component.health_url}?deep=1"
    try:
        with urllib.request.urlopen(url, timeout=APP_DEADLINE_S):  # noqa: S310 (our loopback URL)
            return []
    except urllib.error.HTTPError as exc:
        with exc:
            body = _json(exc.read())
        return [(component.name, line) for line in _failed_tables(body)] or [
            (component.name, f"its deep health check answers {exc.code}")]
    except (urllib.error.URLError, OSError) as exc:
        return [(component.name, f"its deep health check (every table it uses) did not answer within "
                                 f"{APP_DEADLINE_S:g} s ({_reason(exc)})")]


def run_all(checks: list[Callable[[], Found]]) -> Found:
    """Run the checks at once; return what they found, in order."""
    if not checks:
        return []
    with ThreadPoolExecutor(len(checks)) as pool:
        return [item for found in pool.map(lambda check: check(), checks) for item in found]


def _failed_tables(body: dict[str, Any]) -> list[str]:
    """Describe each failing table of a deep health answer: sre-app's one check, crm-app's one per table."""
    checks = body.get("checks", {}).get("dynamodb", {})
    if "status" in checks:  # sre-app: {"status", "table", "code"}
        checks = {checks.get("table", "its table"): checks}
    lines = []
    for table, state in checks.items():
        state = state if isinstance(state, dict) else {"status": state}
        if state.get("status") != "ok":
            lines.append(f"cannot use table {table} ({state.get('code') or state.get('status')})")
    return lines


def _json(data: bytes) -> dict[str, Any]:
    try:
        body = json.loads(data)
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", exc)
    return "timed out" if isinstance(reason, TimeoutError) or "timed out" in str(reason) else str(reason)
