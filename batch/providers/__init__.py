"""Where answers come from.

    registry     provider/name model strings: base URL, key variable, default mode
    openai_http  any OpenAI-compatible endpoint over HTTP
    local        the embedded offline model (llama.cpp)

A transport has the shape of ``AsyncOpenAI.chat.completions.create`` plus
``aclose``; ``open_transport`` picks one for an endpoint.  The transports are
imported only when a run starts: the command line must not pay for them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ..config import RunConfig
    from ..pacing.limiter import Limiter
    from .registry import Endpoint


class Transport(Protocol):
    max_concurrency: int | None

    async def create(self, **kwargs: Any) -> Any: ...

    async def aclose(self) -> None: ...


async def open_transport(config: RunConfig, endpoint: Endpoint, limiter: Limiter) -> Transport:
    if endpoint.provider.name == "local":
        from .local import LocalModel

        return await LocalModel.load()
    from .openai_http import HTTPTransport

    return HTTPTransport(endpoint, config.timeout, limiter, connections=config.concurrency)
