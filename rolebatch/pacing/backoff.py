"""How long to wait before trying again: what the server asked, or our own backoff."""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Callable
from typing import Any

# The longest Retry-After we honour; a server asking for more gets this.
MAX_RETRY_AFTER = 120.0
# Seconds before the first retry, doubling each retry up to the most: the
# policy of a record's requests (``RunConfig.bought.backoff_base``/``backoff_max``)
# and of a batch API's calls alike.
BACKOFF_BASE = 0.5
BACKOFF_MAX = 30.0


def retry_after(headers: Any) -> float | None:
    """Seconds the server asked us to wait (``retry-after-ms`` or ``retry-after``)."""
    if headers is None:
        return None
    value = headers.get("retry-after-ms")
    if value:
        try:
            return max(0.0, float(value) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        when = email.utils.parsedate_to_datetime(value) if value else None
        if when is None:
            return None
        return max(0.0, when.timestamp() - time.time())


def backoff_delay(
    retry: int, base: float, cap: float, rand: Callable[[], float] = random.random
) -> float:
    """Exponential backoff with jitter: between half and all of ``base * 2**retry``."""
    ceiling = min(cap, base * (2**retry))
    return ceiling * (0.5 + rand() / 2)
