"""Read the local stack's processes, logs, configs and metrics, as an SRE on the instances would."""

from __future__ import annotations

import difflib
import logging
import os
import re
import socket
import time
from collections.abc import Iterable
from pathlib import Path

from ...local import configs
from ...local.components import dynamodb_address
from ...local.process import HOST_ENV, group_members, is_alive, proc_stat
from ...local.stack import Stack
from ...settings import TABLE_NAMES
from ..loglines import AWS_CODE, json_entry, nginx_error_entry, tail_lines
from ..model import ComponentState, LogSummary

logger = logging.getLogger(__name__)

TICKS = os.sysconf("SC_CLK_TCK")
# A process counts as burning CPU when it takes this % of a core over the sample (a busy loop gets less than
# a core on a host it saturates: five burners on two shared cores get about 20 % each) ...
BURNER_CPU = 15.0
# ... and has burned CPU for a while: running this long, at this average over its life. A runaway loop does;
# a program starting up (imports, a compile step) or a mostly idle one caught busy does not.
BURNER_MIN_AGE_S = 10.0
BURNER_LIFETIME_CPU = 15.0


def components(stack: Stack, sample_s: float = 0.3) -> dict[str, ComponentState]:
    """Return each component's state, CPU share (over `sample_s`) and memory, from its process group."""
    states, groups = {}, {}
    for name in stack.components:
        record = stack.record(name)
        if record is None:
            states[name] = ComponentState(name, "stopped")
        elif not is_alive(record):
            states[name] = ComponentState(name, "exited", record.pid)
        else:
            groups[name] = list(group_members(record.pid))
            states[name] = ComponentState(name, "running", record.pid, uptime_s=_uptime(record.pid))
    before = {name: _cpu_ticks(pids) for name, pids in groups.items()}
    time.sleep(sample_s)
    for name, pids in groups.items():
        states[name].cpu_percent = round(100 * (_cpu_ticks(pids) - before[name]) / TICKS / sample_s, 1)
        states[name].rss_mb = round(sum(_rss_kb(p) for p in pids) / 1024, 1)
    return states


def _cpu_ticks(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        fields = proc_stat(pid)
        if fields:
            total += int(fields[11]) + int(fields[12])  # utime + stime
    return total


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


def host_cpu(stack_pids: set[int], sample_s: float = 0.5, host: str | None = None
             ) -> tuple[float, list[tuple[int, str, float]]]:
    """Return the host's CPU use (% of all cores) and the busiest processes outside the stack that hold no
    socket (CPU burned for nothing: not a client's or a server's); with `host`, only those that run on the
    stack's host (HOST_ENV names it): any other process of a shared machine is its context, not the app's."""
    excluded = stack_pids | {os.getpid()}  # doctor itself reads logs and probes during the sample

    def snapshot() -> tuple[list[int], dict[int, tuple[str, int, int]]]:
        cpu = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        procs = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit() and int(entry.name) not in excluded:
                fields = proc_stat(int(entry.name))
                if fields:  # name, CPU ticks used (utime + stime), start (ticks after boot)
                    procs[int(entry.name)] = (_comm(int(entry.name)), int(fields[11]) + int(fields[12]),
                                              int(fields[19]))
        return cpu, procs

    cpu0, procs0 = snapshot()
    time.sleep(sample_s)
    cpu1, procs1 = snapshot()
    busy = [b - a for a, b in zip(cpu0, cpu1, strict=True)]
    total = sum(busy) or 1
    used = 100 * (total - busy[3] - busy[4]) / total  # idle and iowait
    now = float(Path("/proc/uptime").read_text().split()[0])
    top = sorted(((pid, name, round(100 * (ticks - procs0[pid][1]) / TICKS / sample_s, 1))
                  for pid, (name, ticks, start) in procs1.items()
                  if pid in procs0 and _sustained(ticks, start, now)), key=lambda p: -p[2])
    # Clients and servers (a load generator, a browser) hold sockets; what only burns CPU holds none.
    return round(used, 1), [p for p in top if p[2] >= BURNER_CPU and not _has_sockets(p[0])
                            and (host is None or _on_host(p[0], host))][:5]


def _on_host(pid: int, host: str) -> bool:
    """True if the process runs on the stack's host: its environment names the stack's state directory."""
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return False
    return f"{HOST_ENV}={host}".encode() in environ


def _sustained(ticks: int, start: int, now: float) -> bool:
    """True for a process that has run BURNER_MIN_AGE_S or longer, busy BURNER_LIFETIME_CPU % of its life."""
    age = now - start / TICKS
    return age >= BURNER_MIN_AGE_S and 100 * ticks / TICKS / age >= BURNER_LIFETIME_CPU


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


def nginx_error_log(path: Path, since: float) -> LogSummary:
    """Summarise nginx's error log (its times are local time) over the window."""
    return nginx_error_lines(tail_lines(path), since)


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


def config_drift(stack: Stack) -> dict[str, list[tuple[str, str]]]:
    """Return, per rendered config, the lines that differ from what its template renders to."""
    drift = {}
    for target in ("nginx.conf", *(f"{n}.cfg" for n in configs.HAPROXY_CONFIGS)):
        path = stack.settings.run_dir / target
        if not path.exists():
            continue
        expected = configs.render(stack.settings, target, dynamodb_address(stack.settings)).splitlines()
        actual = path.read_text().splitlines()
        changed = changed_lines(expected, actual)
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


def memory_series(client, workers: list[int], window_s: float) -> dict[str, list[tuple[float, float, float]]]:
    """Return (time, leak MB, RSS MB) per sre-app worker from the interval metrics in ApplicationMetricsTable."""
    since = int(time.time() - window_s)
    series = {}
    for pid in workers:
        metric_id = f"sre-app#{socket.gethostname()}#{pid}"
        try:
            items = client.query(TableName=TABLE_NAMES["METRICS_TABLE"],
                                 KeyConditionExpression="metric_id = :m AND #t >= :s",
                                 ExpressionAttributeNames={"#t": "timestamp"},
                                 ExpressionAttributeValues={":m": {"S": metric_id}, ":s": {"N": str(since)}})["Items"]
        except Exception as exc:  # a metrics store that does not answer shows in the probes
            logger.debug("no interval metrics for %s: %s", metric_id, exc)
            continue
        series[metric_id] = [(float(i["timestamp"]["N"]), float(i["memory_leak_size_mb"]["N"]),
                              float(i["rss_mb"]["N"])) for i in items]
    return series

