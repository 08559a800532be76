"""``rolebatch merge``: the shard outputs of one job, joined in input order."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.argument("job", type=click.Path(path_type=Path, dir_okay=False))
@click.argument("shards", nargs=-1, type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    help="The merged output.  [default: out/<job stem>.jsonl; a judge's or a panel's"
    " records out/<stem>.records.jsonl merge into out/<stem>.jsonl]",
)
@click.option(
    "--replace",
    is_flag=True,
    help="Replace the output even if it holds lines no merge wrote (a run's answers).",
)
def merge(job: Path, shards: tuple[Path, ...], output: Path | None, replace: bool) -> int:
    """Join the shard outputs of JOB (SHARDS, or by default every
    out/<job stem>.shard-K-of-N.jsonl) into one output in input order, with
    the state a later run needs to resume or extend it.  The shards must be
    of one run (same configuration, one split).  Exits 1 when a record of
    the job is missing from the shards or in two of them, naming the first
    few."""
    from ..records.merge import merge as merge_files
    from ..records.merge import shard_task
    from ..records.shards import default_shard_outputs, output_stem
    from ..tasks import open_task

    files = list(shards) or default_shard_outputs(job)
    if not files:
        raise click.UsageError(f"no shard outputs of {job} in out/: name them")
    target = output or Path("out") / f"{output_stem(job)}.jsonl"
    rules = open_task(shard_task(files))  # which keys the job's records take
    result = merge_files(job, files, target, replace=replace, rules=rules)
    click.echo(
        f"rolebatch merge: {result.records:,} records of {job} from {len(files)} shard"
        f" output(s) into {target}: {result.ok:,} ok, {result.errors:,} failed,"
        f" {result.missing:,} missing, {result.doubled:,} doubled",
        err=True,
    )
    if result.missing:
        shown = ", ".join(repr(i) for i in result.missing_ids)
        more = " ..." if result.missing > len(result.missing_ids) else ""
        click.echo(f"  missing ({result.missing:,}): {shown}{more}", err=True)
    if result.doubled:
        shown = ", ".join(repr(i) for i in result.doubled_ids)
        more = " ..." if result.doubled > len(result.doubled_ids) else ""
        click.echo(
            f"  in two shards ({result.doubled:,}; the ok line kept): {shown}{more}", err=True
        )
    if result.foreign:
        click.echo(
            f"  {result.foreign:,} line(s) in the shards are not this job's records (another"
            " job, or a job file changed since): left out",
            err=True,
        )
    return 0 if result.complete else 1
