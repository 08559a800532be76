"""Putting a finished output in input order.

When every record is done, the file is rewritten in input order through a
temporary file, fsync and rename, each line saying its line in the job as it
is now.  A line that has no place in it any more (an error line run again,
the answer of a record no longer in the job) is first appended to the
``.replaced.jsonl`` beside it, so that nothing bought is ever deleted without
--fresh.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

from .files import appending, cannot_write, replacing
from .index import NONE, LineIndex
from .lines import line_cost, with_line


def replaced_path(output: Path) -> Path:
    return output.with_name(output.name + ".replaced.jsonl")


def set_aside(index: LineIndex) -> None:
    """Append every line the rewrite in input order will leave out to
    ``.replaced.jsonl``, fsync'ed before the rewrite: never deleted.  A crash
    before the rename sets them aside twice, never not at all."""
    unplaced = index.unplaced()
    if not unplaced:
        return
    with index.path.open("rb") as source, appending(replaced_path(index.path)) as write:
        for ordinal in unplaced:
            source.seek(index.offsets[ordinal])
            write(source.readline())


# Lines between two looks at whether a signal asked the rewrite to stop.
STOP_EVERY = 4096


def rewrite_in_order(
    index: LineIndex,
    before_rename: Callable[[Decimal], None],
    stop: Callable[[], None] | None = None,
) -> None:
    """Rewrite the output in job order, one line per answered record, each
    saying its line.  ``before_rename`` is told what the kept lines cost once
    the new file is on disk and before it replaces the old: what the dropped
    lines cost is written down before they go (a crash in between counts it
    twice, never not at all).  ``stop`` is called before the first line and
    every STOP_EVERY lines, after the last, and before the rename: whatever
    it raises (a signal came) leaves the output as it was and no temporary
    file, as an OSError does."""
    path = index.path
    kept = Decimal(0)
    with replacing(path, cannot=cannot_write) as new:
        with path.open("rb") as source, new.tmp.open("wb") as target:
            done = 0
            for line, ordinal in enumerate(index.by_line):
                if ordinal == NONE:
                    continue
                if stop is not None and not done % STOP_EVERY:
                    stop()
                done += 1
                source.seek(index.offsets[ordinal])
                raw = source.readline()
                kept += line_cost(raw)
                target.write(with_line(raw, line))
            if stop is not None:
                stop()
        if stop is not None:
            stop()
        before_rename(kept)  # then ``replacing`` fsyncs the new file and renames it
