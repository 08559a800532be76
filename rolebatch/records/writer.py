"""Writing an output: the lock a run holds on it, and appending lines.

Lines are appended as records finish (completion order: that is what makes a
kill -9 lose nothing but the records in flight), flushed after every write and
fsync'ed at most once a second and at the end.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from pathlib import Path
from typing import BinaryIO

from ..errors import OutputError, UsageError
from .files import cannot_write

FSYNC_INTERVAL = 1.0


def lock_path(output: Path) -> Path:
    return output.with_name(output.name + ".lock")


def take_lock(output: Path) -> BinaryIO:
    """The output's lock, flock'ed: another run on it stops at once (a
    UsageError); a folder that cannot be written is an OutputError."""
    path = lock_path(output)
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        if output.is_dir():
            raise UsageError(f"output {output} is a directory; give a file path with -o")
        handle = path.open("ab")
    except OSError as exc:
        raise OutputError(
            f"cannot write to {output.parent}: {exc.strerror or exc}. Fix the"
            " directory (or pick another with -o) and run the same command again."
        ) from None
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise UsageError(
            f"another rolebatch run is writing {output} (it holds {path});"
            " this one stops here so the two do not interleave"
        ) from None
    return handle


class Appender:
    """Appends to an output and syncs it: unbuffered, so a failed write
    leaves nothing behind to fail again on close."""

    def __init__(self, path: Path):
        self.path = path
        self._handle = path.open("ab", buffering=0)
        self.size = self._handle.tell()
        self._synced = 0.0

    def write(self, data: bytes) -> None:
        """Write ``data`` whole, fsync at most once a second.  An OSError (the
        disk full) is an OutputError saying the lines before are intact."""
        try:
            view = memoryview(data)
            while view:
                view = view[self._handle.write(view) :]
            now = time.monotonic()
            if now - self._synced >= FSYNC_INTERVAL:
                os.fsync(self._handle.fileno())
                self._synced = now
        except OSError as exc:
            raise OutputError(
                f"cannot write {self.path}: {exc.strerror or exc}. The lines written before"
                " are intact; free some space and run the same command to resume."
            ) from None
        self.size += len(data)

    def sync(self) -> None:
        """Flush what was appended to the disk now."""
        try:
            os.fsync(self._handle.fileno())
        except OSError as exc:
            raise OutputError(cannot_write(self.path, exc)) from None
        self._synced = time.monotonic()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.fsync(self._handle.fileno())
        with contextlib.suppress(OSError):
            self._handle.close()
