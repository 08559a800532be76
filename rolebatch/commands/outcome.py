"""How a command that runs a run (run, judge, panel) ends, in one place:
whatever stopped it (the end, failed records, a refusal, an abort, a signal,
batches left pending), it becomes one exit code, one message on stderr, and
one ``--summary-json`` with the same keys (and the CI step summary).

The codes and their words are ``exits.Exit``'s; "interrupted" is the word
of a 3 that a signal caused.  An exception that is not ours (a bug) is 70,
with its traceback written to a file the message names.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from ..bugs import message as bug_message
from ..errors import AbortError, Interrupted, OutputError, RolebatchError
from ..exits import Exit, word_of
from ..progress import Summary, Tally
from ..records.files import replacing


@dataclass(frozen=True)
class Invocation:
    """How a command runs its run: the progress it shows, the event loop, and
    where its summary goes besides the terminal."""

    progress_style: str = "auto"
    progress_interval: float = 10.0
    backend: str = "asyncio"
    summary_json: Path | None = None


def status_of(code: int, error: BaseException | None = None) -> str:
    """The word for how a run ended, as ``--summary-json`` says it."""
    if isinstance(error, Interrupted | KeyboardInterrupt):
        return "interrupted"
    return word_of(code) or "error"


def headline(code: int, message: str) -> str:
    """The message line on stderr: ``rolebatch: stopped: ...``."""
    word = Exit(code).word if code in (Exit.STOPPED, Exit.PENDING, Exit.BUG) else "error"
    return f"rolebatch: {word}: {message}"


def conclude(
    invocation: Invocation,
    summary: Summary | None,
    error: BaseException | None = None,
    notes: list[str] | None = None,
    output: Path | None = None,
) -> int:
    """Show how the run ended (its summary, then what stopped it), write the
    summary for scripts, and return the exit code.  ``error``: what stopped
    it (None: it ran to the end); ``output``: the output, where no summary
    knows it."""
    if isinstance(error, KeyboardInterrupt):  # a signal before the run took them over
        code, message = Exit.STOPPED, "interrupted before the run started: nothing was sent"
    elif isinstance(error, RolebatchError):
        code, message = error.exit_code, str(error)
    elif error is not None:
        code, message = Exit.BUG, bug_message(error)
    else:
        code, message = (summary.exit_code if summary else 0), None
    if summary is not None:
        summary.tally.notes.extend(notes or [])
        click.echo(summary.text(), err=True)
    if isinstance(error, KeyboardInterrupt):
        click.echo(f"rolebatch: {message}", err=True)
    elif message is not None:
        click.echo(headline(code, message), err=True)
    if summary is not None and isinstance(error, AbortError):
        click.echo(
            f"rolebatch: finished lines are kept in {summary.output}; the same command resumes",
            err=True,
        )
    if summary is not None and error is None:
        click.echo(str(summary.output))
    _record(invocation, summary, code, status_of(code, error), message, output)
    return int(code)


def _record(
    invocation: Invocation,
    summary: Summary | None,
    code: int,
    status: str,
    message: str | None,
    output: Path | None,
) -> None:
    """The summary for scripts (--summary-json) and for a CI step summary:
    the same keys whatever ended the run (counts of zero where none ran)."""
    shown = summary or Summary(Tally(total=0), output, 0.0)
    stopped = message if code in (Exit.STOPPED, Exit.PENDING, Exit.BUG) else None
    if invocation.summary_json is not None:
        data = {"status": status, "message": message, **shown.as_dict(code, stopped)}
        write_json(invocation.summary_json, data)
    append_step_summary(shown.markdown(code, message) + "\n")


def write_json(path: Path, data: dict[str, Any]) -> None:
    """A summary for scripts, written whole or not at all: a reader never
    sees half of it (a failure to write it is said, not raised)."""
    try:
        with replacing(path, durable=False) as new:
            new.tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    except OutputError as exc:
        click.echo(f"rolebatch: {exc}", err=True)


def append_step_summary(text: str) -> None:
    """``text`` appended to the CI step summary, when $GITHUB_STEP_SUMMARY names one."""
    path = os.environ.get("GITHUB_STEP_SUMMARY")
    if path:
        with contextlib.suppress(OSError), open(path, "a", encoding="utf-8") as handle:
            handle.write(text)


def run_options(command: Any) -> Any:
    """The options of how a run shows itself and where its summary goes (run,
    judge, panel), handed to ``command`` as one ``invocation``; whatever the
    command raises before or after its run ends here too (``conclude``)."""

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
        try:
            return command(*args, invocation=invocation, **kwargs)
        except (RolebatchError, KeyboardInterrupt) as exc:
            summary = exc.summary if isinstance(exc, RolebatchError) else None
            return conclude(invocation, summary, exc, output=kwargs.get("output"))
        except (click.exceptions.Exit, click.ClickException, click.exceptions.Abort):
            raise  # click's own endings: main() turns them into codes
        except Exception as exc:  # a bug: its own code, the same summary
            return conclude(invocation, None, exc, output=kwargs.get("output"))

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
                help="Also write the end summary here as JSON, for scripts, however the run"
                " ends (the same keys): exit code, status, message, counts by status and"
                " error kind, tokens, cost, wall time.  (With $GITHUB_STEP_SUMMARY set, a"
                " markdown table is appended there too.)",
            ),
        ]
    ):
        with_invocation = option(with_invocation)
    return with_invocation
