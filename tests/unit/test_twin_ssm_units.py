"""Run Command on the local instances, without a stack: the view's bwrap argv, the shims, the broker's
systemctl, scripts really run in a view, and the SSM API's validation and answers (with a stand-in runner)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from sre_workshop.local.components import cache_home
from sre_workshop.settings import Settings
from sre_workshop.state import private_dir
from sre_workshop.twin import hostview, shim, ssm
from sre_workshop.twin.broker import Broker
from sre_workshop.twin.protocol import Call

needs_bwrap = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")
PHYSICAL = {"NginxInstance1": "i-0nginx", "AppServerInstance1": "i-0app", "CRMAppInstance": "i-0crm",
            "PublicALB": "arn:alb"}


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings.from_env({}, state_dir=tmp_path / "state")


def pairs(args: list[str], option: str) -> dict[str, str]:
    """Return target -> source of every `option SOURCE TARGET` in a bwrap argv."""
    return {args[i + 2]: args[i + 1] for i, a in enumerate(args) if a == option}


# --- the view's argv ---------------------------------------------------------------------------------------

@needs_bwrap
def test_nginx_view_binds_its_config_directory_and_logs_writable(settings, tmp_path):
    args = hostview.argv(settings, "NginxInstance1", tmp_path / "view", ["/bin/true"])
    writable = pairs(args, "--bind")
    assert writable["/etc/nginx"] == str(settings.run_dir / "etc-nginx")
    assert writable["/var/log/nginx/access.log"] == str(settings.logs_dir / "nginx-access.log")
    assert writable[hostview.VIEW_DIR] == str(tmp_path / "view")
    assert args[:5] == [shutil.which("bwrap"), "--ro-bind", "/", "/", "--dev"]
    assert args[-3:] == ["--chdir", "/", "/bin/true"]
    assert "/opt/sre-app" not in pairs(args, "--ro-bind")


@needs_bwrap
def test_app_view_has_its_code_read_only_and_no_nginx(settings, tmp_path):
    args = hostview.argv(settings, "AppServerInstance1", tmp_path / "view", ["/bin/true"])
    read_only = pairs(args, "--ro-bind")
    assert read_only["/opt/sre-app"] == str(settings.apps_dir / "sre_app")
    assert "/etc/nginx" not in read_only and "/etc/nginx" not in pairs(args, "--bind")
    assert pairs(args, "--bind")["/var/log/sre-app/app.log"] == str(settings.logs_dir / "sre-app.json.log")


def test_rebuild_puts_host_entries_back_except_replaced(tmp_path):
    (tmp_path / "kept").mkdir()
    (tmp_path / "gone").mkdir()
    (tmp_path / "link").symlink_to("kept")
    args = hostview.rebuild(str(tmp_path), {str(tmp_path / "gone")})
    assert args[:2] == ["--tmpfs", str(tmp_path)]
    assert ["--ro-bind", str(tmp_path / "kept"), str(tmp_path / "kept")] == args[2:5]
    assert ["--symlink", "kept", str(tmp_path / "link")] == args[5:8]
    assert str(tmp_path / "gone") not in args


def test_shims_call_the_broker_through_this_python(settings, tmp_path):
    hostview.write_view(settings, "CRMAppInstance", tmp_path, "echo hi\n")
    text = (tmp_path / "bin" / "systemctl").read_text()
    assert "-S -m sre_workshop.twin.shim systemctl /run/sre-workshop/broker.sock" in text
    assert (tmp_path / "_script.sh").read_text() == "echo hi\n"
    etc = settings.run_dir / "hosts" / "CRMAppInstance" / "etc-sre-workshop"
    assert "LOG_FILE=/var/log/crm-app/app.log" in (etc / "crm-app.env").read_text()


def test_the_processes_recorded_on_an_instance_are_in_its_ps(settings, tmp_path):
    other = subprocess.Popen(["sleep", "30"], start_new_session=True)
    try:
        pids = settings.run_dir / "hosts" / "AppServerInstance1" / "jobs" / "processes.pids"
        pids.parent.mkdir(parents=True)
        pids.write_text(f"{other.pid} 1\n")
        with Broker(settings, "AppServerInstance1", tmp_path / "a.sock") as app, \
                Broker(settings, "NginxInstance1", tmp_path / "n.sock") as nginx:
            assert other.pid in app.pids() and other.pid not in nginx.pids()
    finally:
        other.kill()
        other.wait()


def test_ps_filter_keeps_header_and_the_instance_lines():
    output = "UID PID PPID CMD\nme 10 1 nginx\nme 11 10 nginx: worker\nme 12 1 other\n"
    assert shim.filter_ps(output, {10, 11}) == "UID PID PPID CMD\nme 10 1 nginx\nme 11 10 nginx: worker\n"
    assert shim.filter_ps("RSS\n12\n", {1}) == "RSS\n12\n"  # no PID column: left whole


# --- systemctl, answered by the broker ----------------------------------------------------------------------

def test_systemctl_refuses_units_of_other_instances(settings, tmp_path):
    broker = Broker(settings, "NginxInstance1", tmp_path / "b.sock")
    with broker:
        assert broker.handle("systemctl", ["restart", "sre-app"]) == (
            "", "Failed to restart sre-app.service: Unit sre-app.service not found.\n", 5)
        assert broker.handle("systemctl", ["status", "sre-app.service"]) == (
            "", "Unit sre-app.service could not be found.\n", 4)
        assert broker.handle("systemctl", ["is-active", "nginx"]) == ("inactive\n", "", 3)
        assert broker.handle("systemctl", ["--quiet", "is-active", "nginx"]) == ("", "", 3)
        assert broker.handle("systemctl", ["status", "nginx"])[0].startswith("● nginx.service")
        assert broker.handle("systemctl", ["list-units"])[2] == 1


def _recorded(settings, name: str, argv: list[str]) -> subprocess.Popen:
    """A process in a group of its own, recorded as component `name` (as the stack records its units)."""
    from sre_workshop.local.process import ProcessRecord, proc_stat

    process = subprocess.Popen(argv, start_new_session=True)
    path = settings.run_dir / "pids" / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    ProcessRecord(name=name, pid=process.pid, start_time=int(proc_stat(process.pid)[19]), argv=argv).save(path)
    return process


def test_systemctl_kill_signals_the_unit_s_processes_which_then_read_failed(settings, tmp_path):
    process = _recorded(settings, "nginx", ["sleep", "30"])
    try:
        with Broker(settings, "NginxInstance1", tmp_path / "b.sock") as broker:
            assert broker.handle("systemctl", ["is-active", "nginx"]) == ("active\n", "", 0)
            assert broker.handle("systemctl", ["kill", "--signal=SIGKIL", "nginx"])[2] == 1
            assert broker.handle("systemctl", ["kill", "-s", "KILL", "sre-app"]) == (
                "", "Failed to kill unit sre-app.service: Unit sre-app.service not loaded.\n", 1)
            assert broker.handle("systemctl", ["kill", "--signal=SIGKILL", "nginx.service"]) == ("", "", 0)
            assert process.wait(timeout=5) == -9
            assert broker.handle("systemctl", ["is-active", "nginx"]) == ("failed\n", "", 3)
            assert "Active: failed" in broker.handle("systemctl", ["status", "nginx"])[0]
            assert broker.handle("systemctl", ["reset-failed", "nginx"]) == ("", "", 0)
            assert broker.handle("systemctl", ["reset-failed", "crm-app"])[2] == 1
            assert broker.handle("systemctl", ["kill", "-s", "9", "nginx"]) == ("", "", 0), "nothing left to signal"
    finally:
        process.kill()
        process.wait()


def test_systemctl_show_gives_the_main_pid_as_doctor_reads_it(settings, tmp_path):
    """observe-host.sh asks `systemctl show -p MainPID --value UNIT` (and ControlGroup): the recorded main
    process of a running unit, 0 for one that does not run, and no cgroup (the script then walks the pids)."""
    from sre_workshop.local.process import ProcessRecord, start_time

    (settings.run_dir / "pids").mkdir(parents=True)
    ProcessRecord("nginx", os.getpid(), start_time(os.getpid()), ["nginx"]).save(settings.run_dir / "pids/nginx.json")
    broker = Broker(settings, "NginxInstance1", tmp_path / "b.sock")
    with broker:
        assert broker.handle("systemctl", ["show", "-p", "MainPID", "--value", "nginx"]) == (f"{os.getpid()}\n", "", 0)
        assert broker.handle("systemctl", ["show", "--property=MainPID,ActiveState", "nginx.service"]) == (
            f"MainPID={os.getpid()}\nActiveState=active\n", "", 0)
        assert broker.handle("systemctl", ["show", "-p", "ControlGroup", "--value", "nginx"]) == ("\n", "", 0)
        assert broker.handle("systemctl", ["show", "-p", "MainPID", "--value", "sre-app"]) == ("0\n", "", 0)


def test_a_unit_whose_process_died_without_a_stop_is_failed(settings, tmp_path):
    """As systemd keeps a unit killed by a signal: `is-active` says failed (doctor: exited), not inactive."""
    from sre_workshop.local.process import ProcessRecord, start_time

    (settings.run_dir / "pids").mkdir(parents=True)
    gone = subprocess.Popen(["true"])
    gone.wait()
    ProcessRecord("nginx", gone.pid, start_time(os.getpid()) + 1, ["nginx"]).save(settings.run_dir / "pids/nginx.json")
    with Broker(settings, "NginxInstance1", tmp_path / "b.sock") as broker:
        assert broker.handle("systemctl", ["is-active", "nginx"]) == ("failed\n", "", 3)
        assert broker.handle("systemctl", ["show", "-p", "ActiveState", "--value", "nginx"]) == ("failed\n", "", 0)


# --- scripts really run in a view ---------------------------------------------------------------------------

@needs_bwrap
def test_a_script_sees_the_instance_paths_and_its_systemctl(settings):
    settings.logs_dir.mkdir(parents=True)
    (settings.logs_dir / "crm-app.json.log").write_text('{"msg": "hello"}\n')
    script = ("cat /var/log/crm-app/app.log; ls /opt/crm-app/wsgi.py; pwd; echo \"PATH=$PATH\"; "
              "ls /var/log; systemctl status sre-app; echo status=$?; systemctl is-active crm-app; exit 3\n")
    result = hostview.run(settings, "CRMAppInstance", script, timeout=30)
    assert result.code == 3 and not result.timed_out
    lines = result.stdout.splitlines()
    assert lines[:3] == ['{"msg": "hello"}', "/opt/crm-app/wsgi.py", "/"]
    assert lines[3].startswith("PATH=/run/sre-workshop/bin:")
    assert lines[4:] == ["crm-app", "status=4", "inactive"]
    assert result.stderr == "Unit sre-app.service could not be found.\n"


@needs_bwrap
def test_a_process_a_script_starts_outlives_it_recorded_in_the_instance_s_jobs_dir(settings):
    """busy.sh as Run Command runs it: the processes outlive the command, in the instance's /run corner,
    counted as the instance's and carrying the stack's host and the instance in their environment."""
    from sre_workshop.aws.control import JOBS_DIR
    from sre_workshop.steps import STEPS_DIR
    from sre_workshop.twin.broker import Broker
    from sre_workshop.twin.instances import EXTRA_PID_FILES

    busy = (STEPS_DIR / "busy.sh").read_text()
    script = f"cat > /tmp/busy.sh <<'END'\n{busy}END\nsh /tmp/busy.sh start 1 20 {JOBS_DIR}/processes.pids\n"
    result = hostview.run(settings, "AppServerInstance1", script, timeout=30)
    assert result.code == 0, result.stderr
    pidfile = settings.run_dir / EXTRA_PID_FILES["AppServerInstance1"][0]
    (pid,) = [int(line.split()[0]) for line in pidfile.read_text().splitlines()]
    try:
        assert Path(f"/proc/{pid}").exists(), "it outlived the command"
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        assert argv.startswith("timeout 20 sh -c while :; do :; done worker"), argv
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        assert b"SRE_WORKSHOP_INSTANCE=AppServerInstance1" in environ
        with Broker(settings, "AppServerInstance1", settings.state_dir / "b.sock") as broker:
            assert pid in broker.pids()
        stopped = hostview.run(settings, "AppServerInstance1", f"{script.split('sh /tmp')[0]}"
                               f"sh /tmp/busy.sh stop {JOBS_DIR}/processes.pids\n", timeout=30)
        assert stopped.code == 0, stopped.stderr
        from sre_workshop.local.process import proc_stat

        assert not pidfile.exists() and (proc_stat(pid) or ["Z"])[0] == "Z"
    finally:
        subprocess.run(["kill", str(pid)], capture_output=True, check=False)


@needs_bwrap
def test_a_script_cannot_read_the_examiners_directory():
    # Not under /tmp: the view's private /tmp would hide a state directory there anyway.
    root = Path(tempfile.mkdtemp(prefix="sre-view-test-", dir=cache_home()))
    try:
        settings = Settings.from_env({}, state_dir=root / "state")
        private_dir(settings.examiner_dir)
        (settings.examiner_dir / "lab.json").write_text('{"scenario": "answer"}')
        settings.run_dir.mkdir(parents=True)
        (settings.run_dir / "state.json").write_text("{}")
        examiner, run = settings.examiner_dir, settings.run_dir
        script = f"cat {examiner}/lab.json; ls -A {examiner}; cat {run}/state.json\n"
        result = hostview.run(settings, "AppServerInstance1", script, timeout=30)
        assert result.stdout == "{}" and "answer" not in result.stdout + result.stderr, result
    finally:
        shutil.rmtree(root)


@needs_bwrap
def test_a_script_cannot_write_the_host_and_an_edit_of_nginx_conf_lands_in_the_stack(settings):
    (settings.run_dir / "etc-nginx").mkdir(parents=True)
    (settings.run_dir / "etc-nginx" / "nginx.conf").write_text("proxy_read_timeout 60s;\n")
    script = ("sed -i 's/60s/5s/' /etc/nginx/nginx.conf && touch /usr/x 2>/dev/null || echo read-only; "
              "touch /tmp/private && echo tmp-ok\n")
    result = hostview.run(settings, "NginxInstance1", script, timeout=30)
    assert result.stdout == "read-only\ntmp-ok\n", result.stderr
    assert (settings.run_dir / "etc-nginx" / "nginx.conf").read_text() == "proxy_read_timeout 5s;\n"
    assert not Path("/tmp/private").exists()


@needs_bwrap
def test_a_script_past_its_timeout_is_killed_with_its_children(settings):
    started = time.monotonic()
    seconds = f"300.{os.getpid()}"  # this run's sleeps only: other tests on the machine may sleep 300 too
    result = hostview.run(settings, "NginxInstance1", f"sleep {seconds} & sleep {seconds}\n", timeout=1)
    assert result.timed_out and time.monotonic() - started < 10
    time.sleep(0.2)
    assert not [p for p in Path("/proc").glob("[0-9]*") if _cmdline(p) == f"sleep\x00{seconds}\x00"]


def _cmdline(proc: Path) -> str:
    try:
        return (proc / "cmdline").read_text()
    except OSError:
        return ""


# --- the SSM API ---------------------------------------------------------------------------------------------

def fake_runner(settings, logical, script, timeout) -> ssm.Result:
    if "exit 3" in script:
        return ssm.Result("", "boom\n", 3)
    if "sleep" in script:
        return ssm.Result("", "", -9, timed_out=True)
    return ssm.Result(f"{logical}\n" + "x" * 30000, "", 0)


@pytest.fixture
def run(settings) -> ssm.RunCommand:
    return ssm.RunCommand(settings, PHYSICAL, fake_runner)


def call(run: ssm.RunCommand, operation: str, **params) -> tuple[int, dict]:
    handler = run.handlers()[("ssm", operation)]
    status, _, body = handler(Call("ssm", operation, "json", "key", "us-east-1", b"", params), {})
    return status, json.loads(body)


def send(run: ssm.RunCommand, commands: list[str], instance: str = "i-0nginx", **params) -> str:
    status, body = call(run, "SendCommand", InstanceIds=[instance], DocumentName="AWS-RunShellScript",
                        Parameters={"commands": commands}, **params)
    assert status == 200, body
    return body["Command"]["CommandId"]


def finished(run: ssm.RunCommand, command_id: str, instance: str = "i-0nginx") -> dict:
    for _ in range(100):
        status, body = call(run, "GetCommandInvocation", CommandId=command_id, InstanceId=instance)
        if status == 200 and body["Status"] not in ("Pending", "InProgress"):
            return body
        time.sleep(0.02)
    raise AssertionError("the invocation did not finish")


@pytest.mark.parametrize(("params", "code"), [
    ({"InstanceIds": ["i-0nope"], "DocumentName": "AWS-RunShellScript", "Parameters": {"commands": ["id"]}},
     "InvalidInstanceId"),
    ({"InstanceIds": ["arn:alb"], "DocumentName": "AWS-RunShellScript", "Parameters": {"commands": ["id"]}},
     "InvalidInstanceId"),
    ({"InstanceIds": ["i-0nginx"], "DocumentName": "AWS-RunPowerShellScript", "Parameters": {"commands": ["id"]}},
     "InvalidDocument"),
    ({"InstanceIds": ["i-0nginx"], "DocumentName": "AWS-RunShellScript", "Parameters": {}}, "InvalidParameters"),
    ({"InstanceIds": ["i-0nginx"], "DocumentName": "AWS-RunShellScript",
      "Parameters": {"commands": ["id"], "executionTimeout": ["0"]}}, "InvalidParameters"),
    ({"InstanceIds": ["i-0nginx"], "DocumentName": "AWS-RunShellScript",
      "Parameters": {"commands": ["id"], "shell": ["zsh"]}}, "InvalidParameters"),
])
def test_send_command_is_validated_as_ssm_does(run, params, code):
    status, body = call(run, "SendCommand", **params)
    assert (status, body["__type"]) == (400, code)
    assert call(run, "ListCommands")[1]["Commands"] == []


def test_invocations_report_status_code_and_output_cut_as_ssm_does(run):
    ok = finished(run, send(run, ["echo"]))
    assert (ok["Status"], ok["StatusDetails"], ok["ResponseCode"]) == ("Success", "Success", 0)
    assert ok["StandardOutputContent"].startswith("NginxInstance1\n") and len(ok["StandardOutputContent"]) == 24000
    failed = finished(run, send(run, ["exit 3"]))
    assert (failed["Status"], failed["ResponseCode"], failed["StandardErrorContent"]) == ("Failed", 3, "boom\n")
    timed_out = finished(run, send(run, ["sleep 9"]))
    assert (timed_out["Status"], timed_out["StatusDetails"]) == ("TimedOut", "ExecutionTimedOut")


def test_list_calls_and_unknown_invocations(run):
    first = send(run, ["exit 3"])
    finished(run, first)
    second = send(run, ["echo"], instance="i-0crm")
    finished(run, second, "i-0crm")
    _, body = call(run, "ListCommandInvocations", Details=True)
    rows = body["CommandInvocations"]
    assert [r["CommandId"] for r in rows] == [second, first]
    assert rows[0]["CommandPlugins"][0]["Output"] == ("CRMAppInstance\n" + "x" * 30000)[:2500]
    assert rows[1]["CommandPlugins"][0]["Output"] == "\n----------ERROR-------\nboom\n"
    assert call(run, "ListCommandInvocations", CommandId=first)[1]["CommandInvocations"][0]["CommandPlugins"] == []
    assert call(run, "ListCommands", InstanceId="i-0crm")[1]["Commands"][0]["Status"] == "Success"
    assert call(run, "ListCommands", CommandId=first)[1]["Commands"][0]["ErrorCount"] == 1
    assert call(run, "GetCommandInvocation", CommandId=first, InstanceId="i-0crm")[1]["__type"] == \
        "InvocationDoesNotExist"
    assert call(run, "ListCommands", CommandId="nope")[1]["__type"] == "InvalidCommandId"
