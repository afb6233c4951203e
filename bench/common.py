"""Shared pieces of the benchmarks: wrk runs and their parsing, process memory, the machine's description."""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from sre_workshop.local.process import proc_stat

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "apps")]  # reuse the test fixtures (they import the apps)


def machine() -> str:
    """Describe this machine and date for the results table."""
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    mem = int(Path("/proc/meminfo").read_text().split()[1]) // 1024 // 1024
    return f"{datetime.now(UTC):%Y-%m-%d}, {os.cpu_count()} cores ({cpu}), {mem} GB, Python {platform.python_version()}"


UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def pinned(argv: list[str], cpus: str | None) -> list[str]:
    """Prefix argv with taskset so it runs on `cpus` only (unchanged when cpus is None)."""
    return ["taskset", "-c", cpus, *argv] if cpus else argv


def wrk(url: str, seconds: int = 10, connections: int = 8, threads: int = 1, cpus: str | None = None,
        script: str | None = None) -> dict:
    """Run wrk against `url` (with a Lua `script` if given); return requests/s, p50 and p99 in ms, and the
    non-2xx count."""
    binary = shutil.which("wrk") or sys.exit("wrk is not installed: apt-get install -y wrk")
    argv = [binary, f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency",
            *(["-s", script] if script else []), url]
    out = subprocess.run(pinned(argv, cpus), capture_output=True, text=True, check=True).stdout
    latency = dict(re.findall(r"^\s+(50|99)%\s+([\d.]+\w+)", out, re.M))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
            "requests": int(re.search(r"(\d+) requests in", out).group(1)),
            "p50_ms": _ms(latency["50"]), "p99_ms": _ms(latency["99"]),
            "non_2xx": int(errors.group(1)) if errors else 0}


def _ms(value: str) -> float:
    number, unit = re.match(r"([\d.]+)(\w+)", value).groups()
    return float(number) * UNITS[unit]


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time used so far by `pids` (processes that have gone count nothing)."""
    total = 0
    for pid in pids:
        fields = proc_stat(pid)
        if fields is not None:
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def memory_kb(pid: int) -> tuple[int, int]:
    """Return (RSS, PSS) of a process in KB; PSS shares pages fairly between forked workers."""
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0, 0
    values = dict(re.findall(r"^(Rss|Pss):\s+(\d+) kB", text, re.M))
    return int(values.get("Rss", 0)), int(values.get("Pss", 0))
