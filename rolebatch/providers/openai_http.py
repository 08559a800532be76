"""Any OpenAI-compatible endpoint over HTTP, through the official SDK with its
own retries off: every attempt is ours to pace, count and retry.  The SDK's
errors become rolebatch's own here (``translated``)."""

from __future__ import annotations

from typing import Any

import httpx2 as httpx
import openai
import sniffio
from openai.types.chat import ChatCompletion
from pydantic import ValidationError

from ..errors import RequestFailed, TimedOut
from ..quirks.openai_aiohttp import timed_out
from ..records.lines import RecordFailure
from .registry import Endpoint
from .transport import Reply, connection_failure, status_error


async def connect(endpoint: Endpoint, timeout: float, connections: int) -> HTTPTransport:
    transport = HTTPTransport(endpoint, timeout, connections)
    if endpoint.provider.slots_path:
        transport.max_concurrency = await _slots(endpoint)
    return transport


async def _slots(endpoint: Endpoint) -> int | None:
    """How many requests the server says it works on at once (llama.cpp's
    ``/props``: ``total_slots``); None when it does not say.  Never fatal."""
    root = endpoint.base_url.removesuffix("/").removesuffix("/v1")
    try:
        async with httpx.AsyncClient(timeout=5.0) as client:
            answer = await client.get(root + (endpoint.provider.slots_path or ""))
        slots = answer.json().get("total_slots") if answer.status_code == 200 else None
    except (httpx.HTTPError, ValueError, AttributeError):
        return None
    return slots if isinstance(slots, int) and slots > 0 else None


# What the SDK raises for a request that brought no answer.
SDK_ERRORS = (openai.APIStatusError, openai.APIConnectionError)


def translated(exc: openai.APIError) -> RequestFailed:
    """The openai SDK's error in our words.  openai's aiohttp adapter calls a
    refused connection a timeout; ``quirks.openai_aiohttp`` tells them apart."""
    if isinstance(exc, openai.APIStatusError):
        return status_error(exc)
    if isinstance(exc, openai.APITimeoutError) and timed_out(exc):
        return connection_failure(exc, TimedOut)
    return connection_failure(exc)


class HTTPTransport:
    """Under asyncio the openai client sends through aiohttp: it costs about a
    third less CPU per request than httpx's own connection pool, and at high
    concurrency that CPU is what bounds throughput.  aiohttp runs only on
    asyncio, so under trio the client keeps httpx's transport.
    """

    max_concurrency: int | None = None

    def __init__(self, endpoint: Endpoint, timeout: float, connections: int):
        on_asyncio = sniffio.current_async_library() == "asyncio"
        http_client = (
            openai.DefaultAioHttpClient if on_asyncio else openai.DefaultAsyncHttpxClient
        )(
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

    async def create(self, **body: Any) -> Reply:
        # The SDK's custom-request path: the body goes out as instructor built
        # it, skipping the typed-params transform that costs ~12% of our CPU;
        # what the request asked to add (``extra_body``) is merged over it.
        body.update(body.pop("extra_body", None) or {})
        try:
            response = await self._openai.post(
                "/chat/completions", body=body, cast_to=httpx.Response
            )
        except SDK_ERRORS as exc:
            raise translated(exc) from exc
        return Reply(parse_completion(response), response.headers)

    async def aclose(self) -> None:
        await self._openai.close()


def parse_completion(response: httpx.Response) -> ChatCompletion:
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
