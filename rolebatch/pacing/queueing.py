"""Queueing at a server that works on a few requests at a time.

A server on the user's own machine (llama.cpp's, Ollama, vLLM) sends no
rate-limit headers and no 429: it takes every request and queues what it
cannot work on yet.  Sending it more at once buys nothing, and the requests
that wait may time out and be sent again into the same queue.  What tells:
each answer's time per completion token, against the best seen lately.  When
it is nearly twice that, answers are waiting in line at the server, and the
number in flight is halved; while it stays near the best, one more may go.
Per token, because a long answer is not a queued one.
"""

from __future__ import annotations

from collections import deque

# Answers this much slower per token than the best lately were queued.
QUEUED = 1.8
# Answers within this of the best were not: one more may go in flight.
CLEAR = 1.3
RECENT = 32


class QueueWatch:
    def __init__(self) -> None:
        self._per_token: deque[float] = deque(maxlen=RECENT)
        self._seconds: deque[float] = deque(maxlen=RECENT)

    def observe(self, seconds: float, completion_tokens: float) -> float:
        """Note one answer; how much slower per token it was than the best lately."""
        per_token = seconds / max(1.0, completion_tokens)
        self._per_token.append(per_token)
        self._seconds.append(seconds)
        best = min(self._per_token)
        return per_token / best if best > 0 else 1.0

    @property
    def one_answer(self) -> float:
        """Seconds the server takes for one answer with nothing ahead of it
        (the quickest lately; 0 before any)."""
        return min(self._seconds, default=0.0)
