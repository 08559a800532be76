"""``rolebatch report``: an output's lines compared per role, model or
metadata key; with a scorer, the study of whether a role helps."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from ..exits import Exit
from .outcome import append_step_summary


@click.command()
@click.argument("outputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--by",
    default="role",
    show_default=True,
    help="Group lines by role (a sweep's role id, else the role text), model,"
    " judged_model (a judge's lines: the model that wrote the answers), output"
    " (the output file each came from: last week's run against today's, paired by the"
    " record's id), metadata.KEY (the record's) or role.KEY (what the roles file says"
    " of the role);"
    " or by two of them, KEY,KEY: model,role compares each model's roles with that"
    " model's baseline, and says whether the best role differs by model.  Outputs of"
    " several models are refused unless model is one of the keys.",
)
@click.option(
    "--score",
    "score",
    metavar="SCORER",
    help="Score every line: choice, exact, includes, regex:PATTERN, number[:TOL],"
    " field:NAME, rouge-l:FIELD (rouge-1, rouge-2), python:MODULE:FUNCTION.  [default:"
    " the task's own (choice for --task choice, exact for --task answer); none for others]",
)
@click.option(
    "--baseline",
    metavar="GROUP",
    help="The group every other is compared with, question by question (with --by"
    " output, an output file, e.g. last-week.jsonl).  [default: the sweep's control"
    " role, if it has one]",
)
@click.option(
    "--errors",
    type=click.Choice(["zero", "skip"]),
    default="zero",
    show_default=True,
    help="Error lines score 0 (a role that makes the model fail did worse), or are left out.",
)
@click.option(
    "--seed",
    type=int,
    default=0,
    show_default=True,
    help="Which random half of the questions a group is picked on (the other half scores it).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "md", "csv", "json", "html"]),
    default="table",
    show_default=True,
    help="table: for a terminal; md: for a CI step summary; csv/json: for notebooks;"
    " html: one self-contained page with the intervals drawn.",
)
@click.option(
    "--fail-if-worse",
    is_flag=True,
    help="Exit 1 when a group is worse than the baseline by the report's verdict (the"
    " paired test, Holm-adjusted): a real regression, not noise.",
)
@click.option(
    "--non-inferiority",
    "margin",
    type=click.FloatRange(min=0.0, min_open=True),
    metavar="MARGIN",
    help="Exit 1 unless every group compared with the baseline is shown no worse than it"
    " by more than MARGIN, a score difference in the score's unit (e.g. 0.05 of a 0/1"
    " score, 0.5 of a 1-10 judge's): the lower end of its paired 95 %% interval above"
    " -MARGIN (one-sided 0.025), Holm-adjusted.  Too few questions fail, and the message"
    " says about how many would do.  A margin at or past the score's range is refused.",
)
@click.option(
    "--win-margin",
    type=float,
    metavar="MARGIN",
    help="The same for a judge's head-to-head, in win rate: exit 1 unless each win rate"
    " is shown above 0.5 - MARGIN (0 < MARGIN < 0.5; 0.1: above 0.4).",
)
@click.option(
    "--fail-under",
    type=float,
    metavar="SCORE",
    help="Exit 1 when a group's mean is confidently below SCORE (the upper end of its"
    " 95 %% interval is below it); a mean below SCORE whose interval reaches it is a"
    " warning, exit 0.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write the report here (whole or not at all) instead of to stdout.",
)
def report(
    outputs: tuple[Path, ...],
    by: str,
    score: str | None,
    baseline: str | None,
    errors: str,
    seed: int,
    fmt: str,
    fail_if_worse: bool,
    margin: float | None,
    win_margin: float | None,
    fail_under: float | None,
    output: Path | None,
) -> int:
    """Per group of the lines of OUTPUTS (one output, or several read as
    one: a sweep and its panel, a run and its personas run): records, ok
    share, error kinds, latency p50/p95, mean prompt and completion tokens,
    cost; and per response field: text's length mean and p50, numbers' mean
    and spread, the distribution of booleans and of labels (few-valued short
    strings).  With a scorer (--score, or the task's own): per
    group the mean score with its 95 % interval, each group against the
    baseline question by question (difference, interval, p, Holm's p,
    verdict), the oracle, a group picked at random, and a group picked on
    half the questions scored on the other half.  Reads the file once, in
    flat memory.

    A gate for CI (--fail-if-worse, --non-inferiority, --win-margin,
    --fail-under): exit 0 when it passes (or none is given), 1 when a rule
    fails, 2 on a usage error, 5 when it has nothing to decide on (no lines,
    no scores, no baseline, too few pairs, an unreliable judge: never a
    pass); its lines end the table, the JSON has a "gate" object, the page
    shows it at the top, and with $GITHUB_STEP_SUMMARY set the verdicts are
    appended there.

    A search's folder (`rolebatch search`'s -o, or its search.json) is
    reported as the search: its decision first, then the race."""
    from ..evaluate.gate import Rules, exit_code
    from ..evaluate.render import render, step_summary
    from ..evaluate.study import Asked, study

    searched = _search_state(outputs)
    if searched is not None:
        from ..search.render import render as render_search

        _write(render_search(searched, "table" if fmt == "csv" else fmt), output)
        return int(Exit.OK)

    rules = Rules(fail_if_worse, margin, win_margin, fail_under)
    asked = Asked(by, score, baseline, errors, seed, rules)
    found = study(list(outputs), asked)
    if found.empty:
        click.echo(f"{', '.join(map(str, outputs))}: no lines yet; nothing to report", err=True)
    _write(render(found, fmt), output)
    if found.gate is None:
        return int(Exit.OK)
    append_step_summary(step_summary(found))
    return int(exit_code(found.gate))


def _write(said: str, output: Path | None) -> None:
    if output is None:
        click.echo(said, nl=False)
        return
    from ..records.files import replacing

    with replacing(output) as new:
        new.tmp.write_text(said, encoding="utf-8")


def _search_state(outputs: tuple[Path, ...]) -> dict[str, Any] | None:
    """A search's state, when the one output named is a search's folder (or
    its search.json); a folder that is not one is refused."""
    from ..errors import UsageError

    for path in outputs:
        if path.is_dir() and not (path / "search.json").is_file():
            raise UsageError(f"{path}: a directory, and not a search's folder (no search.json)")
    if len(outputs) != 1:
        return None
    path = outputs[0]
    state_file = path / "search.json" if path.is_dir() else path
    if state_file.name != "search.json" or not state_file.is_file():
        return None
    try:
        state = json.loads(state_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UsageError(f"{state_file}: not a search's state ({exc})") from None
    return state if isinstance(state, dict) and "rolebatch_search" in state else None
