"""Buying answers through a provider's batch API: half the price, a separate
quota, results within 24 hours.

    submit    records still to do, packed into request files of at most
              --batch-size requests → upload → create (journaled step by step)
    wait      poll each batch, with backoff up to --poll-interval
    collect   an ended batch's results, judged by instructor as a live answer
              would be (``verdict.replay``) → output lines
    rounds    what the provider did not finish goes into the next round of
              the same run: an answer that needs a re-ask, a request that
              met a transient error (5xx, 429, 408, a timeout: up to the
              retries a live record gets, then an error line of its kind),
              and a request its batch never ran (expired, cancelled).  A
              record left unexecuted round after round stops the run (exit
              3) instead of looping; a batch someone cancels while the run
              waits for it stops the run too, its rest still to do.

Every request in a batch is bought once.  Each step is journaled before the
next (``via.journal``), a batch created just before a crash is found and
adopted (``via.submission``; OpenAI: by the tag in its metadata; Anthropic,
whose batches carry none: by its time and size, stopping when that is
ambiguous), every
request's custom_id carries its batch's tag so that no result is taken from
another batch, and a record in a batch that is not over is never packed
into another.  A record counts as answered only by a result line
with status 200, never by the provider's counts; a record a batch did not
answer is still to do, never a failure.  A record's rounds are journaled
before its line is written, so attempts and retry budgets survive a crash.
What happens if the process dies right after each paid step:

    after "create" returned   the batch exists, the journal says "uploaded":
                              the next run finds it by tag and adopts it
    while collecting          lines already written are skipped when the
                              batch is collected again; rounds are keyed by
                              (line, attempt), so none is doubled

With --no-wait the run submits, collects whatever has ended, and exits 4
(pending); the same command later collects.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

import anyio

from ..errors import AbortError, EndpointError, Interrupted, Pending, UsageError
from ..plan import Plan
from ..progress import Reporter, Tally
from ..providers.batch_api import BatchAPI, BatchInfo, Result, open_batches
from ..records.job import Record
from ..records.lines import ErrorInfo
from ..redaction import Redactor
from . import live, signals
from .batch_lines import BatchLines
from .cached import CachedAnswers
from .journal import (
    Entry,
    Journal,
    Round,
    busy_message,
    custom_id,
    mark_of,
    new_tag,
    parse_custom_id,
)
from .request import instructor_kwargs
from .submission import Submitter
from .verdict import Verdict, kind_of_status, replay

FIRST_POLL = 2.0
CACHE_CHUNK = 500  # records looked up in the cache at once
POLL_GROWTH = 1.5


async def buy(
    checked: Plan,
    tally: Tally,
    reporter: Reporter,
    handle_signals: bool,
    shut_down: str | None = None,
    cache: CachedAnswers | None = None,
) -> None:
    """Buy the answers of every record still to do through the batch API.
    ``shut_down``: the model is gone (why, in words): the batches already at
    the provider are collected, nothing is submitted, and the run then stops
    with a UsageError if records are left."""
    api = open_batches(checked.endpoint, checked.config.bought.timeout)
    run = _BatchRun(checked, tally, reporter, api, cache)
    run.shut_down = shut_down
    try:
        await run.go(handle_signals)
    finally:
        with anyio.CancelScope(shield=True):
            await api.aclose()


class _BatchRun:
    def __init__(
        self,
        checked: Plan,
        tally: Tally,
        reporter: Reporter,
        api: BatchAPI,
        cache: CachedAnswers | None,
    ):
        self.checked = checked
        self.config = checked.config
        self.output = checked.output
        self.tally = tally
        self.reporter = reporter
        self.api = api
        self.redact = Redactor(checked.endpoint.api_key)
        self.journal = Journal.load(self.output.path)
        self.rounds = self.journal.rounds()
        self.lines = BatchLines(checked, api, self.journal, self.rounds, tally, cache)
        self.stopping: str | None = None
        self.shut_down: str | None = None  # the model is gone: submit nothing
        self.cache = cache  # --cache: a hit is written, not submitted
        # This run's own count of the rounds each record came back unexecuted
        # (or missing from the results); past the retries it is given up on.
        self.unexecuted: Counter[int] = Counter()
        self.given_up: set[int] = set()
        self.going_again: dict[int, str] = {}  # job line -> why, until it is packed
        self.waited_for: set[str] = set()  # batches this run saw under way
        where = checked.endpoint.base_url
        self.submit = Submitter(api, self.journal, self.output.path.name, where, self.waited_for)
        self.cancelled: list[tuple[str, int]] = []  # (batch, requests it never ran)
        self._wake: anyio.Event | None = None
        self._now = anyio.CancelScope()  # cancelled by a second signal

    # -- the loop ------------------------------------------------------------

    async def go(self, handle_signals: bool) -> None:
        failure: Exception | None = None
        async with anyio.create_task_group() as tasks:
            if handle_signals:
                tasks.start_soon(signals.watch, self._asked_to_stop, self._now.cancel)
            with self._now:
                try:
                    await self._loop()
                except Exception as exc:  # raised after the watcher is gone, ungrouped
                    failure = exc
            tasks.cancel_scope.cancel()
        if self._now.cancel_called:
            raise Interrupted(
                "interrupted twice: stopped at once; batches at the provider go on."
                " Run the same command to collect them."
            )
        if failure is not None:
            raise failure

    async def _loop(self) -> None:
        delay = min(FIRST_POLL, self.config.bought.batch.poll_interval)
        while True:
            await self.submit.adopt_or_create()
            changed = await self._check()
            if self.cancelled:
                raise self._stopped_by_cancel()
            if not self.stopping and self.shut_down is None:
                await self._submit()
            pending = [e for e in self.journal.entries.values() if e.at_provider]
            if not pending and self.shut_down is not None:
                left = sum(1 for _ in self._to_do())
                if left:
                    raise UsageError(
                        f"{self.shut_down} The batches already bought were collected;"
                        f" {left:,} records are still to do."
                    )
            if not pending and next(iter(self._to_do()), None) is None:
                if self.given_up:
                    raise self._gave_up()
                self.journal.forget_rounds()
                return
            if self.stopping:
                raise Interrupted(
                    f"interrupted by {self.stopping} while waiting: {busy_message(pending)};"
                    " they go on at the provider. Run the same command to collect them."
                )
            if not self.config.bought.batch.wait:
                raise Pending(
                    f"{busy_message(pending)}. Run the same command to collect"
                    " (rolebatch status OUTPUT shows them; rolebatch cancel OUTPUT cancels them)."
                )
            delay = min(FIRST_POLL, self.config.bought.batch.poll_interval) if changed else delay
            await self._sleep(delay)
            delay = min(self.config.bought.batch.poll_interval, delay * POLL_GROWTH)

    def _stopped_by_cancel(self) -> Interrupted:
        ids = ", ".join(batch_id for batch_id, _ in self.cancelled)
        left = sum(n for _, n in self.cancelled)
        others = [e for e in self.journal.entries.values() if e.at_provider]
        rest = f"; {busy_message(others)} and go on" if others else ""
        return Interrupted(
            f"batch {ids} was cancelled (rolebatch cancel, or at the provider) while this run"
            f" waited for it: what it answered is written, and its {left:,} requests it never"
            f" ran are still to do{rest}. Run the same command to submit them."
        )

    def _gave_up(self) -> EndpointError:
        tries = self.config.bought.max_retries + 1
        return EndpointError(
            f"{len(self.given_up):,} records were not run by {tries} batches in a row (the"
            " provider expired or cancelled them, or left them out of the results): they are"
            " still to do, with no line written. Run the same command later to submit them"
            " again."
        )

    async def _sleep(self, seconds: float) -> None:
        self._wake = anyio.Event()
        with anyio.move_on_after(seconds):
            await self._wake.wait()

    def _asked_to_stop(self, name: str) -> None:
        """A first signal: submit nothing more, stop waiting (a second stops at once)."""
        self.stopping = name
        self.reporter.note(
            f"{name}: nothing more is submitted and the run stops waiting; batches at the"
            f" provider go on ({name} again stops at once)"
        )
        if self._wake is not None:
            self._wake.set()

    # -- submitting --------------------------------------------------------

    def _to_do(self) -> Iterable[Record]:
        busy = self.journal.busy_lines(len(self.output.by_line))
        for record in self.checked.job.records(by_role=True):
            line = record.line
            if not self.output.is_done(line) and not busy[line] and line not in self.given_up:
                yield record

    async def _submit(self) -> None:
        if self.submit.queue_full:
            return
        pack: list[bytes] = []
        ids: list[str] = []
        size = 0
        sent = False
        tag = new_tag()
        for record in self._to_buy():
            request = self._request_or_line(record)
            if request is None:
                continue  # judged final from its rounds: its line is written
            attempt, body = request
            line = self.api.request_line(custom_id(record.line, attempt, tag), body)
            if pack and (len(pack) >= self._batch_size or size + len(line) > self.api.max_bytes):
                if not await self.submit.send(tag, ids, pack):
                    return
                sent = True
                pack, ids, size = [], [], 0
                tag = new_tag()
                line = self.api.request_line(custom_id(record.line, attempt, tag), body)
            self._count_again(record.line)
            pack.append(line)
            ids.append(custom_id(record.line, attempt, tag))
            size += len(line)
        if pack:
            sent = await self.submit.send(tag, ids, pack) or sent
        if sent:
            self.tally.batch_rounds += 1

    def _to_buy(self) -> Iterable[Record]:
        """The records to do less those the cache answers, whose lines are
        written here.  A record with rounds already is under way: its first
        request was not answered by the cache."""
        if self.cache is None:
            yield from self._to_do()
            return
        fresh: list[Record] = []
        for record in self._to_do():
            if self.rounds.get(record.line):
                yield record
                continue
            fresh.append(record)
            if len(fresh) == CACHE_CHUNK:
                yield from self._not_cached(fresh)
                fresh = []
        yield from self._not_cached(fresh)

    def _not_cached(self, records: list[Record]) -> list[Record]:
        assert self.cache is not None
        misses, lines = self.cache.served(records, self.checked.endpoint.label)
        self.lines.write(lines)
        return [record for record, _ in misses]

    def _count_again(self, line: int) -> None:
        rounds = self.rounds.get(line)
        reason = self.going_again.pop(line, None) or (rounds[-1].reason if rounds else None)
        if reason is not None:
            self.tally.again[reason] += 1

    @property
    def _batch_size(self) -> int:
        return max(1, min(self.config.bought.batch.batch_size, self.api.max_requests))

    def _request_or_line(self, record: Record) -> tuple[int, dict[str, Any]] | None:
        """(attempt, request) of the record's next request; None when its
        rounds already decide it (its line is written then)."""
        rounds = self.rounds.get(record.line, [])
        verdict = self._judge(record, rounds)
        if verdict.request is None:
            self.lines.write([self.lines.line(record, rounds, verdict)])
            return None
        return len(rounds) + 1, verdict.request

    def _judge(self, record: Record, rounds: list[Round]) -> Verdict:
        """What the record's answers so far come to: the request to send
        next (the first one, or a re-ask), the parsed answer, or an error."""
        return replay(
            instructor_kwargs(self.config, self.checked.endpoint, self.checked.task, record),
            [self.api.parse(r.completion) for r in rounds if r.kind == "answer"],
            self.checked.endpoint,
            self.redact,
            max_reasks=self.config.bought.max_reasks,
        )

    # -- collecting --------------------------------------------------------

    async def _check(self) -> bool:
        """Poll every batch that is not over; collect those that ended."""
        changed = False
        infos = []
        for entry in list(self.journal.entries.values()):
            if not entry.pending:
                continue
            assert entry.batch_id is not None
            info = await self.api.get(entry.batch_id)
            infos.append((entry, info))
            if info.ended:
                await self._collect(entry, info)
                changed = True
            else:
                self.waited_for.add(info.id)
        if infos:
            self.reporter.batches([(entry.batch_id, info) for entry, info in infos])
        return changed

    def _waiting(self, entry: Entry) -> dict[int, int]:
        """Job line → attempt, for each request of ``entry`` whose result is
        still awaited (not written before a crash, nor kept as a round)."""
        waiting = {}
        for value in entry.ids:
            parsed = parse_custom_id(value)
            if parsed is None or parsed[0] >= len(self.output.by_line):
                continue
            line, attempt, _ = parsed
            if not self.output.is_done(line) and attempt == len(self.rounds.get(line, [])) + 1:
                waiting[line] = attempt
        return waiting

    async def _collect(self, entry: Entry, info: BatchInfo) -> None:
        if info.status == "failed":
            self.journal.record(entry, "ended", status="failed", note="; ".join(info.errors))
            if info.queue_full:
                self.submit.queue_full = False  # retried once the queue has room: now, or later
                return
            raise EndpointError(
                f"the provider refused batch {info.id}: {'; '.join(info.errors) or 'no reason'}."
                " Its records are still to do; run the same command to submit them again."
            )
        waiting = self._waiting(entry)
        results: dict[int, Result] = {}
        async for result in self.api.results(info):
            parsed = parse_custom_id(result.custom_id)
            if parsed is None or waiting.get(parsed[0]) != parsed[1]:
                continue  # not ours, written before a crash, or not the attempt awaited
            if parsed[2] is not None and parsed[2] != mark_of(entry.tag):
                continue  # not a request of this batch's
            results[parsed[0]] = result
        lines, keep, live_reasks = [], [], []
        not_run = 0
        retries = self.config.bought.max_retries
        for record in self.checked.job.records():
            attempt = waiting.get(record.line)
            if attempt is None:
                continue
            rounds = self.rounds.get(record.line, [])
            this = Round.of_result(attempt, info.id, results.get(record.line), self.redact)
            if this is None or this.kind == "unexecuted":
                not_run += 1
                self._not_run(record.line)
                if this is not None:  # sent and not run: a submission that counts
                    keep.append((record.line, this))
                continue
            if this.kind == "error":
                if this.goes_again(rounds, retries, self.config.bought.max_rate_limit_retries):
                    keep.append((record.line, this))
                    self.going_again[record.line] = this.reason
                    continue
                assert this.status is not None
                kind = kind_of_status(this.status)
                error = ErrorInfo(kind, this.message or "no answer", this.status or None)
                lines.append(self.lines.line(record, [*rounds, this], Verdict(error=error)))
                continue
            verdict = self._judge(record, [*rounds, this])
            if verdict.request is not None:
                # Kept before anything else happens to it: a crash, or a live
                # re-ask that fails, leaves it to re-ask again.
                keep.append((record.line, this))
                self.going_again[record.line] = this.reason
                if self.config.bought.batch.reask == "live":
                    live_reasks.append((record, [*rounds, this]))
                continue
            lines.append(self.lines.line(record, [*rounds, this], verdict))
        self.journal.keep_rounds(keep)
        for line, this in keep:
            self.rounds.setdefault(line, []).append(this)
        self.lines.write(lines)
        if live_reasks:
            await self._reask_live(live_reasks)
        self.journal.record(entry, "ended", status=info.status)
        self.submit.queue_full = False  # a batch ended: the queue has room again
        if info.cancelled and info.id in self.waited_for and not_run:
            self.cancelled.append((info.id, not_run))

    def _not_run(self, line: int) -> None:
        """A record its batch did not run goes into the next round, as long as
        this run has not seen that happen more times than a live record is retried."""
        self.unexecuted[line] += 1
        if self.unexecuted[line] > self.config.bought.max_retries:
            self.given_up.add(line)
        else:
            self.going_again[line] = "expired"

    async def _reask_live(self, items: list[tuple[Record, list[Round]]]) -> None:
        """--reask live: the re-asks go out now, at the live price."""
        replays = [
            (record, [self.api.parse(r.completion) for r in rounds if r.kind == "answer"])
            for record, rounds in items
        ]
        outcomes = await live.reask(self.checked, replays)
        lines, stop = [], None
        for (record, rounds), outcome in zip(items, outcomes, strict=True):
            if isinstance(outcome, AbortError):
                stop = stop or outcome  # the record stays to do, its rounds kept
                continue
            self.going_again.pop(record.line, None)
            lines.append(self.lines.line(record, rounds, Verdict(), live=outcome))
        self.lines.write(lines)
        if stop is not None:
            raise stop
