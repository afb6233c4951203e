"""`sre-workshop mcp`: serve the stack's tools to MCP clients (agents, IDEs, chat apps).

    sre-workshop mcp [--transport stdio|http] [--host 127.0.0.1] [--port N] [--allow-changes]
                     [--aws [--stack-name NAME] [--region R]]

stdio is for a client that starts the server itself; http serves streamable HTTP at
http://HOST:PORT/mcp (loopback by default; port 8765 plus SRE_WORKSHOP_PORT_OFFSET). Tools that change
the system (inject_fault, clear_fault, restart_service) exist only with --allow-changes.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from ..errors import ExitStatus, UsageError
from ..faults.aws_backend import AwsBackend
from ..load.targets import is_loopback
from ..mcp import aws_tools
from ..mcp import server as mcp_server
from ..mcp.run import RunRecord
from ..mcp.world import AwsWorld, LocalWorld
from .common import Context, pass_context
from .fault import DEFAULT_STACK, backend_options


@click.command("mcp")
@click.option("--transport", type=click.Choice(["stdio", "http"]), default="stdio", show_default=True,
              help="stdio for a client that starts the server; http for streamable HTTP.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (http).")
@click.option("--port", type=click.IntRange(1, 65535), help="Port to listen on (http; default 8765 + offset).")
@click.option("--allow-changes", is_flag=True, help="Offer inject_fault, clear_fault and restart_service.")
@click.option("--run-dir", type=click.Path(path_type=Path, file_okay=False), hidden=True,
              help="An evaluated agent run: record tool calls here and offer submit_diagnosis.")
@click.option("--assist", is_flag=True, hidden=True, help="An evaluated agent run may call doctor (diagnose).")
@backend_options
@pass_context
def mcp(ctx: Context, transport: str, host: str, port: int | None, allow_changes: bool, run_dir: Path | None,
        assist: bool, on_aws: bool, stack_name: str | None, region: str | None) -> int:
    """Serve the stack's signals (and with --allow-changes its remediations) as MCP tools."""
    if not is_loopback(host):
        print(f"sre-workshop: warning: serving on {host}, not loopback: anyone who reaches it can use the tools",
              file=sys.stderr)
    if on_aws:
        world = AwsWorld(AwsBackend.connect(stack_name or DEFAULT_STACK, region))
    elif stack_name or region:
        raise UsageError("--stack-name and --region go with --aws")
    else:
        world = LocalWorld(ctx.stack())
    record = RunRecord(run_dir) if run_dir else None
    identity = os.environ.get(aws_tools.EXAMINEE_ENV) if record else None
    clients = aws_tools.identity_clients(json.loads(identity)) if identity else None
    server = mcp_server.build(world, allow_changes, record, assist, clients)
    port = port or mcp_server.BASE_PORT + ctx.settings().port_offset
    if transport == "http":
        print(f"MCP server: http://{host}:{port}/mcp", file=sys.stderr, flush=True)
    mcp_server.serve(server, transport, host, port)
    return ExitStatus.OK


COMMANDS = (mcp,)
