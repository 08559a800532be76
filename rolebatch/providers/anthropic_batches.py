"""Anthropic's Message Batches API, through the official SDK: the
provider-specific part of buying through a batch API (the contract is
``batch_api``; the run loop ``via.batches``).

    messages.batches.create(requests=[{custom_id, params}])   the requests inline
    messages.batches.retrieve / list                          its status
    messages.batches.results(id)                              JSONL, once ended
    messages.batches.cancel(id)

There is no file to upload: the journaled request file is sent as the
create's body.  Message batches carry no metadata, so a batch created just
before a crash is recognised another way: it was created after the intent
was journaled (with two minutes' allowance for clock skew), no entry of the
journal names it, and it holds exactly as many requests.  One such batch is
adopted; none means it was never created; more than one is ambiguous, and
the run stops and says so rather than risk paying twice.  A batch someone
cancelled is never adopted (cancelling the others is how an operator settles
an ambiguity).  Each request's
custom_id carries its batch's tag (``journal.custom_id``), so results are
taken only from the batch they were packed for.

A result is ``succeeded`` (the message), ``errored`` (its error: an
``invalid_request_error`` is final, an ``overloaded_error``, ``api_error``,
``rate_limit_error`` or ``timeout_error`` goes again), or ``canceled`` /
``expired``: never run, so still to do.  The SDK's own retries are off; a
create whose outcome is unknown raises ``Unknown`` and the caller looks
before trying again.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import anthropic
from anthropic.types import Message
from pydantic import ValidationError

from ..errors import OutputError, StatusError
from .anthropic import SDK_ERRORS, translated
from .batch_api import (
    Ambiguous,
    BatchInfo,
    QueueFull,
    Result,
    Submission,
    Unknown,
    call_api,
    refused,
)
from .registry import Endpoint

MAX_REQUESTS = 100_000
# A create's body may be up to 256 MB; stay clear of the edge.
MAX_BYTES = 240 * 1024 * 1024
# How far the provider's clock may be behind ours when it stamps a batch.
CLOCK_SKEW = 120.0

STATUS_OF_ERROR = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}


def connect(endpoint: Endpoint, timeout: float) -> AnthropicBatches:
    return AnthropicBatches(endpoint, timeout)


class AnthropicBatches:
    """Anthropic's batch API, in the shape ``batch_api.BatchAPI`` says."""

    max_requests = MAX_REQUESTS
    max_bytes = MAX_BYTES

    def __init__(self, endpoint: Endpoint, timeout: float):
        self._endpoint = endpoint
        self._client = anthropic.AsyncAnthropic(
            api_key=endpoint.api_key,
            base_url=endpoint.base_url,
            max_retries=0,
            timeout=timeout,
        )

    async def aclose(self) -> None:
        await self._client.close()

    # -- requests and answers --------------------------------------------

    def request_line(self, custom_id: str, body: dict[str, Any]) -> bytes:
        line = {"custom_id": custom_id, "params": body}
        return json.dumps(line, ensure_ascii=False).encode() + b"\n"

    def parse(self, body: dict[str, Any]) -> Any:
        """A result's message as the answer instructor parses."""
        try:
            return Message.model_validate(body)
        except ValidationError:
            return Message.construct(**body)

    # -- the batch's life --------------------------------------------------

    async def upload(self, name: str, data: bytes) -> str:
        return "inline"  # the requests go in the create's body

    async def create(self, batch: Submission, note: str) -> BatchInfo:
        try:
            data = batch.requests.read_bytes()
        except OSError as exc:
            raise OutputError(f"cannot read {batch.requests}: {exc.strerror or exc}") from None
        items = [json.loads(raw) for raw in data.splitlines() if raw.strip()]
        try:
            created = await self._client.messages.batches.create(requests=items)
        except SDK_ERRORS as exc:
            failure = translated(exc)
            if not isinstance(failure, StatusError):  # a timeout included
                raise Unknown(str(failure)) from None
            if failure.status == 429 and "queue" in failure.message.lower():
                raise QueueFull(failure.message) from None
            if failure.status == 429 or failure.status >= 500:
                raise Unknown(str(failure)) from None
            raise refused(self._endpoint, failure) from None
        return _info(created)

    async def find(self, batch: Submission, known: set[str]) -> BatchInfo | None:
        """The batch a crash may have left unrecorded: created since ``batch``
        was packed, named by no entry of the journal (``known``), of the same size."""

        async def search() -> list[BatchInfo]:
            found = []
            async for listed in self._client.messages.batches.list(limit=100):
                info = _info(listed)
                if info.created_at < batch.at - CLOCK_SKEW:
                    break  # listed newest first: the rest is older
                if listed.cancel_initiated_at is not None:
                    continue  # cancelled by someone: not adopted (see the module's notes)
                if info.id not in known and info.total == batch.size:
                    found.append(info)
            return found

        candidates = await self._retrying(search)
        if len(candidates) > 1:
            raise Ambiguous(
                f"a batch of {batch.size:,} requests may have been created at"
                f" {self._endpoint.base_url} just before rolebatch stopped, and"
                f" {len(candidates)} batches of that size were created since then:"
                f" {', '.join(c.id for c in candidates)}. Message batches carry no tag, so"
                " rolebatch cannot tell which is this output's. Cancel the ones that are not"
                " (a cancelled batch is never adopted), then run the same command: it adopts"
                " the one that is left and submits nothing twice."
            )
        return candidates[0] if candidates else None

    async def get(self, batch_id: str) -> BatchInfo:
        return _info(await self._retrying(lambda: self._client.messages.batches.retrieve(batch_id)))

    async def cancel(self, batch_id: str) -> BatchInfo:
        return _info(await self._retrying(lambda: self._client.messages.batches.cancel(batch_id)))

    async def results(self, info: BatchInfo) -> AsyncIterator[Result]:
        """Every result; canceled and expired requests were never run."""
        lines = await self._retrying(lambda: self._client.messages.batches.results(info.id))
        async for line in lines:
            result = line.result
            if result.type == "succeeded":
                yield Result(line.custom_id, 200, result.message.model_dump(mode="json"), None)
            elif result.type == "errored":
                error = result.error.error
                status = STATUS_OF_ERROR.get(error.type, 500)
                yield Result(line.custom_id, status, None, f"{error.type}: {error.message}")
            else:
                yield Result(line.custom_id, 0, None, result.type, executed=False)

    # -- calls ---------------------------------------------------------------

    async def _retrying(self, call: Any) -> Any:
        return await call_api(call, self._endpoint, SDK_ERRORS, translated)


def _info(batch: Any) -> BatchInfo:
    counts = batch.request_counts
    total = counts.processing + counts.succeeded + counts.errored + counts.canceled + counts.expired
    status = batch.processing_status
    if status == "ended" and counts.canceled:
        status = "canceled"
    elif status == "ended" and counts.expired:
        status = "expired"
    return BatchInfo(
        id=batch.id,
        status=status,
        ended=batch.processing_status == "ended",
        total=total,
        done=counts.succeeded,
        failed=counts.errored,
        created_at=batch.created_at.timestamp(),
        cancelled=batch.cancel_initiated_at is not None,
    )
