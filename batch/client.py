"""Asking the model about one record: instructor for validation and re-asks,
our own loop for HTTP retries, and per-record accounting of attempts and tokens.

instructor re-asks only after a validation failure; it does not retry HTTP
errors.  The openai client's own retries are switched off (``max_retries=0``)
so that every HTTP attempt is ours to count, back off and (later) pace.
instructor is handed ``_attempt`` as its ``create`` function, so one instructor
attempt is one call of ``_attempt``, which may send several HTTP requests.

What ``_attempt`` calls is a transport: anything with the shape of
``AsyncOpenAI.chat.completions.create`` and an ``aclose``.  Remote endpoints use
the openai client (``HTTPTransport``); the embedded model is ``local.LocalModel``.
"""

from __future__ import annotations

import contextvars
import email.utils
import functools
import json
import logging
import random
import time
import weakref
from collections.abc import Callable
from typing import Any, Protocol

import aiohttp
import anyio
import httpx2 as httpx
import instructor
import openai
import sniffio
from instructor.core import IncompleteOutputException, InstructorRetryException
from openai.types.chat import ChatCompletion
from pydantic import BaseModel, ValidationError

from .config import RunConfig
from .errors import AbortError, AuthError, EndpointError, UsageError
from .limiter import Limiter, TokenEstimate
from .outcome import ErrorInfo, Outcome, RecordFailure
from .prompt import build_messages
from .provider import Endpoint
from .records import Record
from .secrets import Redactor

# instructor logs every failed API call at ERROR level; with no handler set up,
# Python would print each one to stderr.  Our summary reports them instead.
logging.getLogger("instructor").addHandler(logging.NullHandler())


try:  # instructor 1.17's layout; with another, the two helpers below do nothing
    from instructor.v2.core import patch as _instructor_patch
    from instructor.v2.validation import async_validators as _async_validators
except ImportError:  # pragma: no cover
    _instructor_patch = _async_validators = None  # type: ignore[assignment]


def _remember_checked_models() -> None:
    """instructor 1.17 checks the response model for async validators six times
    per call, each time walking every attribute of every class in its MRO
    (~80 µs); at a few hundred requests a second that is a tenth of our CPU.
    The answer depends only on the class, so a class that passed is not walked
    again.  A class that fails is checked, and refused, every time."""
    if _async_validators is None:
        return
    check = _async_validators.reject_async_validators
    if getattr(check, "remembers", False):
        return
    passed: weakref.WeakSet[type] = weakref.WeakSet()

    @functools.wraps(check)
    def remembered(model: Any) -> None:
        if isinstance(model, type) and model in passed:
            return
        check(model)
        if isinstance(model, type):
            passed.add(model)

    remembered.remembers = True  # type: ignore[attr-defined]
    _async_validators.reject_async_validators = remembered
    if getattr(_instructor_patch, "reject_async_validators", None) is check:
        _instructor_patch.reject_async_validators = remembered


_remember_checked_models()


def check_response_model(model: type[BaseModel], name: str) -> None:
    """Refuse, before anything is sent, a model instructor would refuse on every call."""
    if _async_validators is None:
        return
    try:
        _async_validators.reject_async_validators(model)
    except ValueError as exc:
        raise UsageError(f"--schema {name}: {exc}") from None


RETRYABLE_STATUS = frozenset({408, 409, 429}) | frozenset(range(500, 600))
MAX_RETRY_AFTER = 120.0

# The Outcome of the record whose call is running in this task.
_current: contextvars.ContextVar[Outcome] = contextvars.ContextVar("rolebatch_outcome")


class _Truncated(Exception):
    pass


class _Refused(Exception):
    pass


