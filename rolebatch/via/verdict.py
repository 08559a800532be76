"""What an answer, or the failure to get one, means for a record: a parsed
object, a re-ask, or an error of a documented kind.

Live and batch runs judge answers the same way: through instructor, for the
mode.  Live, instructor calls our ``create`` and we hand it each completion as
it arrives.  A batch answer comes back hours later, so ``replay`` replays it:
instructor is called as for a live record, with a ``create`` that hands back
the answers the record got so far, in order, and captures the request
instructor would send next (a re-ask) instead of sending it.  Validation, the
re-ask messages and the counting of attempts are therefore instructor's own,
for every mode.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from instructor.core import IncompleteOutputException, InstructorRetryException
from pydantic import ValidationError

from ..errors import ConnectionFailure, StatusError, TimedOut
from ..providers.registry import Endpoint
from ..quirks.instructor import patched
from ..records.lines import ErrorInfo, RecordFailure
from ..redaction import Redactor


class Truncated(Exception):
    pass


class Refused(Exception):
    pass


def check_finish(completion: Any) -> None:
    """Raise for an answer cut off at max_tokens, or refused."""
    stop_reason = getattr(completion, "stop_reason", None)  # Anthropic's Messages
    if stop_reason == "max_tokens":
        raise Truncated()
    if stop_reason == "refusal":
        raise Refused("the model refused")
    choices = getattr(completion, "choices", None) or []
    if not choices:
        return
    choice = choices[0]
    if choice.finish_reason == "length":
        raise Truncated()
    refusal = getattr(choice.message, "refusal", None)
    if refusal:
        raise Refused(f"the model refused: {refusal}")
    if choice.finish_reason == "content_filter":
        raise Refused("the provider's content filter stopped the answer")


_CONTROL = re.compile(r"[\x00-\x1f]")
# What ``repair`` may mend, as an ok line's "repaired" says it.
RAW_CONTROL_CHARACTERS = "json_control_characters"


def repair(completion: Any) -> list[str]:
    """Mend, in place, an answer whose JSON is whole but for raw control
    characters inside its strings (llama.cpp's servers put a bare newline in
    a poem's string): it is re-spelled with them escaped, so that it
    validates as the answer it is instead of being asked again.  Says what
    it mended ([] when nothing)."""
    mended = False
    for holder, name in _json_texts(completion):
        text = getattr(holder, name, None)
        if isinstance(text, str) and _CONTROL.search(text):
            loosened = _loosened(text)
            if loosened is not None:
                setattr(holder, name, loosened)
                mended = True
    return [RAW_CONTROL_CHARACTERS] if mended else []


def _json_texts(completion: Any) -> list[tuple[Any, str]]:
    """Where an answer's JSON text is: (object, attribute) pairs."""
    found: list[tuple[Any, str]] = []
    for choice in getattr(completion, "choices", None) or []:  # Chat Completions
        message = getattr(choice, "message", None)
        if message is None:
            continue
        found.append((message, "content"))
        for call in getattr(message, "tool_calls", None) or []:
            if getattr(call, "function", None) is not None:
                found.append((call.function, "arguments"))
    for block in getattr(completion, "content", None) or []:  # Anthropic's Messages
        if getattr(block, "type", None) == "text":
            found.append((block, "text"))
    return found


def _loosened(text: str) -> str | None:
    """``text`` re-spelled as strict JSON, when it is JSON only with control
    characters allowed in strings; None otherwise (valid, or not JSON)."""
    try:
        json.loads(text)
        return None
    except ValueError:
        pass
    try:
        value = json.loads(text, strict=False)
    except ValueError:
        return None
    return json.dumps(value, ensure_ascii=False)


def root(exc: BaseException) -> BaseException:
    """instructor wraps whatever the create function raised; find what really happened."""
    seen = set()
    while isinstance(exc, InstructorRetryException) and exc.__cause__ and id(exc) not in seen:
        seen.add(id(exc))
        exc = exc.__cause__
    return exc


# Statuses worth asking again: the request may well succeed next time.
RETRYABLE_STATUS = frozenset({408, 409, 429}) | frozenset(range(500, 600))


def transient(status: int) -> bool:
    """Whether an answer with this status (0: none was given) is worth another try."""
    return status == 0 or status in RETRYABLE_STATUS


def kind_of_status(status: int) -> str:
    if status == 429:
        return "rate_limit"
    if status == 408:
        return "timeout"
    if status >= 500 or status == 409 or status == 0:
        return "server"
    return "bad_request"


def classify(exc: BaseException, redact: Redactor, timeout: float) -> ErrorInfo:
    """The error line for a record whose asking ended in ``exc``."""
    cause = root(exc)
    if isinstance(exc, IncompleteOutputException) or isinstance(cause, Truncated):
        return ErrorInfo(
            "truncated",
            "the answer was cut off at max_tokens (finish_reason 'length'); raise --max-tokens",
        )
    if isinstance(cause, RecordFailure):
        return ErrorInfo(cause.kind, redact(str(cause)))
    if isinstance(cause, Refused):
        return ErrorInfo("refusal", redact(str(cause)))
    if isinstance(cause, StatusError):
        return ErrorInfo(kind_of_status(cause.status), redact(cause.message), cause.status)
    if isinstance(cause, TimedOut):
        return ErrorInfo("timeout", f"no answer within {timeout:g}s")
    if isinstance(cause, ConnectionFailure):
        return ErrorInfo("connection", redact(str(cause)))
    if isinstance(cause, ValidationError | json.JSONDecodeError) or (
        isinstance(exc, InstructorRetryException) and exc.failed_attempts
    ):
        attempts = getattr(exc, "n_attempts", None)
        return ErrorInfo(
            "validation",
            redact(f"no valid answer after {attempts or '?'} attempt(s): {_what_failed(cause)}"),
        )
    return ErrorInfo("internal", redact(f"{type(cause).__name__}: {cause}"))


def _what_failed(cause: BaseException, most: int = 3) -> str:
    """Each field and its problem ("poem: Field required"), the first few."""
    if isinstance(cause, ValidationError):
        errors = cause.errors()
        parts = []
        for error in errors[:most]:
            where = ".".join(str(part) for part in error.get("loc", ())) or "the answer"
            parts.append(f"{where}: {error.get('msg', 'invalid')}")
        more = f"; and {len(errors) - most} more" if len(errors) > most else ""
        return "; ".join(parts)[:300] + more
    text = str(cause).splitlines()[0] if str(cause) else type(cause).__name__
    return text[:300]


@dataclass
class Verdict:
    """One of: the parsed answer, the request to send next (the first, or a
    re-ask), or the error."""

    response: dict[str, Any] | None = None
    request: dict[str, Any] | None = None
    error: ErrorInfo | None = None
    repaired: list[str] = field(default_factory=list)  # what ``repair`` mended


class _Captured(Exception):
    pass


def replay(
    kwargs: dict[str, Any],
    answers: list[Any],
    endpoint: Endpoint,
    redact: Redactor,
    *,
    max_reasks: int,
) -> Verdict:
    """The verdict on a record asked with instructor ``kwargs`` whose answers
    so far are ``answers`` (completions, oldest first).  With no answers, the
    verdict is the first request to send."""
    calls = 0
    captured: dict[str, Any] = {}
    repaired: list[str] = []

    def answer(**sent: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls > len(answers):
            captured.update(sent)
            raise _Captured
        completion = answers[calls - 1]
        check_finish(completion)
        repaired[:] = repair(completion)
        return completion

    create = patched(answer, endpoint.mode, endpoint.provider.instructor_provider)
    # One call more than there are answers, while re-asks are left, so that
    # the request instructor would send next is built and captured.
    allowed = min(len(answers), max_reasks) if answers else 0
    try:
        parsed = create(**{**kwargs, "max_retries": allowed})
    except Exception as exc:
        if captured:
            return Verdict(request=dict(captured))
        return Verdict(error=classify(exc, redact, 0))
    return Verdict(response=parsed.model_dump(mode="json"), repaired=repaired)
