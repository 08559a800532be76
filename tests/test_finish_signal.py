"""A signal while a finished output is put in input order (#39): the
rewrite stops, the output is as it was with no temporary file, and the run
says what it is, not "interrupted before the run started"."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from rolebatch.errors import Interrupted
from rolebatch.records.compaction import STOP_EVERY, rewrite_in_order
from rolebatch.records.files import tmp_of
from rolebatch.records.index import LineIndex


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


@pytest.mark.parametrize("after", [0, 1, 2])
def test_a_signal_during_the_rewrite_leaves_the_output_as_it_was(tmp_path, after):
    """``stop`` raises at its (after+1)-th look: at the start, part way (every
    STOP_EVERY lines), and just before the rename."""
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
    assert not tmp_of(index.path).exists() and renamed == []


def test_without_a_signal_the_rewrite_puts_lines_in_order(tmp_path):
    index, _ = out_of_order(tmp_path, STOP_EVERY + 3)
    kept = []
    rewrite_in_order(index, kept.append, lambda: None)
    lines = [json.loads(raw) for raw in index.path.read_text().splitlines()]
    assert [line["line"] for line in lines] == list(range(1, STOP_EVERY + 4))
    assert kept == [Decimal(0)] and not tmp_of(index.path).exists()
