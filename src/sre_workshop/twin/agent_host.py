"""An instance's CPU and memory, read from /proc for the process groups that stand for it.

A group is named by a pid record: a ProcessRecord (JSON: the component's main process, which leads its
process group, and its kernel start time), or a text file of "pid start_time" lines, one group leader each
(what cpu-burn.sh writes for its burners). Its members are the processes whose process group id is the
leader's pid and which did not start before the leader (so a recycled pid is never mistaken for it).

CPU: each process's utime + stime, plus cutime + cstime (the CPU of the children it has waited for). Between
two samples, the ticks an instance used are the growth of that sum for every process seen in both, plus the
whole sum of a process started since the last sample. A process that ends between samples is not lost: its
CPU moves into its parent's cutime/cstime, where the next sample finds it (as long as the parent is a member;
what was already counted of it is then taken back out). Only the CPU a process used between its last sample
and its end is lost, and only when its parent is not a member (a group leader reaped by dumb-init).

Memory: the sum of the members' resident set sizes (RSS: pages shared between Gunicorn workers count once per
process, as in `ps`).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class Proc:
    """What one sample keeps of a process (times in clock ticks)."""

    pid: int
    ppid: int
    pgid: int
    start: int  # start time, ticks since boot
    cpu: int  # utime + stime + cutime + cstime
    rss_pages: int


def parse_stat(pid: int, text: bytes) -> Proc | None:
    """Return a process from the text of /proc/<pid>/stat, or None if it cannot be parsed."""
    try:
        fields = text[text.rindex(b")") + 2:].split()
        return Proc(pid, int(fields[1]), int(fields[2]), int(fields[19]), sum(int(f) for f in fields[11:15]),
                    int(fields[21]))
    except (ValueError, IndexError):
        return None


def read_procs(proc_root: str = "/proc") -> list[Proc]:
    """Return every process of the host, zombies included (their CPU still counts until they are reaped)."""
    found = []
    for name in os.listdir(proc_root):
        if not name.isdigit():
            continue
        try:
            fd = os.open(f"{proc_root}/{name}/stat", os.O_RDONLY)
        except OSError:
            continue
        try:
            text = os.read(fd, 4096)
        except OSError:
            continue
        finally:
            os.close(fd)
        if (proc := parse_stat(int(name), text)) is not None:
            found.append(proc)
    return found


def leaders(pid_records: Iterable[Path]) -> list[tuple[int, int]]:
    """Return (pid, start time) of each group leader the records name; missing records name none."""
    found = []
    for path in pid_records:
        try:
            text = path.read_text()
        except OSError:
            continue
        if text.lstrip().startswith("{"):
            try:
                record = json.loads(text)
                found.append((int(record["pid"]), int(record.get("start_time", 0))))
            except (ValueError, KeyError, TypeError):
                continue
        else:
            found += [(int(p[0]), int(p[1])) for p in (line.split() for line in text.splitlines())
                      if len(p) == 2 and p[0].isdigit() and p[1].isdigit()]
    return found


def members(procs: Iterable[Proc], group_leaders: list[tuple[int, int]]) -> list[Proc]:
    """Return the processes of the leaders' groups."""
    starts = dict(group_leaders)
    return [p for p in procs if p.pgid in starts and p.start >= starts[p.pgid]]


Totals = dict[tuple[int, int], tuple[int, int]]  # (pid, start) -> (CPU ticks with reaped children, ppid)


def cpu_used(previous: Totals, procs: list[Proc], since: float | None) -> tuple[int, Totals]:
    """Return the ticks `procs` used since the previous sample (`since`: its time in ticks since boot, None on
    the first sample) and the totals to pass as `previous` next time.

    A process gone since the last sample whose parent is still here was reaped by it: its whole CPU is now in
    the parent's growth, so what was already counted of it is taken back out.
    """
    now: Totals = {(p.pid, p.start): (p.cpu, p.ppid) for p in procs}
    used = 0
    for proc in procs:
        before = previous.get((proc.pid, proc.start))
        if before is not None:
            used += max(proc.cpu - before[0], 0)
        elif since is not None and proc.start >= since:
            used += proc.cpu  # started since the last sample: all of its CPU is new
    alive = {pid for pid, _ in now}
    used -= sum(cpu for key, (cpu, ppid) in previous.items() if key not in now and ppid in alive)
    return max(used, 0), now


def boot_ticks() -> float:
    """Return the time since boot in clock ticks (the clock of /proc's start times)."""
    return time.clock_gettime(time.CLOCK_BOOTTIME) * CLK_TCK


class InstanceMeter:
    """Follows one instance's groups from sample to sample; each sample gives its CPU % and RSS bytes."""

    def __init__(self, pid_records: tuple[Path, ...], vcpus: int) -> None:
        self.pid_records, self.vcpus = pid_records, vcpus
        self._previous: Totals = {}
        self._since: float | None = None

    def sample(self, procs: list[Proc], now_ticks: float) -> tuple[float | None, int]:
        """Return the instance's CPU use since the last sample (percent of its vCPUs; None on the first) and
        its RSS in bytes now."""
        found = members(procs, leaders(self.pid_records))
        used, self._previous = cpu_used(self._previous, found, self._since)
        since, self._since = self._since, now_ticks
        rss = sum(p.rss_pages for p in found) * PAGE_SIZE
        if since is None or now_ticks <= since:
            return None, rss
        return 100.0 * used / (now_ticks - since) / self.vcpus, rss
