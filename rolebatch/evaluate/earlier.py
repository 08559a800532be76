"""What a judge and a panel share: they read the ok lines of an earlier
output and write the records of their own run from them.

The records file is written through a file of this process's own (shards of
one judging or panel make the same records at once) and replaces the old one
only when its bytes change, so the run over it resumes against the same
records.  Nothing is left behind when the writing fails.
"""

from __future__ import annotations

import filecmp
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

from ..records.files import replacing
from ..records.lines import read_output


def ok_lines(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(byte offset, line) of every whole ok line of ``path``."""
    for _, offset, line in read_output(path):
        if line.get("status") == "ok" and "response" in line:
            yield offset, line


@contextmanager
def records_file(target: Path) -> Iterator[TextIO]:
    """A text file to write ``target``'s records into; ``target`` is
    replaced when the block ends, if they changed.  An error in the block
    (a refusal, a failed write) leaves ``target`` as it was."""
    with replacing(target, durable=False) as new:
        with new.tmp.open("w", encoding="utf-8") as out:
            yield out
        if target.exists() and filecmp.cmp(target, new.tmp, shallow=False):
            new.keep_old()
