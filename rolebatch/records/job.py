"""The job file: JSONL input records, checked whole before anything is sent.

Every record has a ``query`` and may have an ``id``, a ``role`` (its text,
or a profile's object: ``records.profiles``) and ``metadata``; the run's
task says which other keys its records take (``RecordRules``: the choice
task's options, say) and what is wrong with a value.  Any other key is an
error: a typo must not silently skip a record."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, Protocol

from ..errors import InputError
from .ids import HashIndex, id_hash
from .profiles import Profile, Vet, parse_profile
from .roles import Sweep
from .shards import Shard

COMMON_KEYS = ("id", "query", "role", "metadata")
MAX_LINE_BYTES = 1_000_000
MAX_PROBLEMS = 20
# A sweep's records sent a role at a time within blocks of this many.
ROLE_BLOCK = 4096


class Record(NamedTuple):
    # A tuple: a million of them are made on every pass over a large job.
    line: int
    id: str | int
    query: str
    role: str | Profile | None
    metadata: Any
    role_id: str | None = None  # a sweep's role (records.roles)
    data: Mapping[str, Any] | None = None  # the task's own keys (RecordRules)
    role_metadata: Mapping[str, Any] | None = None  # what the roles file says of the role
    sample: int = 0  # which of a sweep's --samples asks of the pair (0 to K-1)


class RecordRules(Protocol):
    """What a task says of its records' own keys (``tasks.task.Task`` is one):
    each key, whether it is required, the problem with a value (None: fine),
    and the problem with the keys together (the key to name, and what)."""

    keys: Mapping[str, bool]

    def check(self, key: str, value: Any) -> str | None: ...

    def check_record(self, data: dict[str, Any]) -> tuple[str, str] | None: ...


@dataclass(frozen=True)
class NoKeys:
    """Records with the common keys only."""

    keys: Mapping[str, bool] = field(default_factory=dict)

    def check(self, key: str, value: Any) -> str | None:
        return None

    def check_record(self, data: dict[str, Any]) -> tuple[str, str] | None:
        return None


PLAIN = NoKeys()


def derived_id(line: int) -> str:
    """The id of a record that has none: stable as long as the line does not move."""
    return f"line-{line}"


class _Problem(Exception):
    def __init__(self, text: str):
        super().__init__(text)
        self.text = text


def _parse(raw: bytes, line: int, rules: RecordRules, vet: Vet | None = None) -> Record | None:
    """One line to a Record; None for a blank line; _Problem for anything
    wrong (``vet``: what is wrong with a role's profile for this run)."""
    if len(raw) > MAX_LINE_BYTES:
        raise _Problem(f"line is {len(raw):,} bytes, over the {MAX_LINE_BYTES:,}-byte limit")
    try:
        text = raw.decode("utf-8-sig" if line == 1 else "utf-8")
    except UnicodeDecodeError as exc:
        raise _Problem(f"not valid UTF-8 (byte {exc.start + 1} of the line)") from None
    if not text.strip():
        return None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _Problem(f"invalid JSON: {exc.msg} (column {exc.colno})") from None
    if not isinstance(data, dict):
        raise _Problem(f"expected a JSON object, got {_json_type(data)}")
    allowed = (*COMMON_KEYS, *rules.keys)
    unknown = next((key for key in data if key not in allowed), None)
    if unknown is not None:
        raise _Problem(f"field {unknown!r}: unknown key (allowed: {', '.join(allowed)})")
    query = data.get("query")
    if query is None:
        raise _Problem("field 'query': missing")
    if not isinstance(query, str):
        raise _Problem(f"field 'query': expected a string, got {_json_type(query)}")
    if not query.strip():
        raise _Problem("field 'query': empty")
    role = data.get("role")
    if isinstance(role, dict):
        role = parse_profile(role)
        if not isinstance(role, Profile):
            raise _Problem(f"field 'role.{role[0]}': {role[1]}")
        wrong = None if vet is None else vet(role)
        if wrong is not None:
            raise _Problem(f"field 'role': {wrong}")
    elif role is not None and not isinstance(role, str):
        raise _Problem(
            f"field 'role': expected a string or a profile's object, got {_json_type(role)}"
        )
    record_id = data.get("id")
    if record_id is None:
        record_id = derived_id(line)
    elif isinstance(record_id, bool) or not isinstance(record_id, (str, int)):
        raise _Problem(f"field 'id': expected a string or integer, got {_json_type(record_id)}")
    elif isinstance(record_id, str) and not record_id.strip():
        raise _Problem("field 'id': empty")
    metadata = data.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise _Problem(f"field 'metadata': expected an object, got {_json_type(metadata)}")
    own = None
    if rules.keys:
        own = {}
        for key, required in rules.keys.items():
            if key not in data:
                if required:
                    raise _Problem(f"field {key!r}: missing")
                continue
            problem = rules.check(key, data[key])
            if problem is not None:
                raise _Problem(f"field {key!r}: {problem}")
            own[key] = data[key]
        together = rules.check_record(own)
        if together is not None:
            raise _Problem(f"field {together[0]!r}: {together[1]}")
    return Record(line, record_id, query, role or None, metadata, None, own)


def _json_type(value: Any) -> str:
    names = {
        bool: "a boolean",
        int: "a number",
        float: "a number",
        str: "a string",
        list: "an array",
        dict: "an object",
        type(None): "null",
    }
    return names.get(type(value), type(value).__name__)


def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            yield number, raw.rstrip(b"\r\n")


@dataclass(frozen=True)
class JobFile:
    """A job file that passed the check; ``total`` records in it, the last on
    line ``last_line``.  ``digest`` identifies the sequence of (line, id), so an
    output known to follow it need not be checked again."""

    path: Path
    total: int
    digest: str = ""
    last_line: int = 0
    # Only this shard's records (``total``, ``digest`` and ``last_line`` are
    # theirs); None: every record.
    shard: Shard | None = None
    # Every record under every role, K times (``line`` is then its place in
    # the sweep); None: the records as they are.
    sweep: Sweep | None = None
    rules: RecordRules = PLAIN  # the task's own keys

    def records(self, by_role: bool = False) -> Iterator[Record]:
        """The records in file order; ``by_role``: a sweep's a role at a time
        within blocks of ROLE_BLOCK (the requests of one role go out close
        together, while the provider still has its prefix cached); ``line``
        still says each one's place, and the output is put in that order."""
        if not by_role or self.sweep is None or len(self.sweep.roles) < 2:
            yield from self._records()
            return
        rank = {role_id: index for index, (role_id, _) in enumerate(self.sweep.roles)}
        block: list[Record] = []
        for record in self._records():
            block.append(record)
            if len(block) == ROLE_BLOCK:
                yield from sorted(block, key=lambda r: (rank[r.role_id or ""], r.line))
                block = []
        yield from sorted(block, key=lambda r: (rank[r.role_id or ""], r.line))

    def _records(self) -> Iterator[Record]:
        shard, sweep = self.shard, self.sweep
        for number, raw in _lines(self.path):
            record = _parse(raw, number, self.rules)
            if record is None:
                continue
            if sweep is None:
                if shard is None or shard.holds(record.id):
                    yield record
                continue
            for place, name, text, role_id, sample in sweep.expand(number, record.id):
                if shard is None or shard.holds(name):
                    yield record._replace(
                        line=place,
                        id=name,
                        # None: the record's own role; "": the control, no role.
                        role=record.role if text is None else (text or None),
                        role_id=role_id or None,
                        role_metadata=sweep.metadata.get(role_id),
                        sample=sample,
                    )


def open_job(
    path: str | Path,
    max_problems: int = MAX_PROBLEMS,
    shard: Shard | None = None,
    sweep: Sweep | None = None,
    rules: RecordRules = PLAIN,
    vet: Vet | None = None,
) -> JobFile:
    """Check the whole job file; raise InputError naming every problem (up to a limit).
    With ``shard``, the JobFile holds only that shard's records, but every
    record is checked: every shard refuses the same bad file.  ``vet``: what
    is wrong with a record's profile for this run (too long for the model's
    context, say).

    Ids are checked for duplicates by hash in flat memory; only ids whose
    hashes meet are compared exactly, in a second pass over the file."""
    path = Path(path)
    if not path.exists():
        raise InputError([f"{path}: no such file"])
    if path.is_dir():
        raise InputError([f"{path}: is a directory, not a JSONL file"])
    problems: list[tuple[int, str]] = []
    more = 0
    seen = HashIndex(values=False)
    suspects: set[int] = set()  # hashes met twice: a duplicate id, or two ids alike
    total = last_line = 0
    digest = hashlib.sha256()
    try:
        for number, raw in _lines(path):
            try:
                record = _parse(raw, number, rules, vet)
            except _Problem as problem:
                if len(problems) < max_problems:
                    problems.append((number, f"{path}:{number}: {problem.text}"))
                else:
                    more += 1
                continue
            if record is None:
                continue
            key = id_hash(record.id)
            if seen.add(key) is not None:
                suspects.add(key)
            if sweep is not None and record.role is not None and sweep.roles[0][1] is not None:
                if len(problems) < max_problems:
                    problems.append(
                        (
                            number,
                            f"{path}:{number}: field 'role': a record of a sweep takes its"
                            " roles from --roles; remove its own role, or run without --roles",
                        )
                    )
                else:
                    more += 1
                continue
            if sweep is None:
                pairs = [(number, record.id)]
            else:
                pairs = [(pair[0], pair[1]) for pair in sweep.expand(number, record.id)]
            for place, name in pairs:
                if shard is not None and not shard.holds(name):
                    continue
                total += 1
                last_line = place
                digest.update(f"{place} {name!r}\n".encode())
        if suspects:
            duplicates = _duplicates(path, suspects, rules)
            total -= sum(1 for d in duplicates if shard is None or shard.holds(d[2]))
            for number, text, _ in duplicates:
                if len(problems) < max_problems:
                    problems.append((number, text))
                else:
                    more += 1
    except OSError as exc:
        raise InputError([f"{path}: cannot read: {exc.strerror}"]) from None
    if problems:
        problems.sort()
        raise InputError([text for _, text in problems], more)
    if sweep is not None:
        last_line = max(last_line, 0)
    return JobFile(path, total, digest.hexdigest(), last_line, shard, sweep, rules)


def _duplicates(
    path: Path, suspects: set[int], rules: RecordRules
) -> list[tuple[int, str, str | int]]:
    """The lines whose id really is an earlier line's, among ids with ``suspects`` hashes."""
    first: dict[str | int, int] = {}
    found = []
    for number, raw in _lines(path):
        try:
            record = _parse(raw, number, rules)
        except _Problem:
            continue
        if record is None or id_hash(record.id) not in suspects:
            continue
        earlier = first.setdefault(record.id, number)
        if earlier != number:
            found.append(
                (
                    number,
                    f"{path}:{number}: field 'id': duplicate id {record.id!r}"
                    f" (first on line {earlier})",
                    record.id,
                )
            )
    return found
