"""`sre-workshop`: a thin command line over the library. Every expected failure is one line and an exit code.

    sre-workshop up [--detach]        run the whole architecture locally (foreground: Ctrl-C stops it)
    sre-workshop down                 stop everything the stack started (data is kept)
    sre-workshop status [--json]      components, health and target health
    sre-workshop logs NAME [-f]       a component's logs
    sre-workshop service ACTION NAME  stop, start or restart one component, as systemctl would
    sre-workshop package [--out DIR]  build sre-app.zip, crm-app.zip and nginx-assets.zip
    sre-workshop deploy               deploy the whole architecture to AWS (billable; see --ttl)
    sre-workshop destroy              delete it, with its assets bucket, and check nothing billable is left
"""

from __future__ import annotations

import argparse
import enum
import json
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from ..aws import deploy, package
from ..aws.session import AwsError
from ..local.components import MissingProgram
from ..local.configs import TemplateError
from ..local.stack import ComponentFailed, PortInUse, Stack, StackError, UnknownComponent, recorded_endpoint
from ..settings import Settings


class ExitStatus(enum.IntEnum):
    """Exit codes, one per class of failure."""

    OK = 0
    ERROR = 1              # an unexpected error (run with --traceback for details)
    USAGE = 2              # bad arguments (argparse's own code)
    MISSING_PROGRAM = 3    # nginx or haproxy is not installed
    PORT_IN_USE = 4        # another program holds a port the stack needs
    UNHEALTHY = 5          # a component did not start or did not become healthy
    AWS = 6                # AWS refused or failed: credentials, region, a stack that failed or is stuck
    INTERRUPTED = 130      # Ctrl-C


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of every subcommand."""
    parser = argparse.ArgumentParser(prog="sre-workshop", description=__doc__.splitlines()[0])
    parser.add_argument("--state-dir", type=Path, help="state directory (default ./.sre-workshop)")
    parser.add_argument("--traceback", action="store_true", help="show the full traceback on errors")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up = commands.add_parser("up", help="run the whole architecture on this machine")
    up.add_argument("--detach", "-d", action="store_true", help="return once every target is healthy")
    up.add_argument("--dynamodb-endpoint", metavar="URL", help="use this DynamoDB endpoint instead of moto")
    up.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for health (default 60)")

    commands.add_parser("down", help="stop everything the stack started (data is kept)")

    status = commands.add_parser("status", help="components, health and target health")
    status.add_argument("--json", action="store_true", help="machine-readable output")

    logs = commands.add_parser("logs", help="show a component's logs")
    logs.add_argument("name")
    logs.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")
    logs.add_argument("-n", "--lines", type=int, default=50, help="lines of each log to show (default 50)")

    service = commands.add_parser("service", help="stop, start or restart one component")
    service.add_argument("action", choices=["start", "stop", "restart"])
    service.add_argument("name")

    pack = commands.add_parser("package", help="build the three zips the instances install")
    pack.add_argument("--out", type=Path, default=Path("dist"), help="output directory (default ./dist)")

    for name, text in (("deploy", "deploy the architecture to AWS (creates billable resources)"),
                       ("destroy", "delete the stack and its assets bucket")):
        aws = commands.add_parser(name, help=text)
        aws.add_argument("--stack-name", default="sre-workshop", help="CloudFormation stack (default sre-workshop)")
        aws.add_argument("--region", help="AWS region (default: your configured region)")
        if name == "deploy":
            aws.add_argument("--ttl", type=float, default=8.0, metavar="HOURS",
                             help="cost guard: the stack deletes itself after HOURS (default 8; 0 for never)")
    return parser


def say(message: str) -> None:
    """Print a progress line to stderr."""
    print(f"  {message}", file=sys.stderr, flush=True)


def print_endpoints(stack: Stack) -> None:
    """Print the public entry points."""
    endpoints = stack.settings.endpoints
    print(f"app: {endpoints['app']}/   (public ALB :80 -> nginx -> private ALB -> sre-app)")
    print(f"crm: {endpoints['crm']}/   (public ALB :8080 -> crm-app)")


def cmd_up(stack: Stack, args: argparse.Namespace) -> ExitStatus:
    """Bring the stack up; in the foreground, wait for Ctrl-C and take it down."""
    # `kill` and a closed terminal stop the stack cleanly too (moto's data saved, no orphans), like Ctrl-C.
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _raise_interrupt)
    try:
        stack.up(timeout=args.timeout)
    except KeyboardInterrupt:  # Ctrl-C while starting: stop what was started
        print("\ninterrupted; stopping...", file=sys.stderr, flush=True)
        stack.down()
        return ExitStatus.INTERRUPTED
    except StackError:
        if not args.detach:  # with --detach the parts are left for `status` and `logs`; `down` stops them
            stack.down()
        raise
    print_endpoints(stack)
    if args.detach:
        return ExitStatus.OK
    print("running; press Ctrl-C to stop", file=sys.stderr, flush=True)
    try:
        _watch(stack)
    except KeyboardInterrupt:
        print("\nstopping...", file=sys.stderr, flush=True)
        stack.down()
    return ExitStatus.OK


def _raise_interrupt(signum, frame) -> None:
    """Treat SIGTERM and SIGHUP like Ctrl-C."""
    raise KeyboardInterrupt


def _watch(stack: Stack) -> None:
    """Report components that exit, until interrupted (nothing restarts them, as on AWS)."""
    reported: set[str] = set()
    while True:
        time.sleep(1)
        for row in stack.status()["components"]:
            if row["state"] == "exited" and row["name"] not in reported:
                reported.add(row["name"])
                say(f"{row['name']} exited; `sre-workshop service start {row['name']}` starts it again")


def cmd_down(stack: Stack, args: argparse.Namespace) -> ExitStatus:
    """Stop everything; say so when there was nothing to stop."""
    stopped = stack.down()
    print("stopped: " + ", ".join(stopped) if stopped else "nothing was running")
    return ExitStatus.OK


def cmd_status(stack: Stack, args: argparse.Namespace) -> ExitStatus:
    """Print component and target health (non-zero exit if something is unhealthy)."""
    status = stack.status()
    if args.json:
        print(json.dumps(status, indent=2))
    else:
        print(f"{'COMPONENT':<18} {'STATE':<8} {'PID':>7}  {'HEALTH':<9} URL")
        for row in status["components"]:
            health = "healthy" if row["healthy"] else "-" if row["state"] == "stopped" else "unhealthy"
            print(f"{row['name']:<18} {row['state']:<8} {row['pid'] or '-':>7}  {health:<9} {row['url']}")
        if status["targets"]:
            print(f"\n{'TARGET GROUP':<22} {'TARGET':<20} {'STATE':<10} REASON")
            for t in status["targets"]:
                print(f"{t['target_group']:<22} {t['target']:<20} {t['state']:<10} {t['reason']}")
        print()
        print_endpoints(stack)
    healthy = all(r["healthy"] for r in status["components"])
    return ExitStatus.OK if healthy else ExitStatus.UNHEALTHY


def cmd_logs(stack: Stack, args: argparse.Namespace) -> ExitStatus:
    """Print the last lines of a component's logs, and follow them with -f."""
    paths = stack.log_paths(args.name)
    offsets = {}
    for path in paths:
        if path.exists():
            print(f"==> {path} <==")
            lines = path.read_text(errors="replace").splitlines()
            print("\n".join(lines[-args.lines:]))
            offsets[path] = path.stat().st_size
    while args.follow:
        time.sleep(0.5)
        for path in paths:
            if path.exists() and path.stat().st_size > offsets.get(path, 0):
                with open(path, errors="replace") as f:
                    f.seek(offsets.get(path, 0))
                    sys.stdout.write(f.read())
                    sys.stdout.flush()
                offsets[path] = path.stat().st_size
    return ExitStatus.OK


