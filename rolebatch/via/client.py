"""Asking the model about one record: instructor for validation and re-asks,
our own loop for HTTP retries, and per-record accounting of attempts and tokens.

instructor re-asks only after a validation failure; it does not retry HTTP
errors.  The SDKs' own retries are switched off so that every HTTP attempt is
ours to count, back off and pace.  instructor is handed ``_attempt`` as its
``create`` function, so one instructor attempt is one call of ``_attempt``,
which may send several HTTP requests: paced by the limiter
(``pacing.limiter``), reserved under --max-cost (``cost.cap``), and noted by
the breaker (``breaker``), which stops the run when the endpoint, not the
records, is at fault.

What ``_attempt`` calls is the provider's transport (``providers.transport``).
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
    ConnectionFailure,
    RequestFailed,
    StatusError,
    TimedOut,
)
from ..pacing.backoff import MAX_RETRY_AFTER, backoff_delay, retry_after
from ..pacing.estimate import TokenEstimate
from ..pacing.limiter import Limiter, Tokens
from ..providers.registry import Endpoint
from ..providers.transport import Transport
from ..quirks.instructor import patched
from ..records.job import Record
from ..records.lines import Outcome, token_counts
from ..redaction import Redactor
from ..tasks.task import Task
from .breaker import Breaker
from .request import instructor_kwargs
from .verdict import RETRYABLE_STATUS, check_finish, classify, repair, root

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
        self.estimate = TokenEstimate(config.asked.max_tokens)
        self.concurrency = min(
            config.paced.concurrency, transport.max_concurrency or config.paced.concurrency
        )
        self._create = patched(self._attempt, endpoint.mode, endpoint.provider.instructor_provider)
        self.breaker = Breaker(endpoint, config.bought.breaker_threshold, self.redact)
        # Requests sent, written or not: a record whose request stopped the
        # run (the breaker, a 401) has no line, but its request was sent.
        self.sent = 0

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
            outcome.error = classify(exc, self.redact, self.config.bought.timeout)
            if outcome.error.kind == "connection":
                stop = self.breaker.unreachable(outcome.error.message)
                if stop is not None:
                    raise stop from None
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
            outcome.repaired = repair(completion)
            return completion
        prompt_size = TokenEstimate.prompt_size(kwargs)

        def cost() -> Tokens:  # asked again while waiting: estimates improve meanwhile
            return Tokens(*self.estimate.split(prompt_size))

        retries = rate_limited = 0
        while True:
            if self.breaker.stopped is not None:
                raise self.breaker.stopped
            reserved = await self._reserve(cost, outcome)
            permit = await self.limiter.acquire(cost)
            if self.breaker.stopped is not None:  # decided while this one waited its turn
                self.limiter.release(permit, Tokens(), False)
                if self.cap is not None:
                    self.cap.settle(reserved, Decimal(0))
                raise self.breaker.stopped
            outcome.attempts += 1
            self.sent += 1
            used: Tokens | None = None
            ok, headers = False, None
            failure: RequestFailed
            sent = time.monotonic()
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
                if isinstance(exc, TimedOut):
                    self.limiter.on_timeout(permit)
            finally:
                self.limiter.release(permit, used, ok, headers, time.monotonic() - sent)
                paid = self._paid(completion.usage if ok else None)
                if self.cap is not None:
                    self.cap.settle(reserved, paid)
            if ok:
                self.breaker.succeeded()
                outcome.usage.add(completion.usage)
                if outcome.cost is not None:
                    outcome.cost += paid
                self.estimate.observe(completion.usage, prompt_size)
                check_finish(completion)
                outcome.repaired = repair(completion)
                return completion
            if isinstance(failure, StatusError):
                status = failure.status
                self.breaker.first_answers(failure)
                if status >= 500:
                    self.breaker.failed(failure)
                else:
                    self.breaker.answered()  # a 4xx: the endpoint is up
                if status in (401, 403):
                    raise AuthError(self._auth_message(failure)) from None
                if status == 429 and rate_limited < self.config.bought.max_rate_limit_retries:
                    fallback = backoff_delay(
                        rate_limited,
                        self.config.bought.backoff_base,
                        self.config.bought.backoff_max,
                    )
                    wait = retry_after(failure.headers)
                    self.limiter.on_rate_limited(
                        None if wait is None else min(wait, MAX_RETRY_AFTER), fallback, permit
                    )
                    rate_limited += 1
                    continue  # acquire() waits out the hold
                if status == 429 or status not in RETRYABLE_STATUS:
                    raise failure
                if retries >= self.config.bought.max_retries:
                    raise failure
                delay = retry_after(failure.headers)
            else:
                self.breaker.failed(failure)
                if retries >= self.config.bought.max_retries:
                    raise failure
                delay = None
            if delay is None:
                delay = backoff_delay(
                    retries, self.config.bought.backoff_base, self.config.bought.backoff_max
                )
            await anyio.sleep(min(delay, MAX_RETRY_AFTER))
            retries += 1

    async def _reserve(self, cost: Callable[[], Tokens], outcome: Outcome) -> Decimal:
        """Hold the estimated cost of the next attempt under --max-cost (``cost.cap``)."""
        price = self.price
        if self.cap is None or price is None:
            return Decimal(0)

        def amount() -> Decimal:
            guess = cost()
            return price.estimate(guess.prompt, guess.completion)

        return await self.cap.hold(amount, outcome.attempts)

    def _paid(self, usage: Any) -> Decimal:
        counts = token_counts(usage)
        if counts is None or self.price is None:
            return Decimal(0)
        return self.price.cost(*counts)

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
