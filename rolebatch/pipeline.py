"""The flow of a run, whichever way its answers are bought.

    plan     check the options, schema, model, price and the whole job file
             (the records of one shard, or a sweep's record x role pairs:
             ``records.shards``, ``records.roles``); nothing is sent or
             written (``plan``)
    look up  when the model shuts down, where the provider says
             (``providers.models``): a warning within 90 days, a refusal
             (exit 2, nothing bought) once the date is past
    open     lock the output and read back what it already holds (resume)
    buy      live: reader → N workers → writer, at the provider's pace, or
             at a pace shared with other processes through Redis
             (``via.live``, ``pacing.shared``); or through the provider's
             batch API: submit, wait, collect, each step journaled beside
             the output (``via.batches``: OpenAI's or Anthropic's)
             with --cache, every record is looked up first and a hit is
             served, not bought (``via.cached``, ``cache.store``)
    finish   rewrite the output in input order and mark it finished
    report   the summary: counts, tokens, cost, the exit code

Both ways of buying share the reader, the output state, the result lines,
cost and the summary.
"""

from __future__ import annotations

import time
from decimal import Decimal
from pathlib import Path

import anyio

from .config import RunConfig
from .cost.cap import SpendCap
from .cost.prices import Price
from .errors import AbortError, Interrupted, OutputError, Pending, UsageError
from .plan import Plan, plan
from .progress import Reporter, Summary, Tally
from .providers.models import shutdown_notice
from .records.job import JobFile
from .records.output import OutputFile
from .via import batches, live, signals
from .via.cached import CachedAnswers, open_cache
from .via.journal import Journal, busy_message


def _refuse_live_while_batches_are_out(config: RunConfig, output: Path) -> None:
    """A record at the provider must not be bought twice: while batches are
    out for this output, only a batch run (which collects them) may go on."""
    journal = Journal.load(output)
    out = journal.at_provider()
    if config.written.fresh and not out:
        journal.clear()  # a new output, a new history
    if not out or (config.bought.via == "batch" and not config.written.fresh):
        return
    if config.written.fresh:
        raise UsageError(
            f"{output}: {busy_message(out)}. --fresh would forget them while they"
            " are bought: collect them first (the same command without --fresh), or"
            " `rolebatch cancel` the output."
        )
    raise UsageError(
        f"{output}: {busy_message(out)}. A live run now could buy their records"
        " twice: run with --via batch to collect them, or `rolebatch cancel` the output"
        " first."
    )


async def _open_cache(
    checked: Plan, price: Price | None, tally: Tally, reporter: Reporter
) -> CachedAnswers | None:
    """--cache: the response cache, opened; what goes wrong with it is a
    warning, and a note in the summary, never the run's end."""
    if checked.config.bought.cache is None:
        return None
    tally.cache = checked.config.bought.cache

    def warn(text: str) -> None:
        reporter.warn(text)
        tally.notes.append(text)

    return await anyio.to_thread.run_sync(
        open_cache, checked.config, checked.endpoint, checked.task, price, warn
    )


async def run_job(
    config: RunConfig, reporter: Reporter | None = None, *, handle_signals: bool = False
) -> Summary:
    """Run a job to the end.

    Raises UsageError/InputError before sending anything, and AbortError (with
    ``.summary``) when the run stopped part-way; the output then holds every
    finished record and the same call resumes.  ``handle_signals`` makes
    SIGINT/SIGTERM stop the run gracefully (the CLI sets it)."""
    checked = await anyio.to_thread.run_sync(plan, config)
    output, job = checked.output, checked.job
    reporter = reporter or Reporter()
    started = time.monotonic()
    shutdown = await anyio.to_thread.run_sync(shutdown_notice, checked.endpoint)
    if shutdown is not None and not shutdown.past:
        reporter.warn(shutdown.warning())
    shut_down = None if shutdown is None or not shutdown.past else shutdown.refusal()
    if shut_down and not (config.bought.via == "batch" and Journal.load(output.path).at_provider()):
        # Nothing is sent to a model that is gone, and nothing is written;
        # batches already bought are still collected (below), nothing new
        # is submitted.
        raise UsageError(shut_down)
    try:
        output.lock()
        _refuse_live_while_batches_are_out(config, output.path)
        resumed = await anyio.to_thread.run_sync(
            output.open, config.written.fresh, config.written.retry_failed, job
        )
        tally = Tally(
            total=job.total,
            skipped=resumed.done,
            failed_before=resumed.failed_kept,
            retried=resumed.retried,
            repaired=resumed.repaired,
            shutdown=shutdown,
        )
        price = checked.prices.batch if config.bought.via == "batch" else checked.prices.live
        tally.price = price
        if price is None:
            tally.unpriced = checked.endpoint.label
        else:
            tally.cost, tally.cost_before = Decimal(0), output.spent
        cap = None
        if config.bought.max_cost is not None:
            cap = SpendCap(Decimal(str(config.bought.max_cost)), output.spent)
            tally.budget = cap.limit
        if tally.skipped < job.total:
            cache = await _open_cache(checked, price, tally, reporter)
            try:
                if cap is not None and cap.total >= cap.limit and cache is None:
                    # (With a cache, hits cost nothing: they are served, and
                    # the first record to buy meets the cap.)
                    tally.aborted = live.budget_reached(cap, tally)
                elif config.bought.via == "batch":
                    try:
                        await batches.buy(
                            checked, tally, reporter, handle_signals, shut_down, cache
                        )
                    except (AbortError, Pending) as exc:
                        tally.aborted = exc
                else:
                    await live.buy(checked, tally, reporter, handle_signals, cap, cache)
            finally:
                if cache is not None:
                    tally.rejected = cache.rejected
                    cache.store.close()
        summary = Summary(tally, output.path, time.monotonic() - started)
        aborted = tally.aborted
        if aborted is None:
            errors = tally.failed + tally.failed_before
            try:
                await _finish(output, job, errors, handle_signals, reporter)
            except (OutputError, Interrupted) as exc:  # the disk full, a signal: lines kept
                aborted = exc
    finally:
        output.close()
    if aborted is not None:
        aborted.summary = summary
        raise aborted
    return summary


async def _finish(
    output: OutputFile, job: JobFile, errors: int, handle_signals: bool, reporter: Reporter
) -> None:
    """``output.finish`` in a worker thread; with ``handle_signals``, a
    SIGINT or SIGTERM meanwhile stops the rewrite (the output as it was, no
    temporary file) and is said as what it is: every line bought is kept,
    and the same command puts them in order, buying nothing."""
    if not handle_signals:
        await anyio.to_thread.run_sync(output.finish, job, errors)
        return
    came: list[str] = []

    def first(name: str) -> None:
        came.append(name)
        reporter.note(
            f"{name} while the output is put in input order: that stops; every line is kept"
        )

    def stop() -> None:
        if came:
            raise Interrupted(
                f"interrupted by {came[0]} while the output was put in input order: every"
                f" record is bought and every line is kept in {output.path}, in the order they"
                " finished; run the same command to put them in order, buying nothing."
            )

    failed: OutputError | Interrupted | None = None
    async with anyio.create_task_group() as tasks:
        await tasks.start(signals.watch, first, lambda: None)  # taken over before it starts
        try:
            await anyio.to_thread.run_sync(output.finish, job, errors, stop)
        except (OutputError, Interrupted) as exc:  # raised as itself, not in a group
            failed = exc
        finally:
            tasks.cancel_scope.cancel()
    if failed is not None:
        raise failed
