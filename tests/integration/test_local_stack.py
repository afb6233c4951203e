"""`sre-workshop up` end to end: the whole topology as real processes, checked through the public entry points."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from sre_workshop.cli.main import ExitStatus
from sre_workshop.local.process import ProcessRecord, group_members
from sre_workshop.settings import BASE_PORTS, HealthCheck

from conftest import cli, eventually, http, moto_spec, port_offset, start_server, wait_for_leak_settings

# The test stacks run beside a developer's own stack on the default ports (conftest.port_offset).
OFFSET = port_offset(0)
APP = f"http://127.0.0.1:{BASE_PORTS['public-alb'] + OFFSET}"
CRM = f"http://127.0.0.1:{BASE_PORTS['public-alb-crm'] + OFFSET}"
NGINX = f"http://127.0.0.1:{BASE_PORTS['nginx'] + OFFSET}"
SRE_APP = f"http://127.0.0.1:{BASE_PORTS['sre-app'] + OFFSET}"



def records(state: Path) -> dict[str, ProcessRecord]:
    found = {}
    for path in (state / "run" / "pids").glob("*.json"):
        record = ProcessRecord.load(path)
        found[record.name] = record
    return found


def stack_pids(state: Path) -> set[int]:
    """Every live process of the stack: each component's process group."""
    return {pid for r in records(state).values() for pid in group_members(r.pid)}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    state = tmp_path_factory.mktemp("stack")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SRE_WORKSHOP_PORT_OFFSET", str(OFFSET))
        assert cli(state, "up", "--detach") == 0
        yield state
        cli(state, "down")


@pytest.fixture
def offset(monkeypatch):
    monkeypatch.setenv("SRE_WORKSHOP_PORT_OFFSET", str(OFFSET))


def test_status_json_reports_every_component_healthy(stack, offset, capsys):
    capsys.readouterr()
    assert cli(stack, "status", "--json") == 0
    status = json.loads(capsys.readouterr().out)
    names = [c["name"] for c in status["components"]]
    assert names == ["dynamodb", "dynamodb-endpoint", "sre-app", "crm-app", "private-alb", "nginx", "public-alb",
                     "aws-api", "cloudwatch-agent"]
    assert all(c["healthy"] and c["pid"] for c in status["components"])
    assert all(c["url"] for c in status["components"] if c["name"] != "cloudwatch-agent")  # it serves nothing
    assert status["endpoints"] == {"app": APP, "crm": CRM}
    groups = {t["target_group"]: t["state"] for t in status["targets"]}
    assert groups == {"PublicALBTargetGroup": "healthy", "CRMAppTargetGroup": "healthy",
                      "PrivateALBTargetGroup": "healthy"}


def test_app_answers_through_four_hops(stack):
    reply = http("GET", APP + "/")
    assert reply.status == 200
    assert reply.json()["message"] == "SRE Workshop App" and "memory_leak_size_mb" in reply.json()
    assert reply.headers["server"] == "nginx"


def test_crm_serves_the_seeded_customers(stack):
    page = http("GET", CRM + "/")
    assert page.status == 200 and page.text.count('href="/customers/cust-') >= 20
    api = http("GET", CRM + "/api/customers?limit=100").json()
    assert len(api["items"]) == 50 and all(c["customer_id"].startswith("cust-0000") for c in api["items"])
    assert http("GET", CRM + "/api/deals").json()["items"]


def test_fault_control_is_not_reachable_through_the_public_alb(stack):
    token = (stack / "run" / "fault-token").read_text()
    assert http("GET", APP + "/admin/leak", headers={"X-Fault-Token": token}).status == 403
    for path in ("/admin/faults", "//admin/faults", "/%61dmin/faults"):  # the CRM has no nginx in front
        assert http("GET", CRM + path, headers={"X-Fault-Token": token}).status == 403, path
    assert oct((stack / "run" / "fault-token").stat().st_mode & 0o777) == "0o600"


def test_the_stacks_token_controls_the_leak_on_the_apps_own_port(stack):
    token = (stack / "run" / "fault-token").read_text()
    auth = {"X-Fault-Token": token}
    reply = http("PUT", SRE_APP + "/admin/leak", {"mode": "off"}, headers=auth)
    assert reply.status == 200 and reply.json()["settings"]["mode"] == "off", reply.text
    try:
        wait_for_leak_settings(SRE_APP, token, mode="off")
        seen: dict[int, set[float]] = {}
        for _ in range(20):
            body = http("GET", APP + "/").json()
            seen.setdefault(body["worker_pid"], set()).add(body["memory_leak_size_mb"])
        assert all(len(sizes) == 1 for sizes in seen.values()), seen  # no worker grows any more
    finally:
        assert http("PUT", SRE_APP + "/admin/leak", {"mode": "request"}, headers=auth).status == 200


