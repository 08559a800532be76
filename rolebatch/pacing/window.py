"""The server's window on one limit, as we count it: a small state machine.

A server that states what it has left (``x-ratelimit-remaining-*``) counts in
windows that renew at a time it also states (``-reset-*``).  We keep our own
count of that window, because answers arrive out of the order their requests
were sent and one answer's ``remaining`` may or may not count the requests
sent around it.

States (``Window.state``):

- ``UNKNOWN``: the server has not said what it has left;
- ``OPEN``: it has, and when the window renews (``reset_at``);
- ``LAPSED``: what is left is known, when the window renews is not: we counted
  the window renewed and no answer has said yet when the new one ends (or the
  server never says).

Events, each a pure function of (window, event, time) returning the next
window; nothing here reads a clock or keeps a reference:

- ``renew(now, full, count)``: time passes.  An open window whose reset has
  passed opens afresh with ``full`` left (the whole window, or this process's
  share of it while a shared quota is away), and remembers when and after how
  many requests it renewed;
- ``spend(cost)``: a request goes out;
- ``hear(answer, now, peak, full)``: an answer tells the server's count.

``wait`` asks, and changes nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

UNKNOWN, OPEN, LAPSED = "unknown", "open", "lapsed"
# Answers whose resets are this close speak of the same window of the server's.
SAME_WINDOW = 0.25
EPSILON = 1e-9


@dataclass(frozen=True)
class Answer:
    """What one answer's headers say of a window, and which request it answers."""

    remaining: float
    reset: float | None  # seconds to the window's end, as the server said; None: not said
    count: int  # requests sent up to and with this one (its mark)
    after: float  # what went out after it, at reservation
    sent: float  # when its request went out: the server spoke after that, and before we read

    def ends(self, now: float) -> tuple[float, float]:
        """When the window it speaks of ends, at the earliest and at the latest:
        the server said ``reset`` at some moment between the request's going
        out and ``now``, when we read it.  A prompt answer pins the end to
        within its round trip; one read late (a loaded machine, a slow proxy)
        only bounds it."""
        if self.reset is None:
            return math.inf, math.inf
        return self.sent + self.reset, now + self.reset


@dataclass(frozen=True)
class Window:
    left: float | None = None  # what the server has left, less what we sent since
    reset_at: float = math.inf
    # When we last counted the window renewed, and how many requests had gone
    # out by then: an answer to one of those is about an older window.
    renewed_at: float = -math.inf
    renewed_count: int = 0

    @property
    def state(self) -> str:
        if self.left is None:
            return UNKNOWN
        return OPEN if self.reset_at < math.inf else LAPSED

    def renew(self, now: float, full: float, count: int) -> Window:
        if self.state != OPEN or now < self.reset_at:
            return self
        return Window(left=full, renewed_at=self.reset_at, renewed_count=count)

    def spend(self, cost: float) -> Window:
        return self if self.left is None else replace(self, left=self.left - cost)

    def hear(self, answer: Answer, now: float, peak: float, full: float) -> Window:
        """Take the server's count into ours.

        Within one window our count (what it had when the window opened, less
        what we sent since) wins; the server's wins only when it has used more
        than we ever sent into the window: another client spends from the same
        quota, or our reservations were short.

        An answer that says no reset keeps the end we know: it cannot say a
        window renewed unseen.

        An answer to a request sent before we counted the window renewed, and
        whose window is over (its reset has passed, or is the renewal's own),
        says nothing of the window open now: taken as news, it would renew it
        again and send a second window's worth at once.  An answer to a request
        sent since, whose reset has passed (answers slower than the window),
        says the window we count is over: it renews at the next ``renew``.

        Each judgement takes the side of the answer's window's end
        (``Answer.ends``) that cannot send too much: it is a window before
        ours if it may have ended before ours began, a new one only if it
        cannot have ended with ours, and ours ends no earlier than it may."""
        earliest, reset_at = answer.ends(now)
        if self.left is None:  # the first word from the server
            return replace(self, left=answer.remaining - answer.after, reset_at=reset_at)
        if answer.reset is None:
            # No reset said: nothing places the answer's window.  One to a
            # request sent before we counted ours renewed is about the window
            # before; one since is about ours, whose end we keep.
            if answer.count <= self.renewed_count:
                return self
            reset_at = self.reset_at
            earliest = min(earliest, self.reset_at)
        over = answer.reset is not None and answer.reset <= 0
        if (
            answer.count <= self.renewed_count
            and self.state == LAPSED
            and (over or earliest < self.renewed_at + SAME_WINDOW)
        ):
            return self  # about a window before the one we count
        left = self.left
        if self.state == OPEN:
            if reset_at < self.reset_at - SAME_WINDOW:
                return self  # a late answer about a window that has passed
            if earliest > self.reset_at + SAME_WINDOW:
                left = full  # a window opened that we had not seen renew
            elif reset_at - earliest > SAME_WINDOW:
                # Ours, read late: its end is known only loosely, and ours
                # (from an answer read sooner) no later than it may be.
                reset_at = self.reset_at
            reset_at = max(self.reset_at, reset_at)
        ours = full - left  # what we sent into this window
        if peak - answer.remaining > ours + EPSILON:
            left = min(left, answer.remaining - answer.after)
        return replace(self, left=left, reset_at=reset_at)

    def wait(self, cost: float, peak: float, now: float, answers_pending: bool) -> float:
        """Seconds the server's count holds a request costing ``cost`` (0:
        none; inf: until an answer says more).  Asks a renewed window."""
        if self.left is None or self.left >= min(cost, peak) - EPSILON:
            return 0.0
        if self.reset_at < math.inf:
            return max(0.0, self.reset_at - now)
        # Spent, and no reset known: the next answer will say; with none to
        # come, go and let the server tell us.
        return math.inf if answers_pending else 0.0
