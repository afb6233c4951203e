"""The broker: what the shims of an instance's view ask for, done outside the view.

One request per connection on a Unix socket: a JSON line {"tool": "systemctl"|"pids", "args": [...]}, answered
by a JSON line {"stdout", "stderr", "code"}. systemctl's verbs act on the stack's components through
`sre-workshop service` (reload: nginx re-reads nginx.conf as it is, hand edits included), with systemctl's
messages and exit statuses; units of other instances are not found, as on the instance. `kill` signals every
process of the unit (its process group, by its pid record), as systemd's default --kill-whom=all; a unit whose
processes died without a stop is `failed` until started again, and `reset-failed` accepts it.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from ..local.process import ProcessRecord, group_members, is_alive
from ..settings import Settings
from .agent_host import leaders
from .instances import COMPONENTS, EXTRA_PID_FILES, IN_VIEW

logger = logging.getLogger(__name__)

ACTIONS = ("start", "stop", "restart", "reload")
VERBS = (*ACTIONS, "status", "is-active", "show", "kill", "reset-failed")
# systemctl's options that take a value (`-s KILL`, `--signal KILL`, `-p MainPID`): the value is not a unit.
VALUED = ("-s", "--signal", "--kill-whom", "--kill-who", "-p", "--property")
# Exit statuses of systemctl (LSB): 3 not running, 4 no such unit (status), 5 not found (jobs).
NOT_ACTIVE, NO_UNIT, NOT_FOUND = 3, 4, 5


def unit_name(unit: str) -> str:
    """Return the component a unit names (`nginx.service` -> nginx)."""
    return unit.removesuffix(".service")


class Broker:
    """Answer one instance's shims on a Unix socket, in a thread, until closed."""

    def __init__(self, settings: Settings, logical: str, path: Path) -> None:
        self.settings, self.logical, self.path = settings, logical, path
        self.view_pid = 0  # the view's bwrap: its descendants are the view's own processes in `ps`
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(str(path))
        self.server.listen(8)
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> Broker:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.close()
        self.path.unlink(missing_ok=True)

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.server.accept()
            except OSError:  # closed
                return
            threading.Thread(target=self._answer, args=(connection,), daemon=True).start()

    def _answer(self, connection: socket.socket) -> None:
        with connection, connection.makefile("rwb") as stream:
            try:
                request = json.loads(stream.readline() or b"{}")
                stdout, stderr, code = self.handle(request.get("tool", ""), list(request.get("args", [])))
            except Exception as exc:  # a shim always gets an answer
                logger.exception("broker request failed")
                stdout, stderr, code = "", f"{exc}\n", 1
            stream.write(json.dumps({"stdout": stdout, "stderr": stderr, "code": code}).encode() + b"\n")

    def handle(self, tool: str, args: list[str]) -> tuple[str, str, int]:
        """Return (stdout, stderr, exit status) of one shim's request."""
        if tool == "pids":
            return " ".join(map(str, sorted(self.pids()))), "", 0
        if tool == "systemctl":
            return self.systemctl(args)
        if tool == "nginx":
            return self.nginx(args)
        return "", f"unknown request {tool}\n", 1

    # --- ps: which processes are the instance's --------------------------------------------------------

    def pids(self) -> set[int]:
        """Return the pids of the instance's components (every process of their groups), of the other processes
        recorded as running on it (EXTRA_PID_FILES: their groups too) and of the view."""
        found: set[int] = set()
        for name in COMPONENTS[self.logical]:
            record = self.record(name)
            if record and is_alive(record):
                found |= set(group_members(record.pid))
        extra = [self.settings.run_dir / path for path in EXTRA_PID_FILES.get(self.logical, ())]
        for leader, _start in leaders(extra):
            found |= set(group_members(leader))
        return found | descendants(self.view_pid)

    def record(self, name: str) -> ProcessRecord | None:
        """Return a component's pid record."""
        return ProcessRecord.load(self.settings.run_dir / "pids" / f"{name}.json")

    # --- nginx: its checks and signals, on the stack's side -------------------------------------------------

    def nginx(self, args: list[str]) -> tuple[str, str, int]:
        """Answer `nginx -t|-T [-q]`, `nginx -s reload` and `nginx -v|-V` on the instance that runs nginx.
        The check runs outside the view with the stack's paths (the pid file and temp directories the
        config names are not in the view), on the same file the view shows as /etc/nginx/nginx.conf."""
        if "nginx" not in COMPONENTS[self.logical]:
            return "", "sh: 1: nginx: not found\n", 127
        if args[:2] == ["-s", "reload"]:
            return self._job("reload", ["nginx"])
        if args and set(args) <= {"-t", "-T", "-q", "-v", "-V"}:
            from ..local.components import components

            argv = [a for a in components(self.settings)["nginx"].check_argv if a != "-t"]
            result = subprocess.run([argv[0], *args, *argv[1:]], capture_output=True, text=True, check=False)
            return result.stdout, self._in_view(result.stderr), result.returncode
        return "", ("nginx: in this view nginx runs as the nginx unit: `nginx -t`, `nginx -T`, "
                    "`nginx -s reload` or systemctl\n"), 1

    def _in_view(self, text: str) -> str:
        """Name the config by its path in the view."""
        return text.replace(str(self.settings.run_dir / "nginx.conf"), "/etc/nginx/nginx.conf")

    # --- systemctl ---------------------------------------------------------------------------------------

    def systemctl(self, args: list[str]) -> tuple[str, str, int]:
        """Answer `systemctl VERB UNIT...` for the instance's units."""
        words, options = _parse(args)
        quiet = "-q" in options or "--quiet" in options
        if not words:
            return "", "sre-workshop: systemctl in an instance's view knows only its units' verbs\n", 1
        verb, units = words[0], [unit_name(u) for u in words[1:]]
        if verb not in VERBS:
            return "", f'Unknown command verb "{verb}", or not available in this view.\n', 1
        if verb == "show":  # without a unit, as systemctl shows the manager's: nothing it knows here
            wanted = [p for key in ("-p", "--property") for value in options.get(key, []) for p in value.split(",")]
            return self._show(units, wanted, "--value" in options)
        if not units:
            return "", "Too few arguments.\n", 1
        if verb == "is-active":
            states = [self._state(u) for u in units]
            text = "" if quiet else "".join(f"{state}\n" for state in states)
            return text, "", 0 if all(state == "active" for state in states) else NOT_ACTIVE
        if verb == "status":
            return self._status(units)
        if verb == "kill":
            return self._kill(units, (options.get("-s") or options.get("--signal") or [""])[-1] or "SIGTERM")
        if verb == "reset-failed":
            unknown = [u for u in units if not self._known(u)]
            return ("", f"Failed to reset failed state of unit {unknown[0]}.service: Unit {unknown[0]}.service "
                    "not loaded.\n", 1) if unknown else ("", "", 0)
        return self._job(verb, units)

    def _kill(self, units: list[str], name: str) -> tuple[str, str, int]:
        """Send a signal to every process of each unit (its process group), as `systemctl kill` does."""
        number = _signal(name)
        if number is None:
            return "", f"Failed to parse signal string {name}.\n", 1
        for unit in units:
            if not self._known(unit):
                return "", f"Failed to kill unit {unit}.service: Unit {unit}.service not loaded.\n", 1
        for unit in units:
            record = self.record(unit)
            if record is None or not is_alive(record):
                continue  # nothing of the unit runs: systemctl kill signals no one and succeeds
            try:
                os.killpg(record.pid, number)
            except ProcessLookupError:
                continue
        return "", "", 0

    def _show(self, units: list[str], wanted: list[str], value_only: bool) -> tuple[str, str, int]:
        """Answer `systemctl show [-p PROP | --property=PROP]... [--value] UNIT...` for the properties a reader of
        the unit asks for (doctor's observe-host.sh): MainPID, ActiveState, ControlGroup. A component here has
        no cgroup of its own, so ControlGroup is empty, as for a unit that does not run."""
        lines = []
        for unit in units:
            values = self._properties(unit)
            lines += [values[p] if value_only else f"{p}={values[p]}" for p in wanted or values if p in values]
        return "".join(f"{line}\n" for line in lines), "", 0

    def _properties(self, unit: str) -> dict[str, str]:
        """Return the unit's MainPID, ActiveState and ControlGroup as systemctl shows them (an unknown unit is
        shown as systemd shows one: not running)."""
        state = self._state(unit)
        record = self.record(unit) if state == "active" else None
        return {"MainPID": str(record.pid if record else 0), "ActiveState": state, "ControlGroup": ""}

    def _known(self, unit: str) -> bool:
        return unit in COMPONENTS[self.logical]

    def _active(self, unit: str) -> bool:
        return self._state(unit) == "active"

    def _state(self, unit: str) -> str:
        """Return the unit's ActiveState: active, failed (its processes died without a stop: killed, crashed)
        or inactive (stopped, or a unit of another instance)."""
        record = self.record(unit) if self._known(unit) else None
        if record is None:
            return "inactive"
        return "active" if is_alive(record) else "failed"

    def _status(self, units: list[str]) -> tuple[str, str, int]:
        out, err, code = [], [], 0
        for unit in units:
            if not self._known(unit):
                err.append(f"Unit {unit}.service could not be found.\n")
                code = max(code, NO_UNIT)
                continue
            out.append(self._status_text(unit))
            if not self._active(unit):
                code = max(code, NOT_ACTIVE)
        return "\n".join(out), "".join(err), code

    def _status_text(self, unit: str) -> str:
        record = self.record(unit)
        lines = [f"● {unit}.service - {unit} (the sre-workshop local stack)",
                 f"     Loaded: loaded (/etc/systemd/system/{unit}.service; enabled; preset: disabled)"]
        if record is None or not is_alive(record):
            failed = self._state(unit) == "failed"
            lines.append(f"     Active: {'failed (Result: signal)' if failed else 'inactive (dead)'}")
            return "\n".join(lines) + "\n"
        since = datetime.fromtimestamp(_started(record.pid), UTC).strftime("%a %Y-%m-%d %H:%M:%S UTC")
        members = sorted(group_members(record.pid))
        lines += [f"     Active: active (running) since {since}",
                  f"   Main PID: {record.pid} ({_comm(record.pid)})",
                  f"      Tasks: {len(members)}"]
        lines += [f"             {'└─' if pid == members[-1] else '├─'}{pid} {_cmdline(pid)}" for pid in members]
        return "\n".join(lines) + "\n"

    def _job(self, verb: str, units: list[str]) -> tuple[str, str, int]:
        for unit in units:
            if not self._known(unit):
                return "", f"Failed to {verb} {unit}.service: Unit {unit}.service not found.\n", NOT_FOUND
        for unit in units:
            result = subprocess.run([sys.executable, "-m", "sre_workshop.cli.main", "--state-dir",
                                     str(self.settings.state_dir), "service", verb, unit],
                                    capture_output=True, text=True, check=False, env=self._env())
            if result.returncode != 0:
                detail = (result.stderr.strip().splitlines() or [""])[-1]
                return "", (f"Job for {unit}.service failed because the control process exited with error code.\n"
                            f"{detail}\n"), 1
        return "", "", 0

    def _env(self) -> dict[str, str]:
        """The tool's environment, with this stack's settings."""
        return {**os.environ, IN_VIEW: "1", "SRE_WORKSHOP_STATE_DIR": str(self.settings.state_dir),
                "SRE_WORKSHOP_HOME": str(self.settings.home),
                "SRE_WORKSHOP_PORT_OFFSET": str(self.settings.port_offset)}


