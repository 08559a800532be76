"""The ``rolebatch`` command: a thin click layer over ``run_job``.

Exit codes are ``exits.Exit``'s (0 ok, 1 failed, 2 refused, 3 stopped, 4
pending, 5 undecided, 70 a bug).  A command that runs a run
(run, judge, panel) ends in ``commands.outcome`` however it ends, with its
summary; every other command's errors become messages and codes here.
"""

from __future__ import annotations

import gc
import signal
import sys
from collections.abc import Sequence

import click

from .bugs import message as bug_message
from .commands.batches import cancel, status
from .commands.estimate import estimate
from .commands.judge import judge
from .commands.merge import merge
from .commands.models import models
from .commands.outcome import headline
from .commands.panel import panel
from .commands.report import report
from .commands.run import run
from .commands.search import search
from .errors import RolebatchError
from .exits import Exit
from .quirks.glibc import fix_mmap_threshold


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="rolebatch")
def cli() -> None:
    """Run role prompts over JSONL files through instructor."""


cli.add_command(run)
cli.add_command(estimate)
cli.add_command(status)
cli.add_command(cancel)
cli.add_command(merge)
cli.add_command(report)
cli.add_command(judge)
cli.add_command(panel)
cli.add_command(models)
cli.add_command(search)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point for the console script, ``python -m rolebatch`` and tests."""
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
        return Exit.STOPPED
    except RolebatchError as exc:
        click.echo(headline(exc.exit_code, str(exc)), err=True)
        return exc.exit_code
    except Exception as exc:  # not ours: a bug, said in one line, its traceback kept
        click.echo(headline(Exit.BUG, bug_message(exc)), err=True)
        return Exit.BUG
    return result if isinstance(result, int) else Exit.OK


def entry() -> None:
    """The console script and ``python -m rolebatch``: ``main``, then exit with its code."""
    fix_mmap_threshold()  # flat memory on big jobs (quirks.glibc)
    # SIGTERM before a run takes the signals over (and after) ends the command
    # as Ctrl-C does, through its summary, instead of killing it outright.
    signal.signal(signal.SIGTERM, _interrupt)
    code = main()
    # The interpreter's collections at exit walk every object the run made
    # (about a third of a second); they have nothing left to free.
    gc.freeze()
    sys.exit(code)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    entry()
