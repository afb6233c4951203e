"""Build sre-app.zip, crm-app.zip and nginx-assets.zip, laid out as the instances expect.

Deterministic: entries are sorted, every timestamp is fixed and modes are normalised, and the wheels are the
exact files the locks name by sha256, so the same sources give the same bytes (and the same content hash,
which names the upload).

    sre-app.zip       app.py, sre_app/, appkit/, requirements.txt (the lock), wheels/, install.sh, activate.sh,
                      update-assets.sh, sre-app.service, agent config
    crm-app.zip       app.py, init_sample_data.py, crm_app/ (templates, static), appkit/, requirements.txt,
                      wheels/, install.sh, activate.sh, update-assets.sh, crm-app.service, agent config
    nginx-assets.zip  nginx.conf (with PRIVATE_ALB_DNS_PLACEHOLDER), install.sh, activate.sh, update-assets.sh,
                      agent config
"""

from __future__ import annotations

import hashlib
import zipfile
from dataclasses import dataclass
from pathlib import Path

from ..settings import Settings
from . import wheels

FIXED_TIME = (2025, 1, 1, 0, 0, 0)
SKIP_PARTS = {"__pycache__", ".pytest_cache"}
SKIP_SUFFIXES = {".pyc", ".pyo"}


@dataclass(frozen=True)
class Artifact:
    """One built zip and its content hash."""

    name: str
    path: Path
    sha256: str


def layouts(settings: Settings) -> dict[str, dict[str, Path]]:
    """Map each zip to {path inside the zip: source file or directory}."""
    apps, infra = settings.apps_dir, settings.infra_dir
    agent = infra / "cloudwatch" / "amazon-cloudwatch-agent.json"
    update = infra / "cloudformation" / "update-assets.sh"
    return {
        "sre-app.zip": {
            "app.py": infra / "sre-app" / "app.py", "install.sh": infra / "sre-app" / "install.sh",
            "activate.sh": infra / "sre-app" / "activate.sh", "update-assets.sh": update,
            "requirements.txt": infra / "sre-app" / "requirements.txt",
            "sre-app.service": infra / "systemd" / "sre-app.service", "amazon-cloudwatch-agent.json": agent,
            "sre_app": apps / "sre_app", "appkit": apps / "appkit",
        },
        "crm-app.zip": {
            "app.py": infra / "crm-app" / "app.py", "install.sh": infra / "crm-app" / "install.sh",
            "activate.sh": infra / "crm-app" / "activate.sh", "update-assets.sh": update,
            "init_sample_data.py": infra / "crm-app" / "init_sample_data.py",
            "requirements.txt": infra / "crm-app" / "requirements.txt",
            "crm-app.service": infra / "systemd" / "crm-app.service", "amazon-cloudwatch-agent.json": agent,
            "crm_app": apps / "crm_app", "appkit": apps / "appkit",
        },
        "nginx-assets.zip": {
            "nginx.conf": infra / "nginx" / "nginx.conf", "install.sh": infra / "nginx" / "install.sh",
            "activate.sh": infra / "nginx" / "activate.sh", "update-assets.sh": update,
            "amazon-cloudwatch-agent.json": agent,
        },
    }


def files_of(layout: dict[str, Path]) -> list[tuple[str, Path]]:
    """Expand directories; return (name in zip, source) sorted by name."""
    entries = []
    for target, source in layout.items():
        if source.is_dir():
            for path in source.rglob("*"):
                if path.is_file() and not SKIP_PARTS & set(path.parts) and path.suffix not in SKIP_SUFFIXES:
                    entries.append((f"{target}/{path.relative_to(source).as_posix()}", path))
        else:
            entries.append((target, source))
    return sorted(entries)


def write_zip(path: Path, entries: list[tuple[str, Path]]) -> None:
    """Write a zip whose bytes depend only on the entries' names and contents."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name, source in entries:
            info = zipfile.ZipInfo(name, date_time=FIXED_TIME)
            # Wheels are zips already: storing them saves seconds per build and loses nothing.
            info.compress_type = zipfile.ZIP_STORED if name.endswith(".whl") else zipfile.ZIP_DEFLATED
            executable = name.endswith(".sh")
            info.external_attr = (0o100755 if executable else 0o100644) << 16
            archive.writestr(info, source.read_bytes())


def wheel_entries(layout: dict[str, Path], cache: Path | None) -> list[tuple[str, Path]]:
    """Return the wheels/ entries of a zip whose layout has a lock (requirements.txt), none otherwise."""
    lock = layout.get("requirements.txt")
    if lock is None:
        return []
    return [(f"wheels/{path.name}", path) for path in wheels.fetch(lock, cache)]


def build(settings: Settings, out_dir: Path, wheel_cache: Path | None = None) -> list[Artifact]:
    """Build the three zips into `out_dir`, with the locked wheels (fetched into `wheel_cache` if missing)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    artifacts = []
    for name, layout in layouts(settings).items():
        missing = [str(p) for p in layout.values() if not p.exists()]
        if missing:
            raise FileNotFoundError(f"cannot package {name}: missing {', '.join(missing)}")
        path = out_dir / name
        write_zip(path, sorted(files_of(layout) + wheel_entries(layout, wheel_cache)))
        artifacts.append(Artifact(name, path, hashlib.sha256(path.read_bytes()).hexdigest()))
    return artifacts


def content_prefix(artifacts: list[Artifact]) -> str:
    """Return the S3 key prefix that names this set of zips by content (assets/<hash>/)."""
    digest = hashlib.sha256("".join(a.sha256 for a in artifacts).encode()).hexdigest()[:16]
    return f"assets/{digest}/"