def _parse(args: list[str]) -> tuple[list[str], dict[str, list[str]]]:
    """Split systemctl's arguments into words (verb, units) and options, each option's values in order
    (`--signal=KILL`, `-s KILL`, `-p MainPID -p ActiveState`; a flag has [""])."""
    words, options = [], {}
    rest = iter(args)
    for arg in rest:
        if arg in VALUED:
            options.setdefault(arg, []).append(next(rest, ""))
        elif arg.startswith("--") and "=" in arg:
            key, _, value = arg.partition("=")
            options.setdefault(key, []).append(value)
        elif arg.startswith("-"):
            options.setdefault(arg, []).append("")
        else:
            words.append(arg)
    return words, options


def _signal(name: str) -> int | None:
    """Return the number of a signal named as systemctl takes it: SIGKILL, KILL or 9 (None if none)."""
    if name.isdigit():
        return int(name) if int(name) in {s.value for s in signal.Signals} else None
    try:
        return signal.Signals[name if name.startswith("SIG") else f"SIG{name}"].value
    except KeyError:
        return None


def descendants(pid: int) -> set[int]:
    """Return `pid` and every process below it (empty for 0)."""
    if not pid:
        return set()
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        current = todo.pop()
        found.add(current)
        todo += children.get(current, [])
    return found


def _started(pid: int) -> float:
    """Return when a process started (epoch seconds)."""
    ticks = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    uptime = float(Path("/proc/uptime").read_text().split()[0])
    return time.time() - uptime + ticks / os.sysconf("SC_CLK_TCK")


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return "?"


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return "?"
