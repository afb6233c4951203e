"""Read the three instances from inside: one SSM Run Command per instance runs scripts/observe-host.sh.

What comes back is what an SRE logged in there would see: the unit's ActiveState (`systemctl show`), its processes' CPU
and RSS, the host's CPU and busiest processes, each hop probed from the instance (the next hop and the
instance's own /health), nginx.conf and the app's table settings. An instance whose command fails or
answers no JSON (moto records commands and never runs them: the output is empty) is reported as unknown,
never as a process that is down and never as one that runs.
"""

from __future__ import annotations

import functools
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ...aws.control import ENV_FILES, NGINX_CONF, AwsControl
from ...aws.ssm import Runner, last_line, script
from ...errors import WorkshopError
from ..local.probes import error_code
from ..model import ComponentState, Probe

SCRIPTS_DIR = Path(__file__).resolve().parents[1] / "scripts"
SCRIPT = "observe-host.sh"
COMMAND_TIMEOUT = 20.0  # the script takes about a second; SSM delivery adds a few
DELIVERY = 15.0
# Requests each app worker serves at once: sre-app's sync workers one; crm-app's threads (its gunicorn.conf.py
# reads CRM_THREADS from its environment file).
THREADS = {"sre-app": ("", 1), "crm-app": ("CRM_THREADS", 64)}
# ActiveState -> the state doctor's rules know; anything else ("unknown": no systemd answer) is unknown.
STATES = {"active": "running", "reloading": "running", "activating": "running", "deactivating": "stopped",
          "inactive": "stopped", "failed": "exited"}


def hops(ctl: AwsControl) -> dict[str, list[tuple[str, str, str]]]:
    """Return, per instance (by the component it runs), the (component, name, url) hops probed from there."""
    nginx, app, crm = (functools.partial(ctl.local_url, c) for c in ("nginx", "sre-app", "crm-app"))
    return {
        "nginx": [("nginx", "nginx /health", nginx("/health")), ("nginx", "nginx /", nginx("/")),
                  ("private-alb", "private-alb /", f"http://{ctl.outputs()['PrivateALBDNSName']}/")],
        "sre-app": [("sre-app", "sre-app /health", app("/health")), ("sre-app", "sre-app /", app("/")),
                    ("sre-app", "sre-app /health?deep=1", app("/health?deep=1"))],
        "crm-app": [("crm-app", "crm-app /health", crm("/health")),
                    ("crm-app", "crm-app /api/customers", crm("/api/customers?limit=1"))],
    }


def read_all(ctl: AwsControl, unknown: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Read the three instances at once; return each answer by component, noting in `unknown` those that fail."""
    runner = Runner(ctl.client("ssm"), SCRIPTS_DIR, COMMAND_TIMEOUT, ctl.poll, DELIVERY, purpose="doctor")
    planned = hops(ctl)
    with ThreadPoolExecutor(len(planned)) as pool:
        answers = dict(zip(planned, pool.map(lambda c: _read(ctl, runner, c, planned[c]), planned), strict=True))
    for component, answer in answers.items():
        if isinstance(answer, str):
            unknown[f"{component} instance"] = answer
    return {c: a for c, a in answers.items() if isinstance(a, dict)}


def _read(ctl: AwsControl, runner: Runner, component: str, planned: list[tuple[str, str, str]]) -> dict | str:
    """Return the instance's answer, or why there is none (one line)."""
    pairs = [f"{name}={url}" for _, name, url in planned]
    step = script(SCRIPT, component, ENV_FILES.get(component, "-"), NGINX_CONF if component == "nginx" else "-",
                  *pairs)
    try:
        output = runner.run(ctl.instance(component), component, [step], SCRIPT)
    except (WorkshopError, ClientError, BotoCoreError) as exc:
        return f"cannot read its instance through SSM: {exc}"
    try:
        answer = json.loads(last_line(output))
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        return f"{SCRIPT} on its instance answered no JSON ({last_line(output)[:80]!r}): the command did not run"
    return answer


def component_state(component: str, answer: dict[str, Any]) -> ComponentState | None:
    """Return the unit's state as the rules know it, or None when systemd's answer is not a state."""
    state = STATES.get(str(answer.get("state")))
    if state is None:
        return None
    return ComponentState(component, state, answer.get("main_pid") or None, float(answer.get("cpu_percent", 0)),
                          float(answer.get("rss_mb", 0)), float(answer.get("uptime_s", 0)),
                          int(answer.get("suspended", 0)))


def probes(component_of: dict[str, str], answer: dict[str, Any]) -> list[Probe]:
    """Return the hops the instance probed, as Probes (the error code read from an answer's body)."""
    found = []
    for p in answer.get("probes", []):
        status = int(p.get("status", 0))
        error = p.get("error", "") if not status else (error_code(p.get("body", "").encode()) if status != 200 else "")
        found.append(Probe(p["name"], component_of.get(p["name"], ""), p["url"], status, float(p["seconds"]), error))
    return found


def worker_metric_ids(answer: dict[str, Any]) -> list[str]:
    """Return the ApplicationMetricsTable ids of sre-app's workers (its unit's processes but the master)."""
    workers = [p for p in answer.get("pids", []) if p != answer.get("main_pid")]
    return [f"sre-app#{answer['hostname']}#{pid}" for pid in workers] if answer.get("hostname") else []
