"""``rolebatch estimate``: what a run would cost and take; buys and writes nothing."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from . import heavy_imports
from .options import job_options, run_config
from .settings import WithSettings, config_option


@click.command(cls=WithSettings)
@job_options
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print the estimate as one JSON object.")
def estimate(job: Path, output: Path | None, as_json: bool, **options: object) -> int:
    """Estimate what running JOB would cost and take, with the same options as run:
    records to do, prompt and completion tokens, cost live and through the batch
    API, and time at --rpm/--tpm.  Nothing is bought or written: the one request
    is the model's look-up at its provider (GET /models/MODEL, its shutdown date)."""
    with heavy_imports():
        from ..forecast import forecast  # instructor, to build a request as it would go

    show(forecast(run_config(job, output, options)), as_json)
    return 0


def show(result: Any, as_json: bool, notes: Sequence[str] = ()) -> None:
    """An estimate as text or one JSON object, with ``notes`` (what judge and
    panel add): the one renderer of ``estimate`` and ``judge``/``panel --estimate``."""
    result.notes.extend(notes)
    click.echo(json.dumps(result.as_dict(), indent=2) if as_json else result.text())
