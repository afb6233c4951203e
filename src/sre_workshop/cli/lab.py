"""`sre-workshop lab`: a guided incident for a person, scored like an agent.

    lab start [NAME|--random] [--assist]   load and a hidden fault; prints the ticket a user would file
    lab hint                      the next graded hint: where to look, then the diagnosis, then the repair
    lab submit --component C --category K [--cause TEXT]   exit 0 if right, 1 if not
    lab check [--sustain S] [--wait S]   exit 0 once your own repair holds (the lab ends), 1 while it does not,
                                  saying what it waits for
    lab giveup                    reveals the answer, clears the fault, ends the lab

Each accepts --json. Nothing these print before check passes or giveup names the fault; doctor, the fault
commands and the incident ledger refuse during a lab (doctor is allowed with `lab start --assist`, each use
counted as a hint). After check passes or giveup, the scenario's write-up says what happened, how to see it
and the fix. Every step is recorded in IncidentHistoryTable.

`--json` shapes: start {"ticket", "time_limit_s", "assist"}; hint {"hint", "number", "of"}; submit
{"component_correct", "category_correct", "correct", "attempt"}; check while waiting {"fixed": false,
"credit": bool (false: the fault tool, not you, put it back), "waiting", "problems"}; check passed and giveup
{"scenario", "fixed", "diagnosed", "attempts", "hints", "minutes", "ground_truth", "writeup"}.
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
@click.option("--assist", is_flag=True, help="Allow doctor during the lab; each use counts as a hint.")
@json_option
@pass_context
def start(ctx: Context, name: str | None, pick_random: bool, assist: bool, as_json: bool) -> int:
    """Start load and inject scenario NAME's fault (or a random one) without saying which."""
    if bool(name) == pick_random:
        raise UsageError("give a scenario NAME or --random (`sre-workshop scenario list`)")
    ticket = Lab(ctx.stack()).start(name, who(), say, assist=assist)
    emit(ticket, as_json, _print_ticket)
    return ExitStatus.OK


def _print_ticket(ticket: dict[str, Any]) -> None:
    print("TICKET: " + textwrap.fill(ticket["ticket"], 96, subsequent_indent="        "))
    doctor = ("`sre-workshop doctor` is allowed: each use counts as a hint" if ticket.get("assist") else
              "doctor is not offered in this lab")
    advice = ("Investigate as on-call would: `sre-workshop status`, `sre-workshop logs NAME`, a shell on an "
              "instance (`sre-workshop shell INSTANCE`: its /etc, /var/log, ps, systemctl), and the AWS APIs "
              "(`eval \"$(sre-workshop aws-env --shell)\"`, then `aws ...`); " + doctor + ". Then `sre-workshop "
              "lab submit --component C --category K`, repair it by hand as the deployed system allows, and "
              "`sre-workshop lab check`. Stuck? `sre-workshop lab hint`; `sre-workshop lab giveup` ends it.")
    print("\n" + textwrap.fill(advice, 96))


@lab.command()
@json_option
@pass_context
def hint(ctx: Context, as_json: bool) -> int:
    """The next hint: where to look first, then the diagnosis, last the repair."""
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
@click.option("--wait", "wait_s", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="Seconds to keep looking for your repair, saying what it waits for.")
@json_option
@pass_context
def check(ctx: Context, sustain: float, wait_s: float, as_json: bool) -> int:
    """Verify that your own repair holds; the lab ends when it does."""
    outcome = Lab(ctx.stack()).check(sustain_s=sustain, wait_s=wait_s, progress=say)
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
    if "waiting" in outcome:
        seen = f" (now: {'; '.join(outcome['problems'])})" if outcome["problems"] else ""
        print(f"not fixed yet: {outcome['waiting']}{seen}")
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
