"""The fault contract: every folder checked against it when the catalogue loads, every clear of `clear --all`
run even when one raises, and the catalogue's data (fault.toml) as the runner and tests read it."""

from __future__ import annotations

import ast
import contextlib
import importlib
import json
import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sre_workshop.aws.control import AwsControl
from sre_workshop.errors import ClearFailed, ExitStatus
from sre_workshop.faults import catalogue as catalogue_module
from sre_workshop.faults import runner
from sre_workshop.faults.catalogue import FAULTS_DIR, backend_module, catalogue, load
from sre_workshop.faults.contract import AwsCtl, ContractError, LocalCtl, check_module
from sre_workshop.faults.model import Probe
from sre_workshop.faults.through_twin import ThroughTwin
from sre_workshop.local.control import LocalControl

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "broken_faults"
PACKAGE = "fixtures.broken_faults"


# --- the load-time check --------------------------------------------------------------------------------------------


def test_the_shipped_catalogue_keeps_the_contract():
    faults = load(FAULTS_DIR, "sre_workshop.faults")
    assert len(faults) >= 13 and [f.name for f in faults.values() if f.pre_baked] == ["memory-leak"]


def test_a_folder_that_breaks_the_contract_fails_the_load_naming_what_is_wrong():
    with pytest.raises(ContractError, match=r"fault no-verify: local\.py lacks verify\(\)"):
        load(FIXTURES, PACKAGE)


def test_a_function_with_the_wrong_arguments_is_named(tmp_path):
    module = importlib.import_module(f"{PACKAGE}.no_verify.aws")
    with pytest.raises(ContractError, match=r"clear\(\) must take 3 arguments \(ctl, params, saved\)"):
        check_module("no-verify", "aws", module)


def test_a_pre_baked_fault_must_read_its_parameters_in_effect():
    module = importlib.import_module(f"{PACKAGE}.ok_fault.local")
    check_module("ok-fault", "local", module)
    with pytest.raises(ContractError, match=r"lacks current_params\(\)"):
        check_module("ok-fault", "local", module, pre_baked=True)


def test_a_folder_without_fault_toml_or_without_a_world_is_refused(tmp_path, monkeypatch):
    shutil.copytree(FIXTURES / "ok_fault", tmp_path / "cat" / "ok_fault")
    (tmp_path / "cat" / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert list(load(tmp_path / "cat", "cat")) == ["ok-fault"]
    (tmp_path / "cat" / "ok_fault" / "aws.py").unlink()
    with pytest.raises(ContractError, match=r"has no aws\.py"):
        load(tmp_path / "cat", "cat")
    (tmp_path / "cat" / "ok_fault" / "fault.toml").unlink()
    with pytest.raises(ContractError, match=r"no fault\.toml"):
        load(tmp_path / "cat", "cat")


def _catalogue_of_one(tmp_path, monkeypatch, toml_extra: str = "", local: bool = True) -> Path:
    """A catalogue package holding ok_fault, its fault.toml extended, with or without its local.py."""
    folder = tmp_path / "cat" / "ok_fault"
    shutil.copytree(FIXTURES / "ok_fault", folder)
    (tmp_path / "cat" / "__init__.py").write_text("")
    (folder / "fault.toml").write_text((folder / "fault.toml").read_text() + toml_extra)
    if not local:
        (folder / "local.py").unlink()
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path / "cat"


VIA_TWIN = '\n[worlds.local]\nvia = "twin"\n'


def test_a_fault_whose_local_world_runs_via_the_twin_needs_no_local_py(tmp_path, monkeypatch):
    faults = load(_catalogue_of_one(tmp_path, monkeypatch, VIA_TWIN, local=False), "cat")
    assert faults["ok-fault"].via("local") == "twin" and faults["ok-fault"].via("aws") is None


def test_a_fault_without_local_py_must_declare_the_twin_path(tmp_path, monkeypatch):
    with pytest.raises(ContractError, match=r'has no local\.py \(or \[worlds\.local\] via = "twin"'):
        load(_catalogue_of_one(tmp_path, monkeypatch, local=False), "cat")


def test_a_fault_with_local_py_and_the_twin_path_is_refused(tmp_path, monkeypatch):
    with pytest.raises(ContractError, match=r"has local\.py, but its fault\.toml runs the local world via the twin"):
        load(_catalogue_of_one(tmp_path, monkeypatch, VIA_TWIN), "cat")


@pytest.mark.parametrize(("extra", "said"), [
    ('\n[worlds.aws]\nvia = "twin"\n', r"only \[worlds\.local\] takes via"),
    ('\n[worlds.local]\nvia = "ssh"\n', r"via = 'ssh'"),
    ('\n[worlds.local]\nparams = { target = "x" }\n', r"they need a via"),
    ('\n[worlds.local]\nvia = "twin"\nparams = { target = "x" }\n', r"names no parameter: \['target'\]"),
])
def test_a_bad_via_is_named_when_the_catalogue_loads(tmp_path, monkeypatch, extra, said):
    with pytest.raises(ContractError, match=said):
        load(_catalogue_of_one(tmp_path, monkeypatch, extra, local=False), "cat")


def test_through_the_twin_each_function_is_aws_py_s_given_ctl_twin_and_the_world_s_params():
    calls = []

    def recorder(name):
        return lambda ctl, *args: calls.append((name, ctl, *args)) or {"name": name}

    aws = SimpleNamespace(**{n: recorder(n) for n in ("snapshot", "inject", "verify", "active", "clear",
                                                         "current_params")})
    ctl = SimpleNamespace(twin=lambda: "the twin")
    local = ThroughTwin(aws, {"mode": "provisioned"})
    local.snapshot(ctl, {"mode": "on-demand", "n": 1})
    local.inject(ctl, {"n": 1})
    local.verify(ctl, {"n": 1})
    local.active(ctl, {"n": 1})
    local.clear(ctl, {"n": 1}, {"saved": True})
    local.current_params(ctl)
    fixed = {"mode": "provisioned", "n": 1}
    assert calls == [("snapshot", "the twin", fixed), ("inject", "the twin", fixed), ("verify", "the twin", fixed),
                     ("active", "the twin", fixed), ("clear", "the twin", fixed, {"saved": True}),
                     ("current_params", "the twin")]


def test_the_shipped_faults_run_locally_through_the_twin_unless_they_keep_a_local_py_saying_why():
    for fault in catalogue().values():
        local = backend_module(fault, "local")
        if fault.via("local") == "twin":
            assert isinstance(local, ThroughTwin) and local.aws is backend_module(fault, "aws")
            assert not (fault.folder / "local.py").exists()
        else:
            doc = (local.__doc__ or "").strip()
            assert doc and "\n" not in doc.split("\n\n")[0].strip(), f"{fault.name}: local.py says why in one line"
    throttling = backend_module(catalogue()["dynamodb-throttling"], "local")
    assert throttling.fixed == {"mode": "provisioned"}


def test_each_world_s_control_object_offers_what_its_protocol_promises():
    for protocol, cls in ((LocalCtl, LocalControl), (AwsCtl, AwsControl)):
        members = {name for name in vars(protocol) if not name.startswith("_")} - {"settings", "stack", "stack_name"}
        missing = [name for name in members if not callable(getattr(cls, name, None))]
        assert not missing, f"{cls.__name__} lacks {missing}"


def test_no_fault_imports_another_fault():
    folders = {p.name for p in FAULTS_DIR.iterdir() if (p / "fault.toml").exists()}
    for path in FAULTS_DIR.glob("*/*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 2 and node.module:
                assert node.module.split(".")[0] not in folders, f"{path.relative_to(FAULTS_DIR)} imports {node.module}"


# --- clear --all: every clear runs, every failure is reported and recorded ------------------------------------------


class Ledger:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, dict[str, Any]]] = []

    def event(self, incident_id: str, event: str, **detail: Any) -> int:
        self.events.append((incident_id, event, detail))
        return len(self.events)


