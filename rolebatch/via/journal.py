"""What a batch run has done at the provider, written down before each next step.

    out/job.jsonl.batches/journal.jsonl     one event a line, fsync'ed
    out/job.jsonl.batches/<tag>.jsonl       a request file, until its batch is collected
    out/job.jsonl.batches/rounds.jsonl      each record's rounds so far, until it is done

A batch is bought in steps, and each step is journaled before the next:

    intent    the requests are packed into a file, under a fresh tag
    uploaded  the file is at the provider (``file_id``)
    created   the batch exists (``batch_id``); its metadata carries the tag
    ended     its results are in the output (or it was refused, or failed)

A crash between "uploaded" and "created" leaves a batch at the provider that
the journal does not name: the next run looks for the tag among the
provider's batches and adopts it instead of creating another.  Before
"uploaded", no batch can exist (a batch is only created from a journaled
upload), so the file is uploaded again; a file costs nothing.

A record that goes into another round keeps what its rounds so far came to
in ``rounds.jsonl`` (the output line comes only when the record is done):
an answer that needs a re-ask, a transient error (5xx, 429, a timeout), or
nothing at all (its batch expired or was cancelled before it ran).  From
them the next round's request, the count of attempts, the retry budget and
the usage and cost of every round are rebuilt after a crash.  When the
record's line is written its rounds are closed, so that an error line run
again later starts afresh.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import OutputError
from ..providers.batch_api import Result, Submission
from .verdict import transient

STEPS = ("intent", "uploaded", "created", "ended")


def mark_of(tag: str) -> str:
    """The part of a batch's tag that its requests' custom_ids carry."""
    return tag[-8:]


def custom_id(line: int, attempt: int, tag: str) -> str:
    """Short, stable, within every provider's pattern (^[a-zA-Z0-9_-]{1,64}$),
    and marked with its batch's tag: a result is taken only from the batch its
    request was packed for, even if a batch were ever adopted by mistake."""
    return f"L{line}-a{attempt}-{mark_of(tag)}"


def parse_custom_id(value: str) -> tuple[int, int, str | None] | None:
    """(line, attempt, mark) of a custom_id; None when it is not ours."""
    head, _, rest = value.partition("-a")
    attempt, _, mark = rest.partition("-")
    if not head.startswith("L") or not head[1:].isdigit() or not attempt.isdigit():
        return None
    return int(head[1:]), int(attempt), mark or None


def new_tag() -> str:
    return f"rb-{uuid.uuid4().hex[:20]}"


@dataclass
class Round:
    """One submission of a record in a batch, and what came of it."""

    attempt: int  # the submission's number, from 1: the ``a<N>`` of its custom_id
    batch_id: str
    kind: str  # "answer" (kept for its re-ask), "error" (transient), "unexecuted"
    completion: dict[str, Any] | None = None  # the answer
    status: int | None = None  # the error's status (0: the provider gave none)
    message: str | None = None

    @property
    def reason(self) -> str:
        """Why the record goes again after this round: as the summary counts it."""
        return {"answer": "reask", "error": "transient"}.get(self.kind, "expired")

    def as_item(self, line: int) -> dict[str, Any]:
        item: dict[str, Any] = {"line": line, "attempt": self.attempt, "batch_id": self.batch_id}
        if self.kind == "answer":
            item["completion"] = self.completion  # the original shape of the file
        else:
            item["kind"] = self.kind
            if self.kind == "error":
                item.update(status=self.status, message=self.message)
        return item

    @classmethod
    def of_result(
        cls, attempt: int, batch_id: str, result: Result | None, redact: Callable[[str], str]
    ) -> Round | None:
        """What a record's submission came to (None: no result line at all)."""
        if result is None:
            return None
        if not result.executed:
            return cls(attempt, batch_id, "unexecuted")
        if result.status_code != 200 or result.body is None:
            message = redact(result.message or "no answer")
            return cls(attempt, batch_id, "error", status=result.status_code, message=message)
        return cls(attempt, batch_id, "answer", completion=result.body)

    def goes_again(self, before: list[Round], retries: int, rate_limit_retries: int) -> bool:
        """Whether this round's error sends the record into another round: a
        transient one does, within the retries a live record gets (429s have
        their own budget, as live).  ``before``: the record's earlier rounds."""
        assert self.kind == "error" and self.status is not None
        if not transient(self.status):
            return False
        limited = self.status == 429
        spent = sum(
            1
            for r in before
            if r.kind == "error" and r.status is not None and (r.status == 429) == limited
        )
        return spent < (rate_limit_retries if limited else retries)

    @classmethod
    def of_item(cls, item: dict[str, Any]) -> Round:
        kind = item.get("kind", "answer")
        return cls(
            item["attempt"],
            item["batch_id"],
            kind,
            item.get("completion"),
            item.get("status"),
            item.get("message"),
        )


@dataclass
class Entry:
    """One batch, as far as the journal knows it."""

    tag: str
    at: float  # when it was packed (the provider's list is searched from then on)
    ids: list[str]
    step: str = "intent"
    file_id: str | None = None
    batch_id: str | None = None
    status: str | None = None  # the provider's, once ended
    note: str | None = None  # why it ended without results (refused, failed)

    @property
    def at_provider(self) -> bool:
        """Created (or possibly created) and not collected yet."""
        return self.step in ("uploaded", "created")

    @property
    def pending(self) -> bool:
        return self.step == "created"


