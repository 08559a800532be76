"""Pacing requests to the provider's limits.

Providers enforce requests/min and tokens/min over short windows (1,200/min
is 20 a second, not 1,200 at once).  Four things shape the pace:

- our own budgets, one per limited quantity (requests, tokens, input and
  output tokens), refilling continuously at the limit given (``--rpm``,
  ``--tpm``) or stated by the server's headers, whichever is lower, and
  holding about one second's worth;
- what the server says it has left until its window renews
  (``x-ratelimit-remaining-*``, ``-reset-*``): no request goes out that the
  server has told us it would refuse, counting what we sent since it said so.
  This guard is what lets us pace at the limit itself once the server has
  confirmed it, instead of a few percent under it.  Our count of the server's
  window is the state machine in ``window``: the limiter renews it as time
  passes, spends from it as requests go, and tells it what answers say;
- a hold-back after a 429: no new request until its ``Retry-After`` has passed;
- with no limit known at all, a window on requests in flight: it starts at the
  worker count, halves on a 429 and grows back by about one per window of
  successes (AIMD).  A burst of 429s for requests sent together halves it
  once: only a request sent after the last cut can cut again.

The first request goes alone (for at most ``PROBE_PATIENCE`` seconds): its
answer tells the limits, what a request really costs in tokens and whether the
endpoint answers at all, before every worker fires at once.  Until a request
has succeeded, the next goes alone too: an endpoint that refuses every
request is found out after a few, not after a burst of them.  Waiters re-plan
whenever something changes (an answer settles its tokens, headers arrive, a
slot frees up), not only when the delay they computed runs out.

Every method takes the time from one injectable clock, so tests move the clock
instead of sleeping.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio

from .bucket import Bucket
from .headers import BUDGETS, Reading, read_limits
from .queueing import CLEAR, QUEUED, QueueWatch
from .window import EPSILON, Answer, Window

if TYPE_CHECKING:
    from .shared import SharedQuota

# Pace this far under a limit nobody has confirmed: a server counting in fixed
# one-second windows sees arrival jitter, and a refused request costs a retry.
HEADROOM = 0.97
# Pace a shared quota this far under the limit, even once the server has
# confirmed it: what one process hears from the server cannot guard what the
# others send in the same window.
SHARED_HEADROOM = 0.98
# The first request goes alone until it is answered, or this long at most.
PROBE_PATIENCE = 2.0


class Clock:
    """Real time.  Tests pass an object with the same two methods."""

    def now(self) -> float:
        return anyio.current_time()

    async def sleep(self, seconds: float, wake: anyio.Event | None = None) -> None:
        """Sleep ``seconds`` (may be infinite), or until ``wake`` is set."""
        if wake is None:
            await anyio.sleep(seconds)
            return
        with anyio.move_on_after(seconds):
            await wake.wait()


@dataclass(frozen=True)
class Tokens:
    """What one request takes of the budgets: its prompt and completion
    tokens (and one request).  Dollars are ``cost/``'s business."""

    prompt: float = 0.0
    completion: float = 0.0

    def of(self, budget: str) -> float:
        if budget == "requests":
            return 1.0
        if budget == "input_tokens":
            return self.prompt
        if budget == "output_tokens":
            return self.completion
        return self.prompt + self.completion


