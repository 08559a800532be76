"""The run: reader → N workers → one writer, in one anyio task group.

    job file ──reader──▶ records ──▶ workers (client.ask) ──▶ lines ──writer──▶ output

Streams between the tasks are bounded, so memory stays flat however long the
file is.  Workers run inside their own task group: when the run must stop
(401, dead endpoint), that group is cancelled, and the writer still drains
every line that had finished, so completed work is never lost.
"""

from __future__ import annotations

import time
from itertools import islice
from pathlib import Path

import anyio
from anyio.abc import ObjectReceiveStream, ObjectSendStream

from .client import Client, open_transport
from .config import RunConfig
from .errors import AbortError, UsageError
from .limiter import Limiter
from .outcome import output_line
from .progress import Reporter, Summary, Tally
from .provider import resolve
from .records import JobFile, Record, open_job
from .schema import load_schema

READ_BATCH = 256


async def run_job(config: RunConfig, reporter: Reporter | None = None) -> Summary:
    """Run a job to the end; raises UsageError/InputError before sending anything,
    AbortError (with ``.summary``) when the run had to stop part-way."""
    if config.concurrency < 1:
        raise UsageError("--concurrency must be at least 1")
    job = open_job(config.job)
    response_model = load_schema(config.schema)
    endpoint = resolve(config.model, config.base_url, config.mode, config.api_key)
    output = config.output_path()
    _prepare_output(output)

    reporter = reporter or Reporter()
    tally = Tally(total=job.total)
    limiter = Limiter(config.rpm, config.tpm, max_in_flight=config.concurrency)
    transport = await open_transport(config, endpoint, limiter)
    client = Client(config, endpoint, response_model, transport, limiter)
    started = time.monotonic()
    aborted: list[AbortError] = []
    try:
        async with anyio.create_task_group() as outer:
            outer.start_soon(_report, reporter, tally)
            lines_send, lines_recv = anyio.create_memory_object_stream[str](client.concurrency * 4)
            async with anyio.create_task_group() as io:
                io.start_soon(_write, output, lines_recv)
                async with lines_send, anyio.create_task_group() as work:
                    records_send, records_recv = anyio.create_memory_object_stream[Record](
                        client.concurrency * 2
                    )
                    work.start_soon(_read, job, records_send)
                    async with records_recv:
                        for _ in range(client.concurrency):
                            work.start_soon(
                                _work,
                                client,
                                endpoint.label,
                                tally,
                                records_recv.clone(),
                                lines_send.clone(),
                                aborted,
                                work.cancel_scope,
                            )
            # The writer has written every line; only the progress ticker is left.
            outer.cancel_scope.cancel()
    finally:
        await client.aclose()
        reporter.finish(tally)
    summary = Summary(tally, output, time.monotonic() - started)
    if aborted:
        aborted[0].summary = summary  # type: ignore[attr-defined]
        raise aborted[0]
    return summary


def _prepare_output(output: Path) -> None:
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(
            f"cannot create output directory {output.parent}: {exc.strerror}"
        ) from None
    if output.is_dir():
        raise UsageError(f"output {output} is a directory; give a file path with -o")


async def _read(job: JobFile, send: ObjectSendStream[Record]) -> None:
    records = job.records()
    async with send:
        while batch := await anyio.to_thread.run_sync(lambda: list(islice(records, READ_BATCH))):
            for record in batch:
                await send.send(record)


async def _work(
    client: Client,
    label: str,
    tally: Tally,
    records: ObjectReceiveStream[Record],
    lines: ObjectSendStream[str],
    aborted: list[AbortError],
    scope: anyio.CancelScope,
) -> None:
    async with records, lines:
        async for record in records:
            try:
                outcome = await client.ask(record)
            except AbortError as exc:
                aborted.append(exc)
                scope.cancel()
                return
            tally.add(outcome)
            await lines.send(output_line(record, outcome, label))


async def _write(output: Path, lines: ObjectReceiveStream[str]) -> None:
    # anyio's file (not aiofiles, which is asyncio-only) so trio works too.
    async with lines, await anyio.open_file(output, "w", encoding="utf-8") as out:
        async for line in lines:
            batch = [line]
            # Take whatever else is ready, so a busy run writes in chunks.
            while True:
                try:
                    batch.append(lines.receive_nowait())
                except (anyio.WouldBlock, anyio.EndOfStream):
                    break
            await out.write("".join(batch))
            await out.flush()


async def _report(reporter: Reporter, tally: Tally) -> None:
    while True:
        await anyio.sleep(reporter.interval)
        reporter.update(tally)
