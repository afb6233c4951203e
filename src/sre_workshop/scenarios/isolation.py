"""The evaluated agent's process, kept apart from the examiner's.

The agent gets a scrubbed environment (the MCP URL, the time limit, its own AWS identity at the twin's scoped
endpoint as AWS_ENDPOINT_URL and AWS_ACCESS_KEY_ID/SECRET, a few neutral variables, and only the names the
user passes with `--agent-env`), a fresh empty working directory (its HOME too), and no path of
the stack's state dir in its arguments. When the tool runs as root, the agent runs as an unprivileged user
(`nobody`) and the state dir (records, ledger, logs) is made unreadable to others for the run. It cannot
connect to the stack's private ports (the engine that holds the ledger, the AWS API twin, the apps'
endpoint) nor read the state dir, even as our own user (netguard.py), where the kernel allows that.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from ..errors import UsageError
from . import netguard

URL_ENV = "SRE_WORKSHOP_MCP_URL"
LIMIT_ENV = "SRE_WORKSHOP_TIME_LIMIT_S"
NEUTRAL_ENV = ("PATH", "LANG", "LC_ALL", "TZ")  # what any program needs, and no path of ours
UNPRIVILEGED = "nobody"
GRACE_S = 5.0  # an agent that submitted gets this long to exit by itself


def agent_env(url: str, limit_s: float, home: Path, passed: tuple[str, ...],
              aws: dict[str, str] | None = None) -> dict[str, str]:
    """Return the agent's whole environment: neutral variables, ours (with its own AWS identity at the
    twin's scoped endpoint, `aws`), and the ones the user passed."""
    env = {name: os.environ[name] for name in (*NEUTRAL_ENV, *passed) if name in os.environ}
    env.update(HOME=str(home), TMPDIR=str(home), **{URL_ENV: url, LIMIT_ENV: f"{limit_s:g}"}, **(aws or {}))
    return env


def agent_argv(command: str, url: str) -> list[str]:
    """Return the agent's argv: COMMAND with its program resolved (the agent starts elsewhere), then the URL."""
    argv = shlex.split(command)
    if not argv:
        raise UsageError("--agent needs a command")
    program = shutil.which(argv[0]) if "/" not in argv[0] else str(Path(argv[0]).absolute())
    if program is None:
        raise UsageError(f"--agent: no program {argv[0]!r} on PATH")
    return [program, *argv[1:], url]


def unprivileged() -> tuple[int, int] | None:
    """Return (uid, gid) to run the agent as when we are root; None otherwise."""
    if os.geteuid() != 0:
        return None
    import pwd  # POSIX only, like the rest of the local stack

    entry = pwd.getpwnam(UNPRIVILEGED)
    return entry.pw_uid, entry.pw_gid


@contextlib.contextmanager
def agent_process(command: str, url: str, limit_s: float, folder: Path, state_dir: Path,
                  passed: tuple[str, ...] = (), denied_ports: tuple[int, ...] = (),
                  aws: dict[str, str] | None = None) -> Iterator[subprocess.Popen]:
    """Start the agent, isolated, with the server's URL; its output goes to FOLDER/agent.log; end it (its
    whole process group) afterwards."""
    user = unprivileged()
    with tempfile.TemporaryDirectory(prefix="sre-workshop-examinee-") as home, _closed(state_dir, user), \
            _guard(denied_ports, state_dir) as confine:  # after the home exists: it stays readable
        if user:
            os.chown(home, *user)
        env = agent_env(url, limit_s, Path(home), passed, aws)
        process = _start(agent_argv(command, url), env, Path(home), folder / "agent.log", user, confine)
        try:
            yield process
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(GRACE_S)
        finally:
            end(process)


@contextlib.contextmanager
def _guard(denied_ports: tuple[int, ...], state_dir: Path) -> Iterator[dict]:
    """Yield the Popen arguments that keep the child off `denied_ports` and out of `state_dir` (even as our
    own user, when we are not root) ({} when there are no ports, or when the kernel cannot: then say so,
    since the ledger is in reach); close the rule set afterwards."""
    fd = netguard.ruleset(denied_ports, state_dir) if denied_ports else None
    if denied_ports and fd is None:
        print("sre-workshop: warning: this kernel has no Landlock network rules (Linux >= 6.7): the agent can "
              "connect to the stack's private ports, the ledger's engine included, and read the state dir "
              "unless it runs as another user", file=sys.stderr, flush=True)
    try:
        yield {} if fd is None else {"preexec_fn": netguard.enter(fd), "pass_fds": (fd,)}
    finally:
        if fd is not None:
            os.close(fd)


def _start(argv: list[str], env: dict[str, str], home: Path, log_path: Path,
           user: tuple[int, int] | None, confine: dict) -> subprocess.Popen:
    """Start argv in `home` (as `user` if given, confined if asked); say plainly when that user cannot run it."""
    ids = {"user": user[0], "group": user[1], "extra_groups": []} if user else {}
    with log_path.open("wb") as log:
        try:
            return subprocess.Popen(argv, env=env, cwd=home, stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                                    start_new_session=True, **ids, **confine)
        except PermissionError as exc:
            raise UsageError(f"--agent: {argv[0]} cannot be run by the unprivileged user {UNPRIVILEGED} "
                             "(the agent runs as that user when the tool runs as root): install it where "
                             "every user can run it") from exc


@contextlib.contextmanager
def _closed(state_dir: Path, user: tuple[int, int] | None) -> Iterator[None]:
    """As root, make the state dir unreadable to others for the run; restore its mode afterwards."""
    if user is None or not state_dir.exists():
        yield
        return
    mode = state_dir.stat().st_mode & 0o7777
    state_dir.chmod(mode & 0o7700)
    try:
        yield
    finally:
        state_dir.chmod(mode)


def end(process: subprocess.Popen) -> None:
    """Stop a process group we started: SIGTERM, then SIGKILL."""
    for signum, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
        if process.poll() is not None:
            break
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signum)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(wait)
