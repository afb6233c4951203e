"""The instances' install steps, run from the packaged zips against a temporary root (no systemd needed).

The apps then run from the venv install.sh made out of the zip's wheels alone (pip --no-index
--require-hashes): this machine's CPython 3.11 on x86_64 Linux takes the same wheels as Amazon Linux 2023.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from sre_workshop.aws import package, wheels
from sre_workshop.local.components import LOCAL_CREDENTIALS
from sre_workshop.local.process import ProcessSpec, find_program, free_port
from sre_workshop.settings import TABLE_NAMES, Settings

from conftest import REGION, dynamodb, http, scan_all, start_server

DNS = "internal-sre-workshop-private-alb-42.us-east-1.elb.amazonaws.com"
# The interpreter the venvs are made from: this one's base, CPython 3.11 as on the instances.
PYTHON = getattr(sys, "_base_executable", sys.executable)


@pytest.fixture(scope="module")
def zips(tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("dist")
    return {a.name: a.path for a in package.build(Settings.from_env(), out)}


def install(zip_path: Path, tmp: Path, **env: str) -> tuple[Path, subprocess.CompletedProcess]:
    unpacked, root = tmp / zip_path.stem, tmp / "root"
    with zipfile.ZipFile(zip_path) as archive:
        archive.extractall(unpacked)
    # Only PATH, ROOT and PYTHON: no pip index or config of this machine can leak into the install.
    result = subprocess.run(["bash", str(unpacked / "install.sh")], env={
        "PATH": "/usr/bin:/bin", "ROOT": str(root), "PYTHON": PYTHON, **env}, capture_output=True, text=True,
        check=False)
    return root, result


def installed_python(app_dir: Path) -> str:
    """Return the venv python install.sh made, after checking it holds exactly the locked packages."""
    python = app_dir / "venv" / "bin" / "python"
    frozen = subprocess.run([str(python), "-m", "pip", "freeze", "--all"], capture_output=True, text=True, check=True)
    have = {line.split("==")[0].lower().replace("_", "-") for line in frozen.stdout.split() if "==" in line}
    locked = {p.name for p in wheels.read_lock(app_dir / "requirements.txt")}
    assert locked <= have and have - locked <= {"pip", "setuptools"}, have ^ locked
    return str(python)


def env_file(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


def test_packaging_is_deterministic(zips, tmp_path):
    again = {a.name: a.sha256 for a in package.build(Settings.from_env(), tmp_path)}
    assert again == {name: package.hashlib.sha256(path.read_bytes()).hexdigest() for name, path in zips.items()}


@pytest.mark.parametrize("name", ["sre-app.zip", "crm-app.zip"])
def test_zips_carry_exactly_the_locked_wheels(zips, name, tmp_path):
    """Issue 9.11: a boot depends on nothing but the zip: one wheel per locked package, with its hash."""
    with zipfile.ZipFile(zips[name]) as archive:
        archive.extractall(tmp_path)
        names = archive.namelist()
    pins = {p.name: p for p in wheels.read_lock(tmp_path / "requirements.txt")}
    found = {wheels.canonical(w.name.split("-")[0]): w for w in (tmp_path / "wheels").iterdir()}
    assert set(found) == set(pins)
    assert all(wheels.sha256(found[n]) in pins[n].hashes for n in pins)
    assert {"activate.sh", "update-assets.sh", "install.sh"} <= set(names)


def test_nginx_zip_has_its_activation(zips):
    with zipfile.ZipFile(zips["nginx-assets.zip"]) as archive:
        assert {"activate.sh", "update-assets.sh", "install.sh", "nginx.conf"} <= set(archive.namelist())
        assert archive.getinfo("update-assets.sh").external_attr >> 16 == 0o100755


def test_a_tampered_wheel_is_refused(zips, tmp_path):
    """The instance's pip checks every wheel against the lock: a changed byte fails the install."""
    unpacked = tmp_path / "sre-app"
    with zipfile.ZipFile(zips["sre-app.zip"]) as archive:
        archive.extractall(unpacked)
    wheel = next((unpacked / "wheels").glob("six-*.whl"))
    wheel.write_bytes(wheel.read_bytes() + b"\0")
    result = subprocess.run(["bash", str(unpacked / "install.sh")], env={
        "PATH": "/usr/bin:/bin", "ROOT": str(tmp_path / "root"), "PYTHON": PYTHON, "AWS_REGION": REGION,
        "METRICS_TABLE": "T"}, capture_output=True, text=True, check=False)
    assert result.returncode != 0 and "hash" in result.stderr.lower(), result.stderr[-2000:]


