"""`sre-workshop`: a thin command line over the library, built on Click.

Click runs without its standalone mode, so that the exit statuses stay ours (errors.ExitStatus) and
Ctrl-C exits 130. Every expected failure (errors.WorkshopError) is one line on stderr and its exit
status; anything else is one line saying it was unexpected, with a hint for `--traceback`.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

import click

from ..errors import ExitStatus, WorkshopError
from . import aws, doctor, fault, lab, load, mcp, scenario, shell, stack, twin
from .common import Context

__all__ = ["ExitStatus", "cli", "main"]

# Command modules, in the order `--help` lists them; each exports COMMANDS. Later groups (fault, incidents,
# load, doctor, scenario, mcp) are one module each, added here.
MODULES = (stack, twin, shell, fault, load, doctor, scenario, lab, mcp, aws)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--state-dir", type=click.Path(path_type=Path, file_okay=False),
              help="Local stack's state directory (default ./.sre-workshop or SRE_WORKSHOP_STATE_DIR).")
@click.option("--traceback", "show_traceback", is_flag=True, help="Show the full traceback on errors.")
@click.pass_context
def cli(ctx: click.Context, state_dir: Path | None, show_traceback: bool) -> None:
    """Run the SRE workshop's architecture locally or on AWS, break it and diagnose it."""
    ctx.obj = Context(state_dir=state_dir.absolute() if state_dir else None)


for module in MODULES:
    for command in module.COMMANDS:
        cli.add_command(command)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        result = cli.main(args=args, prog_name="sre-workshop", standalone_mode=False)
        sys.stdout.flush()  # inside the try: a reader that went away (`| head`) is handled below
        return int(result or 0)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:  # bad options or arguments: Click's own one-line message
        exc.show()
        return ExitStatus.USAGE
    except (click.Abort, KeyboardInterrupt):
        print("interrupted", file=sys.stderr)
        return ExitStatus.INTERRUPTED
    except BrokenPipeError:  # `sre-workshop status | head`: the reader is gone; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return ExitStatus.PIPE
    except WorkshopError as exc:
        _traceback_if_asked(args)
        print(f"sre-workshop: error: {exc}", file=sys.stderr)
        return exc.exit_status
    except Exception as exc:
        _traceback_if_asked(args)
        print(f"sre-workshop: unexpected error: {exc!r} (run with --traceback for details)", file=sys.stderr)
        return ExitStatus.ERROR


def _traceback_if_asked(args: list[str]) -> None:
    """Print the traceback of the exception being handled when `--traceback` was given."""
    if "--traceback" in args:
        traceback.print_exc()


def entry() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    entry()
