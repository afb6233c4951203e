"""One pass over /proc: every process's state, group, CPU ticks, start and CPU demand, with the machine's CPU
counters.

doctor takes two of these half a second apart and reads everything about processes from them (each
component's members and CPU, the host's CPU and its busy processes): two scans of /proc per run, not one per
component, so a machine with many processes and a high load still answers within doctor's deadline.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from ...local.process import proc_stat


@dataclass(frozen=True)
class Proc:
    """One process as /proc/PID/stat shows it."""

    state: str  # R, S, D, T (stopped by a signal), Z ...
    ppid: int
    pgid: int
    ticks: int  # CPU used: utime + stime
    start: int  # ticks after boot
    demand_ns: int = 0  # ran or waited to run (its main thread's /proc/PID/schedstat); 0 where unreadable


@dataclass
class Snapshot:
    """Every process at one moment, and the machine's CPU counters."""

    taken: float  # time.monotonic()
    cpu: list[int]
    procs: dict[int, Proc] = field(default_factory=dict)

    def members(self, pgid: int) -> list[int]:
        """Return the live (not zombie) processes of a process group."""
        return [pid for pid, p in self.procs.items() if p.pgid == pgid and p.state not in ("Z", "X")]


def snapshot() -> Snapshot:
    """Read every process's stat once."""
    cpu = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    snap = Snapshot(time.monotonic(), cpu)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = proc_stat(int(entry.name))
            if fields:
                snap.procs[int(entry.name)] = Proc(fields[0], int(fields[1]), int(fields[2]),
                                                   int(fields[11]) + int(fields[12]), int(fields[19]),
                                                   demand_ns(int(entry.name)))
    return snap


def demand_ns(pid: int) -> int:
    """Nanoseconds the process's main thread has run or waited in a run queue to run (/proc/PID/schedstat):
    what it wanted of the CPU, whether it got it or not. 0 if it cannot be read."""
    try:
        run, wait = Path(f"/proc/{pid}/schedstat").read_text().split()[:2]
        return int(run) + int(wait)
    except (OSError, ValueError):
        return 0


def pair(sample_s: float) -> tuple[Snapshot, Snapshot]:
    """Return two snapshots `sample_s` apart."""
    before = snapshot()
    time.sleep(sample_s)
    return before, snapshot()
