"""The CLI's error model, output and state, in process (no stack running)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from sre_workshop.cli.main import main
from sre_workshop.errors import ConfigTemplateError, ExitStatus, StackBusy, StateError, UsageError, WorkshopError
from sre_workshop.local.configs import apply_overlays, write_configs
from sre_workshop.local.stack import Stack
from sre_workshop.settings import Settings
from sre_workshop.state import Overlay, StackLock, StateStore


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings.from_env({}, state_dir=tmp_path / "state")


def test_every_expected_error_has_its_own_status_and_code():
    assert issubclass(StackBusy, WorkshopError) and StackBusy.exit_status == ExitStatus.BUSY
    assert UsageError("x").to_dict() == {"error": "usage", "message": "x", "exit_status": 2}


def test_an_unexpected_value_error_is_not_called_a_usage_error(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(Stack, "status", lambda self, *_: (_ for _ in ()).throw(ValueError("boom")))
    code, _, err = run(capsys, "--state-dir", str(tmp_path), "status")
    assert code == ExitStatus.ERROR
    assert err.count("\n") == 1 and "unexpected error" in err and "--traceback" in err
    code, _, err = run(capsys, "--state-dir", str(tmp_path), "--traceback", "status")
    assert "Traceback" in err and "boom" in err


def test_ctrl_c_exits_130(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(Stack, "status", lambda self, *_: (_ for _ in ()).throw(KeyboardInterrupt))
    assert run(capsys, "--state-dir", str(tmp_path), "status")[0] == ExitStatus.INTERRUPTED


def test_bad_options_are_usage_errors_in_one_line(tmp_path, capsys):
    code, _, err = run(capsys, "--state-dir", str(tmp_path), "service", "reboot", "nginx")
    assert code == ExitStatus.USAGE and "reboot" in err and "Traceback" not in err
    code, _, err = run(capsys, "--state-dir", str(tmp_path), "logs", "mysql")
    assert code == ExitStatus.USAGE and err.count("\n") == 1 and "mysql" in err and "crm-app" in err


def test_status_of_a_stack_that_never_ran_is_json_and_writes_nothing(tmp_path, capsys, monkeypatch):
    # Creating a Stack needs no nginx or haproxy and writes no token: status, logs and down work anywhere.
    monkeypatch.setenv("PATH", "/nonexistent")
    state = tmp_path / "never"
    code, out, _ = run(capsys, "--state-dir", str(state), "status", "--json")
    status = json.loads(out)
    assert code == ExitStatus.UNHEALTHY and status["healthy"] is False
    assert {p["kind"] for p in status["problems"]} == {"not-running"}
    assert [c["state"] for c in status["components"]] == ["stopped"] * 9
    code, out, _ = run(capsys, "--state-dir", str(state), "down", "--json")
    assert code == 0 and json.loads(out) == {"stopped": []}
    assert not state.exists()


def test_a_state_dir_that_cannot_be_made_is_named(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    code, _, err = run(capsys, "--state-dir", str(blocker / "state"), "up", "--detach")
    assert code == ExitStatus.STATE and err.count("error:") == 1
    assert str(blocker / "state") in err.strip().splitlines()[-1]  # one line (after the progress lines)


def test_a_closed_stdout_is_not_an_error(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "sre-app.log").write_text("a log line that goes on and on\n" * 200_000)
    command = f"{sys.executable} -m sre_workshop.cli.main --state-dir {tmp_path} logs -n 200000 sre-app | head -1"
    result = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=60)
    assert result.stdout.startswith("==>")
    assert "Error" not in result.stderr and "Traceback" not in result.stderr, result.stderr


def test_state_is_read_and_changed_in_one_place(settings):
    store = StateStore(settings)
    assert store.read().dynamodb_endpoint is None and store.read().overlays == []
    with store.update() as state:
        state.dynamodb_endpoint = "http://127.0.0.1:9"
        state.overlays.append(Overlay("nginx-timeout", "nginx.conf", {"a": "b"}))
    again = StateStore(settings).read()
    assert again.dynamodb_endpoint == "http://127.0.0.1:9"
    assert again.overlays_for("nginx.conf") == [Overlay("nginx-timeout", "nginx.conf", {"a": "b"})]
    assert Stack.open(settings).settings.dynamodb_endpoint == "http://127.0.0.1:9"


def test_what_names_a_fault_is_kept_in_the_examiners_directory_not_in_run(settings):
    store = StateStore(settings)
    with store.update() as state:
        state.engine = "moto"
        state.overlays.append(Overlay("nginx-timeout", "nginx.conf", {"a": "b"}))
        state.faults["nginx-crash"] = {"incident_id": "inc-1"}
    public = json.loads((settings.run_dir / "state.json").read_text())
    assert public["engine"] == "moto" and "nginx" not in json.dumps(public)
    assert "nginx-crash" in (settings.examiner_dir / "faults.json").read_text()
    assert settings.examiner_dir.stat().st_mode & 0o777 == 0o700
    assert store.read().faults == {"nginx-crash": {"incident_id": "inc-1"}}


def test_a_state_file_from_before_the_examiners_directory_is_still_read_then_split(settings):
    settings.run_dir.mkdir(parents=True)
    (settings.run_dir / "state.json").write_text(json.dumps({"engine": "moto", "faults": {"latency": {}}}))
    store = StateStore(settings)
    assert store.read().faults == {"latency": {}}
    with store.update() as state:
        state.faults.pop("latency")
    assert "faults" not in json.loads((settings.run_dir / "state.json").read_text())
    assert store.read().faults == {} and store.read().engine == "moto"


def test_a_broken_state_file_is_named(settings):
    settings.run_dir.mkdir(parents=True)
    (settings.run_dir / "state.json").write_text("{not json")
    with pytest.raises(StateError, match=r"state\.json"):
        StateStore(settings).read()


def test_the_stack_lock_names_its_holder(settings):
    with StackLock(settings) as first:
        first.acquire("up")
        assert StackLock(settings).holder()["command"] == "up"
        with pytest.raises(StackBusy, match=r"`sre-workshop up` \(pid \d+\)"):
            StackLock(settings).acquire("up")
    assert StackLock(settings).holder() is None
    with StackLock(settings) as again:
        again.acquire("up")  # free again once released


def test_overlays_are_applied_to_every_render(settings):
    overlay = Overlay("nginx-timeout", "nginx.conf", {"proxy_read_timeout 60s;": "proxy_read_timeout 1s;"})
    paths = write_configs(settings, "127.0.0.1:1", [overlay])
    conf = paths["nginx.conf"].read_text()
    assert "proxy_read_timeout 1s;" in conf and "proxy_read_timeout 60s;" not in conf
    assert "proxy_read_timeout 60s;" in write_configs(settings, "127.0.0.1:1")["nginx.conf"].read_text()


def test_an_overlay_that_no_longer_matches_fails_loudly():
    with pytest.raises(ConfigTemplateError, match=r"nginx\.conf no longer has 'absent'") as refused:
        apply_overlays("listen 80;", "nginx.conf", [Overlay("nginx-timeout", "nginx.conf", {"absent": "x"})])
    assert "nginx-timeout" not in str(refused.value), "an examinee may read it: it does not name the fault"


def test_the_readmes_fault_table_is_generated_from_the_catalogue():
    from pathlib import Path

    from sre_workshop.faults.readme import END, START, markdown

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert readme.split(START)[1].split(END)[0].strip() == markdown().strip(), \
        "run `python -m sre_workshop.faults.readme README.md`"


def test_a_fault_is_refused_on_a_stack_that_is_not_up(tmp_path, capsys):
    code, _, err = run(capsys, "--state-dir", str(tmp_path), "fault", "inject", "nginx-timeout")
    assert code == ExitStatus.UNHEALTHY and "not up" in err and err.count("\n") == 1
    assert not (tmp_path / "run" / "pids").exists(), "nothing was started"
