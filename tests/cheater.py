"""The cheater: an evaluated agent that never reads a symptom and looks for the answer everywhere it can.

    python tests/cheater.py URL      (run by `scenario run NAME --agent`, as the examinee)

It knows the public catalogue (every fault's name and ground truth) and tries each channel an examinee can
reach: every MCP tool it is offered, called with each catalogue name for each of its text arguments (an
unknown name once answered with the list of them all) and the tools' own descriptions; the incident ledger
through each of the stack's ports it can find, with the stack's fixed local credentials; the files of its
working directory and home, and of any state directory the process table points at; its environment; the
command lines of its ancestors and of the stack's processes. If any channel names a fault, it submits that
fault's ground truth (a cheat that would score); otherwise it submits "nothing wrong". Its cause is a JSON
report of what each channel gave, so a test can say which channel leaked.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from mcp import Client

from honesty import leaks, terms
from sre_workshop.faults.catalogue import catalogue

SILENT = {"submit_diagnosis"}  # the one tool it calls only once, at the end
DATA_PORTS = ("dynamodb", "dynamodb-endpoint", "aws-api")
READ_LIMIT = 1 << 20  # bytes of one file
FILE_LIMIT = 3000  # files per folder tree
CREDENTIALS = {"aws_access_key_id": "sre-workshop-local", "aws_secret_access_key": "sre-workshop-local"}


async def answer(client: Client, tool: str, arguments: dict[str, Any]) -> str:
    """Call a tool; return everything it answered as text (an error's message too)."""
    try:
        result = await client.call_tool(tool, arguments)
    except Exception as exc:  # a refusal is an answer too
        return str(exc)
    if result.structured_content is not None:
        return json.dumps(result.structured_content)
    return " ".join(getattr(c, "text", "") for c in result.content)


def text_params(schema: dict[str, Any]) -> list[str]:
    """The parameters of a tool that take text."""
    def is_text(spec: dict[str, Any]) -> bool:
        kinds = [spec.get("type")] + [option.get("type") for option in spec.get("anyOf", [])]
        return "string" in kinds
    return [name for name, spec in schema.get("properties", {}).items() if is_text(spec)]


async def tools_channel(client: Client, names: list[str]) -> tuple[dict[str, set[str]], str]:
    """Every tool with no arguments and with each name in each text argument; return (found, architecture)."""
    found: dict[str, set[str]] = {}
    architecture = ""
    for tool in (await client.list_tools()).tools:
        found.setdefault("tool descriptions", set()).update(
            leaks(f"{tool.description} {json.dumps(tool.input_schema)}"))
        if tool.name in SILENT:
            continue
        said = await answer(client, tool.name, {})
        architecture = said if tool.name == "get_architecture" else architecture
        hits = leaks(said)
        for param in text_params(tool.input_schema):
            for name in names:
                hits |= leaks(await answer(client, tool.name, {param: name}), echo=(name,))
        found[f"tool {tool.name}"] = hits
    return found, architecture


def ports_of(architecture: str) -> dict[str, int]:
    """The stack's data ports, as get_architecture names them."""
    try:
        rows = json.loads(architecture).get("components", [])
    except (ValueError, AttributeError):
        return {}
    return {row["name"]: int(row["ports"][0]) for row in rows if row.get("name") in DATA_PORTS and row.get("ports")}


def ledger_channel(ports: dict[str, int], tried: dict[str, Any]) -> set[str]:
    """Read every table (IncidentHistoryTable among them) through each data port with the stack's fixed local
    credentials; note in `tried` how each port answered."""
    import boto3
    from botocore.config import Config

    found: set[str] = set()
    config = Config(connect_timeout=2, read_timeout=5, retries={"total_max_attempts": 1})
    for name, port in ports.items():
        client = boto3.client("dynamodb", region_name="us-east-1", endpoint_url=f"http://127.0.0.1:{port}",
                              config=config, **CREDENTIALS)
        try:
            tables = client.list_tables().get("TableNames", [])
            for table in tables:
                found |= leaks(json.dumps(client.scan(TableName=table, Limit=200).get("Items", [])))
            tried[f"ledger via {name}"] = f"read {len(tables)} tables"
        except Exception as exc:  # refused, unreachable: the channel is closed
            tried[f"ledger via {name}"] = type(exc).__name__
    return found


def read_tree(root: Path, tried: dict[str, Any]) -> set[str]:
    """The faults named in the file names and contents under `root` (what it may read); counts the files
    read in `tried`."""
    found: set[str] = set()
    read = 0
    for count, (folder, _, files) in enumerate(os.walk(root)):
        for name in files:
            path = Path(folder) / name
            found |= leaks(str(path.relative_to(root)))
            try:
                with path.open("rb") as handle:
                    found |= leaks(handle.read(READ_LIMIT).decode(errors="replace"))
                read += 1
            except OSError:
                continue
        if count > FILE_LIMIT:
            break
    tried[f"files under {root}"] = read
    return found


def argv(pid: int | str) -> str:
    """A process's command line ("" if it is gone or hidden)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def ancestors() -> list[int]:
    """Our parent, its parent, ... up to init."""
    chain, pid = [], os.getppid()
    while pid > 1:
        chain.append(pid)
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
    return chain


def state_dirs(architecture: str) -> set[Path]:
    """The stack's state directory, as the command lines of its processes (get_architecture's pids) show it:
    the folder above a run/ they name. Only this stack's: another stack on a shared machine is not ours."""
    try:
        pids = [row["pid"] for row in json.loads(architecture).get("components", []) if row.get("pid")]
    except (ValueError, AttributeError):
        return set()
    # Not filtered by is_dir(): a folder above it that we may not enter would raise; reading it fails alone.
    return {Path(word.split("/run/")[0]) for pid in pids for word in argv(pid).split() if "/run/" in word}


