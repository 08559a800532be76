"""Anthropic's Messages API through the official SDK, with its own retries off:
every attempt is ours to pace, count and retry.

The SDK's errors are translated at this boundary into the openai SDK's error
classes, which the rest of rolebatch handles (status, headers, body and
message carry over), so that a 429, a 529 (overloaded) or a dropped
connection means the same thing whichever provider sent it.
"""

from __future__ import annotations

from typing import Any

import anthropic
import httpx2 as httpx
import openai

from . import Reply
from .registry import Endpoint


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
        except anthropic.APIStatusError as exc:
            raise openai.APIStatusError(exc.message, response=exc.response, body=exc.body) from exc
        except anthropic.APITimeoutError as exc:
            raise openai.APITimeoutError(request=exc.request) from exc
        except anthropic.APIConnectionError as exc:
            raise openai.APIConnectionError(message=str(exc), request=exc.request) from exc
        return Reply(await raw.parse(), raw.headers)

    async def aclose(self) -> None:
        await self._client.close()
