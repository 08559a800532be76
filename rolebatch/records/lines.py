"""What became of one record, the output line that says so, and reading
those lines back."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, BinaryIO

from ..errors import UsageError
from .job import Record
from .profiles import as_json

# The documented error kinds; the README (Output) lists them.
ERROR_KINDS = (
    "rate_limit",  # 429 after all retries
    "server",  # 5xx / 409 after all retries
    "timeout",  # request timed out (or 408) after all retries
    "connection",  # could not connect after all retries
    "validation",  # the answer never validated, re-asks included
    "bad_request",  # 400/404/413/422: the request itself was refused
    "refusal",  # the model refused to answer
    "truncated",  # cut off by max_tokens (finish_reason "length")
    "budget",  # --max-cost was reached before the record's next attempt
    "internal",  # a bug in rolebatch or a library: the message says what
)


class RecordFailure(Exception):
    """Raised by a transport for a failure of one record, of the given kind."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


def token_counts(usage: Any) -> tuple[int, int, int, int] | None:
    """(prompt, completion, prompt read from the provider's cache, prompt
    written to it) tokens of an answer's ``usage``, in either protocol's
    words; None when the answer did not say.  Reads and writes are part of
    the prompt.

    OpenAI: prompt_tokens, completion_tokens, prompt_tokens_details.cached_tokens
    (its cache is written at no charge: none counted).  Anthropic: input_tokens
    (which leaves out what was read from or written to its cache: added back
    here), output_tokens, cache_read_input_tokens, cache_creation_input_tokens."""
    if usage is None:
        return None
    prompt = getattr(usage, "prompt_tokens", None)
    completion = getattr(usage, "completion_tokens", None)
    if prompt is not None or completion is not None:
        details = getattr(usage, "prompt_tokens_details", None)
        return prompt or 0, completion or 0, getattr(details, "cached_tokens", None) or 0, 0
    given = getattr(usage, "input_tokens", None)
    output = getattr(usage, "output_tokens", None)
    if given is None and output is None:
        return None
    read = getattr(usage, "cache_read_input_tokens", None) or 0
    written = getattr(usage, "cache_creation_input_tokens", None) or 0
    return (given or 0) + read + written, output or 0, read, written


@dataclass(slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cached_tokens: int = 0  # read from the provider's prompt cache
    cache_write_tokens: int = 0  # written to it (Anthropic bills them apart)
    seen: bool = False

    @classmethod
    def of(cls, counts: Mapping[str, int] | None) -> Usage:
        """A line's ``usage`` (``as_dict``) read back."""
        if not counts:
            return cls()
        return cls(
            counts.get("prompt_tokens", 0),
            counts.get("completion_tokens", 0),
            counts.get("total_tokens", 0),
            counts.get("cached_tokens", 0),
            counts.get("cache_write_tokens", 0),
            True,
        )

    def add(self, usage: Any) -> None:
        counts = token_counts(usage)
        if counts is None:
            return
        prompt, completion, cached, written = counts
        self.seen = True
        self.prompt_tokens += prompt
        self.completion_tokens += completion
        self.total_tokens += getattr(usage, "total_tokens", None) or prompt + completion
        self.cached_tokens += cached
        self.cache_write_tokens += written

    def as_dict(self) -> dict[str, int] | None:
        if not self.seen:
            return None
        counts = {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
        }
        if self.cached_tokens:
            counts["cached_tokens"] = self.cached_tokens
        if self.cache_write_tokens:
            counts["cache_write_tokens"] = self.cache_write_tokens
        return counts


@dataclass(slots=True)
class ErrorInfo:
    kind: str
    message: str
    status_code: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "message": self.message, "status_code": self.status_code}


@dataclass(slots=True)
class Outcome:
    response: dict[str, Any] | None = None
    error: ErrorInfo | None = None
    attempts: int = 0
    usage: Usage = field(default_factory=Usage)
    latency_s: float = 0.0
    # Dollars, every attempt included; None when the price is not known.
    cost: Decimal | None = None
    # What was mended in the answer that validated (``via.verdict.repair``).
    repaired: list[str] = field(default_factory=list)
    # Served from the response cache (``via.cached``): nothing was bought; its
    # usage is the original's, and ``saved`` what it would have cost now.
    cached: bool = False
    saved: Decimal | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def output_line(
    record: Record,
    outcome: Outcome,
    model: str,
    extra: Mapping[str, Any] | None = None,
    batch_id: str | None = None,
) -> str:
    """The output contract, one JSON line, keys in the documented order.
    ``extra``: what of the record its task repeats (after ``metadata``);
    ``batch_id``: the provider's batch that answered (batch runs only)."""
    line = {
        "id": record.id,
        "line": record.line,
        "status": "ok" if outcome.ok else "error",
        "response": outcome.response,
        "error": outcome.error.as_dict() if outcome.error else None,
        "role": as_json(record.role),
        **({"role_id": record.role_id} if record.role_id else {}),
        **({"role_metadata": record.role_metadata} if record.role_metadata else {}),
        "query": record.query,
        "model": model,
        "attempts": outcome.attempts,
        "usage": outcome.usage.as_dict(),
        "latency_s": round(outcome.latency_s, 3),
        "metadata": record.metadata,
        **(extra or {}),
        **({"batch_id": batch_id} if batch_id else {}),
        **({"repaired": outcome.repaired} if outcome.ok and outcome.repaired else {}),
        **({"cached": True} if outcome.cached else {}),
        # Last, so that it can be read back from the end of the line without
        # parsing the rest (see records.output).
        "cost_usd": None if outcome.cost is None else float(round(outcome.cost, 10)),
    }
    return json.dumps(line, ensure_ascii=False) + "\n"


