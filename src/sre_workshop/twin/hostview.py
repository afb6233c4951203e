"""An instance's view of the machine: a mount namespace (bubblewrap) where a script finds the instance's files at
their AWS paths and a `systemctl`, `nginx`, `ps` and `top` that act on the instance's components.

The view is the host, read-only, with these changes (the table of paths is twin/instances.py):

    /etc/nginx            run/etc-nginx/ (nginx.conf, which the stack's nginx reads), writable: nginx only
    /opt/sre-app          apps/sre_app/ of the checkout (read-only); /opt/crm-app likewise
    /etc/sre-workshop     run/hosts/LOGICAL/etc-sre-workshop/: instance.env, the app's .env, fault-token
    /var/log/...          the stack's logs/ files at their AWS names, writable (only the instance's logs)
    /tmp                  a private tmpfs, as systemd's PrivateTmp
    /run/sre-workshop     bin/ (the shims, first on PATH), the script, broker.sock
    <state-dir>/examiner  an empty tmpfs: the examiner's records are not on any instance

The shims never act themselves: they ask the broker, a thread of the process that made the view (the twin for
Run Command, the CLI for `sre-workshop shell`), over broker.sock. So a component that `systemctl restart`
starts runs outside the view, as systemd starts it outside a login session, and never in its mounts.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from ..errors import MissingProgram
from ..local.process import HOST_ENV, INSTANCE_ENV
from ..settings import Settings
from ..state import private_dir
from .broker import Broker, descendants
from .instances import APPS, COMPONENTS, LOGS, Bind, binds, host_dir
from .ssm import OUTPUT_LIMIT, Result

VIEW_DIR = "/run/sre-workshop"
PATH = f"{VIEW_DIR}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
SHIMS = ("systemctl", "nginx", "ps", "top")
# Host directories rebuilt in the view: a tmpfs holding the host's own entries again, so that the
# instance's paths can be added under them; /var/log keeps only the instance's logs.
REBUILT = ("/etc", "/opt", "/run")


def bwrap() -> str:
    """Return the path of bubblewrap, or raise MissingProgram."""
    found = shutil.which("bwrap")
    if not found:
        raise MissingProgram("bwrap (bubblewrap) is needed for an instance's view: apt-get install bubblewrap")
    return found


def argv(settings: Settings, logical: str, view_dir: Path, command: list[str], hide_state: bool = False) -> list[str]:
    """Return the bwrap argv that runs `command` in the instance's view (`view_dir` is bound at VIEW_DIR);
    with `hide_state`, the stack's state dir is an empty tmpfs there (records, ledger state, logs)."""
    instance = binds(settings, logical)
    # A private /tmp, as systemd's PrivateTmp; no --new-session: `shell` needs its terminal for job control.
    args = [bwrap(), "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp",  # noqa: S108
            "--die-with-parent"]
    for directory in REBUILT:
        args += rebuild(directory, {b.target for b in instance} | {VIEW_DIR, "/etc/nginx"})
    args += ["--tmpfs", "/var/log"]
    state = settings.state_dir.resolve()
    hidden = [Path("/tmp"), *([state] if hide_state else [])]  # noqa: S108 - the view's /tmp is its own
    if hide_state and not state.is_relative_to("/tmp"):  # noqa: S108 - under /tmp it is hidden already
        args += ["--tmpfs", str(state)]
    # The examiner's records (what faults changed, a running lab) are no file of any instance: an empty
    # directory in the view, so that a learner's shell or a Run Command never reads the answer there. Not
    # where the view hides it already: a tmpfs would make its path, and name it, in an empty directory.
    examiner = private_dir(settings.examiner_dir).resolve()
    if not any(examiner.is_relative_to(root) for root in hidden):
        args += ["--tmpfs", str(examiner)]
    for bind in instance:
        args += mount(bind)
    # What runs in the view runs on this stack's instance: doctor attributes its CPU to that instance.
    args += ["--setenv", HOST_ENV, str(settings.state_dir.resolve()), "--setenv", INSTANCE_ENV, logical]
    args += ["--bind", str(view_dir), VIEW_DIR, "--chdir", "/", *command]
    return args


def rebuild(directory: str, replaced: set[str]) -> list[str]:
    """Return the args that put a tmpfs on `directory` and the host's entries back, except `replaced` ones."""
    args = ["--tmpfs", directory]
    try:
        entries = sorted(os.scandir(directory), key=lambda e: e.name)
    except OSError:
        return args
    for entry in entries:
        if entry.path in replaced:
            continue
        if entry.is_symlink():
            args += ["--symlink", os.readlink(entry.path), entry.path]
        elif entry.is_dir() or entry.is_file() or stat.S_ISSOCK(entry.stat().st_mode):
            args += ["--ro-bind", entry.path, entry.path]
    return args


def mount(bind: Bind) -> list[str]:
    """Return the args that bind one of the instance's paths (its source is created if missing)."""
    if bind.directory:
        bind.source.mkdir(parents=True, exist_ok=True)
    elif not bind.source.exists():
        bind.source.parent.mkdir(parents=True, exist_ok=True)
        bind.source.touch()
    return ["--bind" if bind.writable else "--ro-bind", str(bind.source), bind.target]


def environment(home: str | None = None, term: str | None = None) -> dict[str, str]:
    """Return the clean environment of a script in the view (a shell also gets TERM)."""
    user = _user()
    env = {"PATH": PATH, "LANG": "C.UTF-8", "HOME": home or "/", "USER": user, "LOGNAME": user,
           "SHELL": "/bin/bash"}
    if term:
        env["TERM"] = term
    return env


