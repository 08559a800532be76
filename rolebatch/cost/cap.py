"""``--max-cost``: what an output file may cost in all, kept before each request.

Each request reserves its estimated cost before it is sent, the way the
limiter reserves tokens, and settles it from the usage that came back.  A
reservation that does not fit waits while requests are in flight (their
estimates are usually high, and what they hand back may make room), asking
for the estimate again each time; with nothing in flight and still no room,
the cap is reached.  Overshoot is therefore bounded by what was in flight, and
by how far those requests' real usage exceeded their estimates.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import anyio

from ..errors import BudgetReached
from ..records.lines import RecordFailure


class SpendCap:
    def __init__(self, limit: Decimal, spent_before: Decimal):
        self.limit = limit
        self.spent_before = spent_before  # what the output's existing lines cost
        self.spent = Decimal(0)  # settled in this run
        self.reserved = Decimal(0)  # in flight
        self._settled: anyio.Event | None = None

    @property
    def total(self) -> Decimal:
        return self.spent_before + self.spent

    async def reserve(self, amount: Callable[[], Decimal]) -> Decimal | None:
        """Hold the cost of a request about to go (asked again after each
        settle); None if it cannot fit even once nothing is in flight."""
        while True:
            needed = amount()
            if self.total + self.reserved + needed <= self.limit:
                self.reserved += needed
                return needed
            if self.reserved <= 0:
                return None
            if self._settled is None:
                self._settled = anyio.Event()
            await self._settled.wait()

    async def hold(self, amount: Callable[[], Decimal], attempts_before: int) -> Decimal:
        """Reserve the next attempt of a record that has made
        ``attempts_before`` so far.  A first attempt that does not fit is not
        made (BudgetReached: the record stays to do); a later one ends the
        record as kind ``budget`` (RecordFailure)."""
        reserved = await self.reserve(amount)
        if reserved is not None:
            return reserved
        if attempts_before == 0:
            raise BudgetReached("--max-cost reached")
        raise RecordFailure(
            "budget",
            f"--max-cost ${self.limit} reached after {attempts_before} attempt(s); raise it"
            " and run the same command to try this record again",
        )

    def settle(self, reserved: Decimal, actual: Decimal) -> None:
        self.reserved -= reserved
        self.spent += actual
        if self._settled is not None:
            self._settled.set()
            self._settled = None