class FakeBackend:
    """A backend whose faults' records are in memory; every probe is green."""

    name = "local"

    def __init__(self, records: dict[str, dict[str, Any]]) -> None:
        self.records = records
        self.ctl = SimpleNamespace()
        self.ledger = Ledger()

    def recorded(self) -> dict[str, dict[str, Any]]:
        return dict(self.records)

    def remember(self, name: str, record: dict[str, Any]) -> None:
        self.records[name] = record

    def forget(self, name: str) -> None:
        self.records.pop(name, None)

    @contextlib.contextmanager
    def locked(self):
        yield

    def check_up(self) -> None:
        pass

    def problems(self) -> list[str]:
        return []

    def stopped(self) -> list[str]:
        return []


def fake_module(name: str, cleared: list[str], fails: bool) -> SimpleNamespace:
    def clear(ctl, params, saved) -> None:
        if fails:
            raise RuntimeError(f"{name} would not clear")
        cleared.append(name)

    return SimpleNamespace(snapshot=lambda ctl, params: {}, inject=lambda ctl, params: None,
                           verify=lambda ctl, params: "ok", active=lambda ctl, params: True, clear=clear,
                           current_params=lambda ctl: {})


def faulty_backend(monkeypatch, failing: set[str]) -> tuple[FakeBackend, list[str], list[str]]:
    names = ["app-crash", "latency", "nginx-crash", "nginx-timeout"]
    cleared: list[str] = []
    modules = {name: fake_module(name, cleared, name in failing) for name in catalogue()}
    monkeypatch.setattr(runner, "backend_module", lambda fault, world: modules[fault.name])
    monkeypatch.setattr(runner, "pre_baked_module", lambda fault, world: modules[fault.name])
    records = {name: {"incident_id": f"inc-{name}", "params": catalogue()[name].defaults(), "saved": {},
                      "injected_by": "test"} for name in names}
    return FakeBackend(records), names, cleared


