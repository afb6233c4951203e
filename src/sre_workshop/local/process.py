"""Start, watch and stop one real process of the local stack, as systemd would run a unit.

Each component runs under dumb-init (a tiny init from Debian), which starts the component's main process
in a session of its own (so it and its children - Gunicorn workers, nginx workers - form one process group)
and, when that main process exits for any reason, sends SIGTERM to the rest of its group: no orphaned
worker keeps serving after its master was killed, as under systemd's default KillMode=control-group.
(supervisord was considered: its killasgroup applies only when it stops a program itself, not when the
program's main process dies, and it would add a daemon and a config of its own.)

Each process starts with a clean environment (what a systemd unit gets, plus the spec's variables), its
output in its own log file. A record of its pid and kernel start time lets a later CLI call find it again
and never mistake a recycled pid for it. Nothing restarts a process that dies: on AWS, a killed nginx
or app stays down too, until someone restarts it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO

from ..errors import MissingProgram

# What a systemd unit gets; the spec adds its own variables (nothing leaks in from the user's shell).
# A process started on this stack's host (the app's instance, locally a laptop shared with anything else)
# carries the stack's state directory in this variable: the stack's shell steps are run with it, as SSM runs
# them on the instance. doctor counts only such processes as the app host's; any other is the machine's.
HOST_ENV = "SRE_WORKSHOP_HOST"
# ... and, when it was started on one instance of the architecture (its shell, a Run Command), the instance's
# logical id: as on AWS, where each process runs on one of the three instances.
INSTANCE_ENV = "SRE_WORKSHOP_INSTANCE"
UNIT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
UNIT_ENV = {"PATH": UNIT_PATH, "LANG": "C.UTF-8"}
# Debian package of each program a spec may name by its bare name.
PACKAGES = {"nginx": "nginx", "haproxy": "haproxy", "dumb-init": "dumb-init"}

# Processes this CLI call started, kept so their exit can be collected (a process that outlives the
# call is adopted by init, which collects it instead).
_children: dict[int, subprocess.Popen] = {}


@dataclass
class ProcessSpec:
    """How to run one component."""

    name: str
    argv: list[str]
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    ports: list[int] = field(default_factory=list)  # it is started once all of these accept connections
    stop_timeout: float = 15.0
    # Each line of its output prefixed with the time it was written (as journald stamps a unit's output), so
    # a time window applies to process logs too (diagnose/loglines.stamp reads the prefix).
    stamped: bool = False


@dataclass
class ProcessRecord:
    """What a later CLI call needs to find a running process again.

    `pid` is the component's main process (nginx's master, Gunicorn's arbiter) and the id of its process
    group; `unit_pid` is the dumb-init that watches it (0 for records written before there was one).
    """

    name: str
    pid: int
    start_time: int
    argv: list[str]
    unit_pid: int = 0

    def save(self, path: Path) -> None:
        """Write the record atomically."""
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self)))
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> ProcessRecord | None:
        """Read a record, or None if there is none or it is unreadable."""
        try:
            return cls(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            return None


def proc_stat(pid: int) -> list[str] | None:
    """Return the fields of /proc/<pid>/stat after the command name (so [0] is the state), or None if gone.

    The command name is cut at the last ")" because it may itself contain spaces and parentheses.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2:].split()


def start_time(pid: int) -> int | None:
    """Return the kernel start time of `pid` (clock ticks since boot), or None if it is gone or a zombie."""
    fields = proc_stat(pid)
    if fields is None or fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def is_alive(record: ProcessRecord) -> bool:
    """True if the recorded process is still the one running under that pid."""
    return start_time(record.pid) == record.start_time


def find_program(name: str) -> str:
    """Return the path of a program (sbin included, which a non-root PATH often lacks), or raise
    MissingProgram saying how to install it."""
    if os.path.isabs(name):
        return name
    path = shutil.which(name, path=f"{os.environ.get('PATH', '')}:{UNIT_PATH}")
    if not path:
        raise MissingProgram(f"{name} is not installed: run `sudo apt-get install -y {PACKAGES.get(name, name)}`")
    return path