class Budget:
    """One limited quantity: our own pace for it, and the server's window on it."""

    def __init__(self, name: str, given: float | None, now: float):
        self.name = name
        self.given = given  # per minute, from the command line
        # A second's worth of the limit as known (given, or stated by the
        # server); the bucket paces at ``rate / share``: the share of it this
        # process may use while a shared quota is away.
        self.rate = given / 60 * HEADROOM if given else 0.0
        self.share = 1.0
        self.bucket = Bucket.paced(self.rate, now) if given else None
        self.confirmed = False  # the server's headers stated the limit
        # What the server had left when it first confirmed the limit, until
        # told to a shared quota (None: nothing to tell).
        self.top: float | None = None
        self.window = Window()
        # The most the server has said a window holds.
        self.peak = 0.0
        # Running totals of what went out; a permit's mark is both after its take.
        self.sent = 0.0
        self.count = 0
        # How far a reservation typically is from what the answer used: what
        # went out since the server last spoke is counted at its reservation,
        # so each such request may be off by about this much.
        self.error = 0.0

    @property
    def full(self) -> float:
        """A renewed window's worth: all of it, or our share while a shared
        quota is away."""
        return self.peak / self.share

    def renew(self, now: float) -> None:
        """Time has passed: a window whose reset is past opens afresh."""
        self.window = self.window.renew(now, self.full, self.count)

    def wait(self, cost: float, now: float, answers_pending: bool) -> float:
        """Seconds before a request costing ``cost`` may go; asks, changes nothing."""
        if self.count == 0:
            return 0.0  # the first request goes at once; a debt paces the rest
        wait = self.bucket.wait(cost, now) if self.bucket is not None else 0.0
        window = self.window.renew(now, self.full, self.count)
        return max(wait, window.wait(cost, self.peak, now, answers_pending))

    def take(self, cost: float, now: float) -> tuple[float, int]:
        if self.bucket is not None:
            self.bucket.take(cost, now)
        self.window = self.window.spend(cost)
        self.sent += cost
        self.count += 1
        return self.sent, self.count

    def settle(self, reserved: float, used: float, now: float) -> None:
        if self.name == "requests":
            return
        if self.bucket is not None:
            self.bucket.give(reserved - used, now)
        self.error += 0.2 * (abs(used - reserved) - self.error)

    def learn(
        self, reading: Reading, mark: tuple[float, int], own: float, went: float, now: float
    ) -> None:
        """``reading`` came with the answer to the request whose mark is ``mark``,
        which went out at ``went`` and cost ``own``."""
        if reading.remaining is not None:
            sent, count = mark
            # All sent after this request, at reservation (each perhaps a little short).
            after = (self.sent - sent) + self.error * (self.count - count)
            # A reset given as a time places the window's end exactly: as if
            # the answer were read the moment the server spoke.
            spoke = now if reading.timed else went
            answer = Answer(reading.remaining, reading.reset, count, after, spoke)
            self.window = self.window.hear(answer, now, self.peak, self.full)
            self.peak = max(self.peak, reading.remaining + own)
        if reading.limit is None or reading.limit <= 0:
            return
        # No headroom: the guard on what the server has left absorbs the jitter.
        self.rate = (min(reading.limit, self.given) if self.given else reading.limit) / 60
        rate = self.rate / self.share
        if self.bucket is None:
            self.bucket = Bucket.paced(rate, now)
        elif abs(self.bucket.rate - rate) > EPSILON:
            self.bucket.retune(rate, now)
        left = self.window.left
        if not self.confirmed and left is not None:
            # What the server has left may go now: it said so, and the guard
            # above holds anything beyond it.
            self.bucket.level = max(self.bucket.level, min(self.bucket.capacity, left))
            self.top = max(0.0, left)
        self.confirmed = True


