"""cpu-burn on the local stack: scripts/cpu-burn.sh, as SSM runs it on the app's instance, with a local pid file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ...local.process import proc_stat
from ...twin.instances import EXTRA_PID_FILES
from ..contract import LocalCtl
from ..model import NotYet

SCRIPT = "cpu-burn.sh"


def _pidfile(ctl: LocalCtl) -> str:
    return str(ctl.settings.run_dir / EXTRA_PID_FILES["AppServerInstance1"][0])


def _burners(ctl: LocalCtl) -> list[int]:
    """Return the pids of the recorded burners that still run (the script's own check)."""
    return [int(pid) for pid in ctl.script(SCRIPT, "status", _pidfile(ctl)).split()]


def _cpu_seconds(pid: int) -> float:
    """Return the CPU time used by a burner's busy loop (the child of its `timeout`)."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return 0.0
    fields = [proc_stat(int(child)) for child in children]
    ticks = sum(int(f[11]) + int(f[12]) for f in fields if f)  # utime + stime
    return ticks / os.sysconf("SC_CLK_TCK")


def snapshot(ctl: LocalCtl, params: dict[str, Any]) -> dict[str, Any]:
    """Nothing is changed but processes started; save where they are recorded."""
    return {"pidfile": _pidfile(ctl)}


def inject(ctl: LocalCtl, params: dict[str, Any]) -> None:
    """Start the burners."""
    ctl.script(SCRIPT, "start", str(params["workers"]), str(params["duration_s"]), _pidfile(ctl))


def verify(ctl: LocalCtl, params: dict[str, Any]) -> str:
    """Evidence: every burner runs and has used CPU."""
    burners = _burners(ctl)
    used = [_cpu_seconds(pid) for pid in burners]
    if len(burners) < params["workers"] or min(used, default=0.0) < 0.05:
        raise NotYet(f"{len(burners)} of {params['workers']} burners run, using {sum(used):.2f} s of CPU")
    return f"{len(burners)} burners (pids {', '.join(map(str, burners))}) for {params['duration_s']} s " \
           f"have used {sum(used):.1f} s of CPU"


def active(ctl: LocalCtl, params: dict[str, Any]) -> bool:
    """True while any recorded burner still runs."""
    return bool(_burners(ctl))


def clear(ctl: LocalCtl, params: dict[str, Any], saved: dict[str, Any]) -> None:
    """Stop exactly the recorded burners."""
    ctl.script(SCRIPT, "stop", saved.get("pidfile", _pidfile(ctl)))
