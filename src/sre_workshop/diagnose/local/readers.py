"""Read the local stack's processes, logs, configs and metrics, as an SRE on the instances would."""

from __future__ import annotations

import difflib
import logging
import os
import re
from collections.abc import Iterable
from pathlib import Path

from ...local import configs
from ...local.components import dynamodb_address
from ...local.process import HOST_ENV, INSTANCE_ENV, is_alive, proc_stat
from ...local.stack import Stack
from ...settings import TABLE_NAMES
from ..loglines import AWS_CODE, json_entry, nginx_error_entry, tail_lines
from ..model import ComponentState, LogSummary
from .procs import Proc, Snapshot, pair

logger = logging.getLogger(__name__)

TICKS = os.sysconf("SC_CLK_TCK")
# A process counts as burning CPU when it wants this % of a core over the sample: its demand, the time it ran
# or waited in a run queue to run (procs.demand_ns). A busy loop wants a whole core however little it gets:
# on a machine three stacks share (CI's), a test's loops got too little to pass the 15 % of use once asked ...
BURNER_CPU = 50.0
# ... and has wanted it for a while: running this long, at this average over its life. A runaway loop does;
# a program starting up (imports, a compile step) or a mostly idle one caught busy does not.
BURNER_MIN_AGE_S = 10.0
BURNER_LIFETIME_CPU = 50.0


def components(stack: Stack, before: Snapshot, after: Snapshot) -> dict[str, ComponentState]:
    """Return each component's state, CPU share (between the snapshots) and memory, from its process group."""
    states = {}
    seconds = max(after.taken - before.taken, 0.01)
    for name in stack.components:
        record = stack.record(name)
        if record is None:
            states[name] = ComponentState(name, "stopped")
            continue
        if not is_alive(record):
            states[name] = ComponentState(name, "exited", record.pid)
            continue
        pids = after.members(record.pid)
        ticks = sum(after.procs[p].ticks - before.procs[p].ticks for p in pids if p in before.procs)
        states[name] = ComponentState(
            name, "running", record.pid, cpu_percent=round(100 * ticks / TICKS / seconds, 1),
            rss_mb=round(sum(_rss_kb(p) for p in pids) / 1024, 1), uptime_s=_uptime(record.pid),
            suspended=sum(1 for p in pids if after.procs[p].state in ("T", "t")))
    return states


def _rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _uptime(pid: int) -> float:
    fields = proc_stat(pid)
    if not fields:
        return 0.0
    boot_uptime = float(Path("/proc/uptime").read_text().split()[0])
    return round(boot_uptime - int(fields[19]) / TICKS, 1)


def host_cpu(stack_pids: set[int], sample_s: float = 0.5, host: str | None = None,
             context: list[tuple[int, str, float]] | None = None,
             snaps: tuple[Snapshot, Snapshot] | None = None, instances: dict[int, str] | None = None
             ) -> tuple[float, list[tuple[int, str, float]]]:
    """Return the host's CPU use (% of all cores) and the busiest processes outside the stack that hold no
    socket (CPU burned for nothing: not a client's or a server's), each with its demand (% of a core, _demand);
    with `host`, only those that run on the stack's host (HOST_ENV names it): any other process of a shared
    machine (another stack's included) is its context, not the app's, and goes to `context`. `snaps`: two
    snapshots already taken (else sampled); `instances` gets the instance each of the stack's busy processes
    runs on, when it says (INSTANCE_ENV)."""
    excluded = stack_pids | {os.getpid()}  # doctor itself reads logs and probes during the sample
    before, after = snaps or pair(sample_s)
    sample_s = max(after.taken - before.taken, 0.01)
    cpu0, cpu1 = before.cpu, after.cpu
    busy = [b - a for a, b in zip(cpu0, cpu1, strict=True)]
    total = sum(busy) or 1
    used = 100 * (total - busy[3] - busy[4]) / total  # idle and iowait
    now = float(Path("/proc/uptime").read_text().split()[0])
    top = sorted(((pid, _comm(pid), round(_demand(before.procs[pid], p, sample_s), 1))
                  for pid, p in after.procs.items() if pid in before.procs and pid not in excluded
                  and _sustained(p.ticks, p.start, now, p.demand_ns) and p.ticks - before.procs[pid].ticks > 0),
                 key=lambda p: -p[2])
    # Clients and servers (a load generator, a browser) hold sockets; what only burns CPU holds none.
    burners = [p for p in top if p[2] >= BURNER_CPU and not _has_sockets(p[0])]
    ours = [p for p in burners if host is None or _on_host(p[0], host)]
    if instances is not None:
        instances.update({p[0]: instance for p in ours if (instance := _instance(p[0]))})
    if context is not None:
        context.extend(p for p in top if p[2] >= BURNER_CPU and p not in ours)
        del context[5:]
    return round(used, 1), ours[:5]


def _on_host(pid: int, host: str) -> bool:
    """True if the process runs on the stack's host: its environment names the stack's state directory."""
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return False
    return f"{HOST_ENV}={host}".encode() in environ


