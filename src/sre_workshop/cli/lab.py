"""`sre-workshop lab`: a guided incident for a person, scored like an agent.

    lab start [NAME|--random]     load and a hidden fault; prints the ticket a user would file
    lab hint                      the next graded hint
    lab submit --component C --category K [--cause TEXT]   exit 0 if right, 1 if not
    lab check [--sustain S]       exit 0 once your own fix holds (the lab ends), 1 while it does not
    lab giveup                    reveals the answer, clears the fault, ends the lab

Each accepts --json. After check passes or giveup, the scenario's write-up says what happened, how to see
it and the fix. Every step is recorded in IncidentHistoryTable.
"""

from __future__ import annotations

import textwrap
from typing import Any

import click

from ..errors import ExitStatus, UsageError
from ..faults.runner import who
from ..scenarios.lab import Lab
from .common import Context, emit, json_option, pass_context, say


@click.group()
def lab() -> None:
    """Practise: find and fix a hidden fault from a user's report."""


@lab.command()
@click.argument("name", required=False)
@click.option("--random", "pick_random", is_flag=True, help="A scenario chosen at random.")
@json_option
@pass_context
def start(ctx: Context, name: str | None, pick_random: bool, as_json: bool) -> int:
    """Start load and inject scenario NAME's fault (or a random one) without saying which."""
    if bool(name) == pick_random:
        raise UsageError("give a scenario NAME or --random (`sre-workshop scenario list`)")
    ticket = Lab(ctx.stack()).start(name, who(), say)
    emit(ticket, as_json, _print_ticket)
    return ExitStatus.OK


def _print_ticket(ticket: dict[str, Any]) -> None:
    print("TICKET: " + textwrap.fill(ticket["ticket"], 96, subsequent_indent="        "))
    print("\nInvestigate with `sre-workshop status`, `logs`, `doctor`...; then `sre-workshop lab submit "
          "--component C --category K`, fix it, and `sre-workshop lab check`. Stuck? `sre-workshop lab hint`.")


@lab.command()
@json_option
@pass_context
def hint(ctx: Context, as_json: bool) -> int:
    """The next hint, vaguest first."""
    emit(Lab(ctx.stack()).hint(), as_json, lambda h: print(f"hint {h['number']}/{h['of']}: {h['hint']}"))
    return ExitStatus.OK


@lab.command()
@click.option("--component", required=True, help="The root-cause component (vocabulary: `sre-workshop status`).")
@click.option("--category", required=True, help="What kind of breakage: crash, config, latency, errors, ...")
@click.option("--cause", default="", help="The cause in your words.")
@json_option
@pass_context
def submit(ctx: Context, component: str, category: str, cause: str, as_json: bool) -> int:
    """Score your diagnosis."""
    verdict = Lab(ctx.stack()).submit(component, category, cause)
    emit(verdict, as_json, _print_verdict)
    return ExitStatus.OK if verdict["correct"] else ExitStatus.ERROR


def _print_verdict(verdict: dict[str, Any]) -> None:
    if verdict["correct"]:
        print(f"correct (attempt {verdict['attempt']}): now fix it, then `sre-workshop lab check`")
        return
    parts = [f"component {'right' if verdict['component_correct'] else 'wrong'}",
             f"category {'right' if verdict['category_correct'] else 'wrong'}"]
    print(f"not quite (attempt {verdict['attempt']}): {', '.join(parts)}")


@lab.command()
@click.option("--sustain", type=click.FloatRange(min=1), default=10.0, show_default=True,
              help="Seconds the stack must stay healthy.")
@json_option
@pass_context
def check(ctx: Context, sustain: float, as_json: bool) -> int:
    """Verify that your fix holds; the lab ends when it does."""
    outcome = Lab(ctx.stack()).check(sustain_s=sustain)
    emit(outcome, as_json, _print_outcome)
    return ExitStatus.OK if outcome["fixed"] else ExitStatus.ERROR


@lab.command()
@json_option
@pass_context
def giveup(ctx: Context, as_json: bool) -> int:
    """Reveal the answer, clear the fault and end the lab."""
    emit(Lab(ctx.stack()).giveup(), as_json, _print_outcome)
    return ExitStatus.OK


def _print_outcome(outcome: dict[str, Any]) -> None:
    if "problems" in outcome:
        print("not fixed yet: " + "; ".join(outcome["problems"]))
        return
    truth = outcome["ground_truth"]
    head = "fixed: the stack stayed healthy" if outcome["fixed"] else "gave up"
    print(f"{head}. It was {truth['component']}/{truth['category']}: {truth['cause']}.")
    print(f"diagnosed: {'yes' if outcome['diagnosed'] else 'no'} in {outcome['attempts']} attempt(s), "
          f"{outcome['hints']} hint(s), {outcome['minutes']} min")
    for title, key in (("What happened", "happened"), ("How to see it", "see"), ("The fix", "fix")):
        print(f"\n{title}:\n" + textwrap.fill(outcome["writeup"][key], 96, initial_indent="  ",
                                               subsequent_indent="  "))


COMMANDS = (lab,)
