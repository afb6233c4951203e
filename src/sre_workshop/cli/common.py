"""What every command module shares: the context object, progress lines, and `--json` output."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from ..local.stack import Stack
from ..settings import Settings


@dataclass
class Context:
    """The root command's options, handed to every command."""

    state_dir: Path | None = None

    def settings(self, **overrides: Any) -> Settings:
        """Return the settings from the environment and the root options."""
        return Settings.from_env(state_dir=self.state_dir, **overrides)

    def stack(self) -> Stack:
        """Return the local stack as the last `up` made it."""
        return Stack.open(self.settings(), progress=say)


pass_context = click.make_pass_decorator(Context)


def json_option(function: Callable) -> Callable:
    """Add `--json` (machine-readable output on stdout, progress still on stderr)."""
    return click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")(function)


def say(message: str) -> None:
    """Print a progress line to stderr."""
    print(f"  {message}", file=sys.stderr, flush=True)


def emit(data: Any, as_json: bool, render: Callable[[Any], None]) -> None:
    """Print `data` as JSON, or through `render` for people."""
    if as_json:
        print(json.dumps(data, indent=2, default=str))
    else:
        render(data)
