"""The output file, which is also the run's state.

    out/job.jsonl                 one result line per record; the state itself
    out/job.jsonl.rolebatch.json  the configuration fingerprint it was made with
                                  (and a sweep's roles, word for word)
    out/job.jsonl.lock            flock'ed while a run writes the file
    out/job.jsonl.replaced.jsonl  lines the output no longer holds: error lines
                                  run again, answers of records no longer in the job

A re-run reads the file back: ids already ``ok`` are skipped, error lines are
retried (unless told not to), a torn last line is cut off.  An output written
under one configuration (model, prompt, schema, a sweep or a plain run, a
shard or the whole job, the text of each role) is never resumed under
another.  ``OutputFile`` holds the output's state and its order of events; the
rooms it leads to:

    sidecar     the configuration beside the file: read, versions, changes in words
    index       which line of the file answers which record (offsets, the id table)
    writer      the lock, appending and syncing
    compaction  the finished file in input order; lines set aside, never deleted
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, BinaryIO

from ..errors import OutputError, UsageError
from .compaction import rewrite_in_order, set_aside
from .files import cannot_write, fsync_dir, replacing, stale_tmps
from .index import LineIndex, Resumed
from .job import PLAIN, JobFile, RecordRules
from .lines import LINE_USAGE, output_lines, parse_head
from .roles import Sweep
from .shards import Shard
from .sidecar import SIDECAR_FORMAT, changes, read_sidecar, roles_of, sidecar_path
from .writer import Appender, take_lock

__all__ = ["OutputFile", "Resumed", "Survey"]


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
    # Which line of the file answers which record (empty until opened).
    index: LineIndex = field(init=False)
    _appender: Appender | None = None
    _lock: BinaryIO | None = None
    _changed: bool = False  # lines appended or dropped since the file was last in order
    _ordered_for: str | None = None  # the input digest the file is known to follow
    # The job digest every line in the file was written under (None: mixed).
    _lines_job: str | None = None
    # Dollars that lines dropped by earlier reorderings had cost (a retried error's).
    dropped_cost: Decimal = Decimal(0)
    # The job file as last checked: (size, mtime, inode) and what the check found.
    job_stamp: dict[str, Any] | None = None
    # A sweep's roles whose lines the file may hold: id -> text (None: the record's own).
    roles: dict[str, str | None] = field(default_factory=dict)
    role_metadata: dict[str, Any] = field(default_factory=dict)
    samples: int = 1
    merged: dict[str, Any] | None = None  # written by merge, unchanged since

    def __post_init__(self) -> None:
        self.index = LineIndex(self.path, -1)

    @property
    def meta_path(self) -> Path:
        return sidecar_path(self.path)

    @property
    def by_line(self) -> Any:
        """Job line number -> ordinal of its result line (see ``index``)."""
        return self.index.by_line

    def is_done(self, line: int) -> bool:
        """Whether the record on job line ``line`` has its result already."""
        return self.index.is_done(line)

    @property
    def lines_cost(self) -> Decimal:
        """What the lines in the file cost."""
        return self.index.lines_cost

    @property
    def spent(self) -> Decimal:
        """What this output has cost in all: its lines, and those dropped before."""
        return self.lines_cost + self.dropped_cost

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
        self._lock = take_lock(self.path)
        # Ours alone now: what a run killed mid-rewrite left behind goes (it
        # holds nothing the output and its sidecar do not, and may fill a disk).
        for tmp in (*stale_tmps(self.path), *stale_tmps(self.meta_path)):
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
            self._appender = Appender(self.path)
        except OSError as exc:
            raise OutputError(f"cannot write {self.path}: {exc.strerror or exc}") from None
        return resumed

    def _start_over(self, job: JobFile) -> None:
        self.index = LineIndex(self.path, job.last_line)
        self._lines_job = job.digest
        self._take_sweep(job)
        self._write_meta()
        with self.path.open("wb"):
            pass

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
                "bytes": self.path.stat().st_size,
                "errors": errors,
                "cost_usd": str(self.lines_cost),
            }
        # Not fsync'ed on its own: the output's fsyncs and renames order it.
        with replacing(self.meta_path, durable=False, cannot=cannot_write) as new:
            new.tmp.write_text(json.dumps(meta, indent=2) + "\n")

    def _resume(self, retry_failed: bool, job: JobFile) -> Resumed:
        meta, finished = self._check_fingerprint(job)
        # Until the file is rewritten for this job, it may hold lines of roles
        # the roles file no longer has: their texts are kept too.
        stored = meta.get("sweep") or {}
        self._take_sweep(job)
        self.roles = {**{str(i): text for i, text in stored.get("roles", [])}, **self.roles}
        self.role_metadata = {**stored.get("metadata", {}), **self.role_metadata}
        resumed = self._map(meta, finished, retry_failed, job)
        if resumed.finished:
            self._ordered_for = job.digest
            return resumed
        if self.index.end != self.path.stat().st_size:
            os.truncate(self.path, self.index.end)  # a torn last line: cut off
            resumed.repaired = True
        self._changed = True
        self._write_meta()  # no longer a finished run: this one appends
        return resumed

    def survey(self, job: JobFile, retry_failed: bool) -> Survey:
        """What the output already holds, reading only: for ``estimate``."""
        survey = Survey()
        if not self.path.exists():
            return survey
        read = self._read_meta()
        if read is None:
            survey.changes = ["it was not written by rolebatch"]
            return survey
        meta, finished = read
        survey.changes = changes(meta, self.fingerprint, job.sweep)
        if survey.changes:
            return survey  # its answers say nothing about this configuration's
        survey.resumed = self._map(meta, finished, retry_failed, job)
        with self.path.open("rb") as handle:
            for _, _, raw in output_lines(handle):
                match = LINE_USAGE.search(raw)
                if match is not None and parse_head(raw) is not None:
                    survey.answers += 1
                    survey.prompt_tokens += int(match.group(1))
                    survey.completion_tokens += int(match.group(2))
        survey.spent = self.spent
        return survey

    def _map(
        self,
        meta: dict[str, Any],
        finished: dict[str, Any] | None,
        retry_failed: bool,
        job: JobFile,
    ) -> Resumed:
        """Which job records the file already answers, reading only.
        ``finished``: the sidecar's mark of a finished run, if the file is
        still as that run left it."""
        self.dropped_cost = Decimal(meta.get("dropped_cost_usd", 0))
        if (
            finished
            and finished["input"] == job.digest
            and (finished["errors"] == 0 or not retry_failed)
        ):
            # A finished run, unchanged since: every record is in, nothing to read.
            # The index stays empty (nothing was read); what the lines cost
            # is what the finished run wrote down.
            self.index.lines_cost = Decimal(finished.get("cost_usd", 0))
            return Resumed(done=job.total, failed_kept=finished["errors"], finished=True)
        # Lines written under another version of the job may have stale line
        # numbers: they are matched to records by id.
        by_id = meta.get("lines_job") != job.digest
        self._lines_job = None if by_id else job.digest
        self.index.close()
        self.index = LineIndex.read(self.path, job, by_id)
        return self.index.settle(retry_failed)

    def _read_meta(self) -> tuple[dict[str, Any], dict[str, Any] | None] | None:
        """The sidecar (None: there is none), and its mark of a finished run if
        the file is still as that run left it."""
        meta = read_sidecar(self.path)
        if meta is None:
            return None
        finished = meta.get("finished") or {}
        still = finished.get("bytes") == self.path.stat().st_size
        return meta, finished if still else None

    def _check_fingerprint(self, job: JobFile) -> tuple[dict[str, Any], dict[str, Any] | None]:
        read = self._read_meta()
        if read is None:
            if self.path.stat().st_size == 0:
                self._write_meta()
                return {}, None
            raise UsageError(
                f"{self.path} exists but was not written by rolebatch (no"
                f" {self.meta_path.name}); use --fresh to overwrite it, or -o to write elsewhere"
            )
        changed = changes(read[0], self.fingerprint, job.sweep)
        if changed:
            raise UsageError(
                f"cannot resume {self.path}: it was made with another configuration ("
                + "; ".join(changed)
                + "). Run with --fresh to start over, or write to another file with -o."
            )
        return read

    # -- appending ------------------------------------------------------

    def append(self, lines: Iterable[tuple[int, str]]) -> None:
        """Write finished lines (job line number, text), flush them to the OS,
        fsync at most once a second.  Runs in a worker thread; an OSError (disk
        full) ends the run."""
        appender = self._appender
        assert appender is not None
        chunks = []
        offset = appender.size
        for line, text in lines:
            data = text.encode("utf-8")
            self.index.add(line, offset, data)
            offset += len(data)
            chunks.append(data)
        self._changed = True
        appender.write(b"".join(chunks))

    def sync(self) -> None:
        """Flush what was appended to the disk now (before journaling past it)."""
        assert self._appender is not None
        self._appender.sync()

    # -- finishing ------------------------------------------------------

    def finish(self, job: JobFile, errors: int, stop: Callable[[], None] | None = None) -> None:
        """Every record is done (``errors`` of them failed): rewrite the file in
        input order (atomically), each line saying its line in the job as it is
        now, and mark it finished.  OutputError (naming the file) when a write
        fails, the disk full say, and whatever ``stop`` raises (a signal came;
        it is called now and then): every line is still in the file as it was,
        and the same command puts them in order, buying nothing."""
        self.sync()
        if not self._changed and self._ordered_for == job.digest:
            return  # a finished run, resumed: nothing to do
        # Already in input order, with nothing else in the file: leave it be.
        if not (self._lines_job == job.digest and self.index.in_input_order()):
            set_aside(self.index)
            index = self.index

            def before_rename(kept: Decimal) -> None:
                self.dropped_cost += index.lines_cost - kept
                index.lines_cost = kept
                self._write_meta()

            rewrite_in_order(index, before_rename, stop)
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
        self.index.close()
        self.index = LineIndex(self.path, -1)  # a file this run has not read
        self.index.lines_cost = cost
        self._lines_job = job.digest
        self.merged = {"bytes": self.path.stat().st_size}
        self._write_meta(ordered_for=job.digest if complete else None, errors=errors)

    def _take_sweep(self, job: JobFile) -> None:
        """The sweep's roles (word for word) and their metadata, as the sidecar keeps them."""
        self.roles = roles_of(job.sweep)
        self.role_metadata = dict(job.sweep.metadata) if job.sweep else {}
        self.samples = job.sweep.samples if job.sweep else 1

    def close(self) -> None:
        if self._appender is not None:
            self._appender.close()
            self._appender = None
        self.index.close()
        if self._lock is not None:
            self._lock.close()  # releases the flock
            self._lock = None


def _stat_stamp(path: Path) -> list[int]:
    stat = path.stat()
    return [stat.st_size, stat.st_mtime_ns, stat.st_ino]