def _instance(pid: int) -> str:
    """Return the instance a process says it runs on (INSTANCE_ENV: set in an instance's shell and Run
    Commands), or ""."""
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return ""
    prefix = f"{INSTANCE_ENV}=".encode()
    return next((e[len(prefix):].decode(errors="replace") for e in environ if e.startswith(prefix)), "")


def _demand(before: Proc, after: Proc, sample_s: float) -> float:
    """The % of a core the process wanted between two snapshots: what it ran or waited to run, and never less
    than the CPU it used (schedstat counts the main thread only; utime + stime count every thread)."""
    used = (after.ticks - before.ticks) / TICKS
    return 100 * max(used, (after.demand_ns - before.demand_ns) / 1e9) / sample_s


def _sustained(ticks: int, start: int, now: float, demand_ns: int = 0) -> bool:
    """True for a process that has run BURNER_MIN_AGE_S or longer, wanting the CPU (using it, or waiting to)
    BURNER_LIFETIME_CPU % of its life."""
    age = now - start / TICKS
    return age >= BURNER_MIN_AGE_S and 100 * max(ticks / TICKS, demand_ns / 1e9) / age >= BURNER_LIFETIME_CPU


def _has_sockets(pid: int) -> bool:
    """True if the process holds a network socket (or cannot be inspected)."""
    try:
        return any(os.readlink(fd).startswith("socket:") for fd in Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return True


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()[:80]
    except OSError:
        return "?"


def json_log(source: str, path: Path, since: float) -> LogSummary:
    """Summarise a JSON log (the apps' and nginx's access log) over the window."""
    return json_lines(source, tail_lines(path), since)


def json_lines(source: str, lines: Iterable[str], since: float | None) -> LogSummary:
    """Summarise JSON log lines from `since` on (None: every line, already chosen by their time elsewhere)."""
    summary = LogSummary(source)
    for line in lines:
        parsed = json_entry(line)
        if parsed is None:
            continue
        stamp, entry = parsed
        if since is not None and stamp < since:
            continue
        summary.lines += 1
        if "status" in entry:
            summary.statuses[str(entry["status"])] = summary.statuses.get(str(entry["status"]), 0) + 1
            seconds = entry.get("request_time", (entry.get("duration_ms") or 0) / 1000)
            summary.slow += float(seconds or 0) >= 1.0
        if entry.get("level") in ("ERROR", "CRITICAL"):
            _count(summary.errors, _normalise(entry.get("message", "")))
            # A line's code and its message may both name the error: count it once.
            for code in set(AWS_CODE.findall(f"{entry.get('error_code', '')} {entry.get('message', '')}")):
                _count(summary.aws_codes, code)
    return summary


def nginx_error_lines(lines: Iterable[str], since: float | None) -> LogSummary:
    """Summarise nginx error-log lines from `since` on (None: every line, already chosen by their time elsewhere:
    on an instance the lines' times are in its time zone, not this machine's)."""
    summary = LogSummary("nginx-error")
    for line in lines:
        parsed = nginx_error_entry(line)
        if parsed is None:
            continue
        stamp, level, message = parsed
        if since is not None and stamp < since - 1:
            continue
        summary.lines += 1
        if level in ("error", "crit", "alert", "emerg"):
            _count(summary.errors, _normalise(message))
    return summary


def _normalise(message: str) -> str:
    """Make messages that differ only in numbers, ids and addresses count as one."""
    return re.sub(r"\b[0-9a-f]{8,}\b|\d+(\.\d+)*(:\d+)?", "N", message)[:160]


def _count(counter: dict[str, int], key: str) -> None:
    counter[key] = counter.get(key, 0) + 1


def balancer_drift(stack: Stack) -> dict[str, list[tuple[str, str]]]:
    """Return, per load balancer's configuration file (HAProxy's), the lines that differ from what its template
    renders to. (nginx.conf is read on its instance, in both worlds.)"""
    drift = {}
    for target in (f"{n}.cfg" for n in configs.HAPROXY_CONFIGS):
        path = stack.settings.run_dir / target
        if not path.exists():
            continue
        expected = configs.render(stack.settings, target, dynamodb_address(stack.settings)).splitlines()
        changed = changed_lines(expected, path.read_text().splitlines())
        if changed:
            drift[target] = changed
    return drift


def changed_lines(expected: list[str], actual: list[str]) -> list[tuple[str, str]]:
    """Return (expected, actual) pairs of the lines that differ, stripped; "" where a line is missing."""
    pairs = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=expected, b=actual, autojunk=False).get_opcodes():
        if tag != "equal":
            old, new = expected[i1:i2], actual[j1:j2]
            for k in range(max(len(old), len(new))):
                pairs.append(((old[k] if k < len(old) else "").strip(), (new[k] if k < len(new) else "").strip()))
    return pairs


def app_tables(stack: Stack) -> dict[str, dict[str, str]]:
    """Return the table settings each running app was started with (from its process environment)."""
    found = {}
    for name in ("sre-app", "crm-app"):
        record = stack.record(name)
        if record is None or not is_alive(record):
            continue
        try:
            environ = Path(f"/proc/{record.pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        pairs = dict(e.decode(errors="replace").split("=", 1) for e in environ if b"=" in e)
        found[name] = {k: v for k, v in pairs.items() if k in TABLE_NAMES}
    return found