def cmd_service(stack: Stack, args: argparse.Namespace) -> ExitStatus:
    """Stop, start or restart one component."""
    stack.service(args.action, args.name)
    print(f"{args.name}: {args.action} done")
    return ExitStatus.OK


def cmd_package(settings: Settings, args: argparse.Namespace) -> ExitStatus:
    """Build the zips and print their hashes."""
    for artifact in package.build(settings, args.out):
        print(f"{artifact.path}  sha256:{artifact.sha256}")
    return ExitStatus.OK


def cmd_deploy(settings: Settings, args: argparse.Namespace) -> ExitStatus:
    """Deploy to AWS and print the outputs."""
    say("this creates billable AWS resources (NAT gateway, 2 load balancers, 3 instances)")
    options = deploy.DeployOptions(stack_name=args.stack_name, region=args.region, ttl_hours=args.ttl)
    with tempfile.TemporaryDirectory(prefix="sre-workshop-") as build_dir:
        results = deploy.deploy(settings, options, say, Path(build_dir))
    for key, value in sorted(results.items()):
        print(f"{key}: {value}")
    return ExitStatus.OK


def cmd_destroy(settings: Settings, args: argparse.Namespace) -> ExitStatus:
    """Delete the stack and bucket; fail if anything billable is left."""
    left = deploy.destroy(deploy.DeployOptions(stack_name=args.stack_name, region=args.region), say)
    if left:
        print("still there (delete by hand or run destroy again): " + ", ".join(left))
        return ExitStatus.ERROR
    print(f"stack {args.stack_name} deleted; nothing billable is left")
    return ExitStatus.OK


LOCAL_COMMANDS = {"up": cmd_up, "down": cmd_down, "status": cmd_status, "logs": cmd_logs, "service": cmd_service}
AWS_COMMANDS = {"package": cmd_package, "deploy": cmd_deploy, "destroy": cmd_destroy}
FAILURES = [(MissingProgram, ExitStatus.MISSING_PROGRAM), (PortInUse, ExitStatus.PORT_IN_USE),
            (ComponentFailed, ExitStatus.UNHEALTHY), (UnknownComponent, ExitStatus.USAGE),
            (StackError, ExitStatus.ERROR), (TemplateError, ExitStatus.ERROR), (ValueError, ExitStatus.USAGE),
            (AwsError, ExitStatus.AWS), (FileNotFoundError, ExitStatus.ERROR)]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env(state_dir=args.state_dir.absolute() if args.state_dir else None)
        if args.command in AWS_COMMANDS:
            return AWS_COMMANDS[args.command](settings, args)
        # `up` chooses the DynamoDB engine; every later command uses the one it chose.
        endpoint = args.dynamodb_endpoint if args.command == "up" else recorded_endpoint(settings)
        return LOCAL_COMMANDS[args.command](Stack(replace(settings, dynamodb_endpoint=endpoint), progress=say), args)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return ExitStatus.INTERRUPTED
    except Exception as exc:
        if args.traceback:
            traceback.print_exc()
        for kind, status in FAILURES:
            if isinstance(exc, kind):
                print(f"sre-workshop: error: {exc}", file=sys.stderr)
                return status
        print(f"sre-workshop: unexpected error: {exc!r} (run with --traceback for details)", file=sys.stderr)
        return ExitStatus.ERROR


def entry() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    entry()
