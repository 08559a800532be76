"""Buying answers live: one HTTP request per attempt, at the provider's pace.

    job file ──reader──▶ records ──▶ workers (client.ask) ──▶ lines ──writer──▶ output
                  └── cache hits (--cache) ──────────────────────▶ lines

Streams between the tasks are bounded, so memory stays flat however long the
file is.  Workers run in a cancel scope of their own: when the run must stop
(401, dead endpoint, full disk, a second SIGINT), only that scope is
cancelled, and the writer still drains every line that had finished, so
completed work is never lost: a worker hands over an answer it holds
shielded from that cancellation, and a record is counted only once its line
is written.  Records already done in the output file are skipped by the reader, which
also looks the rest up in the response cache (``via.cached``) a few hundred
at a time, off the event loop: a hit goes straight to the writer, and only
misses reach the workers.  The writer stores each valid answer bought in the
cache before its line is written.
When --max-cost is reached, or on a first SIGINT/SIGTERM, no new record
starts and the ones in flight finish.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import anyio
import sniffio
from anyio.abc import ObjectReceiveStream, ObjectSendStream

from ..config import Paced
from ..cost.cap import SpendCap
from ..errors import AbortError, BudgetReached, Interrupted, UsageError
from ..pacing.limiter import Limiter
from ..pacing.shared import SharedQuota, quota_name, redact_url
from ..plan import Plan
from ..progress import Reporter, Tally, dollars
from ..providers.transport import open_transport
from ..records.job import JobFile, Record
from ..records.lines import Outcome, output_line
from ..records.output import OutputFile
from . import signals
from .cached import CachedAnswers
from .client import Client
from .request import line_fields

READ_CHUNK = 256  # records read (and looked up in the cache) per thread hop
# A finished record on its way to the writer: (job line, output line, outcome,
# its cache key: None when it is not to be stored).
Line = tuple[int, str, Outcome, bytes | None]
# A record to buy, with its cache key (None: no cache).
ToBuy = tuple[Record, bytes | None]


@dataclass
class _Run:
    """What the tasks of one run share."""

    client: Client
    label: str
    tally: Tally
    output: OutputFile
    cache: CachedAnswers | None = None
    work: anyio.CancelScope = field(default_factory=anyio.CancelScope)
    aborted: list[AbortError] = field(default_factory=list)
    stopping: str | None = None  # why no new record starts (a signal, the budget)
    forced: bool = False  # a second signal: calls in flight were given up at once

    def abort(self, error: AbortError) -> None:
        self.aborted.append(error)
        self.work.cancel()


def limiter_for(
    paced: Paced, shared: SharedQuota | None = None, endpoint: Any = None, slots: int | None = None
) -> Limiter:
    """The run's pace: the limits given, the rest learned from the answers,
    with --quota the budgets every process shares, and at a server on the
    user's machine that queues (``Provider.queues``) as many in flight as it
    works on (``slots``: what it said, else one to start with)."""
    queueing = endpoint is not None and endpoint.provider.queues
    return Limiter(
        paced.rpm,
        paced.tpm,
        max_in_flight=paced.concurrency,
        itpm=paced.itpm,
        otpm=paced.otpm,
        shared=shared,
        queueing=queueing,
        window=(slots or 1) if queueing else None,
    )


async def open_quota(paced: Paced, endpoint: Any, expected: int = 1) -> SharedQuota | None:
    """The shared quota of --quota, opened; None without one.  ``expected``:
    how many processes are meant to share it (a shard's N)."""
    if not paced.quota:
        return None
    if sniffio.current_async_library() != "asyncio":
        raise UsageError(
            "--quota works under asyncio only (the redis package's client): run with"
            " --backend asyncio, or without --quota"
        )
    name = quota_name(endpoint.provider.name, endpoint.base_url, endpoint.model, paced.quota_key)
    shared = SharedQuota(paced.quota, name, expected)
    try:
        await shared.open()
    except Exception as exc:
        await shared.close()
        raise UsageError(f"--quota {redact_url(paced.quota)}: cannot use it ({exc})") from None
    return shared


def budget_reached(cap: SpendCap, tally: Tally) -> BudgetReached:
    return BudgetReached(
        f"budget reached: {dollars(cap.total)} of {dollars(cap.limit)} spent;"
        f" {tally.remaining:,} records not started; raise --max-cost and run the same"
        " command to go on"
    )


@contextlib.asynccontextmanager
async def open_client(checked: Plan, cap: SpendCap | None = None) -> AsyncIterator[Client]:
    """The run's client at the live price, at its pace (with --quota, the
    budgets every process shares), closed however the run ends."""
    config, endpoint = checked.config, checked.endpoint
    shard = config.written.shard
    shared = await open_quota(config.paced, endpoint, shard.count if shard else 1)
    try:
        transport = await open_transport(endpoint, config.bought.timeout, config.paced.concurrency)
        limiter = limiter_for(config.paced, shared, endpoint, transport.max_concurrency)
        price = checked.prices.live
        client = Client(config, endpoint, checked.task, transport, limiter, price, cap)
        try:
            yield client
        finally:
            with anyio.CancelScope(shield=True):
                await client.aclose()
    finally:
        if shared is not None:
            with anyio.CancelScope(shield=True):
                await shared.close()


async def buy(
    checked: Plan,
    tally: Tally,
    reporter: Reporter,
    handle_signals: bool,
    cap: SpendCap | None,
    cache: CachedAnswers | None = None,
) -> None:
    config = checked.config
    try:
        async with open_client(checked, cap) as client:
            run = _Run(client, checked.endpoint.label, tally, checked.output, cache)
            counted = tally.attempts
            try:
                await _flow(run, checked.job, reporter, handle_signals, config.bought.grace)
            finally:
                # Requests of records left without a line count as sent too.
                tally.attempts = max(tally.attempts, counted + client.sent)
    finally:
        reporter.finish(tally)
    if run.aborted:
        tally.aborted = run.aborted[0]
    elif run.stopping == "budget":
        assert cap is not None
        tally.aborted = budget_reached(cap, tally)
    elif run.forced:
        tally.aborted = Interrupted(
            f"interrupted twice ({run.stopping} first): calls still waiting for an answer"
            " were given up at once; every answer that had come back is written, and the"
            " rest were not started. Run the same command to resume."
        )
    elif run.stopping:
        tally.aborted = Interrupted(
            f"interrupted by {run.stopping}: records in flight were finished or given up"
            f" after {config.bought.grace:g}s, the rest were not started. Run the same command"
            " to resume."
        )


async def _flow(
    run: _Run, job: JobFile, reporter: Reporter, handle_signals: bool, grace: float
) -> None:
    """Reader → workers → writer, with the ticker, the signal watcher and the
    shared quota's heartbeat beside."""
    concurrency = run.client.concurrency
    async with anyio.create_task_group() as outer:
        outer.start_soon(_report, reporter, run.tally)
        shared = run.client.limiter.shared
        if shared is not None:  # alive, said every second while the run goes on
            outer.start_soon(shared.heartbeat)
        if handle_signals:
            outer.start_soon(signals.watch, *_stop_on_signals(run, grace, reporter))
        # Lines travel in lists: a worker's one, or a read chunk's cache hits.
        lines_send, lines_recv = anyio.create_memory_object_stream[list[Line]](concurrency * 4)
        async with anyio.create_task_group() as io:
            io.start_soon(_write, run, lines_recv)
            with run.work:
                async with lines_send, anyio.create_task_group() as work:
                    records_send, records_recv = anyio.create_memory_object_stream[ToBuy](
                        concurrency * 2
                    )
                    work.start_soon(_read, run, job, records_send, lines_send.clone())
                    async with records_recv:
                        for _ in range(concurrency):
                            work.start_soon(_work, run, records_recv.clone(), lines_send.clone())
        # The writer has written every line; only the ticker and watcher are left.
        outer.cancel_scope.cancel()


async def _read(
    run: _Run, job: JobFile, send: ObjectSendStream[ToBuy], lines: ObjectSendStream[list[Line]]
) -> None:
    records = job.records(by_role=True)
    output, cache = run.output, run.cache

    def next_chunk() -> tuple[list[ToBuy], list[Line]]:
        # Nothing in both only when the file is exhausted: skipped records do
        # not end the loop early.
        chunk = []
        for record in records:
            if not output.is_done(record.line):  # done ones are not asked again
                chunk.append(record)
                if len(chunk) == READ_CHUNK:
                    break
        if cache is None:
            return [(record, None) for record in chunk], []
        return cache.served(chunk, run.label)

    async with send, lines:
        while not run.stopping:
            to_buy, served = await anyio.to_thread.run_sync(next_chunk)
            if not to_buy and not served:
                return
            try:
                if served:
                    await lines.send(served)
                for item in to_buy:
                    if run.stopping:
                        return
                    await send.send(item)
            except anyio.BrokenResourceError:
                return  # the workers or the writer have stopped: nothing more to hand out


async def _work(
    run: _Run,
    records: ObjectReceiveStream[ToBuy],
    lines: ObjectSendStream[list[Line]],
) -> None:
    async with records, lines:
        async for record, key in records:
            if run.stopping:
                return  # no new dispatch once asked to stop
            try:
                outcome = await run.client.ask(record)
            except BudgetReached:
                # This record was not started; those in flight finish.
                run.stopping = run.stopping or "budget"
                return
            except AbortError as exc:
                run.abort(exc)
                return
            # The answer is in hand (and paid for): it reaches the writer even
            # when a second signal has just cancelled the workers.
            client = run.client
            extra = line_fields(client.config, client.endpoint, client.task, record)
            text = output_line(record, outcome, run.label, extra)
            with anyio.CancelScope(shield=True):
                try:
                    await lines.send([(record.line, text, outcome, key)])
                except anyio.BrokenResourceError:
                    return  # the writer has stopped (the output cannot be written)


async def _write(run: _Run, lines: ObjectReceiveStream[list[Line]]) -> None:
    async with lines:
        async for first in lines:
            ready = list(first)
            # Take whatever else is ready, so a busy run writes in chunks.
            while True:
                try:
                    ready.extend(lines.receive_nowait())
                except (anyio.WouldBlock, anyio.EndOfStream):
                    break
            try:
                await anyio.to_thread.run_sync(_keep_and_append, run, ready)
            except AbortError as exc:
                run.abort(exc)
                return
            for _, _, outcome, _ in ready:  # counted once it is in the file
                run.tally.add(outcome)


def _keep_and_append(run: _Run, ready: list[Line]) -> None:
    """The answers bought go into the cache first, then every line into the
    output: a process killed between the two has its answers in the cache,
    and the next run (this output's or another's) buys none of them again."""
    if run.cache is not None:
        run.tally.stored += run.cache.keep((key, outcome) for _, _, outcome, key in ready)
    run.output.append([(line, text) for line, text, _, _ in ready])


async def _report(reporter: Reporter, tally: Tally) -> None:
    while True:
        await anyio.sleep(reporter.interval)
        reporter.update(tally)


def _stop_on_signals(run: _Run, grace: float, reporter: Reporter) -> tuple[Any, Any]:
    """First SIGINT/SIGTERM: stop dispatching, give calls in flight ``grace``
    seconds to finish, and say so at once.  A second one: stop them now
    (``signals.watch``)."""

    def first(name: str) -> None:
        if run.stopping is not None:  # stopping already (the budget): now, then
            second()
            return
        run.stopping = name
        run.work.deadline = anyio.current_time() + grace
        calls = run.client.limiter.in_flight
        flight = "1 call in flight gets" if calls == 1 else f"{calls} calls in flight get"
        reporter.note(
            f"{name}: no new record starts; {flight} up to {grace:g}s to finish"
            f" ({name} again stops {'it' if calls == 1 else 'them'} now)"
        )

    def second() -> None:
        run.forced = True
        run.work.cancel()

    return first, second


async def reask(checked: Plan, items: list[tuple[Record, list[Any]]]) -> list[Outcome | AbortError]:
    """``--reask live``: each record's batch answers are replayed to instructor,
    and the re-ask it builds from them is sent live, at the live price.  The
    outcomes count only the live part."""
    outcomes: list[Outcome | AbortError] = [AbortError("not asked")] * len(items)
    async with open_client(checked) as client:
        slots = anyio.CapacityLimiter(client.concurrency)

        async def one(index: int, record: Record, answers: list[Any]) -> None:
            async with slots:
                try:
                    outcomes[index] = await client.ask(record, replay=answers)
                except AbortError as exc:
                    outcomes[index] = exc

        async with anyio.create_task_group() as tasks:
            for index, (record, answers) in enumerate(items):
                tasks.start_soon(one, index, record, answers)
    return outcomes
