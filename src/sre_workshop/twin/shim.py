"""The shims of an instance's view: `systemctl`, `nginx`, `ps` and `top`, first on its PATH (twin/hostview.py).

    python -m sre_workshop.twin.shim TOOL BROKER_SOCKET ARGS...

systemctl and nginx (its checks and `-s reload`) are answered by the broker outside the view. ps runs the
real ps and keeps the header and the lines of the instance's processes (by the PID column; output without one
is left whole); top shows only them.
Standard library only: it starts in every shim call.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

PS, TOP = "/bin/ps", "/usr/bin/top"
TOP_MAX_PIDS = 20  # top -p takes at most 20 pids


def ask(path: str, tool: str, args: list[str]) -> dict:
    """Send one request to the broker and return its answer."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(path)
        sock.sendall(json.dumps({"tool": tool, "args": args}).encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    return json.loads(data)


def filter_ps(output: str, pids: set[int]) -> str:
    """Return ps output with the header and only the lines whose PID is in `pids`."""
    lines = output.splitlines(keepends=True)
    if not lines:
        return output
    header = lines[0].split()
    if "PID" not in header:
        return output
    column = header.index("PID")
    kept = [line for line in lines[1:] if _field(line, column) in pids]
    return "".join([lines[0], *kept])


def _field(line: str, column: int) -> int | None:
    fields = line.split()
    try:
        return int(fields[column])
    except (IndexError, ValueError):
        return None


def main(argv: list[str]) -> int:
    """Run one shim; return its exit status."""
    tool, path, args = argv[0], argv[1], argv[2:]
    if tool in ("systemctl", "nginx"):
        answer = ask(path, tool, args)
        sys.stdout.write(answer["stdout"])
        sys.stderr.write(answer["stderr"])
        return int(answer["code"])
    pids = {int(p) for p in ask(path, "pids", []).get("stdout", "").split()}
    if tool == "ps":
        result = subprocess.run([PS, *args], capture_output=True, text=True, check=False)
        sys.stdout.write(filter_ps(result.stdout, pids))
        sys.stderr.write(result.stderr)
        return result.returncode
    own = {os.getpid(), os.getppid()}
    chosen = sorted(pids - own)[:TOP_MAX_PIDS] or [os.getpid()]
    os.execv(TOP, [TOP, *args, "-p", ",".join(map(str, chosen))])  # noqa: S606 - the real top, in place
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
