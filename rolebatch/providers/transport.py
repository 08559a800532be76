"""What every transport is: the contract between a run and a provider's wire.

A transport takes the keyword arguments instructor builds for
``chat.completions.create`` and returns a ``Reply``: the completion instructor
parses, and the response headers the limiter learns from.  It raises only
rolebatch's own ``RequestFailed`` errors (``errors``): each transport
translates its SDK's exceptions at its edge (``status_error`` and
``connection_failure`` read the shape the openai and anthropic SDKs share),
so that a 429, a 529 or a dropped connection means the same thing whichever
provider sent it.

``open_transport`` opens the one the endpoint's provider names
(``Provider.transport``, a module of this package with a ``connect``
function), imported only when a run starts: the command line must not pay
for it.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from ..errors import ConnectionFailure, StatusError

if TYPE_CHECKING:
    from .registry import Endpoint


@dataclass(frozen=True, slots=True)
class Reply:
    completion: Any
    headers: Mapping[str, str] | None = None


class Transport(Protocol):
    max_concurrency: int | None

    async def create(self, **kwargs: Any) -> Reply: ...

    async def aclose(self) -> None: ...


async def open_transport(endpoint: Endpoint, timeout: float, connections: int) -> Transport:
    """The transport of the endpoint's provider, opened."""
    module = importlib.import_module(f"{__package__}.{endpoint.provider.transport}")
    return await module.connect(endpoint, timeout, connections)


def status_error(exc: Any) -> StatusError:
    """An SDK's error status (openai's ``APIStatusError``, anthropic's alike)
    in our words: the status, the server's own message, headers and body."""
    body = exc.body
    message = exc.message
    if isinstance(body, dict):
        said = body.get("message") or (body.get("error") or {}).get("message")
        if isinstance(said, str):
            message = said
    return StatusError(exc.status_code, message, exc.response.headers, body)


def connection_failure(exc: BaseException, cls: type[ConnectionFailure] = ConnectionFailure):
    """An SDK's connection error in our words: what happened underneath."""
    inner = exc.__cause__ or exc
    return cls(str(inner) or type(inner).__name__)