@dataclass
class Journal:
    output: Path
    entries: dict[str, Entry] = field(default_factory=dict)

    @property
    def directory(self) -> Path:
        return self.output.with_name(self.output.name + ".batches")

    @property
    def path(self) -> Path:
        return self.directory / "journal.jsonl"

    @property
    def rounds_path(self) -> Path:
        return self.directory / "rounds.jsonl"

    @property
    def _legacy_rounds_path(self) -> Path:
        """Where an earlier rolebatch kept the rounds (named "answers")."""
        return self.directory / "answers.jsonl"

    def request_file(self, tag: str) -> Path:
        return self.directory / f"{tag}.jsonl"

    # -- reading --------------------------------------------------------

    @classmethod
    def load(cls, output: Path) -> Journal:
        journal = cls(output)
        try:
            with journal.path.open("rb") as handle:
                for raw in handle:
                    if not raw.endswith(b"\n"):
                        break  # torn by a crash mid-write: that step never happened
                    journal._apply(json.loads(raw))
        except FileNotFoundError:
            pass
        except (OSError, ValueError) as exc:
            raise OutputError(f"cannot read {journal.path}: {exc}") from None
        return journal

    def _apply(self, event: dict[str, Any]) -> None:
        step, tag = event["step"], event["tag"]
        if step == "intent":
            self.entries[tag] = Entry(tag, event["at"], event["ids"])
            return
        entry = self.entries[tag]
        entry.step = step
        entry.file_id = event.get("file_id", entry.file_id)
        entry.batch_id = event.get("batch_id", entry.batch_id)
        entry.status = event.get("status", entry.status)
        entry.note = event.get("note", entry.note)

    def at_provider(self) -> list[Entry]:
        return [entry for entry in self.entries.values() if entry.at_provider]

    def busy_lines(self, size: int) -> bytearray:
        """Job lines whose request is in a batch that is not over (1), as a map."""
        busy = bytearray(size)
        for entry in self.entries.values():
            if entry.step != "ended":
                for value in entry.ids:
                    parsed = parse_custom_id(value)
                    if parsed is not None and parsed[0] < size:
                        busy[parsed[0]] = 1
        return busy

    def rounds(self) -> dict[int, list[Round]]:
        """Per job line still open, its rounds so far, oldest first.  A round
        written twice (a batch collected again after a crash) counts once."""
        kept: dict[int, dict[int, Round]] = {}
        if not self.rounds_path.exists() and self._legacy_rounds_path.exists():
            os.replace(self._legacy_rounds_path, self.rounds_path)  # an earlier version's
        try:
            with self.rounds_path.open("rb") as handle:
                for raw in handle:
                    if not raw.endswith(b"\n"):
                        break
                    item = json.loads(raw)
                    if item.get("closed"):
                        kept.pop(item["line"], None)
                        continue
                    kept.setdefault(item["line"], {})[item["attempt"]] = Round.of_item(item)
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, KeyError) as exc:
            raise OutputError(f"cannot read {self.rounds_path}: {exc}") from None
        return {line: [by[a] for a in sorted(by)] for line, by in kept.items() if by}

    # -- writing --------------------------------------------------------

    def _write(self, path: Path, mode: str, chunks: Iterable[bytes]) -> None:
        """Write ``chunks`` to ``path`` and fsync before going on."""
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            with path.open(mode) as handle:
                handle.writelines(chunks)
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as exc:
            raise OutputError(
                f"cannot write {path}: {exc.strerror or exc}; nothing further was sent"
            ) from None

    def _append(self, path: Path, items: Iterable[dict[str, Any]]) -> None:
        data = b"".join(json.dumps(item).encode() + b"\n" for item in items)
        if data:
            self._write(path, "ab", [data])

    def record(self, entry: Entry, step: str, **details: Any) -> None:
        """Journal a step (fsync'ed), then apply it."""
        event = {"step": step, "tag": entry.tag, **details}
        if step == "intent":
            event.update(at=entry.at, ids=entry.ids)
        self._append(self.path, [event])
        if step == "intent":
            self.entries[entry.tag] = entry
        else:
            self._apply(event)
        if step == "ended":
            with contextlib.suppress(OSError):
                self.request_file(entry.tag).unlink()

    def submission(self, entry: Entry) -> Submission:
        """The batch of ``entry`` as the provider's side needs to know it."""
        return Submission(
            entry.tag, entry.at, len(entry.ids), entry.file_id, self.request_file(entry.tag)
        )

    def known_batches(self) -> set[str]:
        """Every batch id the journal names."""
        return {entry.batch_id for entry in self.entries.values() if entry.batch_id}

    def new_entry(self, ids: list[str], tag: str | None = None) -> Entry:
        return Entry(tag or new_tag(), time.time(), ids)

    def keep_rounds(self, rounds: list[tuple[int, Round]]) -> None:
        """Write down (job line, round) pairs of records that go again."""
        self._append(self.rounds_path, (r.as_item(line) for line, r in rounds))

    def close_rounds(self, lines: Iterable[int]) -> None:
        """These records have their lines: their rounds are over."""
        self._append(self.rounds_path, ({"line": line, "closed": True} for line in lines))

    def write_requests(self, tag: str, lines: list[bytes]) -> Path:
        path = self.request_file(tag)
        self._write(path, "wb", lines)
        return path

    def clear(self) -> None:
        """Start over (--fresh, with nothing at the provider): the history goes."""
        import shutil

        shutil.rmtree(self.directory, ignore_errors=True)
        self.entries.clear()

    def forget_rounds(self) -> None:
        """Every record is done: the rounds kept for re-asks are history."""
        with contextlib.suppress(OSError):
            self.rounds_path.unlink()


def busy_message(entries: list[Entry]) -> str:
    ids = ", ".join(entry.batch_id or f"(being created, tag {entry.tag})" for entry in entries)
    requests = sum(len(entry.ids) for entry in entries)
    return f"{requests:,} requests in {len(entries)} batch(es) are at the provider: {ids}"
