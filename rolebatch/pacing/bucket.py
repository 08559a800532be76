"""A budget that refills continuously: our own pace for one limited quantity."""

from __future__ import annotations

from .window import EPSILON

# A bucket holds about this many seconds of its rate: a server counting per
# second would refuse more at once.
BURST_SECONDS = 1.0


class Bucket:
    """A budget that refills continuously at ``rate`` per second up to ``capacity``.

    Taking may drive the level below zero (a debt the refill pays off first),
    which is how a cost larger than the capacity, or a low estimate corrected
    after the fact, is accounted without stalling forever."""

    def __init__(self, rate: float, capacity: float, now: float, level: float | None = None):
        self.rate = rate
        self.capacity = capacity
        self.level = capacity if level is None else min(capacity, level)
        self._stamp = now

    @classmethod
    def paced(cls, rate: float, now: float, level: float = 1.0) -> Bucket:
        """A budget of about one second's burst that starts with ``level`` (one
        unit unless the server said it has more): a server counting per second
        would refuse an opening burst on top of the refill."""
        return cls(rate, max(1.0, rate * BURST_SECONDS), now, level)

    def _refill(self, now: float) -> None:
        if now > self._stamp:
            self.level = min(self.capacity, self.level + (now - self._stamp) * self.rate)
        self._stamp = max(self._stamp, now)

    def wait(self, amount: float, now: float) -> float:
        """Seconds until ``amount`` can be taken (0: now).  A cost above the
        capacity waits for a full bucket rather than forever."""
        self._refill(now)
        needed = min(amount, self.capacity)
        if self.level >= needed - EPSILON:  # float dust must not stall a waiter
            return 0.0
        return (needed - self.level) / self.rate

    def take(self, amount: float, now: float) -> None:
        self._refill(now)
        self.level -= amount

    def give(self, amount: float, now: float) -> None:
        """Return (or, negative, charge more of) a reservation."""
        self._refill(now)
        self.level = min(self.capacity, self.level + amount)

    def retune(self, rate: float, now: float) -> None:
        self._refill(now)
        self.rate = rate
        self.capacity = max(1.0, rate * BURST_SECONDS)
        self.level = min(self.level, self.capacity)
