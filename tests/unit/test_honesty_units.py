"""The examinee's side of an evaluated run, in-process: which tools it gets, its environment and command,
the ports it cannot reach (a real child process on real sockets), and what counts as naming a fault."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from honesty import leaks, terms
from sre_workshop.errors import UsageError
from sre_workshop.faults.catalogue import catalogue
from sre_workshop.mcp import examinee
from sre_workshop.scenarios import isolation, netguard

ORACLES = {"diagnose", "clear_fault", "inject_fault", "list_incidents"}


def test_an_examinee_gets_signals_actions_and_submit_and_no_oracle():
    assert not ORACLES & set(examinee.names(assist=False))
    assert set(examinee.names(assist=True)) - set(examinee.names(assist=False)) == {"diagnose"}
    offered = {name: (None, "", None) for name in [*ORACLES, *examinee.names(assist=True), "something_new"]}
    assert set(examinee.select(offered, assist=False)) == set(examinee.names(assist=False))
    assert not leaks(examinee.instructions(assist=True))


def test_the_agents_environment_is_ours_plus_what_the_user_passes(monkeypatch, tmp_path):
    monkeypatch.setenv("SRE_WORKSHOP_STATE_DIR", "/secret/state")
    monkeypatch.setenv("MY_MODEL_KEY", "k")
    env = isolation.agent_env("http://127.0.0.1:1/mcp", 60, tmp_path, ("MY_MODEL_KEY",))
    assert env[isolation.URL_ENV] == "http://127.0.0.1:1/mcp" and env[isolation.LIMIT_ENV] == "60"
    assert env["MY_MODEL_KEY"] == "k" and env["HOME"] == str(tmp_path)
    assert "SRE_WORKSHOP_STATE_DIR" not in env and not [v for v in env.values() if "/secret/" in v]


def test_the_agents_command_is_resolved_or_refused_in_one_line():
    argv = isolation.agent_argv("python3 -m agent --fast", "http://u")
    assert argv[0].startswith("/") and argv[1:] == ["-m", "agent", "--fast", "http://u"]
    with pytest.raises(UsageError, match="no program 'no-such-agent-x' on PATH"):
        isolation.agent_argv("no-such-agent-x", "http://u")
    with pytest.raises(UsageError, match="needs a command"):
        isolation.agent_argv("  ", "http://u")


def test_a_confined_child_cannot_connect_to_a_denied_port_but_can_to_others():
    assert netguard.abi() >= netguard.NET_ABI, "this kernel has no Landlock network rules (Linux >= 6.7)"
    denied, allowed = socket.socket(), socket.socket()
    for listener in (denied, allowed):
        listener.bind(("127.0.0.1", 0))
        listener.listen()
    ports = [str(s.getsockname()[1]) for s in (denied, allowed)]
    code = ("import socket, sys\nfor p in sys.argv[1:]:\n    try:\n"
            "        socket.create_connection(('127.0.0.1', int(p)), timeout=2); print('open')\n"
            "    except OSError as e: print(type(e).__name__)")
    fd = netguard.ruleset({int(ports[0])})
    try:
        child = subprocess.run([sys.executable, "-c", code, *ports], preexec_fn=netguard.enter(fd),
                               pass_fds=(fd,), capture_output=True, text=True, timeout=30, check=True)
    finally:
        os.close(fd)
        denied.close()
        allowed.close()
    assert child.stdout.split() == ["PermissionError", "open"], child.stderr


def test_a_confined_child_of_our_own_user_cannot_read_the_state_dir_but_can_read_beside_it(tmp_path):
    state, beside = tmp_path / "state", tmp_path / "beside"
    for folder in (state / "run", beside):
        folder.mkdir(parents=True)
    (state / "run" / "state.json").write_text("{}")
    (beside / "notes").write_text("hi")
    code = ("import sys\nfor p in sys.argv[1:]:\n    try:\n        open(p).read(); print('read')\n"
            "    except OSError as e: print(type(e).__name__)")
    fd = netguard.ruleset({1}, state)
    assert fd is not None
    try:  # the same user as ours (root included): Landlock holds whoever the child is
        child = subprocess.run([sys.executable, "-c", code, str(state / "run" / "state.json"), str(beside / "notes")],
                               preexec_fn=netguard.enter(fd), pass_fds=(fd,), capture_output=True, text=True,
                               timeout=30, check=True)
    finally:
        os.close(fd)
    assert child.stdout.split() == ["PermissionError", "read"], child.stderr


def test_a_fault_is_named_by_any_spelling_but_not_by_what_the_reader_said():
    names = [n for n in catalogue() if "-" in n]
    assert len(terms()) >= 2 * len(names) and names
    assert leaks("incident inc-20261205T0101-nginx-crash-3f2a") == {"nginx-crash"}
    assert leaks("python -m sre_workshop.faults.security_group_block.x") == {"security-group-block"}
    assert leaks("server x 127.0.0.1:9 check # fault nginx-timeout") == {"# fault", "nginx-timeout"}
    assert leaks("no log group 'cpu-burn'", echo=("cpu-burn",)) == set()
    assert leaks('{"memory_leak_size_mb": 12, "p99": "latency"}') == set()