def retry_after(headers: Any) -> float | None:
    """Seconds the server asked us to wait (``retry-after-ms`` or ``retry-after``)."""
    if headers is None:
        return None
    value = headers.get("retry-after-ms")
    if value:
        try:
            return max(0.0, float(value) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        when = email.utils.parsedate_to_datetime(value) if value else None
        if when is None:
            return None
        return max(0.0, when.timestamp() - time.time())


def backoff_delay(
    retry: int, base: float, cap: float, rand: Callable[[], float] = random.random
) -> float:
    """Exponential backoff with jitter: between half and all of ``base * 2**retry``."""
    ceiling = min(cap, base * (2**retry))
    return ceiling * (0.5 + rand() / 2)


class Transport(Protocol):
    max_concurrency: int | None

    async def create(self, **kwargs: Any) -> Any: ...

    async def aclose(self) -> None: ...


class HTTPTransport:
    """An OpenAI-compatible endpoint over HTTP, with the client's own retries off.

    Under asyncio the openai client sends through aiohttp: it costs about a
    third less CPU per request than httpx's own connection pool, and at high
    concurrency that CPU is what bounds throughput.  aiohttp runs only on
    asyncio, so under trio the client keeps httpx's transport.
    """

    max_concurrency = None

    def __init__(self, endpoint: Endpoint, timeout: float, limiter: Limiter, connections: int):
        async def learn(response: Any) -> None:
            # Every response, 429s included, tells the limiter what budget is left.
            limiter.on_headers(response.headers)

        on_asyncio = sniffio.current_async_library() == "asyncio"
        http_client = (
            openai.DefaultAioHttpClient if on_asyncio else openai.DefaultAsyncHttpxClient
        )(
            event_hooks={"response": [learn]},
            # One connection per worker, kept alive between its requests.
            limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
        )
        self._openai = openai.AsyncOpenAI(
            api_key=endpoint.api_key,
            base_url=endpoint.base_url,
            max_retries=0,
            timeout=timeout,
            http_client=http_client,
        )

    async def create(self, **body: Any) -> ChatCompletion:
        # The SDK's custom-request path: the body goes out as instructor built
        # it, skipping the typed-params transform that costs ~12% of our CPU.
        try:
            response = await self._openai.post(
                "/chat/completions", body=body, cast_to=httpx.Response
            )
        except openai.APITimeoutError as exc:
            if _timed_out(exc):
                raise
            # aiohttp's adapter reports every connection error as a timeout,
            # a refused connection included; say what it really was.
            raise openai.APIConnectionError(request=exc.request) from exc.__cause__
        return _parse_completion(response)

    async def aclose(self) -> None:
        await self._openai.close()


def _timed_out(exc: BaseException) -> bool:
    """Whether an APITimeoutError is a timeout: below it, aiohttp's own error says."""
    link = exc.__cause__
    while link is not None:
        if isinstance(link, aiohttp.ClientError):
            return isinstance(link, TimeoutError)
        link = link.__cause__ or link.__context__
    return True  # httpx's own transport tells timeouts apart correctly


def _parse_completion(response: httpx.Response) -> ChatCompletion:
    """Validate the body in one pass of pydantic-core.  The SDK's default, a
    lenient construct that walks the JSON in Python, costs ~10% of our CPU per
    request; it remains the fallback for servers that stray from the schema."""
    try:
        return ChatCompletion.model_validate_json(response.content)
    except ValidationError:
        pass
    try:
        data = response.json()
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise RecordFailure(
            "server",
            f"the endpoint answered {response.status_code} with a body that is not a chat"
            f" completion: {response.text[:120]!r}",
        )
    return ChatCompletion.construct(**data)


async def open_transport(config: RunConfig, endpoint: Endpoint, limiter: Limiter) -> Transport:
    if endpoint.provider.name == "local":
        from .local import LocalModel

        return await LocalModel.load()
    return HTTPTransport(endpoint, config.timeout, limiter, connections=config.concurrency)


class Client:
    """One per run: owns the transport, the instructor wrapper and the breaker."""

    def __init__(
        self,
        config: RunConfig,
        endpoint: Endpoint,
        response_model: type[BaseModel],
        transport: Transport,
        limiter: Limiter,
    ):
        self.config = config
        self.endpoint = endpoint
        # Wrapped once here: instructor otherwise builds a new subclass of the
        # model (and its schema) on every call, a fifth of its CPU time per request.
        self.response_model = instructor.openai_schema(response_model)
        self.redact = Redactor(endpoint.api_key)
        self._transport = transport
        self.limiter = limiter
        self.estimate = TokenEstimate(config.max_tokens)
        self.concurrency = min(config.concurrency, transport.max_concurrency or config.concurrency)
        self._create = instructor.patch(
            create=self._attempt, mode=instructor.Mode[endpoint.mode.upper()]
        )
        self._failures_in_a_row = 0
        self._ever_answered = False
        self._extra: dict[str, Any] = {}
        if config.max_tokens is not None:
            self._extra["max_tokens"] = config.max_tokens
        if config.temperature is not None:
            self._extra["temperature"] = config.temperature

    async def aclose(self) -> None:
        await self._transport.aclose()

    async def ask(self, record: Record) -> Outcome:
        """The outcome for one record; raises AbortError when the run must stop."""
        outcome = Outcome()
        token = _current.set(outcome)
        started = time.monotonic()
        try:
            answer = await self._create(
                model=self.endpoint.model,
                messages=build_messages(record, self.config.layout),
                response_model=self.response_model,
                max_retries=self.config.max_reasks,
                **self._extra,
            )
            outcome.response = answer.model_dump(mode="json")
        except AbortError:
            raise
        except Exception as exc:
            cause = _root(exc)
            if isinstance(cause, AbortError):
                raise cause from None
            outcome.error = self._classify(exc, cause)
            if outcome.error.kind == "connection" and not self._ever_answered:
                raise EndpointError(
                    f"cannot reach {self.endpoint.base_url}: {outcome.error.message}"
                    " (is the server running? check --base-url / OPENAI_BASE_URL)"
                ) from None
        finally:
            outcome.latency_s = time.monotonic() - started
            _current.reset(token)
        return outcome

    async def _attempt(self, **kwargs: Any) -> Any:
        """One instructor attempt: the HTTP request, paced by the limiter and
        retried on transient failures.  A 429 is flow control, not a failure:
        it holds back every worker for the server's Retry-After and has its own,
        larger retry budget."""
        outcome = _current.get()
        prompt_size = TokenEstimate.prompt_size(kwargs)
        retries = rate_limited = 0
        while True:
            permit = await self.limiter.acquire(self.estimate.tokens(prompt_size))
            outcome.attempts += 1
            used, ok = None, False
            failure: openai.APIStatusError | openai.APIConnectionError
            try:
                completion = await self._transport.create(**kwargs)
                ok = True
                usage = getattr(completion, "usage", None)
                used = getattr(usage, "total_tokens", None)
            except openai.APIStatusError as exc:
                # Refused requests (429) and server errors did not spend tokens.
                used = 0 if exc.status_code == 429 or exc.status_code >= 500 else None
                failure = exc
            except openai.APIConnectionError as exc:  # includes APITimeoutError
                failure = exc
            finally:
                self.limiter.release(permit, used, ok)
            if ok:
                self._note_answered()
                outcome.usage.add(completion.usage)
                self.estimate.observe(completion.usage, prompt_size)
                _check_finish(completion)
                return completion
            if isinstance(failure, openai.APIStatusError):
                status = failure.status_code
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
                    wait = retry_after(failure.response.headers)
                    self.limiter.on_rate_limited(
                        None if wait is None else min(wait, MAX_RETRY_AFTER), fallback, permit
                    )
                    rate_limited += 1
                    continue  # acquire() waits out the hold
                if status == 429 or status not in RETRYABLE_STATUS:
                    raise failure
                if retries >= self.config.max_retries:
                    raise failure
                delay = retry_after(failure.response.headers)
            else:
                self._note_failure(failure)
                if retries >= self.config.max_retries:
                    raise failure
                delay = None
            if delay is None:
                delay = backoff_delay(retries, self.config.backoff_base, self.config.backoff_max)
            await anyio.sleep(min(delay, MAX_RETRY_AFTER))
            retries += 1

    def _note_answered(self) -> None:
        self._failures_in_a_row = 0
        self._ever_answered = True

    def _note_failure(self, exc: Exception) -> None:
        """Count connection errors and 5xx in a row; enough of them end the run."""
        self._failures_in_a_row += 1
        if self._failures_in_a_row < self.config.breaker_threshold:
            return
        detail = self.redact(_describe(exc))
        if not self._ever_answered:
            raise EndpointError(
                f"cannot reach {self.endpoint.base_url}: {self._failures_in_a_row} attempts,"
                f" none answered (last: {detail}). Is the server running? Check --base-url"
                " / OPENAI_BASE_URL."
            )
        raise EndpointError(
            f"{self._failures_in_a_row} requests in a row to {self.endpoint.base_url} failed"
            f" with connection errors or 5xx (last: {detail}); stopping instead of failing"
            " every record. Re-run the same command once the endpoint is healthy."
        )

    def _auth_message(self, exc: openai.APIStatusError) -> str:
        env = self.endpoint.provider.key_env or "OPENAI_API_KEY"
        return (
            f"{self.endpoint.base_url} refused the API key ({exc.status_code}):"
            f" set {env} to a valid key for {self.endpoint.provider.name}."
            f" Server said: {self.redact(_server_message(exc))}"
        )

    def _classify(self, exc: BaseException, cause: BaseException) -> ErrorInfo:
        redact = self.redact
        if isinstance(exc, IncompleteOutputException) or isinstance(cause, _Truncated):
            return ErrorInfo(
                "truncated",
                "the answer was cut off at max_tokens (finish_reason 'length'); raise --max-tokens",
            )
        if isinstance(cause, RecordFailure):
            return ErrorInfo(cause.kind, redact(str(cause)))
        if isinstance(cause, _Refused):
            return ErrorInfo("refusal", redact(str(cause)))
        if isinstance(cause, openai.APIStatusError):
            status = cause.status_code
            kind = (
                "rate_limit"
                if status == 429
                else "timeout"
                if status == 408
                else "server"
                if status >= 500 or status == 409
                else "bad_request"
            )
            return ErrorInfo(kind, redact(_server_message(cause)), status)
        if isinstance(cause, openai.APITimeoutError):
            return ErrorInfo("timeout", f"no answer within {self.config.timeout:g}s")
        if isinstance(cause, openai.APIConnectionError):
            return ErrorInfo("connection", redact(_describe(cause)))
        if isinstance(cause, ValidationError | json.JSONDecodeError) or (
            isinstance(exc, InstructorRetryException) and exc.failed_attempts
        ):
            attempts = getattr(exc, "n_attempts", None)
            first = str(cause).splitlines()[0] if str(cause) else type(cause).__name__
            return ErrorInfo(
                "validation",
                redact(f"no valid answer after {attempts or '?'} attempt(s): {first}"),
            )
        return ErrorInfo("internal", redact(f"{type(cause).__name__}: {cause}"))


def _root(exc: BaseException) -> BaseException:
    """instructor wraps whatever the create function raised; find what really happened."""
    seen = set()
    while isinstance(exc, InstructorRetryException) and exc.__cause__ and id(exc) not in seen:
        seen.add(id(exc))
        exc = exc.__cause__
    return exc


def _describe(exc: Exception) -> str:
    """A short reason: the status and server message, or the network error underneath."""
    if isinstance(exc, openai.APIStatusError):
        return f"{exc.status_code} {_server_message(exc)}"
    inner = exc.__cause__ or exc
    return str(inner) or type(inner).__name__


def _server_message(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        message = body.get("message") or (body.get("error") or {}).get("message")
        if isinstance(message, str):
            return f"{message}"
    return exc.message


def _check_finish(completion: Any) -> None:
    choices = getattr(completion, "choices", None) or []
    if not choices:
        return
    choice = choices[0]
    if choice.finish_reason == "length":
        raise _Truncated()
    refusal = getattr(choice.message, "refusal", None)
    if refusal:
        raise _Refused(f"the model refused: {refusal}")
    if choice.finish_reason == "content_filter":
        raise _Refused("the provider's content filter stopped the answer")
