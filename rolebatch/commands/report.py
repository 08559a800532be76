"""``rolebatch report``: an output's lines compared per role, model or metadata key."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.argument("output", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--by",
    default="role",
    show_default=True,
    help="Group lines by role (a sweep's role id, else the role text), model, or metadata.KEY.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "md", "csv", "json"]),
    default="table",
    show_default=True,
    help="table: aligned for a terminal; md: for a CI step summary; csv/json: for notebooks.",
)
def report(output: Path, by: str, fmt: str) -> int:
    """Per group of OUTPUT's lines: records, ok share, error kinds, latency p50/p95,
    mean prompt and completion tokens, cost; and per response field: string
    length mean and p50, numbers' mean and spread, booleans' and few-valued
    strings' distribution.  Reads the file once, in flat memory."""
    from ..records.report import read, render

    groups = read(output, by)
    if not groups:
        click.echo(f"{output}: no lines yet; nothing to report", err=True)
        return 0  # as an empty job is nothing to do
    click.echo(render(groups, fmt, by), nl=False)
    return 0
