"""cpu-burn on AWS: busy processes on sre-app's instance for a while (busy.sh through SSM, as root)."""

from __future__ import annotations

from typing import Any

from ...aws.control import JOBS_DIR
from ...aws.ssm import script, shell
from ...errors import AwsError, ComponentFailed
from ..contract import AwsCtl
from ..model import NotYet

HOST = "sre-app"
SCRIPT = "busy.sh"  # a name that says nothing of why: SSM's command history shows it
PIDFILE = f"{JOBS_DIR}/processes.pids"


def burners(ctl: AwsCtl) -> list[str]:
    """Return the pids of the burners still running on the app's instance (the script's own status: PIDFILE
    holds "pid start_time" lines, and a start time is no pid)."""
    return ctl.run(HOST, script(SCRIPT, "status", PIDFILE), label="busy.sh status").split()


def snapshot(ctl: AwsCtl, params: dict[str, Any]) -> dict[str, Any]:
    """Nothing on the instance changes but the burners; save where they are recorded."""
    return {"pidfile": PIDFILE}


def inject(ctl: AwsCtl, params: dict[str, Any]) -> None:
    """Start `workers` busy processes for `duration_s` seconds; they record their pids in PIDFILE."""
    ctl.run(HOST, script(SCRIPT, "start", params["workers"], params["duration_s"], PIDFILE),
            label="busy.sh start")


def verify(ctl: AwsCtl, params: dict[str, Any]) -> str:
    """Evidence: the burners run on the app's instance, and its load average."""
    lines = ctl.run(HOST, script(SCRIPT, "status", PIDFILE), shell("cat /proc/loadavg"),
                    label="busy.sh status, loadavg").split()
    # One pid per line, then the five fields of /proc/loadavg.
    pids, load = lines[:-5], lines[-5:-2]
    if not pids:
        raise NotYet(f"no burner runs on {ctl.instance(HOST)}")
    return f"{len(pids)} burners run on {ctl.instance(HOST)}; load average {' '.join(load)}"


def active(ctl: AwsCtl, params: dict[str, Any]) -> bool | None:
    """True while a burner runs (None when the instance cannot be asked)."""
    try:
        return bool(burners(ctl))
    except (AwsError, ComponentFailed):
        return None


def clear(ctl: AwsCtl, params: dict[str, Any], saved: dict[str, Any]) -> None:
    """Stop every burner recorded in the pid file."""
    ctl.run(HOST, script(SCRIPT, "stop", saved.get("pidfile", PIDFILE)), label="busy.sh stop")
