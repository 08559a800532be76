"""Joining the shard outputs of one job into one output in input order.

Two passes, in flat memory: the first reads every shard file and notes, per
job line, where its result line is (file and byte offset, 8 bytes a line in
an array); the second walks the job in order and copies each record's line
to the merged file, confirming the id on it.  A record with no line is
missing; a job line that two result lines claim is doubled (the ok one is
kept, or else the first).
"""

from __future__ import annotations

import os
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import OutputError, UsageError
from .job import JobFile
from .output import parse_head

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


def merge(job: JobFile, shards: list[Path], target: Path) -> Merged:
    """Write ``target`` from ``shards`` in ``job``'s order; say what is missing or doubled."""
    if not shards:
        raise UsageError("no shard outputs to merge")
    if len(shards) >= 1 << (63 - OFFSET_BITS):
        raise UsageError(f"{len(shards)} shard files: too many to merge at once")
    for path in shards:
        if not path.is_file():
            raise UsageError(f"{path}: no such shard output")
        if path.resolve() == target.resolve():
            raise UsageError(f"{path}: the merged output cannot be one of the shards")
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
    tmp = target.with_name(target.name + ".tmp")
    handles = [path.open("rb") for path in shards]
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with tmp.open("wb") as out:
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
                if head[2]:
                    result.ok += 1
                else:
                    result.errors += 1
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, target)
    except OSError as exc:
        raise OutputError(f"cannot write {target}: {exc.strerror or exc}") from None
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
