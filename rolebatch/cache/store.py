"""Answers already bought, kept on disk (``--cache DIR``): one SQLite database
in WAL mode, through the standard library.

    DIR/responses.sqlite   answers(key, value, used): the key a request's
                           digest (``via.cached``), the value the answer as
                           JSON, ``used`` when it was last stored or served;
                           meta: the format, and the answers' bytes
    DIR/lock               flock'ed while a process opens the database, or
                           sets a damaged one aside

Why SQLite and not ``diskcache`` (the same engine, with eviction built in):
diskcache stores values as pickles, and a cache directory is restored from
places a run does not control (a CI cache another branch wrote): loading it
must not be able to run code.  Here a value is JSON, and the one file has
nothing in it but answers.

Several processes (shards, CI jobs) read and write at once.  A lookup is a
read, on a connection of its own: under WAL it never waits for a writer.
That an answer was served is remembered in memory and written with the
next store (or at close), so lookups do not queue on SQLite's one writer.
Writers take turns, each waiting up to ``BUSY_TIMEOUT`` for the other.  A
committed answer survives the process being killed (WAL with
``synchronous=NORMAL``; only a power loss can take the last ones back, and
a lost answer is bought again, never wrong).

Nothing the cache does stops a run.  Damage is looked for when the database
is opened (SQLite's ``quick_check``, every page: for 1 GiB here 0.6-1.1 s
warm, 11 s cold), before anything is written to it.  A damaged file costs only what it broke:
it is set aside with its WAL (``responses.sqlite.damaged-TIME``, never over
an earlier one, renamed rather than unlinked, since another process may
still hold it) and every answer that can still be read is carried into a
new database.  Damage met part-way: the run goes on without the cache, and
the next run finds it at open.  A file of 0 bytes is said, not passed over.

A full disk keeps what fits: when the free space left is no more than
twice the WAL (and a margin), the WAL is folded into the database and
truncated after the write, while the pages still fit; a write that finds
no room at all folds it in and is tried once more.

The size limit (``--cache-max-size``) is on the answers as stored (key and
value, and ``ROW_BYTES`` a row for what SQLite keeps beside them), counted
exactly as they are stored and deleted.  Past it, the least recently used
answers are deleted until they are under ``EVICT_TO`` (0.92) of it, and when the
file then holds much more than that (deleted rows leave pages part empty),
it is rebuilt compact (``VACUUM``).
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
# What SQLite keeps for a row beside its key and value: the rowid, the
# record's header, ``used``, the key's index entry and the ``used`` index's.
ROW_BYTES = 80
# A row's bytes as the limit counts them, in SQL (a value's bytes, not its
# characters: answers are stored as UTF-8 text).
ROW_SIZE = f"length(key) + length(CAST(value AS BLOB)) + {ROW_BYTES}"
# Served answers remembered before they are written even without a store.
MOST_TOUCHED = 5_000
# Past the size limit, answers are deleted until they are under this share of it.
EVICT_TO = 0.92
# Rebuilt compact when the pages in use exceed the answers by this much.
LOOSE = 1.3
# Rows read at a time while carrying a damaged file's answers over, and the
# fewest of a range that fails that are given up rather than halved again.
SALVAGE_STEP = 256
SALVAGE_LEAST = 16
# Free bytes the disk must keep beyond twice the WAL, or the WAL is folded in.
LOG_MARGIN = 64 << 10
# SQLite's primary result codes for a file that is not (or no longer) a database.
_DAMAGED = {11: "SQLITE_CORRUPT", 26: "SQLITE_NOTADB"}
_BUSY = {5: "SQLITE_BUSY", 6: "SQLITE_LOCKED"}
_FULL = {13: "SQLITE_FULL"}


class ResponseCache:
    """The store.  Every method may be called from any thread (a connection
    to read and one to write, each taken in turns); none raises for what
    happens to the database: it warns once, through ``warn``, and answers as
    a miss."""

    def __init__(self, directory: Path, max_size: int, warn: Callable[[str], None]):
        self.directory = Path(directory)
        self.path = self.directory / FILE
        self.max_size = max_size
        self._warn = warn
        self._warned: set[str] = set()
        self._reader: sqlite3.Connection | None = None
        self._writer: sqlite3.Connection | None = None
        self._inode: int | None = None  # the file these connections opened
        self._read_lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._touched: dict[bytes, float] = {}  # served, not yet written as used
        self.off = False  # given up for this run (a damaged file, an unusable folder)
        self.salvaged: int | None = None  # answers carried over from a damaged file

    # -- opening -------------------------------------------------------------

    def exists(self) -> bool:
        return self.path.is_file()

    def open(self) -> ResponseCache:
        """Open (or create) the database; a damaged one is set aside and what
        can be read of it carried into a new one.  Blocking: call it from a
        thread in async code."""
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            with _held(self.directory / "lock"):
                if self.path.is_file() and self.path.stat().st_size == 0:
                    aside = self._set_aside()
                    self._once(
                        "empty",
                        f"{self.path} was empty (0 bytes: cut short?): set aside as"
                        f" {aside.name}; a new cache is begun",
                    )
                try:
                    self._connect()
                    problem = self._check()
                except sqlite3.DatabaseError as exc:
                    if _code(exc) not in _DAMAGED:
                        raise
                    problem = str(exc)
                if problem is not None:
                    self._close()
                    aside = self._set_aside()
                    self._connect()
                    self.salvaged = self._salvage(aside)
                    self._once(
                        "damaged",
                        f"{self.path} is damaged ({problem}): set aside as {aside.name};"
                        f" {self.salvaged:,} answers that could still be read are carried"
                        " into a new cache",
                    )
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
        writer = sqlite3.connect(
            self.path, timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False
        )
        self._writer = writer
        self._inode = os.stat(self.path).st_ino
        writer.execute("PRAGMA journal_mode=WAL")
        writer.execute("PRAGMA synchronous=NORMAL")
        writer.execute("CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT)")
        writer.execute(
            "CREATE TABLE IF NOT EXISTS answers"
            " (key BLOB PRIMARY KEY, value TEXT NOT NULL, used REAL NOT NULL)"
        )
        writer.execute("CREATE INDEX IF NOT EXISTS answers_used ON answers (used)")
        row = writer.execute("SELECT value FROM meta WHERE name = 'format'").fetchone()
        if row is None:
            writer.execute("INSERT OR IGNORE INTO meta VALUES ('format', ?)", (FORMAT,))
        elif row[0] != FORMAT:
            raise sqlite3.OperationalError(
                f"written by another version of rolebatch (format {row[0]}, this one reads"
                f" {FORMAT}): give another --cache directory"
            )
        self._reader = sqlite3.connect(
            self.path, timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False
        )

    def _check(self) -> str | None:
        """What SQLite's quick check of every page finds (None: nothing)."""
        rows = self._conn(self._writer).execute("PRAGMA quick_check(5)").fetchall()
        found = [str(row[0]) for row in rows]
        return None if found == ["ok"] else "; ".join(found)

    def close(self) -> None:
        with self._write_lock:
            if not self.off:
                with contextlib.suppress(sqlite3.Error):
                    self._store_touches()
        with self._read_lock, self._write_lock:
            self._close()

    def _close(self) -> None:
        for db in (self._reader, self._writer):
            if db is not None:
                with contextlib.suppress(sqlite3.Error):
                    db.close()
        self._reader = self._writer = None

    # -- reading and writing ---------------------------------------------------

    def get_many(self, keys: Sequence[bytes], touch: bool = True) -> dict[bytes, Any]:
        """The stored value of each key that has one.  ``touch``: they count
        as just used (the estimate only looks), written with the next store."""
        found: dict[bytes, Any] = {}
        if self.off or not keys:
            return found
        with self._read_lock:
            try:
                db = self._conn(self._reader)
                for start in range(0, len(keys), CHUNK):
                    chunk = list(keys[start : start + CHUNK])
                    marks = ",".join("?" * len(chunk))
                    rows = db.execute(
                        f"SELECT key, value FROM answers WHERE key IN ({marks})", chunk
                    )
                    for key, value in rows:
                        try:
                            found[bytes(key)] = json.loads(value)
                        except ValueError:
                            continue  # not one of our values: a miss
            except sqlite3.Error as exc:
                self._failed(exc, "read")
                return {}
        if touch and found:
            now = time.time()
            with self._write_lock:
                self._touched.update(dict.fromkeys(found, now))
                if len(self._touched) >= MOST_TOUCHED:
                    self._write(lambda db: None)
        return found

    def put_many(self, items: Sequence[tuple[bytes, Any]]) -> int:
        """Store each (key, value); how many were stored."""
        if self.off or not items:
            return 0
        now = time.time()
        rows = [(key, json.dumps(value, ensure_ascii=False), now) for key, value in items]

        def insert(db: sqlite3.Connection) -> None:
            before = self._bytes(db)
            keys = [key for key, _, _ in rows]
            replaced = 0
            for start in range(0, len(keys), CHUNK):
                chunk = keys[start : start + CHUNK]
                marks = ",".join("?" * len(chunk))
                replaced += db.execute(
                    f"SELECT coalesce(sum({ROW_SIZE}), 0) FROM answers WHERE key IN ({marks})",
                    chunk,
                ).fetchone()[0]
            db.executemany("INSERT OR REPLACE INTO answers VALUES (?, ?, ?)", rows)
            added = sum(len(key) + len(value.encode()) + ROW_BYTES for key, value, _ in rows)
            _set_bytes(db, before + added - replaced)

        with self._write_lock:
            if not self._write(insert):
                return 0
            try:
                self._evict()
            except sqlite3.Error as exc:
                self._failed(exc, "write")
        return len(rows)

    def size(self) -> int:
        """Bytes of the answers as stored (what the size limit is on)."""
        with self._write_lock:
            if self.off:
                return 0
            return self._bytes(self._conn(self._writer))

    def file_size(self) -> int:
        """Bytes of the database's pages in use (free pages not counted)."""
        with self._write_lock:
            return 0 if self.off else _in_use(self._conn(self._writer))

    def _conn(self, db: sqlite3.Connection | None) -> sqlite3.Connection:
        if db is None:
            raise sqlite3.OperationalError("the cache is closed")
        return db

    def _write(self, change: Callable[[sqlite3.Connection], None]) -> bool:
        """``change`` and the answers served since the last write, in one
        transaction; a full disk folds the WAL into the database and tries
        once more.  Under the write lock; False: nothing was written."""
        for attempt in range(2):
            db = None
            try:
                db = self._conn(self._writer)
                db.execute("BEGIN IMMEDIATE")
                change(db)
                self._store_touches(db)
                db.execute("COMMIT")
                self._fold_log_while_it_fits(db)
                return True
            except sqlite3.Error as exc:
                if db is not None and db.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        db.execute("ROLLBACK")
                if _code(exc) in _FULL and attempt == 0 and db is not None:
                    with contextlib.suppress(sqlite3.Error):
                        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                    continue
                self._failed(exc, "write")
                return False
        return False

    def _fold_log_while_it_fits(self, db: sqlite3.Connection) -> None:
        """Fold the WAL into the database, and truncate it, while the disk
        still has room for the pages it holds: on a nearly full volume a WAL
        left to SQLite's own checkpoint (at 4 MB) fills it with log, and
        then cannot be folded in at all.  One statvfs a write."""
        try:
            log = os.stat(f"{self.path}-wal").st_size
            room = os.statvfs(self.directory)
        except OSError:
            return
        if log and room.f_bavail * room.f_frsize < 2 * log + LOG_MARGIN:
            with contextlib.suppress(sqlite3.Error):
                db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def _store_touches(self, db: sqlite3.Connection | None = None) -> None:
        """Write when the answers served since the last write were used."""
        if not self._touched:
            return
        if db is None:  # at close: a transaction of its own
            self._write(lambda db: None)
            return
        by_time: dict[float, list[bytes]] = {}
        for key, used in self._touched.items():
            by_time.setdefault(used, []).append(key)
        for used, keys in by_time.items():  # a lookup's hits share one time
            for start in range(0, len(keys), CHUNK):
                chunk = keys[start : start + CHUNK]
                marks = ",".join("?" * len(chunk))
                db.execute(
                    f"UPDATE answers SET used = max(used, ?) WHERE key IN ({marks})",
                    [used, *chunk],
                )
        self._touched.clear()

    def _bytes(self, db: sqlite3.Connection) -> int:
        """The answers' bytes as counted in meta (counted once, if a file
        from before kept no count)."""
        row = db.execute("SELECT value FROM meta WHERE name = 'bytes'").fetchone()
        if row is not None:
            return int(row[0])
        counted = db.execute(f"SELECT coalesce(sum({ROW_SIZE}), 0) FROM answers").fetchone()[0]
        _set_bytes(db, counted)
        return int(counted)

    def _evict(self) -> None:
        """Over the size limit: delete the least recently used answers until
        they are under EVICT_TO of it; rebuild the file compact when its
        pages hold much more than the answers left."""
        db = self._conn(self._writer)
        if self._bytes(db) <= self.max_size:
            return
        target = int(self.max_size * EVICT_TO)

        def delete(db: sqlite3.Connection) -> None:
            total = self._bytes(db)
            count = db.execute("SELECT count(*) FROM answers").fetchone()[0]
            each = total / count if count else 1  # an answer's bytes, on average
            while total > target:
                n = max(1, min(CHUNK, math.floor((total - target) / each)))
                gone = db.execute(
                    "DELETE FROM answers WHERE key IN"
                    " (SELECT key FROM answers ORDER BY used LIMIT ?)"
                    f" RETURNING {ROW_SIZE}",
                    (n,),
                ).fetchall()
                if not gone:
                    break
                total -= sum(size for (size,) in gone)
            _set_bytes(db, total)

        if self._write(delete) and _in_use(db) > LOOSE * self.max_size:
            db.execute("VACUUM")

    # -- damage ------------------------------------------------------------------

    def _salvage(self, aside: Path) -> int:
        """Carry every answer that can still be read from the damaged file
        ``aside`` into the new database: rows read a range of rowids at a
        time, a range that fails halved until its readable rows are found.
        How many were carried."""
        try:
            source = sqlite3.connect(aside, timeout=BUSY_TIMEOUT, isolation_level=None)
        except sqlite3.Error:
            return 0
        carried = 0
        try:
            top = _top_rowid(source, aside)

            def rows(low: int, high: int) -> list[tuple[Any, ...]]:
                try:
                    return source.execute(
                        "SELECT key, value, used FROM answers WHERE rowid BETWEEN ? AND ?",
                        (low, high),
                    ).fetchall()
                except sqlite3.Error:
                    if high - low < SALVAGE_LEAST:  # about a page's rows: let them go
                        return []
                    middle = (low + high) // 2
                    return rows(low, middle) + rows(middle + 1, high)

            def carry(db: sqlite3.Connection) -> None:
                nonlocal carried
                size = self._bytes(db)  # the new database's count, begun
                for low in range(1, top + 1, SALVAGE_STEP):
                    found = [
                        (bytes(key), value, float(used))
                        for key, value, used in rows(low, min(top, low + SALVAGE_STEP - 1))
                        if _whole(key, value, used)
                    ]
                    db.executemany("INSERT OR IGNORE INTO answers VALUES (?, ?, ?)", found)
                    carried += len(found)
                    size += sum(len(k) + len(v.encode()) + ROW_BYTES for k, v, _ in found)
                _set_bytes(db, size)

            self._write(carry)
        finally:
            source.close()
        return carried

    def _failed(self, exc: sqlite3.Error, doing: str) -> None:
        code = _code(exc)
        if code in _BUSY:
            self._once(
                "busy",
                f"cache {self.path} stayed busy for {BUSY_TIMEOUT:g}s (another process"
                f" held it): some answers were not {'served' if doing == 'read' else 'stored'}",
            )
            return
        if code in _FULL:
            self._once(
                "full",
                f"cache {self.path}: the disk is full: answers that did not fit are not"
                " stored (they are in the output; a later run buys them again)",
            )
            return
        self.off = True
        self._close()
        if code in _DAMAGED:
            self._once(
                "damaged",
                f"{self.path} is damaged ({exc}): this run goes on without the cache;"
                " the next run sets it aside and keeps what can be read",
            )
            return
        self._once("failed", f"cache {self.path}: {exc}: this run goes on without it")

    def _set_aside(self) -> Path:
        """Rename the damaged database out of the way, with its WAL files (they
        belong to it: a new database must not replay them), under a name of
        its own: an earlier one set aside stays.  Renamed, never unlinked:
        another process may hold them still.  Under the directory lock."""
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        aside = self.path.with_name(f"{FILE}.damaged-{stamp}")
        n = 1
        while any(Path(f"{aside}{suffix}").exists() for suffix in ("", "-wal", "-shm")):
            n += 1
            aside = self.path.with_name(f"{FILE}.damaged-{stamp}-{n}")
        for suffix in ("-wal", "-shm", ""):  # the database last: it names the set
            with contextlib.suppress(FileNotFoundError):
                os.replace(f"{self.path}{suffix}", f"{aside}{suffix}")
        return aside

    def _once(self, kind: str, text: str) -> None:
        if kind not in self._warned:
            self._warned.add(kind)
            self._warn(text)


