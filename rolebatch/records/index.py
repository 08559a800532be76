"""Where each job record's result line is in an output file: a pure index.

Two flat arrays, 12 bytes a record however many there are: ``offsets`` holds
the byte offset of every line in the file, in file order; ``by_line`` the
ordinal (place in ``offsets``) of each job line's result (``NONE``: none yet;
an error line's is kept encoded until ``settle`` decides its fate).

Reading an output back maps its lines to job lines by their ``line`` field
when every line was written under the job as it is now (the sidecar says);
otherwise by id, through a table of id hashes whose every match is confirmed
against the line itself.  The index reads the file and writes nothing.
"""

from __future__ import annotations

import os
from array import array
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from ..errors import UsageError
from .ids import HashIndex, id_hash
from .job import JobFile
from .lines import LINE_HEAD, line_cost, output_lines, parse_head, token_id

NONE = -1  # in by_line: no result yet
_TWO_IDS = -1  # in the id table: two ids share this hash; look in the exact dict


@dataclass
class Resumed:
    """What an existing output file already holds."""

    done: int = 0  # records that will not run again
    failed_kept: int = 0  # error lines kept (--no-retry-failed)
    retried: int = 0  # error lines dropped to run again
    repaired: bool = False  # a torn last line was cut off
    finished: bool = False  # a finished run, unchanged since: nothing was read


class LineIndex:
    """The lines of one output file, and which job line each answers."""

    def __init__(self, path: Path, last_line: int):
        self.path = path
        self.offsets = array("q")
        self.by_line = array("i", [NONE]) * (last_line + 1)
        # Dollars the lines in the file cost (null costs count as 0).
        self.lines_cost = Decimal(0)
        self.end = 0  # where the whole lines end: past it, a torn last line
        self._reader: int | None = None  # a descriptor for reading lines back by offset

    @classmethod
    def read(cls, path: Path, job: JobFile, by_id: bool) -> LineIndex:
        """The index of the output at ``path`` for ``job``: its lines placed by
        their ``line`` field, or (``by_id``: written under another version of
        the job, whose line numbers may be stale) matched to records by id.
        A torn last line is left out; damage anywhere else is refused."""
        index = cls(path, job.last_line)
        if by_id:
            ids = _IdTable(index, expected=job.total)
            index._read_back(ids.place)
            ids.join(job)
        else:
            index._read_back(index._place_by_line)
        return index

    def is_done(self, line: int) -> bool:
        """Whether the record on job line ``line`` has its result already."""
        return self.by_line[line] != NONE

    def add(self, line: int, offset: int, data: bytes) -> None:
        """A result line for job line ``line`` written at ``offset``."""
        self.by_line[line] = len(self.offsets)
        self.offsets.append(offset)
        self.lines_cost += line_cost(data)

    def settle(self, retry_failed: bool) -> Resumed:
        """Decide each error line's fate (run again, or kept with
        --no-retry-failed) and count what the file answers."""
        resumed = Resumed()
        by_line = self.by_line
        for line, value in enumerate(by_line):
            if value >= 0:
                resumed.done += 1
            elif value != NONE:  # the latest line for this record is an error
                if retry_failed:
                    by_line[line] = NONE
                    resumed.retried += 1
                else:
                    by_line[line] = _ordinal(value)
                    resumed.done += 1
                    resumed.failed_kept += 1
        return resumed

    def in_input_order(self) -> bool:
        """Whether the file holds one line per answered record, in job order."""
        expected = 0
        for ordinal in self.by_line:
            if ordinal != NONE:
                if ordinal != expected:
                    return False
                expected += 1
        return expected == len(self.offsets)

    def unplaced(self) -> list[int]:
        """Ordinals of the lines no job line points at (an error run again,
        the answer of a record no longer in the job), in file order."""
        placed = bytearray(len(self.offsets))
        for ordinal in self.by_line:
            if ordinal != NONE:
                placed[ordinal] = 1
        return [ordinal for ordinal, here in enumerate(placed) if not here]

    def id_at(self, ordinal: int) -> Any:
        """The id on the line with this ordinal, read from the file itself."""
        if self._reader is None:
            self._reader = os.open(self.path, os.O_RDONLY)
        offset, size = self.offsets[ordinal], 256
        while True:
            chunk = os.pread(self._reader, size, offset)
            match = LINE_HEAD.match(chunk)
            if match is not None:
                return token_id(match.group(1))
            end = chunk.find(b"\n")
            if end >= 0 or len(chunk) < size:
                parsed = parse_head(chunk[: end + 1])
                assert parsed is not None, "a line read back before has changed"
                return parsed[0]
            size *= 4

    def close(self) -> None:
        if self._reader is not None:
            os.close(self._reader)
            self._reader = None

    def _place_by_line(self, ordinal: int, record_id: Any, line: int, ok: bool) -> None:
        if 0 < line < len(self.by_line):
            self.by_line[line] = ordinal if ok else _error(ordinal)

    def _read_back(self, place: Callable[[int, Any, int, bool], None]) -> None:
        with self.path.open("rb") as handle:
            for number, offset, raw in output_lines(handle):
                parsed = parse_head(raw)
                if parsed is None:
                    if not raw.endswith(b"\n"):
                        break  # a torn last line
                    raise UsageError(
                        f"{self.path}:{number}: not a rolebatch result line; the file is"
                        " damaged. Use --fresh to start over, or -o to write elsewhere."
                    )
                place(len(self.offsets), *parsed)
                self.offsets.append(offset)
                self.lines_cost += line_cost(raw)
                self.end = offset + len(raw)
            else:
                self.end = handle.tell()  # blank lines at the end are whole too


class _IdTable:
    """Output lines by id hash, for matching them to the records of a job that
    changed since they were written.  Every match is confirmed by reading the
    id on the line; ids whose hashes meet are kept apart in an exact dict."""

    def __init__(self, index: LineIndex, expected: int):
        self._index = index
        self._table = HashIndex(capacity=expected)  # sized once: no growing twice over
        self._exact: dict[Any, int] = {}  # ids of hashes that _TWO_IDS marks

    def place(self, ordinal: int, record_id: Any, line: int, ok: bool) -> None:
        value = ordinal if ok else _error(ordinal)
        key = id_hash(record_id)
        before = self._table.put(key, value)
        if before is None:
            return
        if before == _TWO_IDS:
            self._table.put(key, _TWO_IDS)
            self._exact[record_id] = value
            return
        other = self._index.id_at(_ordinal(before))
        if other != record_id:  # two ids, one hash: both are kept exactly
            self._table.put(key, _TWO_IDS)
            self._exact[other] = before
            self._exact[record_id] = value
        # else: the same id again; the later line wins

    def join(self, job: JobFile) -> None:
        exact, table, index = self._exact, self._table, self._index
        by_line = index.by_line
        for record in job.records():
            value = table.get(id_hash(record.id))
            if value is None:
                continue
            if value == _TWO_IDS:
                value = exact.get(record.id)
                if value is None:
                    continue
            elif index.id_at(_ordinal(value)) != record.id:
                continue  # another id with the same hash: this record has no line
            by_line[record.line] = value


def _error(ordinal: int) -> int:
    """An error line's ordinal, as kept until resume decides its fate."""
    return -(ordinal + 2)


def _ordinal(value: int) -> int:
    return value if value >= 0 else -(value + 2)
