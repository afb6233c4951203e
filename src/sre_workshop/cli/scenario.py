"""`sre-workshop scenario list|run`: scored incident scenarios on the local stack.

    scenario list [--json]
    scenario run NAME...|--all [--agent "COMMAND" [--assist] [--agent-env NAME]...] [--json] [--html FILE]
                 [--time-limit S] [--interval S] [--seed N --variants K] [--noise KIND,...|all]

`run` checks steady state, starts load, injects the scenario's fault, lets doctor (and with --agent an
agent over MCP) diagnose it, clears it, verifies sustained recovery and writes the score to
IncidentHistoryTable. `--json` prints {"scorecards": [{"scorer", "results": [...], "totals": {...}}]}
(scenarios/scorecard.py). `--variants K` runs K variants of each scenario, their parameters drawn from
the fault's ranges under `--seed` (scenarios/variants.py); `--noise` runs noise injectors beside each
scenario (scenarios/noise.py). Compound, cascading and manual scenarios (scenarios/data/extra/) run by
name. Exit 0 when every scenario passed, 1 when one did not.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from ..errors import ExitStatus, UsageError
from ..scenarios import scorecard
from ..scenarios.catalogue import scenarios
from ..scenarios.extra import extras, get_any
from ..scenarios.html import page
from ..scenarios.model import Scenario
from ..scenarios.multi import run_all_kinds
from ..scenarios.noise import KINDS as NOISE_KINDS
from ..scenarios.noise import parse_kinds
from ..scenarios.result import Result
from ..scenarios.runner import Options
from ..scenarios.variants import variants
from .argv import blank
from .common import Context, emit, json_option, pass_context, say


@click.group()
def scenario() -> None:
    """Scored incident scenarios: inject, let doctor or an agent diagnose, score, recover."""


@scenario.command("list")
@json_option
def list_scenarios(as_json: bool) -> int:
    """Every scenario: its fault, ground truth, load and time limit."""
    found = [*scenarios().values(), *extras().values()]
    emit({"scenarios": [s.to_dict() for s in found]}, as_json, _print_list)
    return ExitStatus.OK


def _print_list(result: dict[str, Any]) -> None:
    for s in result["scenarios"]:
        truths = [p["ground_truth"] for p in s["parts"]] if "parts" in s else [s["ground_truth"]]
        what = " + ".join(f"{t['component']}/{t['category']}" for t in truths if t) or "no fault (control)"
        print(f"{s['name']:<24} {what:<24} {s['time_limit_s']:>4g}s  {s['title']}")


@scenario.command("run")
@click.argument("names", nargs=-1, metavar="[NAME]...")
@click.option("--all", "run_all", is_flag=True, help="Run every scenario, the control last.")
@click.option("--agent", "agent_command", metavar="COMMAND",
              help="Also let this agent diagnose each scenario over MCP (it gets the server's URL).")
@click.option("--assist", is_flag=True,
              help="Also give the agent doctor (diagnose); the run is scored as assisted.")
@click.option("--agent-env", "agent_env", multiple=True, metavar="NAME",
              help="Pass this environment variable to the agent (repeatable); it gets nothing else of ours.")
@click.option("--html", "html_path", type=click.Path(path_type=Path, dir_okay=False), metavar="FILE.html",
              help="Also write the scorecard with per-scenario timelines as one HTML page.")
@click.option("--time-limit", type=click.FloatRange(min=5), help="Seconds to detect, instead of each scenario's own.")
@click.option("--interval", type=click.FloatRange(min=0.5), default=2.0, show_default=True,
              help="Seconds between doctor's diagnoses.")
@click.option("--seed", type=int, default=0, show_default=True, help="The seed variants are drawn from.")
@click.option("--variants", "count", type=click.IntRange(min=1), help="Run K variants of each scenario.")
@click.option("--noise", metavar="KIND,...|all",
              help=f"Noise beside each scenario: {', '.join(NOISE_KINDS)} (or all).")
@json_option
@pass_context
def run_command(ctx: Context, names: tuple[str, ...], run_all: bool, agent_command: str | None, assist: bool,
                agent_env: tuple[str, ...], html_path: Path | None, time_limit: float | None, interval: float,
                seed: int, count: int | None, noise: str | None,
                as_json: bool) -> int:
    """Run scenarios NAME... (or --all) and print the scorecard."""
    if bool(names) == run_all:
        raise UsageError("give scenario NAMEs or --all")
    if (assist or agent_env) and not agent_command:
        raise UsageError("--assist and --agent-env go with --agent")
    chosen = list(scenarios().values()) if run_all else [get_any(name) for name in dict.fromkeys(names)]
    if agent_command:
        blank(set(names))  # the agent may read our command line in the process table: not the scenario's name
    if count:
        chosen = [v for s in chosen for v in (variants(s, seed, count) if isinstance(s, Scenario) else [s])]
    options = Options(interval_s=interval, time_limit_s=time_limit, noise=parse_kinds(noise), seed=seed)
    stack = ctx.stack()
    if agent_command and len(chosen) > len([s for s in chosen if isinstance(s, Scenario)]):
        raise UsageError("--agent runs catalogue scenarios only (not compound, cascade or manual ones)")
    cards = [("doctor", run_all_kinds(stack, chosen, options, say))]
    if agent_command:
        from ..scenarios.agent import AgentOptions, run_agent_many  # the MCP SDK loads only for agent runs

        agent = AgentOptions(assist=assist, env=agent_env)
        cards.append(run_agent_many(stack, chosen, agent_command, options, say, agent))
    emit({"scorecards": [scorecard.card(s, r) for s, r in cards]}, as_json, lambda _: _print_card(cards))
    if html_path:
        html_path.write_text(page(cards))
        print(f"scorecard: {html_path}", file=sys.stderr)
    return ExitStatus.OK if _all_passed(cards) else ExitStatus.ERROR


def _print_card(cards: list[tuple[str, list[Result]]]) -> None:
    print(scorecard.table(cards))
    for scorer, results in cards:
        spread = scorecard.spread_table(results)
        if spread:
            print(f"\n{scorer}: the spread over variants\n{spread}")


def _all_passed(cards: list[tuple[str, list[Result]]]) -> bool:
    return all(r.passed for _, results in cards for r in results)


COMMANDS = (scenario,)