def test_killed_app_gives_503_until_restarted(stack, offset):
    app = records(stack)["sre-app"]
    os.killpg(app.pid, signal.SIGKILL)  # like `pkill -9 gunicorn`: master and workers
    started = time.monotonic()
    try:
        eventually(lambda: http("GET", SRE_APP + "/health").status == 0, timeout=5)  # the port refuses
        # Until the health checks notice, the target still counts as healthy and refuses connections: an
        # ALB answers 502 at once then (no retry), and so does the local one.
        first = http("GET", APP + "/")
        assert first.status == 502, (first.status, first.text, time.monotonic() - started)
        eventually(lambda: http("GET", APP + "/").status == 503, timeout=10)
        # The checks notice within (threshold + 1) intervals (the first may come a whole interval later); a
        # margin of one second for a loaded machine.
        check = HealthCheck()
        assert time.monotonic() - started < (check.unhealthy_threshold + 1) * check.interval_seconds + 1
        time.sleep(2)
        assert http("GET", APP + "/").status == 503, "nothing restarts it by itself"
    finally:  # the later tests need the app, whatever happened here
        assert cli(stack, "service", "restart", "sre-app") == 0
    eventually(lambda: http("GET", APP + "/").status == 200, timeout=10)


def test_killed_nginx_breaks_the_app_flow_but_not_the_crm(stack, offset):
    nginx = records(stack)["nginx"]
    os.killpg(nginx.pid, signal.SIGKILL)
    try:
        eventually(lambda: http("GET", NGINX + "/health").status == 0, timeout=5)  # the port refuses
        assert http("GET", APP + "/").status == 502
        assert http("GET", CRM + "/api/customers").status == 200
        eventually(lambda: http("GET", APP + "/").status == 503, timeout=10)  # once the target is unhealthy
    finally:
        assert cli(stack, "service", "start", "nginx") == 0
    eventually(lambda: http("GET", APP + "/").status == 200, timeout=10)


def test_logs_shows_a_components_logs(stack, offset, capsys):
    http("GET", APP + "/", headers={"X-Request-ID": "find-me-in-logs"})
    time.sleep(0.5)
    capsys.readouterr()
    assert cli(stack, "logs", "sre-app") == 0
    assert "find-me-in-logs" in capsys.readouterr().out


def test_unknown_component_is_one_line_and_usage_exit(stack, offset, capsys):
    assert cli(stack, "service", "restart", "mysql") == ExitStatus.USAGE
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "mysql" in err


