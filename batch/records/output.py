"""The output file, which is also the run's state.

    out/job.jsonl                 one result line per record; the state itself
    out/job.jsonl.rolebatch.json  the configuration fingerprint it was made with
    out/job.jsonl.lock            flock'ed while a run writes the file

Lines are appended as records finish (completion order: that is what makes a
kill -9 lose nothing but the records in flight), flushed after every batch and
fsync'ed at most once a second and at the end.  A re-run reads the file back:
ids already ``ok`` are skipped, error lines are retried (unless told not to), a
torn last line is cut off.  When every record is done, the file is rewritten in
input order through a temporary file, fsync and rename.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import time
from array import array
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from ..errors import OutputError, UsageError
from .job import JobFile

FSYNC_INTERVAL = 1.0
# Our own lines start with the id, line and status keys, in that order.
_HEAD = re.compile(rb'^\{"id": ("(?:[^"\\]|\\.)*"|-?\d+), "line": \d+, "status": "(ok|error)"')


@dataclass
class Resumed:
    """What an existing output file already holds."""

    done: int = 0  # records that will not run again
    failed_kept: int = 0  # error lines kept (--no-retry-failed)
    retried: int = 0  # error lines dropped to run again
    repaired: bool = False  # a torn last line was cut off


@dataclass
class OutputFile:
    path: Path
    fingerprint: dict[str, Any]
    # id -> byte offset of its line in the file, for the final reordering.
    offsets: dict[Any, int] = field(default_factory=dict)
    _handle: Any = None
    _lock: BinaryIO | None = None
    _size: int = 0
    _synced: float = 0.0
    _changed: bool = False  # lines appended or dropped since the file was last in order
    _ordered_for: str | None = None  # the input digest the file is known to follow
    _finished: dict[str, Any] | None = None  # the marker of a finished run, if still true
    # The job file as last checked: (size, mtime, inode) and what the check found.
    job_stamp: dict[str, Any] | None = None

    @property
    def meta_path(self) -> Path:
        return self.path.with_name(self.path.name + ".rolebatch.json")

    @property
    def lock_path(self) -> Path:
        return self.path.with_name(self.path.name + ".lock")

    # -- opening --------------------------------------------------------

    def checked_job(self, job_path: Path) -> JobFile | None:
        """The job as the last run checked it, if the file has not changed since:
        a resumed million-record job need not be parsed again to find it done."""
        try:
            meta = json.loads(self.meta_path.read_text())
            stamp = meta["job_checked"]
            if stamp["stat"] == _stat_stamp(job_path):
                return JobFile(job_path, stamp["total"], stamp["digest"])
        except (OSError, ValueError, KeyError, TypeError):
            pass
        return None

    def remember_job(self, job: JobFile) -> None:
        self.job_stamp = {"stat": _stat_stamp(job.path), "total": job.total, "digest": job.digest}

    def open(self, fresh: bool, retry_failed: bool, job: JobFile) -> Resumed:
        """Lock, read back what is there, and get ready to append."""
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
        resumed = Resumed()
        try:
            if fresh or not self.path.exists():
                self._start_over()
            else:
                resumed = self._resume(retry_failed, job)
            # Unbuffered: a failed write leaves nothing behind to fail again on close.
            self._handle = self.path.open("ab", buffering=0)
            self._size = self._handle.tell()
        except OSError as exc:
            raise OutputError(f"cannot write {self.path}: {exc.strerror or exc}") from None
        return resumed

    def _start_over(self) -> None:
        self._write_meta()
        with self.path.open("wb"):
            pass

    def _write_meta(self, ordered_for: str | None = None, errors: int = 0) -> None:
        meta: dict[str, Any] = {"rolebatch": 1, "config": self.fingerprint}
        if self.job_stamp:
            meta["job_checked"] = self.job_stamp
        if ordered_for:
            # Written only when every record has its line, in input order.
            meta["finished"] = {"input": ordered_for, "bytes": self._size, "errors": errors}
        tmp = self.meta_path.with_name(self.meta_path.name + ".tmp")
        tmp.write_text(json.dumps(meta, indent=2) + "\n")
        os.replace(tmp, self.meta_path)

    def _resume(self, retry_failed: bool, job: JobFile) -> Resumed:
        self._check_fingerprint()
        resumed = Resumed()
        finished = self._finished
        if (
            finished
            and finished["input"] == job.digest
            and (finished["errors"] == 0 or not retry_failed)
        ):
            # A finished run, unchanged since: every record is in, nothing to read.
            resumed.done = job.total
            resumed.failed_kept = finished["errors"]
            return resumed
        keep = array("q")  # offset, length, offset, length ... of the lines kept
        dropped = False
        with self.path.open("rb") as handle:
            offset = 0
            for number, raw in enumerate(handle, start=1):
                parsed = _parse_head(raw)
                if parsed is None:
                    if handle.read(1) == b"":
                        resumed.repaired = True  # torn last line: cut it off
                        dropped = True
                        break
                    raise UsageError(
                        f"{self.path}:{number}: not a rolebatch result line; the file is"
                        " damaged. Use --fresh to start over, or -o to write elsewhere."
                    )
                record_id, ok = parsed
                if ok or not retry_failed:
                    if record_id in self.offsets:
                        dropped = True  # a duplicate: keep the latest only
                    self.offsets[record_id] = offset
                    keep.append(offset)
                    keep.append(len(raw))
                    if not ok:
                        resumed.failed_kept += 1
                else:
                    resumed.retried += 1
                    dropped = True
                offset += len(raw)
        resumed.done = len(self.offsets)
        if dropped:
            self._compact(keep)
        self._write_meta()  # no longer a finished run: this one appends
        return resumed

    def _check_fingerprint(self) -> None:
        try:
            meta = json.loads(self.meta_path.read_text())
            stored = meta["config"]
        except FileNotFoundError:
            if self.path.stat().st_size == 0:
                self._write_meta()
                return
            raise UsageError(
                f"{self.path} exists but was not written by rolebatch (no"
                f" {self.meta_path.name}); use --fresh to overwrite it, or -o to write elsewhere"
            ) from None
        except (ValueError, KeyError, OSError):
            raise UsageError(f"{self.meta_path} is damaged; use --fresh to start over") from None
        changed = [
            f"{key} was {stored.get(key)!r}, now {value!r}"
            for key, value in self.fingerprint.items()
            if stored.get(key) != value
        ]
        finished = meta.get("finished") or {}
        if finished.get("bytes") == self.path.stat().st_size:
            self._ordered_for = finished.get("input")
            self._finished = finished
        if changed:
            raise UsageError(
                f"cannot resume {self.path}: it was made with another configuration ("
                + "; ".join(changed)
                + "). Run with --fresh to start over, or write to another file with -o."
            )

    def _compact(self, keep: array) -> None:
        """Rewrite the file with only the kept lines, atomically."""
        tmp = self.path.with_name(self.path.name + ".tmp")
        offsets: dict[Any, int] = {}
        with self.path.open("rb") as source, tmp.open("wb") as target:
            position = 0
            for offset, length in zip(keep[::2], keep[1::2], strict=True):
                source.seek(offset)
                raw = source.read(length)
                parsed = _parse_head(raw)
                assert parsed is not None
                offsets[parsed[0]] = position
                target.write(raw)
                position += length
            target.flush()
            os.fsync(target.fileno())
        os.replace(tmp, self.path)
        _fsync_dir(self.path.parent)
        self.offsets = offsets
        self._changed = True

    # -- appending ------------------------------------------------------

    def append(self, lines: Iterable[tuple[Any, str]]) -> None:
        """Write finished lines, flush them to the OS, fsync at most once a second.
        Runs in a worker thread; an OSError (disk full) ends the run."""
        assert self._handle is not None
        chunks = []
        for record_id, line in lines:
            data = line.encode("utf-8")
            self.offsets[record_id] = self._size
            self._size += len(data)
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

    # -- finishing ------------------------------------------------------

    def finish(self, job: JobFile, errors: int) -> None:
        """Every record is done (``errors`` of them failed): rewrite the file in
        input order (atomically) and mark it finished."""
        assert self._handle is not None
        os.fsync(self._handle.fileno())
        if not self._changed and self._ordered_for == job.digest:
            return  # a finished run, resumed: nothing to do
        order = array("q")
        for record in job.records():
            offset = self.offsets.get(record.id)
            if offset is not None:
                order.append(offset)
        # Already in input order, with nothing else in the file: leave it be.
        if len(order) != len(self.offsets) or any(
            order[i] >= order[i + 1] for i in range(len(order) - 1)
        ):
            tmp = self.path.with_name(self.path.name + ".tmp")
            with self.path.open("rb") as source, tmp.open("wb") as target:
                for offset in order:
                    source.seek(offset)
                    target.write(source.readline())
                target.flush()
                os.fsync(target.fileno())
            os.replace(tmp, self.path)
            _fsync_dir(self.path.parent)
            self._size = self.path.stat().st_size
        self._write_meta(ordered_for=job.digest, errors=errors)

    def close(self) -> None:
        if self._handle is not None:
            with contextlib.suppress(OSError):
                os.fsync(self._handle.fileno())
            with contextlib.suppress(OSError):
                self._handle.close()
            self._handle = None
        if self._lock is not None:
            self._lock.close()  # releases the flock
            self._lock = None


def _parse_head(raw: bytes) -> tuple[Any, bool] | None:
    """(id, ok) of one of our lines, or None if it is not a whole line of ours."""
    if not raw.endswith(b"\n"):
        return None
    match = _HEAD.match(raw)
    if match is not None:
        token = match.group(1)
        if token.startswith(b'"') and b"\\" not in token:
            record_id: Any = token[1:-1].decode()
        else:
            record_id = json.loads(token)
        return record_id, match.group(2) == b"ok"
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(data, dict) or "id" not in data or data.get("status") not in ("ok", "error"):
        return None
    return data["id"], data["status"] == "ok"


def _stat_stamp(path: Path) -> list[int]:
    stat = path.stat()
    return [stat.st_size, stat.st_mtime_ns, stat.st_ino]


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
