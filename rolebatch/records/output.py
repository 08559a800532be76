"""The output file, which is also the run's state.

    out/job.jsonl                 one result line per record; the state itself
    out/job.jsonl.rolebatch.json  the configuration fingerprint it was made with
                                  (and a sweep's roles, word for word)
    out/job.jsonl.lock            flock'ed while a run writes the file
    out/job.jsonl.replaced.jsonl  lines the output no longer holds: error lines
                                  run again, answers of records no longer in the job

Lines are appended as records finish (completion order: that is what makes a
kill -9 lose nothing but the records in flight), flushed after every write and
fsync'ed at most once a second and at the end.  A re-run reads the file back:
ids already ``ok`` are skipped, error lines are retried (unless told not to), a
torn last line is cut off.  When every record is done, the file is rewritten in
input order through a temporary file, fsync and rename; a line that has no
place in it any more is first appended to the ``.replaced.jsonl`` beside it,
so that nothing bought is ever deleted without --fresh.  An output written
under one configuration (model, prompt, schema, a sweep or a plain run, a
shard or the whole job, the text of each role) is never resumed under
another.

The bookkeeping is two flat arrays, 12 bytes a record however many there are:
``offsets`` holds the byte offset of every line in the file, ``by_line`` the
ordinal (place in ``offsets``) of each job line's result (-1: none yet).
Reading an output back maps its lines to job lines by their ``line`` field
when every line was written under the job as it is now (the sidecar says);
otherwise by id, through a table of id hashes whose every match is confirmed
against the line itself.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from array import array
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, BinaryIO

from ..errors import OutputError, UsageError
from .files import appending, cannot_write, fsync_dir, tmp_of, written
from .ids import HashIndex, id_hash
from .job import PLAIN, JobFile, RecordRules
from .lines import LINE_HEAD, LINE_USAGE, line_cost, parse_head, token_id, with_line
from .roles import Sweep
from .shards import Shard
from .sidecar import SIDECAR_FORMAT, changes, read_sidecar, roles_of, sidecar_path

FSYNC_INTERVAL = 1.0
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


@dataclass
class Survey:
    """What an output holds, for an estimate: which records are done (None
    when it was made with another configuration: ``changes`` says how), and
    what its answers used and cost."""

    resumed: Resumed | None = None
    changes: list[str] = field(default_factory=list)
    answers: int = 0  # lines with usage
    prompt_tokens: int = 0
    completion_tokens: int = 0
    spent: Decimal = Decimal(0)


@dataclass
class OutputFile:
    path: Path
    fingerprint: dict[str, Any]
    # Byte offset of every line in the file, in file order.
    offsets: array = field(default_factory=lambda: array("q"))
    # Job line number -> ordinal (place in offsets) of its result line; NONE: none yet.
    by_line: array = field(default_factory=lambda: array("i"))
    _handle: Any = None
    _lock: BinaryIO | None = None
    _size: int = 0
    _synced: float = 0.0
    _changed: bool = False  # lines appended or dropped since the file was last in order
    _ordered_for: str | None = None  # the input digest the file is known to follow
    _finished: dict[str, Any] | None = None  # the marker of a finished run, if still true
    # The job digest every line in the file was written under (None: mixed).
    _lines_job: str | None = None
    # Dollars: what the lines in the file cost (null costs count as 0), and
    # what lines dropped by earlier reorderings had cost (a retried error's).
    lines_cost: Decimal = Decimal(0)
    dropped_cost: Decimal = Decimal(0)
    _reader: int | None = None  # a descriptor for reading lines back by offset
    _valid_bytes: int = 0  # where the whole lines read back end
    # The job file as last checked: (size, mtime, inode) and what the check found.
    job_stamp: dict[str, Any] | None = None
    # A sweep's roles whose lines the file may hold: id -> text (None: the record's own).
    roles: dict[str, str | None] = field(default_factory=dict)
    role_metadata: dict[str, Any] = field(default_factory=dict)
    samples: int = 1
    merged: dict[str, Any] | None = None  # written by merge, unchanged since

    @property
    def meta_path(self) -> Path:
        return sidecar_path(self.path)

    @property
    def lock_path(self) -> Path:
        return self.path.with_name(self.path.name + ".lock")

    @property
    def replaced_path(self) -> Path:
        return self.path.with_name(self.path.name + ".replaced.jsonl")

    def is_done(self, line: int) -> bool:
        """Whether the record on job line ``line`` has its result already."""
        return self.by_line[line] != NONE

    # -- opening --------------------------------------------------------

    def checked_job(
        self,
        job_path: Path,
        shard: Shard | None = None,
        sweep: Sweep | None = None,
        rules: RecordRules = PLAIN,
    ) -> JobFile | None:
        """The job as the last run checked it, if the file has not changed since:
        a resumed million-record job need not be parsed again to find it done."""
        try:
            meta = json.loads(self.meta_path.read_text())
            stamp = meta["job_checked"]
            if (
                stamp["stat"] == _stat_stamp(job_path)
                and stamp.get("shard") == (str(shard) if shard else None)
                and stamp.get("sweep") == (sweep.key if sweep else None)
            ):
                return JobFile(
                    job_path,
                    stamp["total"],
                    stamp["digest"],
                    stamp["last_line"],
                    shard,
                    sweep,
                    rules,
                )
        except (OSError, ValueError, KeyError, TypeError):
            pass
        return None

    def remember_job(self, job: JobFile) -> None:
        self.job_stamp = {
            "stat": _stat_stamp(job.path),
            "total": job.total,
            "digest": job.digest,
            "last_line": job.last_line,
            "shard": str(job.shard) if job.shard else None,
            "sweep": job.sweep.key if job.sweep else None,
        }

    def lock(self) -> None:
        """Take the output for this run: another run on it stops at once."""
        if self._lock is not None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if self.path.is_dir():
                raise UsageError(f"output {self.path} is a directory; give a file path with -o")
            self._lock = self.lock_path.open("ab")
        except OSError as exc:
            raise OutputError(
                f"cannot write to {self.path.parent}: {exc.strerror or exc}. Fix the"
                " directory (or pick another with -o) and run the same command again."
            ) from None
        try:
            fcntl.flock(self._lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            self._lock = None
            raise UsageError(
                f"another rolebatch run is writing {self.path} (it holds {self.lock_path});"
                " this one stops here so the two do not interleave"
            ) from None
        # Ours alone now: what a run killed mid-rewrite left behind goes (it
        # holds nothing the output and its sidecar do not, and may fill a disk).
        for tmp in (tmp_of(self.path), tmp_of(self.meta_path)):
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()

    def open(self, fresh: bool, retry_failed: bool, job: JobFile) -> Resumed:
        """Lock, read back what is there, and get ready to append."""
        self.lock()
        resumed = Resumed()
        try:
            if fresh or not self.path.exists():
                self._start_over(job)
            else:
                resumed = self._resume(retry_failed, job)
            # Unbuffered: a failed write leaves nothing behind to fail again on close.
            self._handle = self.path.open("ab", buffering=0)
            self._size = self._handle.tell()
        except OSError as exc:
            raise OutputError(f"cannot write {self.path}: {exc.strerror or exc}") from None
        return resumed

    def _start_over(self, job: JobFile) -> None:
        self.by_line = array("i", [NONE]) * (job.last_line + 1)
        self._lines_job = job.digest
        self._take_sweep(job)
        self._write_meta()
        with self.path.open("wb"):
            pass

    @property
    def spent(self) -> Decimal:
        """What this output has cost in all: its lines, and those dropped before."""
        return self.lines_cost + self.dropped_cost

    def _write_meta(self, ordered_for: str | None = None, errors: int = 0) -> None:
        meta: dict[str, Any] = {"rolebatch": SIDECAR_FORMAT, "config": self.fingerprint}
        if self.roles:
            meta["sweep"] = {"roles": list(self.roles.items()), "samples": self.samples}
            if self.role_metadata:
                meta["sweep"]["metadata"] = self.role_metadata
        if self.merged:
            meta["merged"] = self.merged
        if self.job_stamp:
            meta["job_checked"] = self.job_stamp
        if self._lines_job:
            meta["lines_job"] = self._lines_job
        if self.dropped_cost:
            meta["dropped_cost_usd"] = str(self.dropped_cost)
        if ordered_for:
            # Written only when every record has its line, in input order.
            meta["finished"] = {
                "input": ordered_for,
                "bytes": self._size,
                "errors": errors,
                "cost_usd": str(self.lines_cost),
            }
        tmp = tmp_of(self.meta_path)
        with written(self.meta_path, tmp):
            tmp.write_text(json.dumps(meta, indent=2) + "\n")
            os.replace(tmp, self.meta_path)

    def _resume(self, retry_failed: bool, job: JobFile) -> Resumed:
        meta = self._check_fingerprint(job)
        # Until the file is rewritten for this job, it may hold lines of roles
        # the roles file no longer has: their texts are kept too.
        stored = meta.get("sweep") or {}
        self._take_sweep(job)
        self.roles = {**{str(i): text for i, text in stored.get("roles", [])}, **self.roles}
        self.role_metadata = {**stored.get("metadata", {}), **self.role_metadata}
        resumed = self._map(meta, retry_failed, job)
        if resumed.finished:
            return resumed
        if self._valid_bytes != self.path.stat().st_size:
            os.truncate(self.path, self._valid_bytes)  # a torn last line: cut off
            resumed.repaired = True
        self._changed = True
        self._write_meta()  # no longer a finished run: this one appends
        return resumed

    def survey(self, job: JobFile, retry_failed: bool) -> Survey:
        """What the output already holds, reading only: for ``estimate``."""
        survey = Survey()
        if not self.path.exists():
            return survey
        meta = self._read_meta()
        if meta is None:
            survey.changes = ["it was not written by rolebatch"]
            return survey
        survey.changes = changes(meta, self.fingerprint, job.sweep)
        if survey.changes:
            return survey  # its answers say nothing about this configuration's
        survey.resumed = self._map(meta, retry_failed, job)
        with self.path.open("rb") as handle:
            for raw in handle:
                match = LINE_USAGE.search(raw)
                if match is not None and parse_head(raw) is not None:
                    survey.answers += 1
                    survey.prompt_tokens += int(match.group(1))
                    survey.completion_tokens += int(match.group(2))
        survey.spent = self.spent
        return survey

    def _map(self, meta: dict[str, Any], retry_failed: bool, job: JobFile) -> Resumed:
        """Which job records the file already answers (``by_line``), reading only."""
        resumed = Resumed()
        self.dropped_cost = Decimal(meta.get("dropped_cost_usd", 0))
        finished = self._finished
        if (
            finished
            and finished["input"] == job.digest
            and (finished["errors"] == 0 or not retry_failed)
        ):
            # A finished run, unchanged since: every record is in, nothing to read.
            resumed.done = job.total
            resumed.failed_kept = finished["errors"]
            resumed.finished = True
            self.lines_cost = Decimal(finished.get("cost_usd", 0))
            return resumed
        self.by_line = array("i", [NONE]) * (job.last_line + 1)
        if meta.get("lines_job") == job.digest:
            self._lines_job = job.digest
            self._read_back(self._place_by_line)
        else:
            # Lines written under another version of the job: their line
            # numbers may be stale, so they are matched to records by id.
            self._lines_job = None
            ids = _IdTable(self, expected=job.total)
            self._read_back(ids.place)
            ids.join(job, self.by_line)
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

    def _place_by_line(self, ordinal: int, record_id: Any, line: int, ok: bool) -> None:
        if 0 < line < len(self.by_line):
            self.by_line[line] = ordinal if ok else _error(ordinal)

    def _read_back(self, place: Any) -> None:
        """Read every line, note its offset and cost, and hand it to ``place``.
        A torn last line is left out (``_valid_bytes`` ends before it); damage
        anywhere else is refused."""
        offsets = self.offsets
        offset = 0
        with self.path.open("rb") as handle:
            for number, raw in enumerate(handle, start=1):
                parsed = parse_head(raw)
                if parsed is None:
                    if handle.read(1) == b"":
                        break  # a torn last line
                    raise UsageError(
                        f"{self.path}:{number}: not a rolebatch result line; the file is"
                        " damaged. Use --fresh to start over, or -o to write elsewhere."
                    )
                place(len(offsets), *parsed)
                offsets.append(offset)
                cost = line_cost(raw)
                if cost:
                    self.lines_cost += Decimal(repr(cost))
                offset += len(raw)
        self._valid_bytes = offset

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

    def _read_meta(self) -> dict[str, Any] | None:
        """The sidecar (None: there is none).  Notes whether it marks the file
        finished, as it is now."""
        meta = read_sidecar(self.path)
        if meta is None:
            return None
        finished = meta.get("finished") or {}
        if finished.get("bytes") == self.path.stat().st_size:
            self._ordered_for = finished.get("input")
            self._finished = finished
        return meta

    def _check_fingerprint(self, job: JobFile) -> dict[str, Any]:
        meta = self._read_meta()
        if meta is None:
            if self.path.stat().st_size == 0:
                self._write_meta()
                return {}
            raise UsageError(
                f"{self.path} exists but was not written by rolebatch (no"
                f" {self.meta_path.name}); use --fresh to overwrite it, or -o to write elsewhere"
            )
        changed = changes(meta, self.fingerprint, job.sweep)
        if changed:
            raise UsageError(
                f"cannot resume {self.path}: it was made with another configuration ("
                + "; ".join(changed)
                + "). Run with --fresh to start over, or write to another file with -o."
            )
        return meta

    # -- appending ------------------------------------------------------

    def append(self, lines: Iterable[tuple[int, str]]) -> None:
        """Write finished lines (job line number, text), flush them to the OS,
        fsync at most once a second.  Runs in a worker thread; an OSError (disk
        full) ends the run."""
        assert self._handle is not None
        chunks = []
        for line, text in lines:
            data = text.encode("utf-8")
            self.by_line[line] = len(self.offsets)
            self.offsets.append(self._size)
            self._size += len(data)
            cost = line_cost(data)
            if cost:
                self.lines_cost += Decimal(repr(cost))
            chunks.append(data)
        self._changed = True
        try:
            data = memoryview(b"".join(chunks))
            while data:
                written = self._handle.write(data)
                data = data[written:]
            now = time.monotonic()
            if now - self._synced >= FSYNC_INTERVAL:
                os.fsync(self._handle.fileno())
                self._synced = now
        except OSError as exc:
            raise OutputError(
                f"cannot write {self.path}: {exc.strerror or exc}. The lines written before"
                " are intact; free some space and run the same command to resume."
            ) from None

    def sync(self) -> None:
        """Flush what was appended to the disk now (before journaling past it)."""
        assert self._handle is not None
        try:
            os.fsync(self._handle.fileno())
        except OSError as exc:
            raise OutputError(cannot_write(self.path, exc)) from None
        self._synced = time.monotonic()

    # -- finishing ------------------------------------------------------

    def finish(self, job: JobFile, errors: int) -> None:
        """Every record is done (``errors`` of them failed): rewrite the file in
        input order (atomically), each line saying its line in the job as it is
        now, and mark it finished.  OutputError (naming the file) when a write
        fails, the disk full say: every line is still in the file as it was,
        and the same command puts them in order, buying nothing."""
        assert self._handle is not None
        self.sync()
        if not self._changed and self._ordered_for == job.digest:
            return  # a finished run, resumed: nothing to do
        # Already in input order, with nothing else in the file: leave it be.
        expected = 0
        for ordinal in self.by_line:
            if ordinal != NONE:
                if ordinal != expected:
                    break
                expected += 1
        in_order = self._lines_job == job.digest and expected == len(self.offsets)
        if not in_order:
            self._set_aside()
            tmp = tmp_of(self.path)
            kept = Decimal(0)
            with written(self.path, tmp):
                with self.path.open("rb") as source, tmp.open("wb") as target:
                    for line, ordinal in enumerate(self.by_line):
                        if ordinal == NONE:
                            continue
                        source.seek(self.offsets[ordinal])
                        raw = source.readline()
                        cost = line_cost(raw)
                        if cost:
                            kept += Decimal(repr(cost))
                        target.write(with_line(raw, line))
                    target.flush()
                    os.fsync(target.fileno())
                # What the dropped lines cost is written down before they go: a
                # crash in between counts it twice, never not at all.
                self.dropped_cost += self.lines_cost - kept
                self.lines_cost = kept
                self._write_meta()
                os.replace(tmp, self.path)
            fsync_dir(self.path.parent)
            self._size = self.path.stat().st_size
        self._lines_job = job.digest
        self._take_sweep(job)  # the file now holds these roles' lines only
        self._write_meta(ordered_for=job.digest, errors=errors)

    def merged_into_place(
        self, merged: Path, job: JobFile, cost: Decimal, errors: int, complete: bool
    ) -> None:
        """``merged`` (a file of ``job``'s lines in input order, fsync'ed,
        costing ``cost``) becomes this output: its sidecar first, saying
        nothing is finished (a crash then leaves an output a run can resume),
        then the file, then the sidecar that says what the merge wrote."""
        self.remember_job(job)
        self._take_sweep(job)
        self._write_meta()
        os.replace(merged, self.path)
        fsync_dir(self.path.parent)
        self._size = self.path.stat().st_size
        self.lines_cost = cost
        self._lines_job = job.digest
        self.merged = {"bytes": self._size}
        self._write_meta(ordered_for=job.digest if complete else None, errors=errors)

    def _take_sweep(self, job: JobFile) -> None:
        """The sweep's roles (word for word) and their metadata, as the sidecar keeps them."""
        self.roles = roles_of(job.sweep)
        self.role_metadata = dict(job.sweep.metadata) if job.sweep else {}
        self.samples = job.sweep.samples if job.sweep else 1

    def _set_aside(self) -> None:
        """Append every line the rewrite in input order will leave out (an
        error line run again, the answer of a record no longer in the job)
        to ``.replaced.jsonl``, fsync'ed before the rewrite: never deleted.
        A crash before the rename sets them aside twice, never not at all."""
        placed = bytearray(len(self.offsets))
        for ordinal in self.by_line:
            if ordinal != NONE:
                placed[ordinal] = 1
        if all(placed):
            return
        with self.path.open("rb") as source, appending(self.replaced_path) as write:
            for ordinal, here in enumerate(placed):
                if not here:
                    source.seek(self.offsets[ordinal])
                    write(source.readline())

    def close(self) -> None:
        if self._handle is not None:
            with contextlib.suppress(OSError):
                os.fsync(self._handle.fileno())
            with contextlib.suppress(OSError):
                self._handle.close()
            self._handle = None
        if self._reader is not None:
            os.close(self._reader)
            self._reader = None
        if self._lock is not None:
            self._lock.close()  # releases the flock
            self._lock = None


