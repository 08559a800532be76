"""Joining the shard outputs of one job into one output in input order.

The shards must be of one run: made under the same configuration (their
sidecars say so; only the shard differs) and, when sharded, of one split.
A sweep's shards carry its roles in their sidecars, so the merged output
is laid out as the sweep is.

Two passes, in flat memory: the first reads every shard file and notes, per
job line, where its result line is (file and byte offset, 8 bytes a line in
an array); the second walks the job in order and copies each record's line
to the merged file, confirming the id on it.  A record with no line is
missing; a job line that two result lines claim is doubled (the ok one is
kept, or else the first).

The merged file is an ordinary output: it gets a sidecar with the shards'
configuration (finished when nothing is missing), so ``run`` resumes or
extends it.  An existing file at the target is replaced only when an
earlier merge wrote it and nothing has changed it since (or when told to):
it may hold answers no shard has.  The target is locked like a run's
output, and its sidecar is written, unfinished, before the file is renamed
into place, so a crash leaves an output a run can resume.
"""

from __future__ import annotations

import os
from array import array
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from ..errors import UsageError
from .files import replacing
from .job import PLAIN, JobFile, RecordRules, open_job
from .lines import line_cost, parse_head
from .output import OutputFile
from .roles import Sweep
from .sidecar import RETIRED_KEYS, describe_change, read_sidecar

NONE = 0
OFFSET_BITS = 48  # files up to 256 TB; the file's index above that
SHOWN = 5


@dataclass
class Merged:
    records: int = 0
    ok: int = 0
    errors: int = 0
    missing: int = 0
    doubled: int = 0
    foreign: int = 0  # lines whose id is not the job's record on that line
    missing_ids: list[Any] = field(default_factory=list)
    doubled_ids: list[Any] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not (self.missing or self.doubled)


def merge(
    job_path: Path,
    shards: list[Path],
    target: Path,
    replace: bool = False,
    rules: RecordRules = PLAIN,
) -> Merged:
    """Write ``target`` from ``shards`` in the job's order; say what is
    missing or doubled.  Refuses shards of different runs, and a target that
    holds lines no merge wrote (unless ``replace``).  ``rules``: the keys the
    shards' task takes in a record (``shard_task`` says which task)."""
    if not shards:
        raise UsageError("no shard outputs to merge")
    if len(shards) >= 1 << (63 - OFFSET_BITS):
        raise UsageError(f"{len(shards)} shard files: too many to merge at once")
    for path in shards:
        if not path.is_file():
            raise UsageError(f"{path}: no such shard output")
        if path.resolve() == target.resolve():
            raise UsageError(f"{path}: the merged output cannot be one of the shards")
    if target.resolve() == job_path.resolve():
        raise UsageError(f"{target}: the merged output cannot be the job file")
    config, sweep = _one_run(shards)
    job = open_job(job_path, sweep=sweep, rules=rules)
    output = OutputFile(target, config)
    output.lock()
    try:
        if not replace:
            _check_target(output)
        result = _merge(job, shards, output)
    finally:
        output.close()
    return result


def shard_task(shards: list[Path]) -> str:
    """The task the first shard was run with ("role" for outputs from before tasks)."""
    meta = read_sidecar(shards[0]) if shards and shards[0].is_file() else None
    return str(((meta or {}).get("config") or {}).get("task", "role"))


# What shards of one run may differ in: their shard, and what no longer counts.
NOT_COMPARED = frozenset({"shard", *RETIRED_KEYS})