def test_clear_all_clears_every_fault_when_one_clear_fails(monkeypatch):
    backend, names, cleared = faulty_backend(monkeypatch, {"latency"})
    with pytest.raises(ClearFailed) as failed:
        runner.clear(backend, None, sustain=0, timeout=1)
    # memory-leak is pre-baked and "in effect" in the fake: clear --all clears it too.
    assert cleared == sorted({*names, "memory-leak"} - {"latency"})
    assert failed.value.failures == {"latency": "latency would not clear"}
    assert failed.value.exit_status == ExitStatus.UNHEALTHY and "latency would not clear" in str(failed.value)
    assert set(backend.records) == {"latency"}, "the failed fault stays recorded: a later clear tries again"
    events = {(incident, event) for incident, event, _ in backend.ledger.events}
    assert ("inc-latency", "clear-failed") in events
    assert {(f"inc-{n}", "cleared") for n in names if n != "latency"} <= events


def test_clear_all_reports_every_failure(monkeypatch):
    backend, _names, cleared = faulty_backend(monkeypatch, {"latency", "nginx-crash"})
    with pytest.raises(ClearFailed) as failed:
        runner.clear(backend, None, sustain=0, timeout=1)
    assert set(failed.value.failures) == {"latency", "nginx-crash"}
    assert "app-crash" in cleared and "nginx-timeout" in cleared
    assert [e for _, e, _ in backend.ledger.events].count("clear-failed") == 2


def test_clearing_one_named_fault_raises_its_own_error_once_recorded(monkeypatch):
    backend, _names, _cleared = faulty_backend(monkeypatch, {"latency"})
    with pytest.raises(RuntimeError, match="latency would not clear"):
        runner.clear(backend, "latency", sustain=0, timeout=1)
    assert backend.ledger.events[-1][:2] == ("inc-latency", "clear-failed")


def test_the_cli_exits_non_zero_naming_each_failure(monkeypatch, capsys, tmp_path):
    from sre_workshop.cli import fault as fault_cli
    from sre_workshop.cli.main import main

    backend, _names, _cleared = faulty_backend(monkeypatch, {"nginx-crash"})
    monkeypatch.setattr(fault_cli, "backend", lambda *args, **kwargs: backend)
    assert main(["--state-dir", str(tmp_path), "fault", "clear", "--all"]) == ExitStatus.UNHEALTHY
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nginx-crash: nginx-crash would not clear" in err


# --- the catalogue's data -------------------------------------------------------------------------------------------


def test_world_specific_data_is_read_from_fault_toml():
    faults = catalogue()
    assert faults["dynamodb-access-denied"].verify_seconds_in("aws") == 120
    denied = faults["dynamodb-access-denied"]
    assert denied.verify_seconds_in("local") == denied.verify_seconds
    assert faults["memory-leak"].steady == {"mode": "off"}
    assert [p.entry for p in faults["app-crash"].probes_for({"target": "crm-app"})] == ["crm"]
    assert json.dumps([f.to_dict() for f in faults.values()])  # `fault list --json` stays JSON


def test_the_runner_reads_no_fault_data_from_the_modules():
    source = Path(runner.__file__).read_text() + Path(catalogue_module.__file__).read_text()
    assert "getattr(impl" not in source and "hasattr(" not in source


answers = st.lists(st.tuples(st.sampled_from([200, 500, 502, 503, 504]), st.binary(max_size=20),
                             st.floats(min_value=0, max_value=10)), min_size=1, max_size=20)


@given(answers, st.sets(st.sampled_from([200, 500, 502, 503]), min_size=1))
def test_a_status_probe_holds_exactly_when_every_answer_has_an_allowed_status(found, allowed):
    probe = Probe("app", "/", status=tuple(allowed))
    assert probe.holds(found) == all(status in allowed for status, _, _ in found)


@given(answers, st.sets(st.sampled_from([200, 500]), min_size=1))
def test_a_seen_probe_holds_exactly_when_every_status_it_names_was_seen(found, seen):
    probe = Probe("app", "/", seen=tuple(seen), tries=20)
    assert probe.holds(found) == (seen <= {status for status, _, _ in found})


@given(answers, st.floats(min_value=0, max_value=10))
def test_a_slowness_probe_never_holds_for_a_faster_answer(found, at_least):
    probe = Probe("app", "/", status=(200, 500, 502, 503, 504), min_s=at_least)
    if probe.holds(found):
        assert all(seconds >= at_least for _, _, seconds in found)


@given(st.sampled_from(sorted(catalogue())), st.data())
def test_parameters_parsed_from_their_own_text_round_trip(name, data):
    fault = catalogue()[name]
    values = {}
    for param in fault.params:
        if param.choices:
            values[param.name] = data.draw(st.sampled_from(param.choices))
        else:
            kind = st.floats if isinstance(param.default, float) else st.integers
            bounds = (param.minimum, param.maximum) if kind is st.floats else (int(param.minimum), int(param.maximum))
            kwargs = {"allow_nan": False} if kind is st.floats else {}
            values[param.name] = data.draw(kind(*bounds, **kwargs))
    parsed = fault.parse([f"{k}={v!r}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items()])
    assert parsed == {**fault.defaults(), **values}