def test_nginx_assets_install_and_pass_nginx_t(zips, tmp_path):
    root, result = install(zips["nginx-assets.zip"], tmp_path, PRIVATE_ALB_DNS=DNS)
    assert result.returncode == 0, result.stderr
    conf = root / "etc/nginx/nginx.conf"
    assert f'set $private_alb "{DNS}";' in conf.read_text() and "PLACEHOLDER" not in conf.read_text()
    check = subprocess.run([find_program("nginx"), "-t", "-c", str(conf), "-e", str(tmp_path / "e.log")],
                           capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stderr
    assert (root / "opt/aws/amazon-cloudwatch-agent/etc/sre-workshop.json").exists()


def test_install_without_its_settings_fails_naming_them(zips, tmp_path):
    _, result = install(zips["sre-app.zip"], tmp_path, AWS_REGION=REGION)
    assert result.returncode != 0 and "METRICS_TABLE" in result.stderr
    assert not (tmp_path / "root").exists(), "nothing was written"


def test_sre_app_installs_where_the_spec_says_and_runs(zips, tmp_path, own_moto):
    root, result = install(zips["sre-app.zip"], tmp_path, AWS_REGION=REGION, METRICS_TABLE="ApplicationMetricsTable")
    assert result.returncode == 0, result.stderr
    app_dir = root / "opt/sre-app"
    assert (app_dir / "app.py").exists() and (app_dir / "sre_app/leak.py").exists()
    assert "DELIBERATE:" in (app_dir / "sre_app/leak.py").read_text()
    unit = (root / "etc/systemd/system/sre-app.service").read_text()
    assert "EnvironmentFile=/etc/sre-workshop/sre-app.env" in unit and "app:app" in unit
    env = env_file(root / "etc/sre-workshop/sre-app.env")
    assert env["AWS_REGION"] == REGION and env["METRICS_TABLE"] == "ApplicationMetricsTable"
    assert env["LOG_FILE"] == "/var/log/sre-app/app.log"
    # Run the installed tree as the unit would (paths moved into the temporary root).
    port = free_port()
    env.update(LOCAL_CREDENTIALS, AWS_ENDPOINT_URL=own_moto.url, PORT=str(port), BIND_ADDRESS="127.0.0.1",
               LOG_FILE=str(tmp_path / "app.log"), SRE_APP_RUNTIME_DIR=str(tmp_path / "run"))
    (tmp_path / "run").mkdir()
    python = installed_python(app_dir)
    server = start_server(ProcessSpec("installed-sre-app", [
        python, "-m", "gunicorn", "--chdir", str(app_dir), "-c", str(app_dir / "sre_app/gunicorn.conf.py"),
        "app:app"], tmp_path / "gunicorn.log", env, ports=[port]))
    try:
        assert http("GET", server.url + "/health?deep=1").status == 200
        assert http("GET", server.url + "/").json()["message"] == "SRE Workshop App"
    finally:
        server.stop()


def test_crm_app_installs_seeds_and_runs(zips, tmp_path, own_moto):
    tables = {k: TABLE_NAMES[k] for k in ("CUSTOMERS_TABLE", "DEALS_TABLE", "ACTIVITIES_TABLE")}
    root, result = install(zips["crm-app.zip"], tmp_path, AWS_REGION=REGION, **tables)
    assert result.returncode == 0, result.stderr
    app_dir = root / "opt/crm-app"
    assert (app_dir / "app.py").exists() and (app_dir / "crm_app/templates/customers.html").exists()
    unit = (root / "etc/systemd/system/crm-app.service").read_text()
    assert "EnvironmentFile=/etc/sre-workshop/crm-app.env" in unit
    env = env_file(root / "etc/sre-workshop/crm-app.env")
    assert {k: env[k] for k in tables} == tables and env["AWS_REGION"] == REGION
    env.update(LOCAL_CREDENTIALS, AWS_ENDPOINT_URL=own_moto.url, LOG_FILE=str(tmp_path / "crm.log"))
    python = installed_python(app_dir)
    seeded = subprocess.run([python, "init_sample_data.py", "--count", "5"], cwd=app_dir, env=env,
                            capture_output=True, text=True, check=False)
    assert seeded.returncode == 0, seeded.stderr
    assert len(scan_all(dynamodb(own_moto.url), TABLE_NAMES["CUSTOMERS_TABLE"])) == 5
    port = free_port()
    env.update(PORT=str(port), BIND_ADDRESS="127.0.0.1")
    server = start_server(ProcessSpec("installed-crm", [
        python, "-m", "gunicorn", "--chdir", str(app_dir), "-c", str(app_dir / "crm_app/gunicorn.conf.py"),
        "app:app"], tmp_path / "crm-gunicorn.log", env, ports=[port]))
    try:
        page = http("GET", server.url + "/customers")
        assert page.status == 200 and "database error" not in page.text
        assert len(http("GET", server.url + "/api/customers").json()["items"]) == 5
    finally:
        server.stop()
