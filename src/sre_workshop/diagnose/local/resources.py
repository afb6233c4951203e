"""Read the local stack's settings and finite resources, as an SRE on its instances would: each app's
environment against the template's, the connections that hold its workers, file descriptors, disk space."""

from __future__ import annotations

import os
from pathlib import Path

from ...local.components import app_env
from ...local.process import is_alive
from ...local.stack import Stack
from ...settings import TABLE_NAMES
from .. import appsettings
from .procs import Snapshot

APPS = ("sre-app", "crm-app")


def environ(pid: int) -> dict[str, str]:
    """Return a process's environment ({} if it cannot be read)."""
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return {}
    return dict(e.decode(errors="replace").split("=", 1) for e in raw if b"=" in e)


def app_settings(stack: Stack) -> tuple[dict, dict, dict]:
    """Return, per running app, its table settings, the template's settings and how the two differ."""
    tables, template, drift = {}, {}, {}
    for name in APPS:
        record = stack.record(name) if name in stack.components else None
        if record is None or not is_alive(record):
            continue
        env, expected = environ(record.pid), app_env(stack.settings, name)
        if not env:
            continue
        tables[name] = {k: v for k, v in env.items() if k in TABLE_NAMES}
        template[name] = appsettings.pointing(expected)
        drift[name] = appsettings.drift(template[name], appsettings.pointing(env))
    return tables, template, drift


def descriptors(stack: Stack, snap: Snapshot) -> dict[str, tuple[int, int]]:
    """Return, per running component, its process nearest the open-files limit as (open, soft limit)."""
    found = {}
    for name in stack.components:
        record = stack.record(name)
        if record is None or not is_alive(record):
            continue
        readings = [(_open_fds(p), _fd_limit(p)) for p in snap.members(record.pid)]
        readings = [(n, limit) for n, limit in readings if limit]
        if readings:
            found[name] = max(readings, key=lambda r: r[0] / r[1])
    return found


def _open_fds(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


def _fd_limit(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
            if line.startswith("Max open files"):
                soft = line.split()[3]
                return 0 if soft == "unlimited" else int(soft)
    except (OSError, ValueError, IndexError):
        pass
    return 0


def disk_free(path: Path) -> dict[str, float]:
    """Return the % of disk free where `path` is (nothing if it cannot be read)."""
    try:
        stat = os.statvfs(path)
    except OSError:
        return {}
    return {str(path): round(100 * stat.f_bavail / max(stat.f_blocks, 1), 1)}