class _IdTable:
    """Output lines by id hash, for matching them to the records of a job that
    changed since they were written.  Every match is confirmed by reading the
    id on the line; ids whose hashes meet are kept apart in an exact dict."""

    def __init__(self, output: OutputFile, expected: int):
        self._output = output
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
        other = self._output.id_at(_ordinal(before))
        if other != record_id:  # two ids, one hash: both are kept exactly
            self._table.put(key, _TWO_IDS)
            self._exact[other] = before
            self._exact[record_id] = value
        # else: the same id again; the later line wins

    def join(self, job: JobFile, by_line: array) -> None:
        exact, table, output = self._exact, self._table, self._output
        for record in job.records():
            value = table.get(id_hash(record.id))
            if value is None:
                continue
            if value == _TWO_IDS:
                value = exact.get(record.id)
                if value is None:
                    continue
            elif output.id_at(_ordinal(value)) != record.id:
                continue  # another id with the same hash: this record has no line
            by_line[record.line] = value


def _error(ordinal: int) -> int:
    """An error line's ordinal, as kept until resume decides its fate."""
    return -(ordinal + 2)


def _ordinal(value: int) -> int:
    return value if value >= 0 else -(value + 2)


def _stat_stamp(path: Path) -> list[int]:
    stat = path.stat()
    return [stat.st_size, stat.st_mtime_ns, stat.st_ino]
