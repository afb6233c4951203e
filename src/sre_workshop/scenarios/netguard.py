"""Keep an evaluated agent's process off the stack's private TCP ports and out of its state dir, with Landlock.

An examinee on the same machine could otherwise connect to the DynamoDB engine (no credentials are
checked there, and it holds IncidentHistoryTable: the ground truth), to the AWS API twin with the stack's
fixed admin credentials, or to the endpoint the apps use. Running it as another user does not help:
loopback ports are open to every user. Landlock (network rules since Linux 6.7, ABI 4) lets an
unprivileged process give up connecting to TCP ports for itself and everything it starts, so the examiner
builds the rule set and the agent's child enters it just before exec.

Landlock only allows by port, so the rule set allows every port but the denied ones (an agent still reaches
its model's API on 443, the MCP server and the public entry points). Reading is granted the same way, on
every tree but the state dir's (its records, ledger state and logs), which keeps it closed even when the
agent runs as our own user (the tool not being root). Where the kernel has no Landlock network rules,
`ruleset` returns None and the caller says so: the agent is then not kept off those ports.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import stat
from collections.abc import Callable, Iterable
from pathlib import Path

# Linux's syscall numbers (the same on x86_64 and arm64) and constants, from <linux/landlock.h>.
CREATE_RULESET, ADD_RULE, RESTRICT_SELF = 444, 445, 446
CREATE_RULESET_VERSION = 1
RULE_PATH_BENEATH, RULE_NET_PORT = 1, 2
ACCESS_NET_CONNECT_TCP = 1 << 1
ACCESS_FS_READ = (1 << 2) | (1 << 3)  # READ_FILE | READ_DIR: writing and running stay as they were
NET_ABI = 4  # the first ABI with network rules
PR_SET_NO_NEW_PRIVS = 38
PORTS = range(1, 65536)


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64)]


class _NetPortAttr(ctypes.Structure):
    _fields_ = [("allowed_access", ctypes.c_uint64), ("port", ctypes.c_uint64)]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1  # the kernel's struct is packed: a u64 then an s32
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def abi() -> int:
    """Return the kernel's Landlock ABI version (0 when it has none)."""
    version = _libc().syscall(CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(CREATE_RULESET_VERSION))
    return max(version, 0)


def ruleset(denied: Iterable[int], hidden: Path | None = None) -> int | None:
    """Return a Landlock rule-set fd that allows TCP connects to every port but `denied`, and reading every
    file but those under `hidden`; None if the kernel cannot (no Landlock network rules). The caller closes
    it after the child has started."""
    if abi() < NET_ABI:
        return None
    libc, refused = _libc(), set(denied)
    attr = _RulesetAttr(ACCESS_FS_READ if hidden else 0, ACCESS_NET_CONNECT_TCP)
    fd = libc.syscall(CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(ctypes.sizeof(attr)), ctypes.c_uint32(0))
    if fd < 0:
        return None
    rule = _NetPortAttr(ACCESS_NET_CONNECT_TCP, 0)
    for port in PORTS:
        if port in refused:
            continue
        rule.port = port
        if libc.syscall(ADD_RULE, fd, ctypes.c_int(RULE_NET_PORT), ctypes.byref(rule), ctypes.c_uint32(0)) != 0:
            os.close(fd)
            return None
    if hidden is not None and not all(_allow_read(libc, fd, path) for path in readable_around(hidden)):
        os.close(fd)
        return None
    return fd


def readable_around(hidden: Path) -> list[Path]:
    """The paths whose trees together hold everything but `hidden`: Landlock only grants, so each folder on
    the way down to it grants its other entries (what exists now: a file made later in such a folder is not
    readable, so the agent's home must exist first). The folders on the way can be entered, not listed."""
    granted: list[Path] = []
    here, target = Path("/"), hidden.resolve()
    for part in target.parts[1:]:
        with contextlib.suppress(OSError):
            granted += [entry for entry in here.iterdir() if entry.name != part]
        here = here / part
    return granted


def _allow_read(libc: ctypes.CDLL, fd: int, path: Path) -> bool:
    """Grant reading beneath `path` (a vanished or unopenable entry is skipped: nothing to read there)."""
    try:
        beneath = os.open(path, os.O_PATH | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError:
        return True
    try:
        kind = os.fstat(beneath).st_mode
        # A file may only be granted what applies to files; a symlink (O_NOFOLLOW) is followed at use.
        access = ACCESS_FS_READ if stat.S_ISDIR(kind) else (1 << 2)
        if stat.S_ISLNK(kind):
            return True
        rule = _PathBeneathAttr(access, beneath)
        return libc.syscall(ADD_RULE, fd, ctypes.c_int(RULE_PATH_BENEATH), ctypes.byref(rule), ctypes.c_uint32(0)) == 0
    finally:
        os.close(beneath)


def enter(fd: int) -> Callable[[], None]:
    """Return the function a child runs before exec to enter the rule set (no new privileges first, as
    Landlock requires of an unprivileged process). Only two syscalls: it runs between fork and exec."""
    libc = _libc()

    def confine() -> None:
        if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 or libc.syscall(RESTRICT_SELF, fd, ctypes.c_uint32(0)):
            raise OSError(ctypes.get_errno(), "could not enter the Landlock rule set")

    return confine