def test_data_survives_down_and_up_and_nothing_is_left_running(tmp_path, monkeypatch):
    monkeypatch.setenv("SRE_WORKSHOP_PORT_OFFSET", str(OFFSET + 100))
    app, crm = f"http://127.0.0.1:{8000 + OFFSET + 100}", f"http://127.0.0.1:{8080 + OFFSET + 100}"
    try:
        assert cli(tmp_path, "up", "--detach") == 0
        created = http("POST", crm + "/api/customers", {"name": "Survivor", "email": "s@example.com"}).json()
        http("DELETE", crm + "/api/customers/cust-000001")
        for _ in range(5):
            http("GET", app + "/")
        pids = stack_pids(tmp_path)
        assert len(pids) >= 9  # 7 components, plus Gunicorn and nginx workers

        assert cli(tmp_path, "down") == 0
        assert not [p for p in pids if Path(f"/proc/{p}").exists() and not _zombie(p)]
        assert cli(tmp_path, "down") == 0  # idempotent

        assert cli(tmp_path, "up", "--detach") == 0
        assert http("GET", crm + f"/api/customers/{created['customer_id']}").json()["name"] == "Survivor"
        assert http("GET", crm + "/api/customers/cust-000001").status == 404, "seeding did not undo a delete"
    finally:
        assert cli(tmp_path, "down") == 0


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def test_port_in_use_is_named(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SRE_WORKSHOP_PORT_OFFSET", str(OFFSET + 200))
    port = 8080 + OFFSET + 200
    with socket.socket() as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        holder.bind(("127.0.0.1", port))
        holder.listen()
        assert cli(tmp_path, "up", "--detach") == ExitStatus.PORT_IN_USE
    err = capsys.readouterr().err
    assert f"port {port}" in err and "Traceback" not in err
    assert not stack_pids(tmp_path), "nothing was started"


def test_recovers_from_a_crashed_run(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SRE_WORKSHOP_PORT_OFFSET", str(OFFSET + 300))
    assert cli(tmp_path, "up", "--detach") == 0
    for record in records(tmp_path).values():  # a crash: everything dies, the records stay behind
        os.killpg(record.pid, signal.SIGKILL)
    eventually(lambda: not stack_pids(tmp_path), timeout=10)
    capsys.readouterr()
    try:
        assert cli(tmp_path, "up", "--detach") == 0
        assert "recovered" in capsys.readouterr().err
        assert http("GET", f"http://127.0.0.1:{8000 + OFFSET + 300}/").status == 200
    finally:
        cli(tmp_path, "down")


def test_missing_nginx_says_how_to_install(tmp_path, monkeypatch, capsys):
    import sre_workshop.local.process as process

    real_which = process.shutil.which
    monkeypatch.setattr(process.shutil, "which", lambda name, path=None: None if name == "nginx" else real_which(name))
    assert cli(tmp_path, "up", "--detach") == ExitStatus.MISSING_PROGRAM
    err = capsys.readouterr().err
    assert "nginx is not installed" in err and "apt-get install -y nginx" in err


def run_foreground(state: Path, offset: int):
    """Start `sre-workshop up` in the foreground; return the process and a list that collects its stderr."""
    env = {**os.environ, "SRE_WORKSHOP_PORT_OFFSET": str(offset)}
    proc = subprocess.Popen([sys.executable, "-m", "sre_workshop.cli.main", "--state-dir", str(state), "up"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stderr), daemon=True)
    reader.start()
    return proc, lines, reader


@pytest.mark.parametrize(("when", "signum"), [("running", signal.SIGINT), ("starting", signal.SIGINT),
                                              ("running", signal.SIGTERM), ("running", signal.SIGHUP)])
def test_foreground_up_stops_everything_on_ctrl_c_kill_or_hangup(tmp_path, when, signum):
    offset = OFFSET + 400
    proc, lines, reader = run_foreground(tmp_path, offset)
    try:
        if when == "running":
            eventually(lambda: proc.poll() is not None or any("press Ctrl-C" in line for line in lines), timeout=30)
            assert proc.poll() is None, "".join(lines)
        else:
            eventually(lambda: len(stack_pids(tmp_path)) >= 3, timeout=30)
        pids = stack_pids(tmp_path)
        proc.send_signal(signum)
        assert proc.wait(timeout=60) == (0 if when == "running" else ExitStatus.INTERRUPTED), "".join(lines)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        reader.join(timeout=10)
        proc.stderr.close()
        with pytest.MonkeyPatch.context() as mp:  # whatever happened, leave no stack behind
            mp.setenv("SRE_WORKSHOP_PORT_OFFSET", str(offset))
            cli(tmp_path, "down")
    assert any("stopping" in line for line in lines)
    assert not [p for p in pids if Path(f"/proc/{p}").exists() and not _zombie(p)]
    if when == "running":
        assert (tmp_path / "data" / "dynalite").is_dir(), "the engine's data is on disk"


def test_an_external_dynamodb_endpoint_replaces_the_emulator(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SRE_WORKSHOP_PORT_OFFSET", str(OFFSET + 500))
    crm = f"http://127.0.0.1:{8080 + OFFSET + 500}"
    external = start_server(moto_spec(tmp_path))  # an empty engine: up creates the tables and seeds them
    try:
        assert cli(tmp_path, "up", "--detach", "--dynamodb-endpoint", external.url) == 0
        assert "dynamodb" not in records(tmp_path)  # no emulator of its own
        assert len(http("GET", crm + "/api/customers?limit=100").json()["items"]) >= 50
        capsys.readouterr()
        assert cli(tmp_path, "status", "--json") == 0
        names = [c["name"] for c in json.loads(capsys.readouterr().out)["components"]]
        assert names[0] == "dynamodb-endpoint"
    finally:
        cli(tmp_path, "down")
        external.stop()


def test_a_bad_external_endpoint_is_a_usage_error(tmp_path, capsys):
    assert cli(tmp_path, "up", "--detach", "--dynamodb-endpoint", "ftp://example") == ExitStatus.USAGE
    assert "http://host:port" in capsys.readouterr().err
