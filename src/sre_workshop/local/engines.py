"""The local DynamoDB engines: how to run each, where it keeps its data, and how to tell it is ready.

    dynalite  (default) the DynamoDB API on LevelDB, from the npm package pinned in infra/dynalite/, started
              by infra/dynalite/server.js (dynalite's command line plus a fix for an iterator leak).
              Every write reaches LevelDB's log (a write(2) to the kernel) before dynalite answers, so a
              write it confirmed survives a kill -9 of the engine; the data lives in <data dir>/dynalite.
    moto      moto's server: tables in memory only. Nothing survives the process; the stack must dump
              and restore the tables itself (snapshot.py), and a crash loses every write since the dump.

bench/README.md ("DynamoDB engine") has the measurements behind the default.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import MissingProgram, UsageError
from .process import ProcessRecord, is_alive

ENGINES = ("dynalite", "moto")
DEFAULT_ENGINE = "dynalite"
NODE_MAJOR = 20  # dynalite 4 needs Node.js 20 or newer
# A ListTables request with a syntactically complete, fake SigV4 header: both engines check its shape only.
READY_HEADERS = {
    "Content-Type": "application/x-amz-json-1.0",
    "X-Amz-Target": "DynamoDB_20120810.ListTables",
    "X-Amz-Date": "20250101T000000Z",
    "Authorization": "AWS4-HMAC-SHA256 Credential=sre-workshop-local/20250101/us-east-1/dynamodb/aws4_request, "
                     "SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=" + "0" * 64,
}


@dataclass(frozen=True)
class EngineLaunch:
    """How to start one engine: its command, extra environment, and where it keeps its data."""

    engine: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    data_path: Path | None = None  # the engine's own store; None: in memory, gone with the process

    @property
    def durable(self) -> bool:
        """True if a write the engine confirmed survives a kill -9 of it."""
        return self.data_path is not None


def engine_launch(engine: str, port: int, data_dir: Path, home: Path, host: str = "127.0.0.1") -> EngineLaunch:
    """Return how to run `engine` on host:port with its data under `data_dir` (`home`: the checkout)."""
    if engine == "dynalite":
        return _dynalite(port, data_dir / "dynalite", home, host)
    if engine == "moto":
        return EngineLaunch("moto", [sys.executable, "-m", "moto.server", "-H", host, "-p", str(port)],
                            {"MOTO_ALLOW_NONEXISTENT_REGION": "true"})
    raise UsageError(f"unknown DynamoDB engine {engine!r}; engines: {', '.join(ENGINES)}")


def _dynalite(port: int, path: Path, home: Path, host: str) -> EngineLaunch:
    # Tables become ACTIVE at once (dynalite's default is 500 ms in CREATING), as the stack creates the
    # tables and uses them straight away. `node` is looked up when the process is spawned; check_engine()
    # says what is missing before anything starts.
    argv = ["node", str(home / "infra" / "dynalite" / "server.js"), "--host", host, "--port", str(port),
            "--path", str(path), "--createTableMs", "0", "--deleteTableMs", "0", "--updateTableMs", "0"]
    return EngineLaunch("dynalite", argv, {"AWS_REGION": "us-east-1"}, path)


def check_engine(engine: str, home: Path) -> None:
    """Raise MissingProgram naming what `engine` lacks on this machine (nothing for moto)."""
    if engine == "dynalite":
        require_node()
        dynalite_server(home)


def choose_engine(asked: str | None, home: Path) -> tuple[str, str]:
    """Return the engine to run and why: the one asked for (checked), else dynalite if this machine can
    run it, else moto."""
    if asked:
        if asked not in ENGINES:
            raise UsageError(f"unknown DynamoDB engine {asked!r}; engines: {', '.join(ENGINES)}")
        check_engine(asked, home)
        return asked, "asked for"
    try:
        check_engine(DEFAULT_ENGINE, home)
    except MissingProgram as exc:
        return "moto", f"{exc}; using moto, whose data is saved only on `down`"
    return DEFAULT_ENGINE, "the default"


def dynalite_server(home: Path) -> Path:
    """Return infra/dynalite/server.js, or raise MissingProgram if dynalite is not installed beside it."""
    folder = home / "infra" / "dynalite"
    if not (folder / "node_modules" / "dynalite" / "cli.js").is_file():
        raise MissingProgram(f"dynalite is not installed in {folder}: run scripts/install "
                             f"(or `npm ci --omit=dev --ignore-scripts` there)")
    return folder / "server.js"


def require_node() -> str:
    """Return the path of Node.js 20 or newer, or raise MissingProgram naming what is wrong."""
    node = shutil.which("node")
    if not node:
        raise MissingProgram("node is not installed (dynalite needs Node.js 20 or newer): run scripts/install")
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=False).stdout.strip()
    match = re.match(r"v(\d+)\.", version)
    if not match or int(match.group(1)) < NODE_MAJOR:
        raise MissingProgram(f"dynalite needs Node.js {NODE_MAJOR} or newer; {node} is {version or 'unknown'}")
    return node


def engine_ready(url: str, timeout: float = 1.0) -> bool:
    """True if the engine at `url` answers a DynamoDB ListTables call (not merely accepts connections)."""
    # The URL is the loopback address of an engine the stack started (S310: no file:// or custom schemes).
    request = urllib.request.Request(url, data=b'{"Limit": 1}', headers=READY_HEADERS, method="POST")  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return response.status == 200 and "TableNames" in json.loads(response.read())
    except (urllib.error.URLError, OSError, ValueError):
        return False


def wait_engine_ready(record: ProcessRecord, url: str, timeout: float) -> bool:
    """Wait until the engine answers ListTables; False if it exited or time ran out.

    An open port is not enough: dynalite listens before it opens its store, and exits at the first request
    if the store cannot be opened (a data path that is a file, or one held by another dynalite).
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if engine_ready(url):
            return True
        if not is_alive(record):
            return False
        time.sleep(0.05)
    return False