def _user() -> str:
    import getpass

    return getpass.getuser()


def write_view(settings: Settings, logical: str, view_dir: Path, script: str | None = None) -> None:
    """Fill `view_dir`: the shims in bin/ and the script; and write the instance's /etc/sre-workshop."""
    bin_dir = view_dir / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    python, package_root = sys.executable, Path(__file__).resolve().parents[2]
    for name in SHIMS:
        path = bin_dir / name
        path.write_text(f'#!/bin/sh\nPYTHONPATH={package_root} exec {python} -S -m sre_workshop.twin.shim {name} '
                        f'{VIEW_DIR}/broker.sock "$@"\n')
        path.chmod(0o755)
    if script is not None:
        (view_dir / "_script.sh").write_text(script)
    write_etc(settings, logical)


def write_etc(settings: Settings, logical: str) -> None:
    """Write what the instance has in /etc/sre-workshop, as its user data and install.sh write it. An app's
    env file (the lines install.sh writes, but the fault-control token, kept in fault-token) is written
    only when missing: the app reads it at each start, so a change made on the instance holds across
    restarts and `down`/`up`, as it would on the instance."""
    from ..local.components import ENV_FILE_SETTINGS, app_env, token_path

    etc = host_dir(settings, logical) / "etc-sre-workshop"
    etc.mkdir(parents=True, exist_ok=True)
    lines = [f"AWS_REGION={settings.region}", "ASSETS_PARAMETER=/sre-workshop/assets/location"]
    if logical == "NginxInstance1":
        lines += ["ASSETS_ZIP=nginx-assets.zip", f"PRIVATE_ALB_DNS=127.0.0.1:{settings.port('private-alb')}"]
    (etc / "instance.env").write_text("\n".join(lines) + "\n")
    if logical in APPS:
        name = COMPONENTS[logical][0]
        env_path = etc / f"{name}.env"
        if not env_path.exists():
            env = app_env(settings, name)
            settings_lines = [f"{k}={env[k]}" for k in ENV_FILE_SETTINGS[name]]
            settings_lines += ["PORT=8080", f"LOG_FILE={next(iter(LOGS[logical]))}",
                               f"{name.upper().replace('-', '_')}_RUNTIME_DIR=/run/{name}"]
            env_path.write_text("\n".join(settings_lines) + "\n")
        token = token_path(settings)
        if token.exists():
            target = etc / "fault-token"
            target.write_text(token.read_text())
            target.chmod(0o600)


@contextmanager
def view(settings: Settings, logical: str, script: str | None = None) -> Iterator[tuple[Path, Broker]]:
    """Make a view's directory (shims, script, broker socket) and run its broker, for one run in the view."""
    view_dir = Path(tempfile.mkdtemp(prefix="sre-view-"))  # short: a socket path holds at most 107 bytes
    try:
        write_view(settings, logical, view_dir, script)
        with Broker(settings, logical, view_dir / "broker.sock") as broker:
            yield view_dir, broker
    finally:
        shutil.rmtree(view_dir, ignore_errors=True)


def run(settings: Settings, logical: str, script: str, timeout: float, confined: bool = False) -> Result:
    """Run `script` with sh in the instance's view, as the tool's user, within `timeout` seconds. A confined
    script (an evaluated agent's) cannot read the state dir nor connect to the stack's private ports."""
    with view(settings, logical, script) as (view_dir, broker), tempfile.TemporaryFile() as out, \
            tempfile.TemporaryFile() as err, _confinement(settings, confined) as confine:
        command = argv(settings, logical, view_dir, ["/bin/sh", f"{VIEW_DIR}/_script.sh"], hide_state=confined)
        process = subprocess.Popen(command, env=environment(), stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                   **confine)
        broker.view_pid = process.pid
        timed_out = False
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            kill_tree(process.pid)
            process.wait()
        return Result(_read(out), _read(err), process.returncode, timed_out)


def private_ports(settings: Settings) -> tuple[int, ...]:
    """The stack's ports an evaluated agent must not reach: the engine (it holds the ledger and checks no
    credentials), the apps' DynamoDB endpoint and the twin's own port (the stack's fixed credentials)."""
    from ..local.components import dynamodb_address

    engine = int(dynamodb_address(settings).rsplit(":", 1)[1])
    return engine, settings.port("dynamodb-endpoint"), settings.port("aws-api")


@contextmanager
def _confinement(settings: Settings, confined: bool) -> Iterator[dict]:
    """Yield the Popen arguments that keep a confined script off the private ports (Landlock's network rules,
    which leave bubblewrap free to mount: no file rules); {} when not confined. Refuse to run a confined
    script where the kernel cannot confine it."""
    if not confined:
        yield {}
        return
    from ..scenarios import netguard

    fd = netguard.ruleset(private_ports(settings))
    if fd is None:
        raise OSError("this kernel has no Landlock network rules (Linux >= 6.7): an evaluated agent's command "
                      "is not run unconfined")
    try:
        yield {"preexec_fn": netguard.enter(fd), "pass_fds": (fd,)}
    finally:
        os.close(fd)


def kill_tree(pid: int) -> None:
    """Kill a process and everything below it (a script's children leave its session or group)."""
    for member in sorted(descendants(pid)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(member, signal.SIGKILL)


def _read(stream: IO[bytes], limit: int = 4 * OUTPUT_LIMIT) -> str:
    """Return the start of an output file (SSM keeps only the first 24,000 characters anyway)."""
    stream.seek(0)
    return stream.read(limit).decode("utf-8", "replace")
