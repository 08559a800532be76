"""``rolebatch judge``: grade an earlier run's answers with a judge model, by
a rubric or head to head; an ordinary run of the judge task (``tasks.judge``)
over records made from the judged output (``evaluate.judging``)."""

from __future__ import annotations

from pathlib import Path

import click

from ..config import Judging
from ..errors import UsageError
from .derived import derived_run, earlier_config, estimate_or_run, inherit_model
from .options import job_options
from .outcome import Invocation, run_options
from .settings import WithSettings, config_option

# What a judge has no use for: its records, task and prompt are its own.
NOT_FOR_A_JUDGE = ("job", "task", "schema", "layout", "roles", "samples")


@click.command(cls=WithSettings)
@click.argument("judged", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--rubric",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="The rubric: a text or markdown file; a line 'Scale: 1-5' sets the scale"
    " (1 to 10 otherwise).",
)
@click.option(
    "--against",
    metavar="ROLE_ID",
    help="Head to head: each answer against the answer of this role (e.g. the control)"
    " to the same question, asked in both orders.  [default: grade each answer alone]",
)
@click.option(
    "--against-output",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    metavar="OUTPUT",
    help="Head to head with another output of the same job (the model JUDGED is to"
    " replace): each answer against that output's answer to the same record (by id;"
    " a sweep's ids carry the role and sample), asked in both orders, blind to which"
    " model wrote which.",
)
@click.option(
    "--show-role",
    is_flag=True,
    help="Show the judge the role that wrote each answer (it is blind by default).",
)
@click.option("--estimate", is_flag=True, help="Say what judging would cost and take; buy nothing.")
@click.option("--json", "as_json", is_flag=True, help="With --estimate: as one JSON object.")
@job_options(
    leave_out=NOT_FOR_A_JUDGE,
    said={
        "output": "The judge's output.  [default: out/<JUDGED stem>.judged.jsonl, or"
        " .against-<role or output>.jsonl]",
        "model": "The judge's model (provider/name).  [default: the model of JUDGED; a"
        " judge of another family is the fairer one]",
    },
)
@config_option
@run_options
def judge(
    judged: Path,
    rubric: Path,
    against: str | None,
    against_output: Path | None,
    show_role: bool,
    estimate: bool,
    as_json: bool,
    output: Path | None,
    invocation: Invocation,
    **options: object,
) -> int:
    """Grade the ok answers of JUDGED (an output of rolebatch run) with a judge
    model: one judged line per answer, {"reasoning", "score"} by the rubric;
    or, with --against, per answer and order {"reasoning", "winner"} against
    the baseline role's answer.  The judged output is an ordinary output:
    resumable, priced, --via batch, shards, limits, --max-cost, settings.
    `rolebatch report` reads it (--score field:score; pairwise by itself)."""
    from ..evaluate.judging import Made, make_records

    if against is not None and against_output is not None:
        raise UsageError("--against ROLE_ID or --against-output OUTPUT: one of them")
    inherit_model(earlier_config(judged), options)  # the judge's model: the run's by default
    if against_output is not None:
        earlier_config(against_output)  # an output of rolebatch run too
        if against_output.resolve() == judged.resolve():
            raise UsageError(f"--against-output {against_output}: that is JUDGED itself")
        against = against_output.stem  # the baseline's name in the report
    stem = f"{judged.stem}.{'judged' if against is None else f'against-{against}'}"

    def made_in(records: Path) -> Made:
        return make_records(judged, records, against, against_output)

    config, made = derived_run(output, stem, options, made_in, estimate)
    config = config.asking(
        task="judge", judge=Judging(rubric=rubric, against=against, show_role=show_role)
    )
    baseline = against_output or (f"{against}" if against else None)
    notes = [
        f"judged {made.answers:,} answers of {judged}"
        + (
            f"; {made.without_baseline:,} had no {baseline} answer to compare with"
            if baseline
            else ""
        )
    ]
    if made.models and config.asked.model in made.models:
        notes.append(
            f"the judge is the model that wrote the answers ({config.asked.model}): judges prefer"
            " their own model's answers; a judge of another family (--model) is the fairer one"
        )
    return estimate_or_run(config, estimate, notes, invocation, judged, as_json)
