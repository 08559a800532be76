"""Pacing requests to the provider's limits.

Providers enforce requests/min and tokens/min over short windows (600/min is
10/s, not 600 at once), so the budgets here refill continuously and hold at
most about one second's worth.  Three things shape the pace:

- the limits given (``--rpm``, ``--tpm``) or learned from ``x-ratelimit-*``
  response headers, whichever is lower;
- a hold-back after a 429: no new request until its ``Retry-After`` has passed;
- with no limit known at all, a window on requests in flight: it starts at the
  worker count, halves on a 429 and grows back by about one per window of
  successes (additive increase, multiplicative decrease).  A burst of 429s for
  requests sent together halves it once, not once per 429: only a request sent
  after the last cut can cut again.

Every method takes the time from one injectable clock, so tests move the clock
instead of sleeping.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

import anyio

# Pace this far under a limit: a server counting in fixed one-second windows
# sees arrival jitter, and a request over its limit costs a whole retry.
HEADROOM = 0.97
BURST_SECONDS = 1.0
EPSILON = 1e-9


class Clock:
    """Real time.  Tests pass an object with the same two methods."""

    def now(self) -> float:
        return anyio.current_time()

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(seconds)


class Bucket:
    """A budget that refills continuously at ``rate`` per second up to ``capacity``.

    Taking may drive the level below zero (a debt the refill pays off first),
    which is how a cost larger than the capacity, or a low estimate corrected
    after the fact, is accounted without stalling forever."""

    def __init__(self, rate: float, capacity: float, now: float):
        self.rate = rate
        self.capacity = capacity
        self.level = capacity
        self._stamp = now

    @classmethod
    def paced(cls, rate: float, now: float) -> Bucket:
        """A budget of about one second's burst that starts with one unit, not a
        full second: a server counting per second would refuse an opening burst
        on top of the refill."""
        bucket = cls(rate, 1.0, now)
        bucket.retune(rate, now)
        return bucket

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

    def clamp(self, most: float, now: float) -> None:
        """No more than ``most`` may be spent now (the server says so)."""
        self._refill(now)
        self.level = min(self.level, most)

    def retune(self, rate: float, now: float) -> None:
        self._refill(now)
        self.rate = rate
        self.capacity = max(1.0, rate * BURST_SECONDS)
        self.level = min(self.level, self.capacity)


def _per_second(per_minute: float) -> float:
    return per_minute / 60.0 * HEADROOM


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


def _int_header(headers: Mapping[str, str], name: str) -> int | None:
    value = headers.get(name)
    if value is None:
        return None
    try:
        return int(float(value))
    except ValueError:
        return None


@dataclass
class Permit:
    """What one request reserved; handed back to ``settle`` with the real usage."""

    tokens: float
    cuts: int = 0  # window cuts before this request was sent
    settled: bool = False


class Limiter:
    """The shared pace of a run: every HTTP attempt acquires a permit first."""

    def __init__(
        self,
        rpm: float | None = None,
        tpm: float | None = None,
        max_in_flight: int = 8,
        clock: Clock | None = None,
    ):
        self.clock = clock or Clock()
        now = self.clock.now()
        self._given_rpm, self._given_tpm = rpm, tpm
        self.requests: Bucket | None = None
        self.tokens: Bucket | None = None
        if rpm:
            self.requests = Bucket.paced(_per_second(rpm), now)
        if tpm:
            self.tokens = Bucket.paced(_per_second(tpm), now)
        self.hold_until = -math.inf
        self.max_in_flight = max_in_flight
        # The AIMD window; cut only while no limit is known to pace by.  It
        # starts open: --concurrency is what the user asked for, and a 429 is
        # cheap to learn from.
        self.window = float(max_in_flight)
        self.cuts = 0
        self.in_flight = 0
        self._lock: anyio.Lock | None = None
        self._slot_freed: anyio.Event | None = None

    # -- the pace -------------------------------------------------------

    def delay(self, tokens: float, now: float) -> float:
        """Seconds before a request costing ``tokens`` may go (0: now)."""
        wait = self.hold_until - now
        if self.requests is not None:
            wait = max(wait, self.requests.wait(1, now))
        if self.tokens is not None:
            wait = max(wait, self.tokens.wait(tokens, now))
        return max(0.0, wait)

    @property
    def knows_limits(self) -> bool:
        return self.requests is not None or self.tokens is not None

    def has_room(self) -> bool:
        if self.knows_limits:
            return True  # paced by the budgets; concurrency is the workers' count
        return self.in_flight < max(1, int(self.window))

    async def acquire(self, tokens: float) -> Permit:
        """Wait until the pace allows one more request; callers go in FIFO order."""
        if self._lock is None:
            self._lock = anyio.Lock()
        async with self._lock:
            while True:
                if not self.has_room():
                    self._slot_freed = anyio.Event()
                    await self._slot_freed.wait()
                    continue
                wait = self.delay(tokens, self.clock.now())
                if wait <= 0:
                    break
                await self.clock.sleep(wait)
            now = self.clock.now()
            if self.requests is not None:
                self.requests.take(1, now)
            if self.tokens is not None:
                self.tokens.take(tokens, now)
            self.in_flight += 1
            return Permit(tokens, self.cuts)

    def release(self, permit: Permit, used_tokens: float | None, ok: bool) -> None:
        """The request is over: free its slot, correct the token estimate, and
        (with no limit to pace by) widen the window a little after a success."""
        if permit.settled:
            return
        permit.settled = True
        self.in_flight -= 1
        now = self.clock.now()
        if self.tokens is not None and used_tokens is not None:
            self.tokens.give(permit.tokens - used_tokens, now)
        if ok and self.window < self.max_in_flight:
            self.window = min(float(self.max_in_flight), self.window + 1.0 / self.window)
        if self._slot_freed is not None:
            self._slot_freed.set()

    # -- what the server says --------------------------------------------

    def on_rate_limited(
        self, retry_after: float | None, fallback: float, permit: Permit | None = None
    ) -> None:
        """A 429: hold all new requests for exactly what the server asked
        (or ``fallback`` when it did not say), and halve the window unless it
        was cut after ``permit``'s request went out."""
        now = self.clock.now()
        wait = retry_after if retry_after is not None else fallback
        self.hold_until = max(self.hold_until, now + wait)
        if permit is None or permit.cuts == self.cuts:
            self.window = max(1.0, self.window / 2)
            self.cuts += 1

    def on_headers(self, headers: Mapping[str, str]) -> None:
        """Learn limits and remaining budget from ``x-ratelimit-*`` headers.

        ``limit`` sets the pace (unless a lower one was given); ``remaining``
        caps what our budget may still spend, so a server counting in short
        windows is not asked for more than it has left; at zero, nothing more
        goes until ``reset``."""
        now = self.clock.now()
        for kind, given in (("requests", self._given_rpm), ("tokens", self._given_tpm)):
            limit = _int_header(headers, f"x-ratelimit-limit-{kind}")
            remaining = _int_header(headers, f"x-ratelimit-remaining-{kind}")
            reset = parse_reset(headers.get(f"x-ratelimit-reset-{kind}"))
            bucket = getattr(self, kind)
            if limit is not None and limit > 0:
                rate = _per_second(min(limit, given) if given else limit)
                if bucket is None:
                    bucket = Bucket.paced(rate, now)
                    setattr(self, kind, bucket)
                elif abs(bucket.rate - rate) > 1e-9:
                    bucket.retune(rate, now)
            if remaining is None:
                continue
            if bucket is not None:
                bucket.clamp(remaining, now)
            if remaining <= 0 and reset is not None:
                self.hold_until = max(self.hold_until, now + reset)
