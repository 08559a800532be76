"""Writing a file so that a failure leaves it whole: every new version of a
file goes through ``replacing`` (a temporary file beside it named
``NAME.PID.tmp``, fsync, rename; none left behind however the block ends),
an append all of it or none of it; an OSError (the disk full, a read-only
folder) an OutputError that names the file."""

from __future__ import annotations

import contextlib
import glob
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from ..errors import OutputError


def tmp_of(path: Path, pid: int | None = None) -> Path:
    """Where this process (or ``pid``) writes a new ``path`` before it replaces
    the old: beside it, named for the process, so two never share one."""
    return path.with_name(f"{path.name}.{os.getpid() if pid is None else pid}.tmp")


def stale_tmps(path: Path) -> list[Path]:
    """Temporary files of ``path`` that any process left (killed mid-write),
    and the one earlier versions named without a process."""
    named = sorted(path.parent.glob(f"{glob.escape(path.name)}.*.tmp"))
    before = path.with_name(path.name + ".tmp")
    return [*named, before] if before.exists() else named


class Replacement:
    """A new version of a file being written (``replacing``): write ``tmp``;
    ``keep_old()`` if it turns out the same as the old, ``placed()`` if the
    block moved it into place itself."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self._outcome = "replace"

    def keep_old(self) -> None:
        self._outcome = "keep"

    def placed(self) -> None:
        self._outcome = "placed"


@contextlib.contextmanager
def replacing(
    path: Path, durable: bool = True, cannot: Callable[[Path, OSError], str] | None = None
) -> Iterator[Replacement]:
    """Write a new version of ``path``, whole or not at all: the block writes
    ``Replacement.tmp``; when it ends, the new file is fsync'ed (``durable``),
    renamed over ``path`` and the rename made durable.  Whatever ends the
    block early (an error, a signal) leaves ``path`` as it was and no
    temporary file; an OSError is an OutputError naming ``path`` (``cannot``:
    how to say it; by default which file and why)."""
    new = Replacement(tmp_of(path))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        yield new
        if new._outcome == "replace":
            if durable:
                fd = os.open(new.tmp, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
            os.replace(new.tmp, path)
            if durable:
                fsync_dir(path.parent)
    except OSError as exc:
        raise OutputError((cannot or _cannot)(path, exc)) from None
    finally:
        with contextlib.suppress(OSError):
            new.tmp.unlink()


def _cannot(path: Path, exc: OSError) -> str:
    return f"cannot write {path}: {exc.strerror or exc}"


@contextlib.contextmanager
def appending(path: Path) -> Iterator[Callable[[bytes], None]]:
    """A ``write`` that appends to ``path``, fsync'ed at the end: all of it
    or, when a write fails, none of it (the file cut back to where it was;
    an OutputError naming it)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    except OSError as exc:
        raise OutputError(cannot_write(path, exc)) from None
    start = os.fstat(fd).st_size

    def write(data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]

    try:
        yield write
        os.fsync(fd)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.ftruncate(fd, start)
        raise OutputError(cannot_write(path, exc)) from None
    finally:
        os.close(fd)


def cannot_write(path: Path, exc: OSError) -> str:
    return (
        f"cannot write {path}: {exc.strerror or exc}. Every line bought is kept in the"
        " output; free some space (or fix the folder) and run the same command again: it"
        " buys nothing that is done"
    )


def fsync_dir(directory: Path) -> None:
    """A rename in ``directory`` made durable (best effort)."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
