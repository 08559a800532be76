"""OpenAI's Batch API, through the official SDK: the provider-specific part of
buying through a batch API (the contract is ``batch_api``; the run loop
``via.batches``).

    files.create(purpose=batch)   upload a request file (JSONL of {custom_id, method, url, body})
    batches.create(...)           a batch of it, for /v1/chat/completions, 24h
    batches.retrieve / list       its status; batches carrying our tag
    files.content(...)            its output and error files
    batches.cancel(...)

The SDK's own retries are off: it retries a POST without an idempotency key,
so a create that timed out could be sent twice.  A create whose outcome is
unknown (timeout, dropped connection, 5xx) raises ``Unknown``: the caller
looks for the batch before trying again.  Other calls are retried, with
backoff, on 429, 5xx and connection errors (``batch_api.call_api``).  The
SDK's errors become rolebatch's own here, as in ``openai_http``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import openai
from openai.types.chat import ChatCompletion
from pydantic import ValidationError

from ..errors import StatusError
from .batch_api import BatchInfo, QueueFull, Result, Submission, Unknown, call_api, refused
from .openai_http import SDK_ERRORS, translated
from .registry import Endpoint

# Error-file codes of requests a batch ended before running (they are not billed).
NOT_EXECUTED = frozenset({"batch_expired", "batch_cancelled"})
MAX_REQUESTS = 50_000
# OpenAI takes files up to 200 MB; stay clear of the edge.
MAX_BYTES = 190 * 1024 * 1024
TAG_KEY = "rolebatch_tag"


def connect(endpoint: Endpoint, timeout: float) -> OpenAIBatches:
    return OpenAIBatches(endpoint, timeout)


class OpenAIBatches:
    """OpenAI's batch API, in the shape ``batch_api.BatchAPI`` says."""

    max_requests = MAX_REQUESTS
    max_bytes = MAX_BYTES

    def __init__(self, endpoint: Endpoint, timeout: float):
        self._endpoint = endpoint
        self._client = openai.AsyncOpenAI(
            api_key=endpoint.api_key,
            base_url=endpoint.base_url,
            max_retries=0,
            timeout=timeout,
        )

    async def aclose(self) -> None:
        await self._client.close()

    # -- requests and answers --------------------------------------------

    def request_line(self, custom_id: str, body: dict[str, Any]) -> bytes:
        line = {"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions"}
        return json.dumps({**line, "body": body}, ensure_ascii=False).encode() + b"\n"

    def parse(self, body: dict[str, Any]) -> Any:
        """A result's body as the completion instructor parses."""
        try:
            return ChatCompletion.model_validate(body)
        except ValidationError:
            return ChatCompletion.construct(**body)

    # -- the batch's life --------------------------------------------------

    async def upload(self, name: str, data: bytes) -> str:
        uploaded = await self._retrying(
            lambda: self._client.files.create(file=(name, data), purpose="batch")
        )
        return uploaded.id

    async def create(self, batch: Submission, note: str) -> BatchInfo:
        """A batch of the file ``batch`` uploaded, its tag in the metadata."""
        assert batch.file_id is not None
        try:
            created = await self._client.batches.create(
                input_file_id=batch.file_id,
                endpoint="/v1/chat/completions",
                completion_window="24h",
                metadata={TAG_KEY: batch.tag, "rolebatch_output": note[:500]},
            )
        except SDK_ERRORS as exc:
            failure = translated(exc)
            if not isinstance(failure, StatusError):  # a timeout included
                raise Unknown(str(failure)) from None
            if _queue_full(failure):
                raise QueueFull(failure.message) from None
            if failure.status >= 500:
                raise Unknown(str(failure)) from None
            raise refused(self._endpoint, failure) from None
        return _info(created)

    async def find(self, batch: Submission, known: set[str]) -> BatchInfo | None:
        """The batch carrying ``batch``'s tag (newest are listed first)."""

        async def search() -> BatchInfo | None:
            async for listed in self._client.batches.list(limit=100):
                if (listed.metadata or {}).get(TAG_KEY) == batch.tag:
                    return _info(listed)
                if listed.created_at < batch.at - 600:
                    return None  # older than the tag: it is not there
            return None

        return await self._retrying(search)

    async def get(self, batch_id: str) -> BatchInfo:
        return _info(await self._retrying(lambda: self._client.batches.retrieve(batch_id)))

    async def cancel(self, batch_id: str) -> BatchInfo:
        return _info(await self._retrying(lambda: self._client.batches.cancel(batch_id)))

    async def results(self, info: BatchInfo) -> AsyncIterator[Result]:
        """Every result line in the batch's output and error files.  A
        completed batch may have no output file (every request failed), an
        error line may say status 0, and the requests an expired or cancelled
        batch never ran are error lines too (``batch_expired``, ``batch_cancelled``)."""
        for file_id in (info.output_file_id, info.error_file_id):
            if not file_id:
                continue
            content = await self._retrying(lambda fid=file_id: self._client.files.content(fid))
            for raw in content.content.splitlines():
                if raw.strip():
                    yield _result(json.loads(raw))

    # -- calls ---------------------------------------------------------------

    async def _retrying(self, call: Any) -> Any:
        return await call_api(call, self._endpoint, SDK_ERRORS, translated)


def _queue_full(failure: StatusError) -> bool:
    body = failure.body if isinstance(failure.body, dict) else {}
    error = body.get("error", body) if isinstance(body.get("error", body), dict) else {}
    return (
        error.get("code") == "token_limit_exceeded"
        or "enqueued token limit" in failure.message.lower()
    )


def _info(batch: Any) -> BatchInfo:
    errors = [
        (getattr(error, "code", None) or "", getattr(error, "message", None) or "")
        for error in ((batch.errors.data or []) if batch.errors else [])
    ]
    counts = batch.request_counts
    return BatchInfo(
        id=batch.id,
        status=batch.status,
        ended=batch.status in ("completed", "expired", "failed", "cancelled"),
        total=counts.total if counts else 0,
        done=counts.completed if counts else 0,
        failed=counts.failed if counts else 0,
        created_at=float(batch.created_at),
        errors=[f"{code}: {message}" if code else message for code, message in errors],
        queue_full=any(code == "token_limit_exceeded" for code, _ in errors),
        cancelled=batch.status in ("cancelling", "cancelled"),
        tag=(batch.metadata or {}).get(TAG_KEY),
        output_file_id=batch.output_file_id,
        error_file_id=batch.error_file_id,
    )


def _result(line: dict[str, Any]) -> Result:
    """One line of an output or error file.  A request the batch never ran
    says so by its error code, or by having no response at all."""
    custom_id = line.get("custom_id", "")
    error = line.get("error") if isinstance(line.get("error"), dict) else {}
    if error.get("code") in NOT_EXECUTED or line.get("response") is None:
        return Result(custom_id, 0, None, error.get("message"), executed=False)
    response = line["response"]
    status = response.get("status_code") or 0
    body = response.get("body")
    if status == 200 and isinstance(body, dict):
        return Result(custom_id, 200, body, None)
    message = None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        message = body["error"].get("message")
    if not message:
        message = error.get("message") or error.get("code")
    return Result(custom_id, int(status), None, message or f"status {status}")
