"""Answers already bought, kept on disk (``--cache DIR``): one SQLite database
in WAL mode, through the standard library.

    DIR/responses.sqlite   answers(key, value, used): the key a request's
                           digest (``via.cached``), the value the answer as
                           JSON, ``used`` when it was last stored or served
    DIR/lock               flock'ed while a process opens the database, or
                           sets a damaged one aside

Why SQLite and not ``diskcache`` (the same engine, with eviction built in):
diskcache stores values as pickles, and a cache directory is restored from
places a run does not control (a CI cache another branch wrote): loading it
must not be able to run code.  Here a value is JSON, and the one file has
nothing in it but answers.

Several processes (shards, CI jobs) read and write at once: WAL lets readers
go on while one writes, and writers take turns, each waiting up to
``BUSY_TIMEOUT`` for the other.  A committed answer survives the process being
killed (WAL with ``synchronous=NORMAL``; only a power loss can take the last
ones back, and a lost answer is bought again, never wrong).

Nothing the cache does stops a run.  A damaged or truncated file is a miss
with one warning: found when the database is opened, it is set aside
(``responses.sqlite.damaged``) and a new one begun; found part-way, the run
goes on without the cache, and the file is set aside for the next run.

The size limit (``--cache-max-size``): after each write, the pages in use are
measured; over the limit, the least recently used answers are deleted until
it is under nine tenths of it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

FILE = "responses.sqlite"
FORMAT = "1"
BUSY_TIMEOUT = 30.0
DEFAULT_MAX_SIZE = 1 << 30  # 1 GiB: some millions of short answers
# Keys looked up or stored per statement (well under SQLite's variable limit).
CHUNK = 500
# SQLite's primary result codes for a file that is not (or no longer) a database.
_DAMAGED = {11: "SQLITE_CORRUPT", 26: "SQLITE_NOTADB"}
_BUSY = {5: "SQLITE_BUSY", 6: "SQLITE_LOCKED"}


class ResponseCache:
    """The store.  Every method may be called from any thread (one connection,
    taken in turns); none raises for what happens to the database: it warns
    once, through ``warn``, and answers as a miss."""

    def __init__(self, directory: Path, max_size: int, warn: Callable[[str], None]):
        self.directory = Path(directory)
        self.path = self.directory / FILE
        self.max_size = max_size
        self._warn = warn
        self._warned: set[str] = set()
        self._db: sqlite3.Connection | None = None
        self._inode: int | None = None  # the file this connection opened
        self._lock = threading.Lock()
        self.off = False  # given up for this run (a damaged file, an unusable folder)

    # -- opening -------------------------------------------------------------

    def exists(self) -> bool:
        return self.path.is_file()

    def open(self) -> ResponseCache:
        """Open (or create) the database; a damaged one is set aside and a
        new one begun.  Blocking: call it from a thread in async code."""
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            with _held(self.directory / "lock"):
                try:
                    self._connect()
                except sqlite3.DatabaseError as exc:
                    self._close()
                    if _code(exc) not in _DAMAGED:
                        raise
                    aside = self._set_aside()
                    self._once(
                        "damaged",
                        f"{self.path} is damaged ({exc}): set aside as {aside.name};"
                        " a new cache is begun",
                    )
                    self._connect()
        except (OSError, sqlite3.Error) as exc:
            self._close()
            self.off = True
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            self._once(
                "open",
                f"cache {self.directory} cannot be used ({reason}): this run goes on without it",
            )
        return self

    def _connect(self) -> None:
        db = sqlite3.connect(
            self.path, timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False
        )
        self._db = db
        self._inode = os.stat(self.path).st_ino
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT)")
        db.execute(
            "CREATE TABLE IF NOT EXISTS answers"
            " (key BLOB PRIMARY KEY, value TEXT NOT NULL, used REAL NOT NULL)"
        )
        db.execute("CREATE INDEX IF NOT EXISTS answers_used ON answers (used)")
        row = db.execute("SELECT value FROM meta WHERE name = 'format'").fetchone()
        if row is None:
            db.execute("INSERT OR IGNORE INTO meta VALUES ('format', ?)", (FORMAT,))
        elif row[0] != FORMAT:
            raise sqlite3.OperationalError(
                f"written by another version of rolebatch (format {row[0]}, this one reads"
                f" {FORMAT}): give another --cache directory"
            )
        # Reading a page of the answers finds a file cut short early.
        db.execute("SELECT key FROM answers ORDER BY used DESC LIMIT 1").fetchall()

    def close(self) -> None:
        with self._lock:
            self._close()

    def _close(self) -> None:
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
            self._db = None

    # -- reading and writing ---------------------------------------------------

    def get_many(self, keys: Sequence[bytes], touch: bool = True) -> dict[bytes, Any]:
        """The stored value of each key that has one.  ``touch``: they count
        as just used (the estimate only looks)."""
        found: dict[bytes, Any] = {}
        if self.off or not keys:
            return found
        with self._lock:
            try:
                for start in range(0, len(keys), CHUNK):
                    chunk = list(keys[start : start + CHUNK])
                    marks = ",".join("?" * len(chunk))
                    rows = self._conn().execute(
                        f"SELECT key, value FROM answers WHERE key IN ({marks})", chunk
                    )
                    for key, value in rows:
                        try:
                            found[bytes(key)] = json.loads(value)
                        except ValueError:
                            continue  # not one of our values: a miss
                    hit = [key for key in chunk if key in found]
                    if touch and hit:
                        marks = ",".join("?" * len(hit))
                        self._conn().execute(
                            f"UPDATE answers SET used = ? WHERE key IN ({marks})",
                            [time.time(), *hit],
                        )
            except sqlite3.Error as exc:
                self._failed(exc, "read")
        return found

    def put_many(self, items: Sequence[tuple[bytes, Any]]) -> int:
        """Store each (key, value); how many were stored."""
        if self.off or not items:
            return 0
        now = time.time()
        rows = [(key, json.dumps(value, ensure_ascii=False), now) for key, value in items]
        with self._lock:
            db = None
            try:
                db = self._conn()
                db.execute("BEGIN IMMEDIATE")
                db.executemany("INSERT OR REPLACE INTO answers VALUES (?, ?, ?)", rows)
                db.execute("COMMIT")
            except sqlite3.Error as exc:
                if db is not None and db.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        db.execute("ROLLBACK")
                self._failed(exc, "write")
                return 0
            try:
                self._evict()
            except sqlite3.Error as exc:
                self._failed(exc, "write")
        return len(rows)

    def size(self) -> int:
        """Bytes of the database's pages in use."""
        with self._lock:
            return self._in_use() if not self.off else 0

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise sqlite3.OperationalError("the cache is closed")
        return self._db

    def _in_use(self) -> int:
        db = self._conn()
        pages = db.execute("PRAGMA page_count").fetchone()[0]
        free = db.execute("PRAGMA freelist_count").fetchone()[0]
        return int((pages - free) * db.execute("PRAGMA page_size").fetchone()[0])

    def _evict(self) -> None:
        """Over the size limit: delete the least recently used answers until
        it is under nine tenths of it."""
        size = self._in_use()
        if size <= self.max_size:
            return
        db = self._conn()
        target = self.max_size * 0.9
        count = db.execute("SELECT count(*) FROM answers").fetchone()[0]
        for _ in range(50):  # pages freed lag rows deleted: a few rounds
            if size <= target or count <= 0:
                return
            each = size / count
            n = max(1, math.ceil((size - target) / each), count // 100)
            db.execute(
                "DELETE FROM answers WHERE key IN (SELECT key FROM answers ORDER BY used LIMIT ?)",
                (n,),
            )
            count -= n
            size = self._in_use()

    # -- what goes wrong -------------------------------------------------------

    def _failed(self, exc: sqlite3.Error, doing: str) -> None:
        code = _code(exc)
        if code in _BUSY:
            self._once(
                "busy",
                f"cache {self.path} stayed busy for {BUSY_TIMEOUT:g}s (another process"
                f" held it): some answers were not {'served' if doing == 'read' else 'stored'}",
            )
            return
        self.off = True
        self._close()
        if code in _DAMAGED:
            aside = None
            with contextlib.suppress(OSError), _held(self.directory / "lock"):
                aside = self._set_aside(only_if_same=True)
            later = f"; set aside as {aside.name} for the next run" if aside else ""
            self._once(
                "damaged",
                f"{self.path} is damaged ({exc}): this run goes on without the cache{later}",
            )
            return
        self._once("failed", f"cache {self.path}: {exc}: this run goes on without it")

    def _set_aside(self, only_if_same: bool = False) -> Path | None:
        """Rename the damaged database out of the way, with its WAL files (they
        belong to it: a new database must not replay them).  ``only_if_same``:
        only if it still is the file this connection opened (another process
        may have begun a new one already).  Under the directory lock."""
        if only_if_same:
            try:
                if os.stat(self.path).st_ino != self._inode:
                    return None
            except FileNotFoundError:
                return None
        aside = self.path.with_name(FILE + ".damaged")
        os.replace(self.path, aside)
        for suffix in ("-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(f"{self.path}{suffix}")
        return aside

    def _once(self, kind: str, text: str) -> None:
        if kind not in self._warned:
            self._warned.add(kind)
            self._warn(text)


def _code(exc: sqlite3.Error) -> int | None:
    code = getattr(exc, "sqlite_errorcode", None)
    return None if code is None else code & 0xFF


@contextlib.contextmanager
def _held(path: Path) -> Iterator[None]:
    """An exclusive flock on ``path`` for the block (processes take turns)."""
    with open(path, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def parse_size(text: str) -> int:
    """``--cache-max-size``: bytes, or with K, M, G (powers of 1024), e.g. 500M."""
    units = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    value = text.strip().upper().removesuffix("B").removesuffix("I")
    unit = value[-1:] if value[-1:] in units else ""
    number = value[: len(value) - len(unit)]
    try:
        size = float(number) * units[unit]
    except ValueError:
        raise ValueError(f"{text!r}: expected a size such as 500M or 2G") from None
    if not math.isfinite(size) or size < 1 << 20:
        raise ValueError(f"{text!r}: at least 1M")
    return int(size)
