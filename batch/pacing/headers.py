"""What a response's rate-limit headers say, in one shape for every provider.

x-ratelimit-limit-requests: 1200        the limit, per minute
x-ratelimit-remaining-requests: 19      what the server has left now
x-ratelimit-reset-requests: 0.95s       when it is back to full
(the same with -tokens)
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

# The budgets a limiter may hold; a request costs 1 of ``requests`` and its
# tokens of the others.
BUDGETS = ("requests", "tokens", "input_tokens", "output_tokens")


@dataclass(frozen=True)
class Reading:
    """One budget as the server reported it."""

    limit: float | None = None  # per minute
    remaining: float | None = None
    reset: float | None = None  # seconds until the budget is full again


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


def read_limits(headers: Mapping[str, str]) -> dict[str, Reading]:
    """Every budget the headers speak of (none: an empty dict)."""
    readings: dict[str, Reading] = {}
    for budget in ("requests", "tokens"):
        reading = Reading(
            _number(headers, f"x-ratelimit-limit-{budget}"),
            _number(headers, f"x-ratelimit-remaining-{budget}"),
            parse_reset(headers.get(f"x-ratelimit-reset-{budget}")),
        )
        if reading != Reading():
            readings[budget] = reading
    return readings
