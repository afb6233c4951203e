"""An evaluated agent's run, as the MCP server records it for the scenario runner: every tool call, and
the one diagnosis the agent submits. Both are files in the run's directory, written atomically:

    calls.jsonl       {"tool", "arguments", "ok", "at"} per call
    submission.json   {"component", "category", "cause", "actions", "at"}
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..vocabulary import CATEGORIES, COMPONENTS

NONE = "none"  # a submission saying that nothing is wrong


class RunRecord:
    """The files of one agent run."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.calls_path = folder / "calls.jsonl"
        self.submission_path = folder / "submission.json"

    def call(self, tool: str, arguments: dict[str, Any], ok: bool) -> None:
        """Append one tool call."""
        line = json.dumps({"tool": tool, "arguments": arguments, "ok": ok, "at": time.time()}, default=str)
        with self.calls_path.open("a") as out:
            out.write(line + "\n")

    def calls(self) -> list[dict[str, Any]]:
        """Return the tool calls so far."""
        if not self.calls_path.exists():
            return []
        return [json.loads(line) for line in self.calls_path.read_text().splitlines() if line.strip()]

    def submit(self, component: str, category: str, cause: str, actions: list[str]) -> dict[str, Any]:
        """Record the agent's diagnosis; refuse a second one or names outside the vocabulary."""
        if self.submission_path.exists():
            raise UsageError("a diagnosis was already submitted for this run")
        if component != NONE and component not in COMPONENTS:
            raise UsageError(f"component must be one of {', '.join(COMPONENTS)} or none, not {component!r}")
        if category != NONE and category not in CATEGORIES:
            raise UsageError(f"category must be one of {', '.join(CATEGORIES)} or none, not {category!r}")
        if (component == NONE) != (category == NONE):
            raise UsageError("component and category are both none (nothing is wrong) or neither")
        submission = {"component": component, "category": category, "cause": cause, "actions": actions,
                      "at": time.time()}
        partial = self.submission_path.with_suffix(".tmp")
        partial.write_text(json.dumps(submission))
        os.replace(partial, self.submission_path)
        return submission

    def submission(self) -> dict[str, Any] | None:
        """Return the submitted diagnosis, or None."""
        if not self.submission_path.exists():
            return None
        return json.loads(self.submission_path.read_text())
