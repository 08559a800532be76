"""A batch run's result lines: what a record's rounds come to, and writing them.

A record's line sums usage and cost over every round it was bought in (at the
batch price; a live re-ask's part at the live price), and its latency runs
from its last batch's start.  Lines are written with their answers kept in
the cache first (see ``via.live._keep_and_append``), then their rounds are
closed in the journal.
"""

from __future__ import annotations

import time
from decimal import Decimal

from ..plan import Plan
from ..progress import Tally
from ..providers.batch_api import BatchAPI
from ..records.job import Record
from ..records.lines import Outcome, output_line, token_counts
from .cached import CachedAnswers
from .journal import Journal, Round
from .request import line_fields
from .verdict import Verdict

# (job line, the line's text, its outcome, its cache key if it is to be stored)
Line = tuple[int, str, Outcome, bytes | None]


class BatchLines:
    def __init__(
        self,
        checked: Plan,
        api: BatchAPI,
        journal: Journal,
        rounds: dict[int, list[Round]],
        tally: Tally,
        cache: CachedAnswers | None,
    ):
        self.checked = checked
        self.config = checked.config
        self.output = checked.output
        self.price = checked.prices.batch
        self.api = api
        self.journal = journal
        self.rounds = rounds  # the run's open rounds, by job line: closed here
        self.tally = tally
        self.cache = cache

    def line(
        self,
        record: Record,
        rounds: list[Round],
        verdict: Verdict,
        live: Outcome | None = None,
    ) -> Line:
        """The line of a record whose batch ``rounds`` are all it got, or
        which went on ``live``, and its cache key if it is to be stored."""
        outcome = live or Outcome(verdict.response, verdict.error, repaired=verdict.repaired)
        outcome.attempts += len(rounds)
        if live is None:
            outcome.cost = None if self.price is None else Decimal(0)
        elif self.price is None:
            outcome.cost = None  # the batch part has no known price
        for r in rounds:
            if r.completion is None:
                continue  # an error or a request never run: not billed
            usage = self.api.parse(r.completion).usage
            outcome.usage.add(usage)
            counts = token_counts(usage)
            if outcome.cost is not None and counts is not None and self.price is not None:
                outcome.cost += self.price.cost(*counts)
        batch_id = rounds[-1].batch_id if rounds else None
        started = self._started(batch_id)
        if live is None:
            outcome.latency_s = max(0.0, time.time() - started) if started else 0.0
        label = self.checked.endpoint.label
        extra = line_fields(self.config, self.checked.endpoint, self.checked.task, record)
        key = self.cache.key(record) if self.cache is not None and outcome.ok else None
        return record.line, output_line(record, outcome, label, extra, batch_id), outcome, key

    def _started(self, batch_id: str | None) -> float | None:
        for entry in self.journal.entries.values():
            if entry.batch_id == batch_id:
                return entry.at
        return None

    def write(self, lines: list[Line]) -> None:
        """The lines into the output (their answers into the cache first),
        their rounds closed."""
        if not lines:
            return
        if self.cache is not None:
            self.tally.stored += self.cache.keep((key, outcome) for _, _, outcome, key in lines)
        self.output.append([(line, text) for line, text, _, _ in lines])
        self.output.sync()
        for _, _, outcome, _ in lines:
            self.tally.add(outcome)
        closed = [line for line, _, _, _ in lines if line in self.rounds]
        self.journal.close_rounds(closed)
        for line in closed:
            del self.rounds[line]
