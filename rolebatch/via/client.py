"""Asking the model about one record: instructor for validation and re-asks,
our own loop for HTTP retries, and per-record accounting of attempts and tokens.

instructor re-asks only after a validation failure; it does not retry HTTP
errors.  The openai client's own retries are switched off (``max_retries=0``)
so that every HTTP attempt is ours to count, back off and (later) pace.
instructor is handed ``_attempt`` as its ``create`` function, so one instructor
attempt is one call of ``_attempt``, which may send several HTTP requests.

What ``_attempt`` calls is a transport: anything with the shape of
``AsyncOpenAI.chat.completions.create`` and an ``aclose``.  Remote endpoints use
the openai client (``providers.openai_http``); the embedded model is
``providers.local``.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

import anyio

from ..config import RunConfig
from ..cost.cap import SpendCap
from ..cost.prices import Price
from ..errors import (
    AbortError,
    AuthError,
    BudgetReached,
    ConnectionFailure,
    EndpointError,
    RequestFailed,
    StatusError,
)
from ..pacing.backoff import MAX_RETRY_AFTER, backoff_delay, retry_after
from ..pacing.estimate import TokenEstimate
from ..pacing.limiter import Limiter, Tokens
from ..providers.registry import MODES, Endpoint
from ..providers.transport import Transport
from ..quirks.instructor import patched
from ..records.job import Record
from ..records.lines import Outcome, RecordFailure, token_counts
from ..secrets import Redactor
from ..tasks.task import Task
from .request import instructor_kwargs
from .verdict import RETRYABLE_STATUS, check_finish, classify, root

# Before anything has succeeded, this many requests in a row answered with the
# same one of these statuses and the same message end the run: the endpoint is
# answering, and says the requests themselves are wrong (a mode it does not
# take, a model it does not have, a path it does not serve).
FIRST_ANSWERS_THAT_DECIDE = 3
SAYS_THE_REQUEST_IS_WRONG = frozenset({400, 404, 405, 415, 422, 500})

# The Outcome of the record whose call is running in this task.
_current: contextvars.ContextVar[Outcome] = contextvars.ContextVar("rolebatch_outcome")
# Answers the record already got elsewhere (a batch), handed to instructor
# again before anything is sent: see ``Client.ask``.
_replay: contextvars.ContextVar[list[Any]] = contextvars.ContextVar("rolebatch_replay")


class Client:
    """One per run: owns the transport, the instructor wrapper and the breaker."""

    def __init__(
        self,
        config: RunConfig,
        endpoint: Endpoint,
        task: Task,
        transport: Transport,
        limiter: Limiter,
        price: Price | None = None,
        cap: SpendCap | None = None,
    ):
        self.config = config
        self.endpoint = endpoint
        self.price = price  # None: unknown, and no line says what it cost
        self.cap = cap
        self.task = task
        self.redact = Redactor(endpoint.api_key)
        self._transport = transport
        self.limiter = limiter
        self.estimate = TokenEstimate(config.max_tokens)
        self.concurrency = min(config.concurrency, transport.max_concurrency or config.concurrency)
        self._create = patched(self._attempt, endpoint.mode, endpoint.provider.instructor_provider)
        self._failures_in_a_row = 0
        self._ever_answered = False  # a success or a 4xx: the endpoint is up
        self._ever_succeeded = False
        self._same_answer: tuple[int, str] | None = None
        self._same_count = 0
        self._stopped: EndpointError | None = None

    async def aclose(self) -> None:
        await self._transport.aclose()

    async def ask(self, record: Record, replay: Sequence[Any] = ()) -> Outcome:
        """The outcome for one record; raises AbortError when the run must stop.

        ``replay``: completions the record already got (through a batch), given
        to instructor as the answers to its first attempts, so that what is
        sent live is the re-ask instructor builds from them.  They are not
        counted here: the caller accounts for them."""
        outcome = Outcome(cost=None if self.price is None else Decimal(0))
        token = _current.set(outcome)
        replaying = _replay.set(list(replay))
        started = time.monotonic()
        try:
            answer = await self._create(
                **instructor_kwargs(self.config, self.endpoint, self.task, record)
            )
            outcome.response = answer.model_dump(mode="json")
        except AbortError:
            raise
        except Exception as exc:
            cause = root(exc)
            if isinstance(cause, AbortError):
                raise cause from None
            outcome.error = classify(exc, self.redact, self.config.timeout)
            if outcome.error.kind == "connection" and not self._ever_answered:
                raise EndpointError(
                    f"cannot reach {self.endpoint.base_url}: {outcome.error.message}"
                    " (is the server running? check --base-url / OPENAI_BASE_URL)"
                ) from None
        finally:
            outcome.latency_s = time.monotonic() - started
            _current.reset(token)
            _replay.reset(replaying)
        return outcome

    async def _attempt(self, **kwargs: Any) -> Any:
        """One instructor attempt: the HTTP request, paced by the limiter and
        retried on transient failures.  A 429 is flow control, not a failure:
        it holds back every worker for the server's Retry-After and has its own,
        larger retry budget."""
        outcome = _current.get()
        replay = _replay.get()
        if replay:
            completion = replay.pop(0)
            check_finish(completion)
            return completion
        prompt_size = TokenEstimate.prompt_size(kwargs)

        def cost() -> Tokens:  # asked again while waiting: estimates improve meanwhile
            return Tokens(*self.estimate.split(prompt_size))

        retries = rate_limited = 0
        while True:
            if self._stopped is not None:
                raise self._stopped
            reserved = await self._reserve(cost, outcome)
            permit = await self.limiter.acquire(cost)
            if self._stopped is not None:  # decided while this one waited its turn
                self.limiter.release(permit, Tokens(), False)
                if self.cap is not None:
                    self.cap.settle(reserved, Decimal(0))
                raise self._stopped
            outcome.attempts += 1
            used: Tokens | None = None
            ok, headers = False, None
            failure: RequestFailed
            try:
                reply = await self._transport.create(**kwargs)
                completion, headers, ok = reply.completion, reply.headers, True
                used = _spent(getattr(completion, "usage", None))
            except StatusError as exc:
                # Refused requests (429) and server errors did not spend tokens.
                used = Tokens() if exc.status == 429 or exc.status >= 500 else None
                headers = exc.headers
                failure = exc
            except ConnectionFailure as exc:  # a timeout included
                failure = exc
            finally:
                self.limiter.release(permit, used, ok, headers)
                paid = self._paid(completion.usage if ok else None)
                if self.cap is not None:
                    self.cap.settle(reserved, paid)
            if ok:
                self._note_answered()
                self._ever_succeeded = True
                outcome.usage.add(completion.usage)
                if outcome.cost is not None:
                    outcome.cost += paid
                self.estimate.observe(completion.usage, prompt_size)
                check_finish(completion)
                return completion
            if isinstance(failure, StatusError):
                status = failure.status
                self._note_first_answers(failure)
                if status >= 500:
                    self._note_failure(failure)
                else:
                    self._note_answered()  # a 4xx: the endpoint is up
                if status in (401, 403):
                    raise AuthError(self._auth_message(failure)) from None
                if status == 429 and rate_limited < self.config.max_rate_limit_retries:
                    fallback = backoff_delay(
                        rate_limited, self.config.backoff_base, self.config.backoff_max
                    )
                    wait = retry_after(failure.headers)
                    self.limiter.on_rate_limited(
                        None if wait is None else min(wait, MAX_RETRY_AFTER), fallback, permit
                    )
                    rate_limited += 1
                    continue  # acquire() waits out the hold
                if status == 429 or status not in RETRYABLE_STATUS:
                    raise failure
                if retries >= self.config.max_retries:
                    raise failure
                delay = retry_after(failure.headers)
            else:
                self._note_failure(failure)
                if retries >= self.config.max_retries:
                    raise failure
                delay = None
            if delay is None:
                delay = backoff_delay(retries, self.config.backoff_base, self.config.backoff_max)
            await anyio.sleep(min(delay, MAX_RETRY_AFTER))
            retries += 1

    async def _reserve(self, cost: Callable[[], Tokens], outcome: Outcome) -> Decimal:
        """Hold the estimated cost of the next attempt under --max-cost.  The
        first attempt of a record that does not fit is not made (the record
        stays to do); a later one ends the record as kind ``budget``."""
        price = self.price
        if self.cap is None or price is None:
            return Decimal(0)

        def amount() -> Decimal:
            guess = cost()
            return price.estimate(guess.prompt, guess.completion)

        reserved = await self.cap.reserve(amount)
        if reserved is not None:
            return reserved
        if outcome.attempts == 0:
            raise BudgetReached("--max-cost reached")
        raise RecordFailure(
            "budget",
            f"--max-cost ${self.cap.limit} reached after {outcome.attempts} attempt(s); raise it"
            " and run the same command to try this record again",
        )

    def _paid(self, usage: Any) -> Decimal:
        counts = token_counts(usage)
        if counts is None or self.price is None:
            return Decimal(0)
        return self.price.cost(*counts)

    def _note_first_answers(self, failure: StatusError) -> None:
        """Before anything has succeeded, the same error for the first few
        requests ends the run with what the server said: one clear message
        instead of a file of identical error lines, or 20 retries."""
        if self._ever_succeeded:
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
        self._stopped = EndpointError(
            f"{self.endpoint.base_url} answered the first {self._same_count} requests with the"
            f" same error and none has succeeded: {status} {answer[1]}. {self._hint(answer)}"
        )
        raise self._stopped

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

    def _note_answered(self) -> None:
        self._failures_in_a_row = 0
        self._ever_answered = True

    def _note_failure(self, exc: Exception) -> None:
        """Count connection errors and 5xx in a row; enough of them end the run."""
        self._failures_in_a_row += 1
        if self._failures_in_a_row < self.config.breaker_threshold:
            return
        detail = self.redact(str(exc))
        if not self._ever_answered and not isinstance(exc, StatusError):
            raise EndpointError(
                f"cannot reach {self.endpoint.base_url}: {self._failures_in_a_row} attempts,"
                f" none answered (last: {detail}). Is the server running? Check --base-url"
                " / OPENAI_BASE_URL."
            )
        if not self._ever_succeeded:
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

    def _auth_message(self, exc: StatusError) -> str:
        env = self.endpoint.provider.key_env or "OPENAI_API_KEY"
        return (
            f"{self.endpoint.base_url} refused the API key ({exc.status}):"
            f" set {env} to a valid key for {self.endpoint.provider.name}."
            f" Server said: {self.redact(exc.message)}"
        )


def _spent(usage: Any) -> Tokens | None:
    """A completion's ``usage`` as Tokens (None: the server did not say)."""
    counts = token_counts(usage)
    return None if counts is None else Tokens(counts[0], counts[1])
