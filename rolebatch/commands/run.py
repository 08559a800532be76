"""``rolebatch run``: buy the answers for a job; a thin layer over ``run_job``."""

from __future__ import annotations

import functools
from pathlib import Path

import anyio
import click

from ..config import RunConfig
from ..errors import RolebatchError, UsageError
from ..progress import BarReporter, LineReporter, Reporter, default_reporter
from . import heavy_imports
from .options import job_options, run_config
from .outcome import Invocation, conclude, run_options
from .settings import WithSettings, config_option


@click.command(cls=WithSettings)
@job_options
@config_option
@run_options
def run(job: Path, output: Path | None, invocation: Invocation, **options: object) -> int:
    """Run every record of JOB (a JSONL file) and write one result line per record."""
    return execute(run_config(job, output, options), invocation)


def execute(config: RunConfig, invocation: Invocation, notes: list[str] | None = None) -> int:
    """Run ``config`` to the end, show its summary (with ``notes``), and say
    how it ended as an exit code (``outcome.conclude``, whatever ended it)."""
    with heavy_imports():
        from ..pipeline import run_job  # openai and instructor: most of a second

    backend = invocation.backend
    try:
        if (
            config.paced.quota
            and backend != "asyncio"
            and "live" in (config.bought.via, config.bought.batch.reask)
        ):
            raise UsageError(
                "--quota works under asyncio only (the redis package's client): run with"
                " --backend asyncio, or without --quota"
            )
        reporter = _reporter(invocation.progress_style, invocation.progress_interval)
        summary = anyio.run(
            functools.partial(run_job, config, reporter, handle_signals=True), backend=backend
        )
    except RolebatchError as exc:
        return conclude(invocation, exc.summary, exc, notes, config.output_path())
    return conclude(invocation, summary, None, notes)


def _reporter(style: str, interval: float) -> Reporter:
    if style == "bar":
        return BarReporter()
    if style == "lines":
        return LineReporter(interval=interval)
    if style == "none":
        return Reporter()
    return default_reporter(interval=interval)