def _one_run(shards: list[Path]) -> tuple[dict[str, Any], Sweep | None]:
    """The configuration the shards share (without the shard) and their
    sweep; UsageError when they are not the shards of one run of this job."""
    metas = []
    for path in shards:
        meta = read_sidecar(path)
        if meta is None:
            raise UsageError(
                f"{path}: not a rolebatch output (no {path.name}.rolebatch.json beside it);"
                " merge joins the outputs of rolebatch run --shard"
            )
        metas.append(meta)
    first, first_path = metas[0], shards[0]
    config = {k: v for k, v in first["config"].items() if k not in NOT_COMPARED}
    for meta, path in zip(metas[1:], shards[1:], strict=True):
        other = {k: v for k, v in meta["config"].items() if k not in NOT_COMPARED}
        differ = [
            describe_change(key, config.get(key), other.get(key))
            for key in [*config, *(k for k in other if k not in config)]
            if config.get(key) != other.get(key)
        ]
        if differ:
            raise UsageError(
                f"{first_path} and {path} were made under different configurations"
                f" ({'; '.join(differ)}, reading from the first to the second): merge the"
                " shards of one run"
            )
        if meta.get("sweep") != first.get("sweep"):
            raise UsageError(
                f"{first_path} and {path} are sweeps over different roles or samples:"
                " merge the shards of one run"
            )
    splits = {}
    for meta, path in zip(metas, shards, strict=True):
        shard = meta["config"].get("shard")
        if shard is not None:
            splits.setdefault(shard.split("/")[1], path)
    if len(splits) > 1:
        named = ", ".join(f"{path} (of {n})" for n, path in splits.items())
        raise UsageError(
            f"the shard outputs are of different splits of the job: {named}; name the"
            " outputs of one split"
        )
    sweep = None
    if config.get("sweep"):
        described = first.get("sweep")
        if not described:
            raise UsageError(
                f"{first_path} is a sweep's shard written before its roles were kept beside"
                " it: run each shard's command once more (it resumes, sending nothing new)"
                " and merge again"
            )
        roles = tuple((str(i), text) for i, text in described["roles"]) or (("", None),)
        sweep = Sweep(roles, described.get("samples", 1), described.get("metadata", {}))
    return config, sweep


def _check_target(output: OutputFile) -> None:
    """Refuse to replace a file that holds lines no merge wrote."""
    path = output.path
    if not path.exists() or path.stat().st_size == 0:
        return
    meta = read_sidecar(path)
    merged = (meta or {}).get("merged") or {}
    if meta is not None and merged.get("bytes") == path.stat().st_size:
        return  # an earlier merge's, unchanged since
    what = (
        "a file rolebatch did not write"
        if meta is None
        else f"a run's output ({meta['config'].get('model')}) with lines no merge wrote"
    )
    raise UsageError(
        f"{path} exists and is {what}: merging would replace them. Give the merged output"
        " another -o, or --replace to replace it"
    )


def _merge(job: JobFile, shards: list[Path], output: OutputFile) -> Merged:
    target = output.path
    where = array("q", bytes(8 * (job.last_line + 1)))  # job line -> file, offset (+1)
    result = Merged()
    doubled_lines: set[int] = set()
    for index, path in enumerate(shards):
        with path.open("rb") as handle:
            offset = 0
            for raw in handle:
                head = parse_head(raw)
                start, offset = offset, offset + len(raw)
                if head is None:
                    continue  # a torn last line, or not ours: that record is missing
                _, line, ok = head
                if line >= len(where):
                    result.foreign += 1
                    continue
                here = (index << OFFSET_BITS | start) + 1
                if where[line] != NONE:
                    doubled_lines.add(line)
                    if ok and not _is_ok(shards, where[line]):
                        where[line] = here
                    continue
                where[line] = here
    spent = Decimal(0)
    handles = [path.open("rb") for path in shards]
    try:
        with replacing(target) as new:
            with new.tmp.open("wb") as out:
                for record in job.records():
                    result.records += 1
                    value = where[record.line]
                    raw = _read(handles, value) if value != NONE else None
                    head = parse_head(raw) if raw is not None else None
                    if head is None or head[0] != record.id:
                        if head is not None:
                            result.foreign += 1
                        result.missing += 1
                        if len(result.missing_ids) < SHOWN:
                            result.missing_ids.append(record.id)
                        continue
                    if record.line in doubled_lines:
                        result.doubled += 1
                        if len(result.doubled_ids) < SHOWN:
                            result.doubled_ids.append(record.id)
                    out.write(raw)
                    spent += line_cost(raw)
                    if head[2]:
                        result.ok += 1
                    else:
                        result.errors += 1
                out.flush()
                os.fsync(out.fileno())
            if result.foreign and not result.ok + result.errors:
                raise UsageError(
                    f"no line of {', '.join(map(str, shards))} answers a record of {job.path}:"
                    " merge the shards with the job they were run on"
                )
            # Put in place between the sidecar's two writes.
            output.merged_into_place(new.tmp, job, spent, result.errors, complete=result.complete)
            new.placed()
    finally:
        for handle in handles:
            handle.close()
    return result


def _read(handles: list[Any], value: int) -> bytes:
    value -= 1
    handle = handles[value >> OFFSET_BITS]
    handle.seek(value & ((1 << OFFSET_BITS) - 1))
    return handle.readline()


def _is_ok(shards: list[Path], value: int) -> bool:
    value -= 1
    with shards[value >> OFFSET_BITS].open("rb") as handle:
        handle.seek(value & ((1 << OFFSET_BITS) - 1))
        head = parse_head(handle.readline())
    return head is not None and head[2]
