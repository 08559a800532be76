"""Writing a file so that a failure leaves it whole: a new version through
a temporary file and a rename, an append all of it or none of it; an OSError
(the disk full, a read-only folder) an OutputError that names the file and
says that nothing bought is lost."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from ..errors import OutputError


def tmp_of(path: Path) -> Path:
    """Where a new ``path`` is written before it replaces the old one."""
    return path.with_name(path.name + ".tmp")


@contextlib.contextmanager
def written(path: Path, tmp: Path) -> Iterator[None]:
    """Writing ``path`` through ``tmp``: an OSError (the disk full, a
    read-only folder) is an OutputError that names ``path`` and its cause,
    and leaves no ``tmp`` behind; ``path`` is as it was."""
    try:
        yield
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(exc, OSError):
            raise OutputError(cannot_write(path, exc)) from None
        raise


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
