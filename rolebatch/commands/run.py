"""``rolebatch run``: buy the answers for a job; a thin layer over ``run_job``."""

from __future__ import annotations

import contextlib
import functools
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import click

from ..config import RunConfig
from ..errors import AbortError, Pending, RolebatchError, UsageError
from ..progress import BarReporter, LineReporter, Reporter, Summary, default_reporter
from . import heavy_imports
from .options import job_options, run_config
from .settings import WithSettings, config_option


@dataclass(frozen=True)
class Invocation:
    """How a command runs its run: the progress it shows, the event loop, and
    where its summary goes besides the terminal."""

    progress_style: str = "auto"
    progress_interval: float = 10.0
    backend: str = "asyncio"
    summary_json: Path | None = None


def run_options(command: Any) -> Any:
    """The options of how a run shows itself and where its summary goes (run,
    judge, panel), handed to ``command`` as one ``invocation``."""

    @functools.wraps(command)
    def with_invocation(
        *args: Any,
        progress_style: str,
        progress_interval: float,
        backend: str,
        summary_json: Path | None,
        **kwargs: Any,
    ) -> Any:
        invocation = Invocation(progress_style, progress_interval, backend, summary_json)
        return command(*args, invocation=invocation, **kwargs)

    for option in reversed(
        [
            click.option(
                "--progress",
                "progress_style",
                type=click.Choice(["auto", "bar", "lines", "none"]),
                default="auto",
                show_default=True,
                help="auto: a live bar on a terminal, plain lines otherwise (cron, CI).",
            ),
            click.option(
                "--progress-interval",
                type=click.FloatRange(min=0.1),
                default=10.0,
                show_default=True,
                help="Seconds between plain progress lines.",
            ),
            click.option(
                "--backend",
                type=click.Choice(["asyncio", "trio"]),
                default="asyncio",
                envvar="ROLEBATCH_BACKEND",
                show_default=True,
                help="anyio event loop backend.",
            ),
            click.option(
                "--summary-json",
                type=click.Path(path_type=Path, dir_okay=False),
                help="Also write the end summary here as JSON, for scripts: counts by status"
                " and error kind, tokens, cost, wall time, exit code.  (With"
                " $GITHUB_STEP_SUMMARY set, a markdown table is appended there too.)",
            ),
        ]
    ):
        with_invocation = option(with_invocation)
    return with_invocation


@click.command(cls=WithSettings)
@job_options
@config_option
@run_options
def run(job: Path, output: Path | None, invocation: Invocation, **options: object) -> int:
    """Run every record of JOB (a JSONL file) and write one result line per record."""
    return execute(run_config(job, output, options), invocation)


def execute(config: RunConfig, invocation: Invocation, notes: list[str] | None = None) -> int:
    """Run ``config`` to the end, show its summary (with ``notes``), and say
    how it ended as an exit code."""
    with heavy_imports():
        from ..pipeline import run_job  # openai and instructor: most of a second

    summary_json, backend = invocation.summary_json, invocation.backend
    if config.quota and backend != "asyncio" and (config.via == "live" or config.reask == "live"):
        raise UsageError(
            "--quota works under asyncio only (the redis package's client): run with"
            " --backend asyncio, or without --quota"
        )
    reporter = _reporter(invocation.progress_style, invocation.progress_interval)
    try:
        summary = anyio.run(
            functools.partial(run_job, config, reporter, handle_signals=True), backend=backend
        )
    except Pending as exc:
        summary = exc.summary
        summary.tally.notes.extend(notes or [])
        click.echo(summary.text(), err=True)
        click.echo(f"rolebatch: pending: {exc}", err=True)
        _reports(summary, exc.exit_code, str(exc), summary_json)
        return exc.exit_code
    except AbortError as exc:
        summary = exc.summary
        if summary is not None:
            summary.tally.notes.extend(notes or [])
            click.echo(summary.text(), err=True)
        click.echo(f"rolebatch: stopped: {exc}", err=True)
        if summary is not None:
            click.echo(
                f"rolebatch: finished lines are kept in {summary.output}; the same command resumes",
                err=True,
            )
            _reports(summary, exc.exit_code, str(exc), summary_json)
        return exc.exit_code
    except RolebatchError as exc:  # nothing was sent; the message comes from main()
        _report_refusal(exc, summary_json)
        raise
    summary.tally.notes.extend(notes or [])
    click.echo(summary.text(), err=True)
    click.echo(str(summary.output))
    _reports(summary, summary.exit_code, None, summary_json)
    return summary.exit_code


def _reports(summary: Summary, code: int, stopped: str | None, path: Path | None) -> None:
    """The summary for scripts (--summary-json) and for a CI step summary."""
    if path is not None:
        _write_json(path, summary.as_dict(code, stopped))
    step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if step_summary:
        with contextlib.suppress(OSError), open(step_summary, "a", encoding="utf-8") as handle:
            handle.write(summary.markdown(code, stopped) + "\n")


def _report_refusal(exc: RolebatchError, path: Path | None) -> None:
    if path is not None:
        _write_json(path, {"exit_code": exc.exit_code, "stopped": None, "error": str(exc)})


def _write_json(path: Path, data: dict[str, Any]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        click.echo(f"rolebatch: cannot write {path}: {exc.strerror or exc}", err=True)


def _reporter(style: str, interval: float) -> Reporter:
    if style == "bar":
        return BarReporter()
    if style == "lines":
        return LineReporter(interval=interval)
    if style == "none":
        return Reporter()
    return default_reporter(interval=interval)