# Our own lines start with the id, line and status keys, in that order, and
# usage keeps its two counts first: read without parsing the whole line.
LINE_HEAD = re.compile(
    rb'^\{"id": ("(?:[^"\\]|\\.)*"|-?\d+), "line": (\d+), "status": "(ok|error)"'
)
LINE_USAGE = re.compile(rb'"usage": \{"prompt_tokens": (\d+), "completion_tokens": (\d+)')
_LINE_FIELD = re.compile(rb'^(\{"id": (?:"(?:[^"\\]|\\.)*"|-?\d+), "line": )(\d+)')

_COST_KEY = b', "cost_usd": '


def line_cost(raw: bytes) -> Decimal:
    """The ``cost_usd`` of one of our lines, read from its end, in dollars to
    add up (0 where the price was not known: null, or no cost at all)."""
    start = raw.rfind(_COST_KEY)
    if start < 0:
        return Decimal(0)
    value = raw[start + len(_COST_KEY) : raw.rfind(b"}")]
    try:
        cost = float(value)
    except ValueError:
        return Decimal(0)  # null: the price was not known
    return Decimal(repr(cost)) if cost else Decimal(0)


def output_lines(handle: BinaryIO) -> Iterator[tuple[int, int, bytes]]:
    """(line number, byte offset, bytes) of every line of an output that holds
    something, in file order: how a resumed run, report, merge and judge all
    read one.  Blank lines are passed over.  The last line may lack its
    newline: torn (a run still writing it, or killed mid-line); the caller
    tells it by ``raw.endswith(b"\\n")`` and reads no further."""
    offset = 0
    for number, raw in enumerate(handle, start=1):
        start, offset = offset, offset + len(raw)
        if raw.strip():
            yield number, start, raw


def read_output(path: Path) -> Iterator[tuple[int, int, dict[str, Any]]]:
    """(line number, byte offset, line) of every whole line of an output, in file order.
    Blank lines and a torn last line are passed over (``output_lines``);
    anything else that is not an output line is a UsageError naming the file
    and line."""
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror or exc}") from None
    with handle:
        for number, start, raw in output_lines(handle):
            try:
                line = json.loads(raw)
            except ValueError:
                if raw.endswith(b"\n"):
                    raise UsageError(f"{path}:{number}: not a JSON line") from None
                break  # a torn last line (no prefix of an object is one)
            if not isinstance(line, dict) or "status" not in line:
                raise UsageError(f"{path}:{number}: not a rolebatch output line")
            yield number, start, line


def with_line(raw: bytes, line: int) -> bytes:
    """The result line saying it is on ``line`` of the job."""
    match = _LINE_FIELD.match(raw)
    if match is not None:
        if int(match.group(2)) == line:
            return raw
        return match.group(1) + str(line).encode() + raw[match.end() :]
    data = json.loads(raw)
    data["line"] = line
    return (json.dumps(data, ensure_ascii=False) + "\n").encode()


def parse_head(raw: bytes) -> tuple[Any, int, bool] | None:
    """(id, line, ok) of one of our lines, or None if it is not a whole line of ours."""
    if not raw.endswith(b"\n"):
        return None
    match = LINE_HEAD.match(raw)
    if match is not None:
        return token_id(match.group(1)), int(match.group(2)), match.group(3) == b"ok"
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    if (
        not isinstance(data, dict)
        or "id" not in data
        or data.get("status") not in ("ok", "error")
        or not isinstance(data.get("line"), int)
    ):
        return None
    return data["id"], data["line"], data["status"] == "ok"


def token_id(token: bytes) -> Any:
    if token.startswith(b'"') and b"\\" not in token:
        return token[1:-1].decode()
    return json.loads(token)
