"""Keep an evaluated agent's process off the stack's private TCP ports, with Linux's Landlock.

An examinee on the same machine could otherwise connect to the DynamoDB engine (no credentials are
checked there, and it holds IncidentHistoryTable: the ground truth), to the AWS API twin with the stack's
fixed admin credentials, or to the endpoint the apps use. Running it as another user does not help:
loopback ports are open to every user. Landlock (network rules since Linux 6.7, ABI 4) lets an
unprivileged process give up connecting to TCP ports for itself and everything it starts, so the examiner
builds the rule set and the agent's child enters it just before exec.

Landlock only allows by port, so the rule set allows every port but the denied ones (an agent still reaches
its model's API on 443, the MCP server and the public entry points). Where the kernel has no Landlock
network rules, `ruleset` returns None and the caller says so: the agent is then not kept off those ports.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Callable, Iterable

# Linux's syscall numbers (the same on x86_64 and arm64) and constants, from <linux/landlock.h>.
CREATE_RULESET, ADD_RULE, RESTRICT_SELF = 444, 445, 446
CREATE_RULESET_VERSION = 1
RULE_NET_PORT = 2
ACCESS_NET_CONNECT_TCP = 1 << 1
NET_ABI = 4  # the first ABI with network rules
PR_SET_NO_NEW_PRIVS = 38
PORTS = range(1, 65536)


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64)]


class _NetPortAttr(ctypes.Structure):
    _fields_ = [("allowed_access", ctypes.c_uint64), ("port", ctypes.c_uint64)]


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def abi() -> int:
    """Return the kernel's Landlock ABI version (0 when it has none)."""
    version = _libc().syscall(CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(CREATE_RULESET_VERSION))
    return max(version, 0)


def ruleset(denied: Iterable[int]) -> int | None:
    """Return a Landlock rule-set fd that allows TCP connects to every port but `denied`; None if the kernel
    cannot (no Landlock network rules). The caller closes it after the child has started."""
    if abi() < NET_ABI:
        return None
    libc, refused = _libc(), set(denied)
    attr = _RulesetAttr(0, ACCESS_NET_CONNECT_TCP)
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
    return fd


def enter(fd: int) -> Callable[[], None]:
    """Return the function a child runs before exec to enter the rule set (no new privileges first, as
    Landlock requires of an unprivileged process). Only two syscalls: it runs between fork and exec."""
    libc = _libc()

    def confine() -> None:
        if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 or libc.syscall(RESTRICT_SELF, fd, ctypes.c_uint32(0)):
            raise OSError(ctypes.get_errno(), "could not enter the Landlock rule set")

    return confine
