"""``rolebatch status`` and ``rolebatch cancel``: an output's batches at the provider."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import click

from ..progress import batch_line
from . import heavy_imports

if TYPE_CHECKING:
    from ..providers.batch_api import BatchInfo
    from ..via.journal import Entry


def _describe(entry: Entry, info: BatchInfo | None) -> str:
    if info is None:
        return f"tag {entry.tag}: created just before a crash? not found at the provider"
    return batch_line(info.id, info)


@click.command()
@click.argument("output", type=click.Path(path_type=Path, dir_okay=False))
def status(output: Path) -> int:
    """Show OUTPUT's batches at the provider (status, request counts, age)
    without collecting them: a run with --via batch collects."""
    with heavy_imports():
        from ..via.at_provider import no_batches, out_at_provider

    found = anyio.run(out_at_provider, output)
    if not found:
        click.echo(no_batches(output))
        return 0
    for entry, info in found:
        requests = len(entry.ids)
        submitted = time.strftime("%Y-%m-%d %H:%M", time.localtime(entry.at))
        click.echo(f"{_describe(entry, info)} ({requests:,} requests, submitted {submitted})")
    return 0


@click.command()
@click.argument("output", type=click.Path(path_type=Path, dir_okay=False))
def cancel(output: Path) -> int:
    """Cancel OUTPUT's batches at the provider.  What they answered before
    stopping is collected by the next run; the rest is still to do."""
    with heavy_imports():
        from ..via.at_provider import cancel_out, no_batches

    cancelled = anyio.run(cancel_out, output)
    if not cancelled:
        click.echo(no_batches(output))
    for entry, info in cancelled:
        click.echo(f"cancelling: {_describe(entry, info)}")
    return 0