@dataclass
class Permit:
    """What one request reserved; handed back to ``release`` with the real usage."""

    cost: Tokens
    marks: dict[str, tuple[float, int]]
    at: float  # when it was granted: when its request went out
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
        *,
        itpm: float | None = None,
        otpm: float | None = None,
        probe: bool = True,
        shared: SharedQuota | None = None,
        queueing: bool = False,
        window: int | None = None,
    ):
        self.clock = clock or Clock()
        self.shared = shared
        now = self.clock.now()
        given = dict(zip(BUDGETS, (rpm, tpm, itpm, otpm), strict=True))
        self.budgets = {name: Budget(name, given[name], now) for name in BUDGETS}
        self.hold_until = -math.inf
        self.max_in_flight = max_in_flight
        # The AIMD window; used only while no limit is known to pace by.  It
        # starts open (--concurrency is what the user asked for), or at
        # ``window`` (a server on this machine: what it can work on at once).
        self.window = float(min(window, max_in_flight) if window else max_in_flight)
        # A server that queues what it cannot work on yet: its answers' time
        # per token says when in flight is too many (``queueing``).
        self.queue = QueueWatch() if queueing else None
        self.cuts = 0
        self.in_flight = 0
        self.probing = probe
        self._probe_deadline = math.inf
        self._lock: anyio.Lock | None = None
        self._changed: anyio.Event | None = None

    # -- the pace -------------------------------------------------------

    @property
    def knows_limits(self) -> bool:
        return any(budget.bucket is not None for budget in self.budgets.values())

    def has_room(self, now: float | None = None) -> bool:
        now = self.clock.now() if now is None else now
        if self.probing and now >= self._probe_deadline:
            self.probing = False  # the first answer is slow: stop waiting for it
        if self.probing:
            return self.in_flight == 0
        if self.knows_limits:
            return True  # paced by the budgets; concurrency is the workers' count
        return self.in_flight < max(1, int(self.window))

    def delay(self, cost: Tokens, now: float) -> float:
        """Seconds before a request costing ``cost`` may go (0: now; inf: when
        something changes)."""
        wait = self.hold_until - now
        if not self.has_room(now):
            wait = max(wait, self._probe_deadline - now if self.probing else math.inf)
        pending = self.in_flight > 0
        for budget in self.budgets.values():
            wait = max(wait, budget.wait(cost.of(budget.name), now, pending))
        return max(0.0, wait)

    async def acquire(self, cost: Tokens | Callable[[], Tokens]) -> Permit:
        """Wait until the pace allows one more request; callers go in FIFO order.
        ``cost`` may be a function: it is asked again each time the pace is
        re-planned, so an estimate that improved meanwhile is the one reserved."""
        if self._lock is None:
            self._lock = anyio.Lock()
        async with self._lock:
            if self.probing and self._probe_deadline == math.inf:
                self._probe_deadline = self.clock.now() + PROBE_PATIENCE
            while True:
                if self.shared is not None and self.shared.holding:
                    await self.shared.tell_hold()  # the others wait from now, not later
                now = self.clock.now()
                for budget in self.budgets.values():
                    budget.renew(now)
                current = cost() if callable(cost) else cost
                wait = self.delay(current, now)
                if wait <= 0 and self.shared is not None:
                    wait = await self._shared_wait(current)
                if wait <= 0:
                    break
                if self._changed is None:
                    self._changed = anyio.Event()
                await self.clock.sleep(wait, self._changed)
            marks = {name: b.take(current.of(name), now) for name, b in self.budgets.items()}
            if self.shared is not None and not self.shared.up:
                self.shared.spent_away(current)  # charged to the shared budgets on return
            self.in_flight += 1
            return Permit(current, marks, now, self.cuts)

    async def _shared_wait(self, cost: Tokens) -> float:
        """The shared quota's word on a request the local pace lets go: 0 when
        granted (and taken there).  With the quota away, the local budgets
        pace at this process's share of the limit until it is back."""
        assert self.shared is not None
        rates = {name: budget.rate * SHARED_HEADROOM for name, budget in self.budgets.items()}
        tops = {name: b.top for name, b in self.budgets.items() if b.top is not None}
        wait = await self.shared.take(rates, cost, tops)
        if self.shared.up:
            for name in tops:
                self.budgets[name].top = None
        share = 1 if self.shared.up else self.shared.processes
        if share != self.budgets["requests"].share:
            self.set_share(share)
            if wait is None:
                return self.delay(cost, self.clock.now())
        return 0.0 if wait is None else wait

    def set_share(self, share: float) -> None:
        """Pace at ``1/share`` of every known limit (a shared quota is away)."""
        now = self.clock.now()
        for budget in self.budgets.values():
            budget.share = share
            if budget.bucket is not None and budget.rate > 0:
                budget.bucket.retune(budget.rate / share, now)
                if share > 1:
                    # What this bucket held was the whole limit's: the others
                    # hold theirs too.  Start the local share empty.
                    budget.bucket.level = min(budget.bucket.level, 0.0)

    def _wake(self) -> None:
        """Something changed that may shorten a wait: waiters re-plan."""
        if self._changed is not None:
            self._changed.set()
            self._changed = None

    def release(
        self,
        permit: Permit,
        used: Tokens | None,
        ok: bool,
        headers: Mapping[str, str] | None = None,
        seconds: float | None = None,
    ) -> None:
        """The request is over: free its slot, settle its tokens with what it
        really ``used`` (None: unknown, keep the reservation), learn from the
        answer's ``headers``, and (with no limit to pace by) widen the window a
        little after a success, or, at a server that queues, narrow it when
        the answer took ``seconds`` because it waited in line."""
        if permit.settled:
            return
        permit.settled = True
        self.in_flight -= 1
        try:
            now = self.clock.now()
            if ok:
                self.probing = False
            elif self.probing:
                # Still nothing that worked: the next request goes alone too.
                self._probe_deadline = now + PROBE_PATIENCE
            if used is not None:
                for name, budget in self.budgets.items():
                    budget.settle(permit.cost.of(name), used.of(name), now)
                if self.shared is not None:
                    self.shared.settle(permit.cost, used)
            if headers:
                for name, reading in read_limits(headers).items():
                    own = (used or permit.cost).of(name)
                    self.budgets[name].learn(reading, permit.marks[name], own, permit.at, now)
            if ok:
                self._after_success(permit, used, seconds)
        finally:
            self._wake()  # whatever happened above, nobody waits for this slot in vain

    def _after_success(self, permit: Permit, used: Tokens | None, seconds: float | None) -> None:
        if self.queue is not None and used is not None and seconds is not None:
            slower = self.queue.observe(seconds, used.completion)
            if slower >= QUEUED:
                self._cut(permit)
                return
            if slower > CLEAR:
                return  # neither queued nor clear: hold the window where it is
        if self.window < self.max_in_flight:
            self.window = min(float(self.max_in_flight), self.window + 1.0 / self.window)

    def _cut(self, permit: Permit | None) -> None:
        """Halve the window, unless it was cut after ``permit``'s request went
        out: a burst of bad news about requests sent together is one cut."""
        if permit is None or permit.cuts == self.cuts:
            self.window = max(1.0, self.window / 2)
            self.cuts += 1

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
        if self.shared is not None:
            self.shared.hold(wait)
        self._cut(permit)

    def on_timeout(self, permit: Permit) -> None:
        """No answer in time.  At a server that queues, the abandoned request
        is still being worked on there: fewer go in flight, and nothing goes
        for about one answer's time, so the retry does not join the same queue
        at once."""
        if self.queue is None:
            return
        self._cut(permit)
        self.hold_until = max(self.hold_until, self.clock.now() + self.queue.one_answer)
        self._wake()
