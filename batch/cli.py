"""The ``rolebatch`` command: a thin click layer over ``run_job``.

Errors become messages and exit codes here and nowhere else:
0 all ok, 1 finished with failed records, 2 usage or input error, 3 aborted.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import anyio
import click

from .config import DEFAULT_MODEL, RunConfig
from .errors import AbortError, RolebatchError
from .progress import BarReporter, LineReporter, Reporter, default_reporter
from .prompt import LAYOUTS
from .providers.registry import MODES


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="rolebatch")
def cli() -> None:
    """Run role prompts over JSONL files through instructor."""


@cli.command()
@click.argument("job", type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    help="Output JSONL file.  [default: out/<job stem>.jsonl]",
)
@click.option(
    "--model",
    envvar="ROLEBATCH_MODEL",
    default=DEFAULT_MODEL,
    show_default=True,
    show_envvar=True,
    help="provider/name: openai/gpt-4o, openrouter/..., ollama/..., vllm/...,"
    " llamacpp/..., or compat/<name> with --base-url.",
)
@click.option(
    "--base-url",
    envvar="OPENAI_BASE_URL",
    show_envvar=True,
    help="Any OpenAI-compatible endpoint, e.g. http://localhost:8000/v1."
    " The key comes from OPENAI_API_KEY and is never printed.",
)
@click.option(
    "--mode",
    type=click.Choice(MODES),
    help="How instructor asks for structure.  [default: tools for openai and"
    " openrouter, json_schema for local servers]",
)
@click.option(
    "--schema",
    envvar="ROLEBATCH_SCHEMA",
    show_envvar=True,
    help="Response model: module:Class or a JSON Schema file (.json)."
    "  [default: Response with one field, poem]",
)
@click.option(
    "--layout",
    type=click.Choice(LAYOUTS),
    default="system",
    show_default=True,
    help="system: one system message '{role} {query}'; split: role as system"
    " message, query as user message.",
)
@click.option(
    "--concurrency",
    type=click.IntRange(min=1),
    default=8,
    show_default=True,
    envvar="ROLEBATCH_CONCURRENCY",
    show_envvar=True,
    help="Requests in flight at once.",
)
@click.option(
    "--max-tokens", type=click.IntRange(min=1), help="Completion token limit per request."
)
@click.option("--temperature", type=click.FloatRange(min=0.0), help="Sampling temperature.")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.001),
    default=60.0,
    show_default=True,
    help="Seconds to wait for one request.",
)
@click.option(
    "--max-reasks",
    type=click.IntRange(min=0),
    default=2,
    show_default=True,
    help="instructor re-asks after an answer fails validation.",
)
@click.option(
    "--max-retries",
    type=click.IntRange(min=0),
    default=3,
    show_default=True,
    help="HTTP retries per request on 408/409/5xx, timeouts and connection errors.",
)
@click.option(
    "--max-rate-limit-retries",
    type=click.IntRange(min=0),
    default=20,
    show_default=True,
    help="Retries of one request after 429s; each first waits out the server's Retry-After.",
)
@click.option(
    "--rpm",
    type=click.FloatRange(min=0.001),
    envvar="ROLEBATCH_RPM",
    show_envvar=True,
    help="Requests per minute to stay under.  [default: learned from x-ratelimit-*"
    " headers, else slowed down on 429s]",
)
@click.option(
    "--tpm",
    type=click.FloatRange(min=0.001),
    envvar="ROLEBATCH_TPM",
    show_envvar=True,
    help="Tokens per minute (prompt + completion) to stay under.  [default: learned"
    " from x-ratelimit-* headers]",
)
@click.option(
    "--fresh",
    is_flag=True,
    help="Start over: overwrite the output instead of resuming it.",
)
@click.option(
    "--retry-failed/--no-retry-failed",
    default=True,
    show_default=True,
    help="On resume, run records whose earlier line is an error again.",
)
@click.option(
    "--grace",
    type=click.FloatRange(min=0.0),
    default=5.0,
    show_default=True,
    help="Seconds calls in flight get to finish after SIGINT/SIGTERM (a second signal: none).",
)
@click.option(
    "--progress",
    "progress_style",
    type=click.Choice(["auto", "bar", "lines", "none"]),
    default="auto",
    show_default=True,
    help="auto: a live bar on a terminal, plain lines otherwise (cron, CI).",
)
@click.option(
    "--progress-interval",
    type=click.FloatRange(min=0.1),
    default=10.0,
    show_default=True,
    help="Seconds between plain progress lines.",
)
@click.option(
    "--backend",
    type=click.Choice(["asyncio", "trio"]),
    default="asyncio",
    envvar="ROLEBATCH_BACKEND",
    show_default=True,
    help="anyio event loop backend.",
)
def run(
    job: Path,
    output: Path | None,
    progress_style: str,
    progress_interval: float,
    backend: str,
    **options: object,
) -> int:
    """Run every record of JOB (a JSONL file) and write one result line per record."""
    with heavy_imports():
        from .pipeline import run_job  # openai and instructor: most of a second

    config = RunConfig(job=job, output=output, **options)  # type: ignore[arg-type]
    reporter = _reporter(progress_style, progress_interval)
    try:
        summary = anyio.run(
            functools.partial(run_job, config, reporter, handle_signals=True), backend=backend
        )
    except AbortError as exc:
        summary = getattr(exc, "summary", None)
        if summary is not None:
            click.echo(summary.text(), err=True)
        click.echo(f"rolebatch: stopped: {exc}", err=True)
        if summary is not None:
            click.echo(
                f"rolebatch: finished lines are kept in {summary.output}; the same command resumes",
                err=True,
            )
        return exc.exit_code
    click.echo(summary.text(), err=True)
    click.echo(str(summary.output))
    return summary.exit_code


@contextlib.contextmanager
def heavy_imports() -> Iterator[None]:
    """Import without the cyclic garbage collector: importing openai and
    instructor builds hundreds of thousands of objects, none of them garbage,
    and the collector would walk them dozens of times (a quarter of the import
    time).  What they built is then frozen out of later collections too."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()


def _reporter(style: str, interval: float) -> Reporter:
    if style == "bar":
        return BarReporter()
    if style == "lines":
        return LineReporter(interval=interval)
    if style == "none":
        return Reporter()
    return default_reporter(interval=interval)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point for the console script, ``python -m batch`` and tests."""
    try:
        result = cli.main(
            args=list(argv) if argv is not None else None,
            prog_name="rolebatch",
            standalone_mode=False,
        )
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Abort:  # click's name for Ctrl-C before the run started
        click.echo("rolebatch: interrupted", err=True)
        return 3
    except RolebatchError as exc:
        click.echo(f"rolebatch: error: {exc}", err=True)
        return exc.exit_code
    return result if isinstance(result, int) else 0


def entry() -> None:
    """The console script and ``python -m batch``: ``main``, then exit with its code."""
    code = main()
    # The interpreter's collections at exit walk every object the run made
    # (about a third of a second); they have nothing left to free.
    gc.freeze()
    sys.exit(code)


if __name__ == "__main__":
    entry()
