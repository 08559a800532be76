"""``rolebatch search``: which role, if any, helps on questions the search
never saw: a race on part of the job's questions, then one paired test of
the pick against the control on the rest (``search.flow``)."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import anyio
import click

from ..bugs import message as bug_message
from ..errors import AbortError, Pending, RolebatchError, UsageError
from ..evaluate.numbers import finite
from ..exits import Exit
from ..records.shards import output_stem
from . import heavy_imports
from .options import job_options, run_config
from .outcome import (
    Invocation,
    append_step_summary,
    headline,
    run_options,
    status_of,
    write_json,
)
from .run import _reporter
from .settings import WithSettings, config_option

NATURAL = {"choice": "choice", "answer": "exact"}


@click.command(cls=WithSettings)
@click.option(
    "--score",
    metavar="SCORER",
    help="What an answer scores: choice, exact, includes, regex:PATTERN, number[:TOL],"
    " field:NAME, rouge-l:FIELD, python:MODULE:FUNCTION.  [default: the task's own:"
    " choice for --task choice, exact for --task answer]",
)
@click.option(
    "--rubric",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="Open-ended answers: each is graded by a judge with this rubric (as `rolebatch"
    " judge --rubric` does), and the grade is its score.",
)
@click.option(
    "--judge-model",
    metavar="MODEL",
    help="The judge of --rubric (provider/name).  [default: --model; a judge of another"
    " family is the fairer one]",
)
@click.option(
    "--holdout",
    type=click.FloatRange(0.0, 1.0, min_open=True, max_open=True),
    default=0.5,
    show_default=True,
    metavar="FRACTION",
    help="The share of the questions held out: the race never sees them; only the pick"
    " and the control answer them, for the verdict.",
)
@click.option(
    "--seed",
    type=int,
    default=0,
    show_default=True,
    help="Which questions are held out, the order the race asks the rest in, and how ties"
    " are broken.",
)
@click.option(
    "--strata",
    metavar="metadata.KEY",
    help="Split each value of the records' metadata KEY apart, so both parts hold every"
    " stratum in the job's proportions.",
)
@click.option(
    "--fail-if-none",
    is_flag=True,
    help="Exit 1 when no role is confirmed better than no role (for a CI job that"
    " re-chooses roles when the model changes).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "md", "json", "html"]),
    default="table",
    show_default=True,
    help="How the decision and the race are shown on stdout.",
)
@click.option(
    "--propose",
    type=click.IntRange(min=1),
    metavar="N",
    help="Have --proposer write N distinct candidate roles for this job from a sample of"
    " its queries, into FOLDER/proposed-roles.jsonl (shown, and kept before any is"
    " asked); with --roles too, they join its roles.  Alone with --propose-only: just"
    " write the file.",
)
@click.option(
    "--proposer",
    metavar="MODEL",
    help="The model that proposes roles (provider/name).  [default: --model]",
)
@click.option(
    "--propose-only", is_flag=True, help="Write the proposed roles and stop: race nothing."
)
@click.option(
    "--estimate",
    is_flag=True,
    help="Say what the search would ask and cost (the race's schedule, the confirmation,"
    " against a full sweep); buy nothing.",
)
@job_options(
    said={
        "output": "The search's folder: its rounds' questions, roles and answers, and"
        " search.json.  [default: out/<job stem>.search]",
        "roles": 'The candidate roles (a roles file, as a sweep takes): the role "" is the'
        " control; without one, a control named none is added.",
    },
)
@config_option
@run_options
def search(job: Path, output: Path | None, invocation: Invocation, **options: Any) -> int:
    """Find the role that helps on questions it never saw, or say none does.

    The job's questions are split (seeded) into a search part and a held-out
    part.  The candidates and the control race on the search part by
    successive halving: after each round the worse half is dropped and asked
    nothing more.  The pick and the control then answer the held-out part,
    and one paired test (the one `report` makes) gives the verdict: better,
    no detectable difference, or worse.  stdout leads with the decision;
    every answer goes into FOLDER through ordinary, resumable outputs, so the
    same command goes on after any stop, buying nothing twice."""
    folder = output or Path("out") / f"{output_stem(job)}.search"
    try:
        return _search(job, folder, invocation, options)
    except (RolebatchError, KeyboardInterrupt) as exc:
        return _ended(invocation, exc, folder)
    except (click.exceptions.Exit, click.ClickException, click.exceptions.Abort):
        raise
    except Exception as exc:  # a bug: its own code, the same summary
        return _ended(invocation, exc, folder)


# The search's own options; the rest are run's, for every round.
OWN = (
    "score",
    "rubric",
    "judge_model",
    "holdout",
    "seed",
    "strata",
    "fail_if_none",
    "fmt",
    "propose",
    "proposer",
    "propose_only",
    "estimate",
)


def _search(job: Path, folder: Path, invocation: Invocation, options: dict[str, Any]) -> int:
    from ..search.flow import Searching

    own = {name: options.pop(name) for name in OWN}
    rubric, score, strata = own["rubric"], own["score"], own["strata"]
    if rubric is not None and score is not None:
        raise UsageError("--rubric grades the answers (its score is the grade): no --score too")
    if own["judge_model"] is not None and rubric is None:
        raise UsageError("--judge-model judges by a rubric: give --rubric too")
    if strata is not None and not strata.startswith("metadata."):
        raise UsageError(f"--strata {strata!r}: expected metadata.KEY")
    config = run_config(job, None, options)
    spec = "field:score" if rubric is not None else score or NATURAL.get(config.asked.task)
    if spec is None:
        raise UsageError(
            f"a search of --task {config.asked.task} needs --score: what an answer scores"
            " (exact, includes, regex:PATTERN, number[:TOL], field:NAME, python:MODULE:FUNC),"
            " or --rubric RUBRIC for a judge's grade"
        )
    from ..evaluate.scorers import scorer

    scorer(spec)  # a bad scorer is refused before anything is bought
    searching = Searching(
        spec,
        own["holdout"],
        own["seed"],
        strata.removeprefix("metadata.") if strata else None,
        rubric,
        own["judge_model"],
    )
    proposed = folder / "proposed-roles.jsonl"
    if own["propose"] is not None and own["estimate"]:
        # An estimate buys nothing: it races the roles proposed before.
        if not proposed.is_file():
            raise UsageError(
                f"--estimate buys nothing, a proposal included: propose first (--propose"
                f" {own['propose']} --propose-only), then estimate the search of {proposed}"
            )
        config = config.asking(roles=proposed)
    elif own["propose"] is not None:
        proposer = own["proposer"] or config.asked.model
        roles = _proposed(config, searching, folder, own["propose"], proposer, invocation)
        if own["propose_only"]:
            return int(Exit.OK)
        config = config.asking(roles=roles)
    elif own["propose_only"]:
        raise UsageError("--propose-only needs --propose N")
    if own["estimate"]:
        with heavy_imports():
            from ..search.estimate import estimate as forecast

        click.echo(forecast(config, searching, folder, own["fmt"] == "json"))
        return int(Exit.OK)
    return _run(config, searching, folder, invocation, own["fmt"], own["fail_if_none"])


def _run(
    config: Any,
    searching: Any,
    folder: Path,
    invocation: Invocation,
    fmt: str,
    fail_if_none: bool,
) -> int:
    with heavy_imports():
        from ..search.flow import search as run_search
    from ..search.render import decision_line, render, step_summary

    reporter = _reporter(invocation.progress_style, invocation.progress_interval)
    try:
        state = anyio.run(
            functools.partial(run_search, config, searching, folder, reporter, handle_signals=True),
            backend=invocation.backend,
        )
    except (AbortError, Pending) as exc:
        found = getattr(exc, "state", None)
        if found is not None:
            click.echo(render(found, fmt), nl=False)
            append_step_summary(step_summary(found))
        raise
    click.echo(render(state, fmt), nl=False)
    append_step_summary(step_summary(state))
    if state.get("status") == "undecided":
        message = decision_line(state)
        click.echo(f"rolebatch: undecided: {message}", err=True)
        _record(invocation, state, Exit.UNDECIDED, "undecided", message, folder)
        return int(Exit.UNDECIDED)
    decided = (state.get("decision") or {}).get("role") is not None
    if fail_if_none and not decided:
        message = f"--fail-if-none: {decision_line(state)}"
        click.echo(f"rolebatch: failed: {message}", err=True)
        _record(invocation, state, Exit.FAILED, "failed", message, folder)
        return int(Exit.FAILED)
    _record(invocation, state, Exit.OK, "ok", None, folder)
    return int(Exit.OK)


def _ended(invocation: Invocation, error: BaseException, folder: Path) -> int:
    """How a search that did not reach its decision ends: one message, the
    same summary JSON, and the exit code of what stopped it."""
    state = getattr(error, "state", None) or {}
    if isinstance(error, KeyboardInterrupt):
        code, message = Exit.STOPPED, "interrupted between rounds; the same command goes on"
    elif isinstance(error, RolebatchError):
        code, message = Exit(error.exit_code), str(error)
    else:
        code, message = Exit.BUG, bug_message(error)
    click.echo(headline(code, message), err=True)
    if isinstance(error, AbortError | Pending | KeyboardInterrupt):
        click.echo(
            f"rolebatch: every answer bought is kept in {folder}; the same command goes on",
            err=True,
        )
    _record(invocation, state, code, status_of(code, error), message, folder)
    return int(code)


def _record(
    invocation: Invocation,
    state: dict[str, Any],
    code: int,
    status: str,
    message: str | None,
    folder: Path,
) -> None:
    """--summary-json: the same keys however the search ended."""
    if invocation.summary_json is None:
        return
    data = {
        "status": status,
        "exit_code": int(code),
        "message": message,
        "folder": str(folder),
        "decision": state.get("decision"),
        "cost": state.get("cost"),
    }
    write_json(invocation.summary_json, finite(data))


def _proposed(
    config: Any, searching: Any, folder: Path, count: int, model: str, invocation: Invocation
) -> Path:
    with heavy_imports():
        from ..search.propose import propose

    reporter = _reporter(invocation.progress_style, invocation.progress_interval)
    path, shown = anyio.run(
        functools.partial(propose, config, folder, count, model, reporter, searching),
        backend=invocation.backend,
    )
    click.echo(shown, err=True)
    return path
