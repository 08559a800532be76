"""When the endpoint, not the records, is at fault: the run stops with one
clear message instead of a file of identical error lines.

- Before anything has succeeded, the same error for the first few requests
  (400, 404, 405, 415, 422 or 500, with the same message) ends the run with
  what the server said and what to check (a mode it does not take, a model
  it does not have, a path it does not serve).
- Connection errors and 5xx in a row, with no success between, end it after
  ``RunConfig.breaker_threshold`` (20; a library setting, not an option); a
  connection error before the endpoint has ever answered ends it at once:
  nothing is there.
"""

from __future__ import annotations

from ..errors import EndpointError, RequestFailed, StatusError
from ..providers.registry import MODES, Endpoint
from ..redaction import Redactor

# Before anything has succeeded, this many requests in a row answered with the
# same one of these statuses and the same message end the run: the endpoint is
# answering, and says the requests themselves are wrong.
FIRST_ANSWERS_THAT_DECIDE = 3
SAYS_THE_REQUEST_IS_WRONG = frozenset({400, 404, 405, 415, 422, 500})


class Breaker:
    """One per run; every attempt's result is noted here."""

    def __init__(self, endpoint: Endpoint, threshold: int, redact: Redactor):
        self.endpoint = endpoint
        self.threshold = threshold
        self.redact = redact
        self.ever_answered = False  # a success or a 4xx: the endpoint is up
        self.ever_succeeded = False
        self.stopped: EndpointError | None = None  # once decided, every attempt stops
        self._failures_in_a_row = 0
        self._same_answer: tuple[int, str] | None = None
        self._same_count = 0

    def succeeded(self) -> None:
        self.answered()
        self.ever_succeeded = True

    def answered(self) -> None:
        self._failures_in_a_row = 0
        self.ever_answered = True

    def first_answers(self, failure: StatusError) -> None:
        """Before anything has succeeded, the same error for the first few
        requests ends the run with what the server said: one clear message
        instead of a file of identical error lines, or 20 retries."""
        if self.ever_succeeded:
            return
        status = failure.status
        answer = (status, self.redact(failure.message))
        if status not in SAYS_THE_REQUEST_IS_WRONG or answer != self._same_answer:
            self._same_answer, self._same_count = answer, 0
        if status not in SAYS_THE_REQUEST_IS_WRONG:
            return
        self._same_count += 1
        if self._same_count < FIRST_ANSWERS_THAT_DECIDE:
            return
        self.stopped = EndpointError(
            f"{self.endpoint.base_url} answered {self._same_count} requests in a row with the"
            f" same error and none has succeeded: {status} {answer[1]}. {self._hint(answer)}"
        )
        raise self.stopped

    def failed(self, exc: RequestFailed) -> None:
        """Count connection errors and 5xx in a row; enough of them end the run."""
        self._failures_in_a_row += 1
        if self._failures_in_a_row < self.threshold:
            return
        detail = self.redact(str(exc))
        if not self.ever_answered and not isinstance(exc, StatusError):
            raise EndpointError(
                f"cannot reach {self.endpoint.base_url}: {self._failures_in_a_row} attempts,"
                f" none answered (last: {detail}). Is the server running? Check --base-url"
                " / OPENAI_BASE_URL."
            )
        if not self.ever_succeeded:
            raise EndpointError(
                f"{self._failures_in_a_row} requests in a row to {self.endpoint.base_url}"
                f" failed and none has succeeded yet (last: {detail}); stopping instead of"
                " failing every record. Re-run the same command once the endpoint is healthy."
            )
        raise EndpointError(
            f"{self._failures_in_a_row} requests in a row to {self.endpoint.base_url} failed"
            f" with connection errors or 5xx (last: {detail}); stopping instead of failing"
            " every record. Re-run the same command once the endpoint is healthy."
        )

    def unreachable(self, message: str) -> EndpointError | None:
        """A record that failed to connect, before the endpoint ever answered:
        nothing is there, so the run stops (None: it has answered before)."""
        if self.ever_answered:
            return None
        return EndpointError(
            f"cannot reach {self.endpoint.base_url}: {message}"
            " (is the server running? check --base-url / OPENAI_BASE_URL)"
        )

    def _hint(self, answer: tuple[int, str]) -> str:
        status, message = answer
        text = message.lower()
        mode = self.endpoint.mode
        if any(word in text for word in ("response_format", "json_schema", "tool", "function")):
            allowed = self.endpoint.provider.modes or MODES
            others = [m for m in ("json", "md_json", "tools") if m != mode and m in allowed]
            rest = f" (or {', '.join(others[1:])})" if others[1:] else ""
            return f"The server does not seem to take --mode {mode}: try --mode {others[0]}{rest}."
        if "model" in text:
            return (
                f"Check the model name: --model {self.endpoint.label} sends"
                f" {self.endpoint.model!r}."
            )
        if status in (404, 405):
            return (
                f"Check --base-url: {self.endpoint.base_url} does not serve this API"
                " (OpenAI-compatible servers usually end in /v1)."
            )
        return "Check --model, --mode and --base-url."
