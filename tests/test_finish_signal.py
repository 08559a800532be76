"""A signal while a finished output is put in input order (#39): the
rewrite stops, the output is as it was with no temporary file, and the run
says what it is, not "interrupted before the run started"."""

from __future__ import annotations

import json
import os
import select
import signal
import threading
import time
from decimal import Decimal

import pytest

from rolebatch.errors import Interrupted
from rolebatch.records.compaction import STOP_EVERY, rewrite_in_order
from rolebatch.records.files import stale_tmps, tmp_of
from rolebatch.records.index import LineIndex
from tests.helpers import poem_records, start, wait_for_lines, whole_lines, write_job


def out_of_order(tmp_path, n: int) -> tuple[LineIndex, bytes]:
    """An output of ``n`` lines written last first, and its index."""
    path = tmp_path / "out.jsonl"
    index = LineIndex(path, n)
    data = bytearray()
    for line in range(n, 0, -1):
        raw = (json.dumps({"id": f"r{line}", "line": line, "status": "ok"}) + "\n").encode()
        index.add(line, len(data), raw)
        data += raw
    path.write_bytes(bytes(data))
    return index, bytes(data)


@pytest.mark.parametrize("after", [0, 1, 2, 3])
def test_a_signal_during_the_rewrite_leaves_the_output_as_it_was(tmp_path, after):
    """``stop`` raises at its (after+1)-th look: before the first line, part
    way (every STOP_EVERY lines), after the last, and just before the rename."""
    index, before = out_of_order(tmp_path, 2 * STOP_EVERY)
    looks = []

    def stop() -> None:
        looks.append(1)
        if len(looks) > after:
            raise Interrupted("SIGINT")

    renamed = []
    with pytest.raises(Interrupted):
        rewrite_in_order(index, lambda kept: renamed.append(kept), stop)
    assert index.path.read_bytes() == before
    assert not stale_tmps(index.path) and renamed == []


def test_without_a_signal_the_rewrite_puts_lines_in_order(tmp_path):
    index, _ = out_of_order(tmp_path, STOP_EVERY + 3)
    kept = []
    rewrite_in_order(index, kept.append, lambda: None)
    lines = [json.loads(raw) for raw in index.path.read_text().splitlines()]
    assert [line["line"] for line in lines] == list(range(1, STOP_EVERY + 4))
    assert kept == [Decimal(0)] and not stale_tmps(index.path)


def test_sigint_while_a_run_puts_its_output_in_order_is_said_as_it_is(fake, tmp_path):
    """A whole run: record 0's answer is held back so the others come first
    (the file then needs putting in order); the rewrite's temporary file is
    a FIFO the test holds, so the run is known to be in the rewrite, and
    kept there, when SIGINT comes.  It says what happened, counts what was
    bought, leaves no temporary file, and the same command puts the lines in
    order buying nothing."""
    n = 300  # more than a pipe holds: the rewrite waits on the test's reading
    job = write_job(tmp_path / "j.jsonl", poem_records(n))
    out, summary = tmp_path / "out.jsonl", tmp_path / "s.json"
    held = threading.Event()
    fake.fault(match="thing 0.", hold=held, times=1)
    proc = start(fake, job, out, "--concurrency", "4", "--summary-json", str(summary))
    try:
        wait_for_lines(out, proc, n - 1)  # every record but the held one: the lock is taken
        fifo = tmp_of(out, proc.pid)  # where that process writes the ordered file
        os.mkfifo(fifo)
        held.set()
        with open(fifo, "rb") as reading:  # returns once the rewrite opened it to write
            proc.send_signal(signal.SIGINT)
            # Read stderr's bytes as they come (no buffered lines to miss); a
            # bound against hanging, not a timing.
            said, deadline = b"", time.monotonic() + 60
            while b"while the output is put in input order" not in said:
                assert time.monotonic() < deadline, f"the run said nothing of the signal: {said}"
                ready, _, _ = select.select([proc.stderr], [], [], 1.0)
                if ready:
                    chunk = os.read(proc.stderr.fileno(), 65536)
                    assert chunk, f"the run ended without a word of the signal: {said}"
                    said += chunk
            while reading.read(65536):  # let the rewrite go on, to its next look
                pass
        _, err = proc.communicate(timeout=120)
    finally:
        held.set()
        if proc.poll() is None:
            proc.kill()
    err = said.decode() + err
    assert proc.returncode == 3, err
    assert "interrupted by SIGINT while the output was put in input order" in err
    assert "interrupted before the run started" not in err and "nothing was sent" not in err
    assert not stale_tmps(out)
    lines = whole_lines(out)
    assert sorted(line["line"] for line in lines) == list(range(1, n + 1))
    assert [line["line"] for line in lines] != list(range(1, n + 1))  # as they finished
    data = json.loads(summary.read_text())
    assert data["status"] == "interrupted" and data["exit_code"] == 3
    assert data["records"]["ok"] == n  # what was bought, not zero
    bought = len(fake.requests)
    proc = start(fake, job, out)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert len(fake.requests) == bought  # nothing bought again
    assert [line["line"] for line in whole_lines(out)] == list(range(1, n + 1))
