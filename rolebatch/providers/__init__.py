"""Where answers come from.

    registry     provider/name model strings: base URL, key variable, default mode
    openai_http  any OpenAI-compatible endpoint over HTTP
    anthropic    Anthropic's Messages API
    local        the embedded offline model (llama.cpp)

A transport takes the keyword arguments instructor builds for
``chat.completions.create`` and returns a ``Reply``: the completion instructor
parses, and the response headers the limiter learns from.  ``open_transport``
picks one for an endpoint.  The transports are
imported only when a run starts: the command line must not pay for them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ..config import RunConfig
    from .registry import Endpoint


@dataclass(frozen=True, slots=True)
class Reply:
    completion: Any
    headers: Mapping[str, str] | None = None


class Transport(Protocol):
    max_concurrency: int | None

    async def create(self, **kwargs: Any) -> Reply: ...

    async def aclose(self) -> None: ...


async def open_transport(config: RunConfig, endpoint: Endpoint) -> Transport:
    if endpoint.provider.protocol == "local":
        from .local import LocalModel

        return await LocalModel.load()
    if endpoint.provider.protocol == "anthropic":
        from .anthropic import AnthropicTransport

        return AnthropicTransport(endpoint, config.timeout, connections=config.concurrency)
    from .openai_http import HTTPTransport

    return HTTPTransport(endpoint, config.timeout, connections=config.concurrency)
