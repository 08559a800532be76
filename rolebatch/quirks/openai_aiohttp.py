"""openai's aiohttp adapter reports every connection error as ``APITimeoutError``
(``ConnectTimeout`` underneath), a refused connection included.  The aiohttp
error it wraps says what really happened."""

from __future__ import annotations

import aiohttp


def timed_out(exc: BaseException) -> bool:
    """Whether an APITimeoutError is a timeout: below it, aiohttp's own error says."""
    link = exc.__cause__
    while link is not None:
        if isinstance(link, aiohttp.ClientError):
            return isinstance(link, TimeoutError)
        link = link.__cause__ or link.__context__
    return True  # httpx's own transport tells timeouts apart correctly
