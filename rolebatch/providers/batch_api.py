"""What every batch API is: the contract between a batch run (``via.batches``)
and a provider's batch API (``openai_batches``, ``anthropic_batches``).

    Submission   a batch being bought, as the provider's side needs it
    BatchInfo    a batch as the provider reports it
    Result       one request's result: an answer, an error, or never run
    BatchAPI     what an adapter does: pack, upload, create, find, get,
                 cancel, results
    call_api     one call, retried with backoff on 429, 5xx and dropped
                 connections; any other refusal ends the run (``refused``)

Adapters translate their SDK's errors into rolebatch's own
(``errors.RequestFailed``), with the function their live transport uses.  ``open_batches``
opens the adapter the endpoint's provider names (``Provider.batches``).
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

import anyio

from ..errors import (
    AuthError,
    ConnectionFailure,
    EndpointError,
    RequestFailed,
    StatusError,
    UsageError,
)
from ..pacing.backoff import BACKOFF_BASE, BACKOFF_MAX, backoff_delay, retry_after
from .registry import Endpoint

CALL_RETRIES = 5
T = TypeVar("T")


@dataclass(frozen=True)
class Submission:
    """A batch being bought: its tag, when its requests were packed, how many
    there are, the uploaded file (None before the upload; Anthropic has
    none), and the request file on disk."""

    tag: str
    at: float
    size: int
    file_id: str | None
    requests: Path


@dataclass
class BatchInfo:
    id: str
    status: str
    ended: bool
    total: int = 0
    done: int = 0
    failed: int = 0
    created_at: float = 0.0
    errors: list[str] = field(default_factory=list)
    queue_full: bool = False  # failed for the provider's queue limit: submit again later
    cancelled: bool = False  # someone asked the provider to cancel it
    tag: str | None = None
    output_file_id: str | None = None
    error_file_id: str | None = None


@dataclass
class Result:
    custom_id: str
    status_code: int  # 200: ``body`` is the answer
    body: dict[str, Any] | None
    message: str | None
    executed: bool = True  # False: the batch ended before the request ran (expired, cancelled)


class QueueFull(Exception):
    """The provider will not queue more now (OpenAI's enqueued-token limit)."""


class Unknown(Exception):
    """A create whose outcome is unknown (timeout, dropped connection, 5xx)."""


class Ambiguous(EndpointError):
    """More than one batch at the provider could be the one a crash left
    unrecorded: adopting either, or submitting again, could pay twice."""


class BatchAPI(Protocol):
    max_requests: int
    max_bytes: int

    def request_line(self, custom_id: str, body: dict[str, Any]) -> bytes: ...
    def parse(self, body: dict[str, Any]) -> Any: ...
    async def upload(self, name: str, data: bytes) -> str: ...
    async def create(self, batch: Submission, note: str) -> BatchInfo: ...
    async def find(self, batch: Submission, known: set[str]) -> BatchInfo | None: ...
    async def get(self, batch_id: str) -> BatchInfo: ...
    async def cancel(self, batch_id: str) -> BatchInfo: ...
    def results(self, info: BatchInfo) -> AsyncIterator[Result]: ...
    async def aclose(self) -> None: ...


def open_batches(endpoint: Endpoint, timeout: float) -> BatchAPI:
    """The batch API of the endpoint's provider."""
    provider = endpoint.provider
    if provider.batches is None:
        raise UsageError(
            f"--via batch needs a provider with a batch API (openai, anthropic);"
            f" {endpoint.label} has none: run it live (--via live)"
        )
    module = importlib.import_module(f"{__package__}.{provider.batches}")
    return module.connect(endpoint, timeout)


async def call_api(
    call: Callable[[], Awaitable[T]],
    endpoint: Endpoint,
    sdk_errors: tuple[type[Exception], ...],
    translate: Callable[[Any], RequestFailed],
) -> T:
    """One call of a provider's batch API through its SDK, whose ``sdk_errors``
    ``translate`` puts in our words: retried with backoff on 429, 5xx and
    connection errors, refused (``refused``) on any other status."""
    for attempt in range(CALL_RETRIES + 1):
        try:
            try:
                return await call()
            except sdk_errors as exc:
                raise translate(exc) from exc
        except StatusError as exc:
            if exc.status < 500 and exc.status != 429:
                raise refused(endpoint, exc) from None
            if attempt == CALL_RETRIES:
                raise EndpointError(
                    f"{endpoint.base_url} kept failing: {exc.status} {exc.message}"
                ) from None
            wait = retry_after(exc.headers) or backoff_delay(attempt, BACKOFF_BASE, BACKOFF_MAX)
        except ConnectionFailure as exc:
            if attempt == CALL_RETRIES:
                raise EndpointError(
                    f"cannot reach {endpoint.base_url}: {exc}. Run the same command"
                    " again later: batches at the provider are collected then."
                ) from None
            wait = backoff_delay(attempt, BACKOFF_BASE, BACKOFF_MAX)
        await anyio.sleep(min(wait, 60))
    raise AssertionError("unreachable")


def refused(endpoint: Endpoint, exc: StatusError) -> Exception:
    """What a batch API's refusal of a call (a 4xx but 429) means for the run."""
    if exc.status in (401, 403):
        return AuthError(
            f"{endpoint.base_url} refused the API key ({exc.status}): set"
            f" {endpoint.provider.key_env} to a valid key. Server said: {exc.message}"
        )
    return EndpointError(f"{endpoint.base_url} refused a batch request: {exc.status} {exc.message}")
