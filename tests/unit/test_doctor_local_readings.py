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


def test_a_hog_has_run_ten_seconds_wanting_the_cpu_most_of_its_life():
    now = 1000.0
    assert _sustained(ticks=int(12 * TICKS), start=int((now - 12) * TICKS), now=now)  # a busy loop, 12 s old
    assert not _sustained(ticks=int(3 * TICKS), start=int((now - 3) * TICKS), now=now)  # busy, but 3 s old
    assert not _sustained(ticks=int(20 * TICKS), start=int((now - 200) * TICKS), now=now)  # 10 % over its life
    # A loop on a crowded host: it got 2 s of its 12, and waited in the run queue for the other 10.
    assert _sustained(ticks=int(2 * TICKS), start=int((now - 12) * TICKS), now=now, demand_ns=12 * 10**9)
    assert not _sustained(ticks=int(2 * TICKS), start=int((now - 12) * TICKS), now=now, demand_ns=3 * 10**9)


def test_a_process_wants_what_it_ran_or_waited_to_run_never_less_than_it_used():
    from sre_workshop.diagnose.local.procs import Proc
    from sre_workshop.diagnose.local.readers import _demand

    before = Proc("R", 1, 1, ticks=0, start=0, demand_ns=0)
    crowded = Proc("R", 1, 1, ticks=int(0.1 * TICKS), start=0, demand_ns=9 * 10**8)  # 0.1 s run of 0.9 s wanted
    assert round(_demand(before, crowded, sample_s=1.0)) == 90
    threads = Proc("R", 1, 1, ticks=int(1.5 * TICKS), start=0, demand_ns=5 * 10**8)  # threads schedstat misses
    assert round(_demand(before, threads, sample_s=1.0)) == 150


def test_a_busy_loop_wants_a_whole_core_even_while_others_crowd_it():
    """Real processes: a loop beside a crowd of loops on this machine's cores gets a share of them, but its
    demand (ran or waited to run, /proc/PID/schedstat) is about a whole core."""
    from sre_workshop.diagnose.local.procs import pair
    from sre_workshop.diagnose.local.readers import _demand

    crowd = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(3 * (os.cpu_count() or 1))]
    try:
        before, after = pair(1.0)
        pid = crowd[0].pid
        used = 100 * (after.procs[pid].ticks - before.procs[pid].ticks) / TICKS / (after.taken - before.taken)
        wanted = _demand(before.procs[pid], after.procs[pid], after.taken - before.taken)
        assert used < 60 and wanted > 80, (used, wanted)
    finally:
        for busy in crowd:
            busy.kill()
            busy.wait()


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


def test_late_interval_metrics_are_filled_in_from_the_workers_the_machine_shows(tmp_path, monkeypatch):
    """When the app instance's reading comes late, so does the query by its workers' ids ("interval metrics"
    unknown): the query started at once for the workers the machine shows fills the memory in instead; a
    reading that came in time is never overridden."""
    from sre_workshop.diagnose.deadline import Readers
    from sre_workshop.diagnose.local import extras
    from sre_workshop.diagnose.model import Observations
    from sre_workshop.local.stack import Stack
    from sre_workshop.settings import Settings

    asked = []
    point = (1000.0, 12.0, 80.0, 3.0)

    def series(_ctl, ids, since):
        asked.append((ids, since))
        return {"sre-app#host#11": [point], "sre-app#host#12": []}  # 12: a worker with no interval yet

    monkeypatch.setattr(extras, "_worker_ids", lambda stack: ["sre-app#host#11", "sre-app#host#12"])
    monkeypatch.setattr(extras.appmetrics, "series", series)
    stack = Stack(Settings.from_env(state_dir=tmp_path))  # not running: its other readers find nothing
    for late, expected in ((True, {"sre-app#host#11": [point[:3]]}), (False, {"in": [(1.0, 2.0, 3.0)]})):
        obs = Observations(checked_at="2026-12-07T00:00:00+00:00", world="local")
        run = Readers(2.0, obs.unknown)
        finish = extras.start(stack, None, run, obs, memory_window_s=300.0)
        if late:
            obs.unknown["interval metrics"] = "did not answer within doctor's 2.5 s deadline"
        else:
            obs.memory = {"in": [(1.0, 2.0, 3.0)]}
        finish()
        assert obs.memory == expected and "interval metrics" not in obs.unknown
    assert [ids for ids, _ in asked] == [["sre-app#host#11", "sre-app#host#12"]] * 2
