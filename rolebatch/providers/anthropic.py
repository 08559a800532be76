"""Anthropic's Messages API through the official SDK, with its own retries off:
every attempt is ours to pace, count and retry.

The SDK's errors become rolebatch's own at this boundary (``translated``):
status, headers, body and the server's message carry over, so that a 429, a
529 (overloaded) or a dropped connection means the same thing whichever
provider sent it.
"""

from __future__ import annotations

from typing import Any

import anthropic
import httpx2 as httpx

from ..errors import RequestFailed, TimedOut
from .registry import Endpoint
from .transport import Reply, connection_failure, status_error


async def connect(endpoint: Endpoint, timeout: float, connections: int) -> AnthropicTransport:
    return AnthropicTransport(endpoint, timeout, connections)


# What the SDK raises for a request that brought no answer.
SDK_ERRORS = (anthropic.APIStatusError, anthropic.APIConnectionError)


def translated(exc: anthropic.APIError) -> RequestFailed:
    """The anthropic SDK's error in our words."""
    if isinstance(exc, anthropic.APIStatusError):
        return status_error(exc)
    if isinstance(exc, anthropic.APITimeoutError):
        return connection_failure(exc, TimedOut)
    return connection_failure(exc)


class AnthropicTransport:
    max_concurrency = None

    def __init__(self, endpoint: Endpoint, timeout: float, connections: int):
        self._client = anthropic.AsyncAnthropic(
            api_key=endpoint.api_key,
            base_url=endpoint.base_url,
            max_retries=0,
            timeout=timeout,
            http_client=anthropic.DefaultAsyncHttpxClient(
                limits=httpx.Limits(
                    max_connections=connections, max_keepalive_connections=connections
                )
            ),
        )

    async def create(self, **body: Any) -> Reply:
        try:
            raw = await self._client.messages.with_raw_response.create(**body)
        except SDK_ERRORS as exc:
            raise translated(exc) from exc
        return Reply(await raw.parse(), raw.headers)

    async def aclose(self) -> None:
        await self._client.close()
