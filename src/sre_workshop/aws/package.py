"""Build sre-app.zip, crm-app.zip and nginx-assets.zip, laid out as the instances' user data expects.

Deterministic: entries are sorted, every timestamp is fixed and modes are normalised, so the same sources
give the same bytes (and the same content hash, which names the upload).

    sre-app.zip       app.py, sre_app/, appkit/, requirements.txt, install.sh, sre-app.service, agent config
    crm-app.zip       app.py, init_sample_data.py, crm_app/ (templates, static), appkit/, requirements.txt,
                      install.sh, crm-app.service, agent config
    nginx-assets.zip  nginx.conf (with PRIVATE_ALB_DNS_PLACEHOLDER), install.sh, agent config
"""

from __future__ import annotations

import hashlib
import zipfile
from dataclasses import dataclass
from pathlib import Path

from ..settings import Settings

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
    return {
        "sre-app.zip": {
            "app.py": infra / "sre-app" / "app.py", "install.sh": infra / "sre-app" / "install.sh",
            "requirements.txt": infra / "sre-app" / "requirements.txt",
            "sre-app.service": infra / "systemd" / "sre-app.service", "amazon-cloudwatch-agent.json": agent,
            "sre_app": apps / "sre_app", "appkit": apps / "appkit",
        },
        "crm-app.zip": {
            "app.py": infra / "crm-app" / "app.py", "install.sh": infra / "crm-app" / "install.sh",
            "init_sample_data.py": infra / "crm-app" / "init_sample_data.py",
            "requirements.txt": infra / "crm-app" / "requirements.txt",
            "crm-app.service": infra / "systemd" / "crm-app.service", "amazon-cloudwatch-agent.json": agent,
            "crm_app": apps / "crm_app", "appkit": apps / "appkit",
        },
        "nginx-assets.zip": {
            "nginx.conf": infra / "nginx" / "nginx.conf", "install.sh": infra / "nginx" / "install.sh",
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
            info.compress_type = zipfile.ZIP_DEFLATED
            executable = name.endswith(".sh")
            info.external_attr = (0o100755 if executable else 0o100644) << 16
            archive.writestr(info, source.read_bytes())


def build(settings: Settings, out_dir: Path) -> list[Artifact]:
    """Build the three zips into `out_dir`; return them with their hashes."""
    out_dir.mkdir(parents=True, exist_ok=True)
    artifacts = []
    for name, layout in layouts(settings).items():
        missing = [str(p) for p in layout.values() if not p.exists()]
        if missing:
            raise FileNotFoundError(f"cannot package {name}: missing {', '.join(missing)}")
        path = out_dir / name
        write_zip(path, files_of(layout))
        artifacts.append(Artifact(name, path, hashlib.sha256(path.read_bytes()).hexdigest()))
    return artifacts


def content_prefix(artifacts: list[Artifact]) -> str:
    """Return the S3 key prefix that names this set of zips by content (assets/<hash>/)."""
    digest = hashlib.sha256("".join(a.sha256 for a in artifacts).encode()).hexdigest()[:16]
    return f"assets/{digest}/"