def stack_processes(roots: set[Path]) -> list[int]:
    """Processes whose command line names one of the stack's state directories."""
    return [int(e.name) for e in Path("/proc").iterdir()
            if e.name.isdigit() and any(str(root) in argv(e.name) for root in roots)]


def local_channels(architecture: str, tried: dict[str, Any]) -> dict[str, set[str]]:
    """Ledger, files, environment and process table; how each went in `tried`."""
    roots = state_dirs(architecture)
    files = read_tree(Path.cwd(), tried) | read_tree(Path.home(), tried)
    for root in roots:
        files |= read_tree(root, tried)
    pids = set(ancestors()) | set(stack_processes(roots))
    tried["command lines read"] = len([pid for pid in pids if argv(pid)])
    return {"ledger": ledger_channel(ports_of(architecture), tried), "files": files,
            "environment": leaks(json.dumps(dict(os.environ))),
            "process table": set().union(*(leaks(argv(pid)) for pid in pids))}


def guess(found: dict[str, set[str]]) -> dict[str, Any]:
    """Submit the ground truth of the fault the channels named most (nothing wrong if none did)."""
    counted = Counter(name for names in found.values() for name in names if name in catalogue())
    if not counted:
        return {"component": "none", "category": "none", "cause": "no channel named a fault", "actions": []}
    name = counted.most_common(1)[0][0]
    fault = catalogue()[name]
    defaults = {p.name: p.default for p in fault.params}
    component = fault.truth["component"].format(**defaults)
    return {"component": component, "category": fault.truth["category"], "cause": f"a channel named {name}",
            "actions": []}


async def cheat(url: str) -> dict[str, Any]:
    """Try every channel, print what each gave, submit the guess; return the submission's answer."""
    names = sorted({*catalogue(), "control"})
    async with Client(url) as client:
        found, architecture = await tools_channel(client, names)
        tried: dict[str, Any] = {}
        found.update(local_channels(architecture, tried))
        report = {"leaks": {k: sorted(v) for k, v in found.items() if v}, "channels": sorted(found), "tried": tried}
        for name in names:  # brute force: each catalogue name as the thing to restart
            await answer(client, "restart_service", {"name": name})
        # The report rides in the cause, which the scorecard keeps whole (the log's tail may cut it).
        said = await answer(client, "submit_diagnosis", {**guess(found), "cause": json.dumps(report)})
        print(said, flush=True)
        return {"answer": said}


def main(argv_: list[str] | None = None) -> int:
    """Cheat against the URL given (last argument, or $SRE_WORKSHOP_MCP_URL)."""
    args = sys.argv[1:] if argv_ is None else argv_
    url = args[-1] if args else os.environ.get("SRE_WORKSHOP_MCP_URL", "")
    assert terms(), "the catalogue is empty"
    asyncio.run(cheat(url))
    return 0


if __name__ == "__main__":
    sys.exit(main())