def _set_bytes(db: sqlite3.Connection, total: int) -> None:
    """The answers' bytes, as meta keeps them (``ResponseCache._bytes``)."""
    db.execute("INSERT OR REPLACE INTO meta VALUES ('bytes', ?)", (str(max(0, total)),))


def _in_use(db: sqlite3.Connection) -> int:
    pages = db.execute("PRAGMA page_count").fetchone()[0]
    free = db.execute("PRAGMA freelist_count").fetchone()[0]
    return int((pages - free) * db.execute("PRAGMA page_size").fetchone()[0])


def _top_rowid(source: sqlite3.Connection, path: Path) -> int:
    """The largest rowid of a damaged file's answers, or a bound on it from
    the file's size (no row is under 32 bytes) when that cannot be read."""
    try:
        source.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.Error:
        return 0  # not a database at all: nothing to carry
    try:
        top = source.execute("SELECT max(rowid) FROM answers").fetchone()[0]
    except sqlite3.Error:
        top = None
    if isinstance(top, int):
        return top
    try:
        return max(1, path.stat().st_size // 32)
    except OSError:
        return 0


def _whole(key: Any, value: Any, used: Any) -> bool:
    """A row read from a damaged file that is an answer of ours."""
    if not isinstance(key, bytes) or len(key) != 32 or not isinstance(value, str):
        return False
    if not isinstance(used, int | float) or not math.isfinite(used):
        return False
    try:
        return isinstance(json.loads(value), dict)
    except ValueError:
        return False


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
