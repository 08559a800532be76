"""What a response's rate-limit headers say, in one shape for every provider.

x-ratelimit-limit-requests: 1200        the limit, per minute
x-ratelimit-remaining-requests: 19      what the server has left now
x-ratelimit-reset-requests: 0.95s       when it is back to full
(the same with -tokens)
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

# The budgets a limiter may hold; a request costs 1 of ``requests`` and its
# tokens of the others.
BUDGETS = ("requests", "tokens", "input_tokens", "output_tokens")


@dataclass(frozen=True)
class Reading:
    """One budget as the server reported it."""

    limit: float | None = None  # per minute
    remaining: float | None = None
    reset: float | None = None  # seconds until the budget is full again
    # The reset was a time (Anthropic's, OpenRouter's), not a duration: when
    # the window ends is known however late the answer is read.
    timed: bool = False


def parse_reset(value: str | None) -> float | None:
    """``x-ratelimit-reset-*`` values: "1s", "6m0s", "20ms", "1h2m3.5s" or plain seconds."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    total, matched = 0.0, False
    for number, unit in re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", value):
        matched = True
        total += float(number) * {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}[unit]
    return total if matched else None


def _number(headers: Mapping[str, str], name: str) -> float | None:
    value = headers.get(name)
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return None


def _until(value: str | None, now: float | None = None) -> float | None:
    """Seconds from now until an RFC 3339 time (Anthropic's resets)."""
    if not value:
        return None
    try:
        when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _epoch_ms(value: str | None, now: float | None = None) -> float | None:
    """Seconds from now until a time in milliseconds since the epoch (OpenRouter's)."""
    if not value:
        return None
    try:
        return max(0.0, float(value) / 1000 - (time.time() if now is None else now))
    except ValueError:
        return None


def read_limits(headers: Mapping[str, str], now: float | None = None) -> dict[str, Reading]:
    """Every budget the headers speak of (none: an empty dict).  ``now`` is
    the wall-clock time, for resets given as times."""
    readings: dict[str, Reading] = {}
    for budget in ("requests", "tokens"):
        reading = Reading(
            _number(headers, f"x-ratelimit-limit-{budget}"),
            _number(headers, f"x-ratelimit-remaining-{budget}"),
            parse_reset(headers.get(f"x-ratelimit-reset-{budget}")),
        )
        if reading != Reading():
            readings[budget] = reading
    for budget in ("requests", "tokens", "input_tokens", "output_tokens"):
        name = "anthropic-ratelimit-" + budget.replace("_", "-")
        reading = Reading(
            _number(headers, f"{name}-limit"),
            _number(headers, f"{name}-remaining"),
            _until(headers.get(f"{name}-reset"), now),
            timed=True,
        )
        if reading != Reading(timed=True):
            readings[budget] = reading
    if "requests" not in readings and headers.get("x-ratelimit-remaining") is not None:
        readings["requests"] = Reading(
            None,
            _number(headers, "x-ratelimit-remaining"),
            _epoch_ms(headers.get("x-ratelimit-reset"), now),
            timed=True,
        )
    return readings
