"""The instances' Python packages as pinned wheels: lock them once, fetch them by hash, ship them in the zips.

An app's `requirements.in` names what it needs; its `requirements.txt` is the lock: every package of the
closure pinned with the sha256 of the one wheel that fits the instances (Amazon Linux 2023, CPython 3.11,
x86_64). `package` puts exactly those wheels into the zip and the instance installs them with
`pip install --no-index --require-hashes`, so a boot needs nothing but the zip and the OS repositories, and
the same lock always gives the same bytes.

Refresh a lock (reaches PyPI through pip):  python -m sre_workshop.aws.wheels lock infra/sre-app
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import WorkshopError

# What the instances run: Amazon Linux 2023 has glibc 2.34, so any manylinux wheel up to 2_34 fits.
TARGET = ["--only-binary=:all:", "--implementation", "cp", "--python-version", "3.11", "--abi", "cp311",
          *[arg for tag in ("manylinux2014_x86_64", "manylinux_2_28_x86_64", "manylinux_2_34_x86_64")
            for arg in ("--platform", tag)]]
_PIN = re.compile(r"^([A-Za-z0-9._-]+)==([^\s;\\]+)")
_HASH = re.compile(r"--hash=sha256:([0-9a-f]{64})")


class WheelError(WorkshopError):
    """A locked wheel could not be fetched or does not match its hash."""

    code = "wheels"


@dataclass(frozen=True)
class Pin:
    """One locked package: its name, version and the hashes a fitting wheel may have."""

    name: str
    version: str
    hashes: frozenset[str]


def read_lock(path: Path) -> list[Pin]:
    """Parse a lock (`name==version --hash=sha256:...`, with backslash continuations); fail on a loose line."""
    text = path.read_text().replace("\\\n", " ")
    pins = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        match, hashes = _PIN.match(line), frozenset(_HASH.findall(line))
        if not match or not hashes:
            raise WheelError(f"{path}: '{line}' is not pinned with a hash (run the lock command in its docstring)")
        pins.append(Pin(canonical(match.group(1)), match.group(2), hashes))
    return pins


def canonical(name: str) -> str:
    """Return a package name as PyPI compares it (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def sha256(path: Path) -> str:
    """Return the hex sha256 of a file."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def default_cache() -> Path:
    """Return where fetched wheels are kept between runs (they are checked by hash before every use)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "sre-workshop" / "wheels"


def fetch(lock: Path, cache: Path | None = None) -> list[Path]:
    """Return the wheel of every pin, downloading (by hash, for the instances' platform) only what is missing."""
    cache = cache or default_cache()
    cache.mkdir(parents=True, exist_ok=True)
    pins = read_lock(lock)
    found = _match(pins, cache)
    if len(found) < len(pins):
        _pip(["download", "--no-deps", "--require-hashes", *TARGET, "-r", str(lock), "-d", str(cache)])
        found = _match(pins, cache)
    missing = [f"{p.name}=={p.version}" for p in pins if p.name not in found]
    if missing:
        raise WheelError(f"no wheel matching the locked hash for {', '.join(missing)} in {cache}")
    return sorted(found.values(), key=lambda p: p.name)


def _match(pins: list[Pin], cache: Path) -> dict[str, Path]:
    """Map each pin to a cached wheel whose sha256 is one of its hashes."""
    by_hash = {sha256(path): path for path in cache.glob("*.whl")}
    return {pin.name: by_hash[h] for pin in pins for h in sorted(pin.hashes) if h in by_hash}


def lock(app_dir: Path) -> Path:
    """Resolve `requirements.in` for the instances' platform and write `requirements.txt` with one hash each."""
    with tempfile.TemporaryDirectory(prefix="sre-workshop-lock-") as tmp:
        _pip(["download", *TARGET, "-r", str(app_dir / "requirements.in"), "-d", tmp])
        lines = [_pin_line(path) for path in sorted(Path(tmp).glob("*.whl"))]
    out = app_dir / "requirements.txt"
    header = (f"# {app_dir.name}'s packages on the instance, locked for CPython 3.11 on x86_64 Amazon Linux 2023.\n"
              "# Generated from requirements.in by `python -m sre_workshop.aws.wheels lock "
              f"infra/{app_dir.name}`; installed with pip --no-index --require-hashes from the zip's wheels/.\n")
    out.write_text(header + "".join(sorted(lines)))
    return out


def _pin_line(wheel: Path) -> str:
    """Return the lock line of one downloaded wheel."""
    name, version = wheel.name.split("-")[:2]
    return f"{canonical(name)}=={version} \\\n    --hash=sha256:{sha256(wheel)}\n"


def _pip(args: list[str]) -> None:
    """Run pip in this interpreter; fail with pip's last lines."""
    result = subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        tail = " | ".join((result.stderr or result.stdout).strip().splitlines()[-3:])
        raise WheelError(f"pip {args[0]} failed: {tail}")


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "lock":
        sys.exit("usage: python -m sre_workshop.aws.wheels lock infra/APP")
    print(lock(Path(sys.argv[2])))
