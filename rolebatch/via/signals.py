"""SIGINT and SIGTERM while a run buys answers, the same for live and batch
runs: the first asks the run to stop taking new work (``on_first``, with the
signal's name), a second to stop at once (``on_second``).  Before a run takes
the signals over, ``cli.entry`` turns SIGTERM into Ctrl-C."""

from __future__ import annotations

import signal
from collections.abc import Callable

import anyio
import anyio.abc


async def watch(
    on_first: Callable[[str], None],
    on_second: Callable[[], None],
    *,
    task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Until cancelled: the first signal calls ``on_first``, every later one
    ``on_second``.  Started with ``TaskGroup.start``, it returns once the
    signals are taken over."""
    seen = False
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        task_status.started()
        async for signum in signals:
            if seen:
                on_second()
            else:
                seen = True
                on_first(signal.Signals(signum).name)
