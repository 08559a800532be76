"""``rolebatch panel``: one more call per question of a sweep, a synthesizer
reading every role's answer and giving the task's own; an ordinary run of the
panel task (``tasks.panel``) over records made from the sweep's output
(``evaluate.panels``)."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import UsageError
from .derived import derived_run, earlier_config, estimate_or_run, inherit_model
from .judge import NOT_FOR_A_JUDGE
from .options import job_options
from .outcome import Invocation, run_options
from .settings import WithSettings, config_option


@click.command(cls=WithSettings)
@click.argument("sweep", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--synthesizer",
    metavar="ROLE",
    required=True,
    help='The synthesizer\'s role, e.g. "You are an editor who weighs every answer"'
    ' ("" for none); it goes where --layout puts a role.',
)
@click.option(
    "--seed",
    type=int,
    default=0,
    show_default=True,
    help="The order the answers are shown in, shuffled per question with this seed.",
)
@click.option(
    "--estimate", is_flag=True, help="Say what the panel would cost and take; buy nothing."
)
@click.option("--json", "as_json", is_flag=True, help="With --estimate: as one JSON object.")
@job_options(
    leave_out=tuple(k for k in NOT_FOR_A_JUDGE if k != "layout"),
    said={
        "output": "The panel's output.  [default: out/<SWEEP stem>.panel.jsonl]",
        "model": "The synthesizer's model (provider/name).  [default: the model of SWEEP]",
    },
)
@config_option
@run_options
def panel(
    sweep: Path,
    synthesizer: str,
    seed: int,
    estimate: bool,
    as_json: bool,
    output: Path | None,
    invocation: Invocation,
    **options: object,
) -> int:
    """For every question of SWEEP (an output of rolebatch run --roles), one
    call: the synthesizer gets the question and every role's answer, labelled
    neutrally in a seeded shuffled order, and gives the task's own answer.
    The panel's lines say role_id "panel" and which roles it combined:
    `rolebatch report SWEEP FINAL` compares it with every role and the control."""
    from ..evaluate.panels import Made, make_records
    from ..tasks import open_task

    config_before = earlier_config(sweep)
    task = str(config_before.get("task", "role"))
    if task not in ("role", "choice", "answer"):
        raise UsageError(f"{sweep}: a panel answers the questions of a sweep, not a {task}'s")
    schema = config_before.get("schema") if task == "role" else None
    if schema == "Response":
        schema = None
    inner = open_task(task, schema)
    inherit_model(config_before, options)
    stem = f"{sweep.stem}.panel"

    def made_in(records: Path) -> Made:
        return make_records(sweep, records, tuple(inner.keys), synthesizer or None, seed)

    config, made = derived_run(output, stem, options, made_in, estimate)
    config = config.asking(task=f"panel:{task}", schema=schema)
    notes = [f"a panel of {made.answers:,} answers to {made.questions:,} questions of {sweep}"]
    if made.single:
        notes.append(f"questions left out (one ok answer is no panel): {made.single:,}")
    return estimate_or_run(config, estimate, notes, invocation, sweep, as_json)