def spawn(spec: ProcessSpec) -> ProcessRecord:
    """Start the process under dumb-init, in a session of its own, with its output appended to its log (each
    line stamped with its time when the spec says so)."""
    argv = [find_program("dumb-init"), find_program(spec.argv[0]), *spec.argv[1:]]
    spec.log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(spec.log_path, "ab") as log:
        output = _stamper(log) if spec.stamped else log
        try:
            unit = subprocess.Popen(argv, cwd=spec.cwd, env={**UNIT_ENV, **spec.env}, stdin=subprocess.DEVNULL,
                                    stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
        finally:
            if output is not log:
                output.close()  # the unit holds the pipe's end now: at its last process's exit, the stamper ends
    _children[unit.pid] = unit
    main = _main_child(unit.pid) or unit.pid  # if the program could not even start, dumb-init is all there is
    return ProcessRecord(spec.name, main, start_time(main) or 0, spec.argv, unit.pid)


# awk (mawk or gawk) prefixes each line with the local time and its offset, flushing every line.
STAMP_PROGRAM = '{ print strftime("%Y-%m-%dT%H:%M:%S%z"), $0; fflush() }'


def _stamper(log: IO[bytes]) -> IO[bytes]:
    """Start a line stamper that appends to `log`, in a session of its own (outside the unit's process group:
    it outlives the unit's processes by as long as it takes to write their last lines); return the pipe's
    end to give the unit as its output."""
    awk = find_program("awk")
    # mawk (Debian's awk) reads a pipe in blocks unless told it is interactive; gawk reads what comes.
    interactive = ["-W", "interactive"] if Path(awk).resolve().name == "mawk" else []
    stamper = subprocess.Popen([awk, *interactive, STAMP_PROGRAM], stdin=subprocess.PIPE, stdout=log,
                               stderr=subprocess.DEVNULL, env=UNIT_ENV, start_new_session=True)
    _children[stamper.pid] = stamper
    return stamper.stdin


def _main_child(unit_pid: int, timeout: float = 5.0) -> int | None:
    """Return the pid of the process dumb-init started (it forks right away), or None if it exited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            children = Path(f"/proc/{unit_pid}/task/{unit_pid}/children").read_text().split()
        except OSError:
            return None
        if children:
            return int(children[0])
        time.sleep(0.002)
    return None


def group_alive(pgid: int) -> bool:
    """True while any process of the group exists (zombies of our own children reaped first)."""
    reap()
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return next(group_members(pgid), None) is not None


def group_members(pgid: int) -> Iterator[int]:
    """Yield the pids of the live (not zombie) processes whose process group is `pgid`."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = proc_stat(int(entry.name))
            if fields is not None and int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
                yield int(entry.name)


def reap() -> None:
    """Collect exited children this process started, so they do not linger as zombies."""
    for pid, proc in list(_children.items()):
        if proc.poll() is not None:
            del _children[pid]


def stop(record: ProcessRecord, timeout: float = 15.0) -> None:
    """Stop the process and its whole group: SIGTERM, then SIGKILL after `timeout`."""
    if not is_alive(record) and not group_alive(record.pid) and not _unit_alive(record):
        return
    _signal_group(record.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while group_alive(record.pid) or _unit_alive(record):
        if time.monotonic() > deadline:
            _signal_group(record.pid, signal.SIGKILL)
            if _unit_alive(record):
                os.kill(record.unit_pid, signal.SIGKILL)
            deadline = time.monotonic() + 5
        time.sleep(0.05)


def _unit_alive(record: ProcessRecord) -> bool:
    """True while the record's dumb-init runs (it exits right after its main process)."""
    reap()
    if not record.unit_pid:
        return False
    fields = proc_stat(record.unit_pid)
    return fields is not None and fields[0] not in ("Z", "X") and int(fields[2]) == record.unit_pid


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """True if something accepts TCP connections on host:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


def wait_ready(record: ProcessRecord, ports: list[int], timeout: float) -> bool:
    """Wait until every port accepts connections; False if the process died or time ran out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not is_alive(record):
            return False
        if all(port_open(p) for p in ports):
            return True
        time.sleep(0.05)
    return False


def free_port() -> int:
    """Return a TCP port on loopback that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def tail(path: Path, lines: int = 20) -> str:
    """Return the last lines of a log file (empty if there is none)."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
