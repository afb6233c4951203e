"""doctor's local readings: probes name why nothing answered (over real loopback sockets), and only a process
that has burned CPU for a while counts as a CPU hog."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading

from sre_workshop.diagnose.local.probes import failure, probe
from sre_workshop.diagnose.local.readers import TICKS, _sustained, host_cpu
from sre_workshop.local.process import free_port


def test_nothing_listening_is_refused():
    assert probe("nginx", "nginx /", f"http://127.0.0.1:{free_port()}/").error == "refused"


def test_a_server_that_closes_before_answering_is_a_reset():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()

        def hang_up() -> None:
            conn, _ = listener.accept()
            conn.recv(1024)
            conn.close()  # the request was read, no answer: a process that died mid-request

        threading.Thread(target=hang_up, daemon=True).start()
        found = probe("sre-app", "sre-app /", f"http://127.0.0.1:{listener.getsockname()[1]}/")
    assert (found.status, found.error) == (0, "reset")


def test_a_name_that_does_not_resolve_is_dns_not_refused():
    assert failure(socket.gaierror(-2, "Name or service not known")) == "dns"
    assert failure(TimeoutError()) == "timeout" and failure(OSError("no route")) == "unreachable"


def test_a_process_that_just_started_burning_is_not_yet_a_cpu_hog():
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        _host, burners = host_cpu(set())
        assert busy.pid not in [pid for pid, _name, _cpu in burners], "a second old: a start-up, not a runaway"
    finally:
        busy.kill()
        busy.wait()


def test_a_hog_has_run_ten_seconds_busy_most_of_its_life():
    now = 1000.0
    assert _sustained(ticks=int(12 * TICKS), start=int((now - 12) * TICKS), now=now)  # a busy loop, 12 s old
    assert not _sustained(ticks=int(3 * TICKS), start=int((now - 3) * TICKS), now=now)  # busy, but 3 s old
    assert not _sustained(ticks=int(20 * TICKS), start=int((now - 200) * TICKS), now=now)  # 10 % over its life


def test_a_busy_process_counts_for_the_stacks_host_only_when_it_runs_there(tmp_path):
    from sre_workshop.diagnose.local.readers import _on_host
    from sre_workshop.local.process import HOST_ENV

    env = {k: v for k, v in os.environ.items() if k != HOST_ENV}
    ours = subprocess.Popen(["sleep", "30"], env={**env, HOST_ENV: str(tmp_path)})
    theirs = subprocess.Popen(["sleep", "30"], env=env)
    try:
        assert _on_host(ours.pid, str(tmp_path)) and not _on_host(ours.pid, str(tmp_path / "other"))
        assert not _on_host(theirs.pid, str(tmp_path))
    finally:
        for process in (ours, theirs):
            process.kill()
            process.wait()
