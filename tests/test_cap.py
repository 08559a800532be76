"""--max-cost: the budget an output may spend in all, held before each request."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from tests.helpers import poem_records, read_lines, write_job


def asked(fake) -> Counter:
    """How many requests reached the server for each record ("thing N." -> rN)."""
    found: Counter = Counter()
    for request in fake.requests:
        text = request.text
        start = text.find("thing ") + len("thing ")
        found["r" + text[start : text.index(".", start)]] += 1
    return found


def test_max_cost_with_an_unknown_price_is_refused_before_anything(rolebatch, fake, tmp_path):
    job = write_job(tmp_path / "j.jsonl", poem_records(3))
    result = rolebatch(str(job), "-o", "o.jsonl", "--model", "compat/mine", "--max-cost", "1")
    assert result.code == 2
    assert "--max-cost needs a price" in result.err and "--price" in result.err
    assert fake.requests == [] and not Path("o.jsonl").exists()


def test_the_budget_stops_near_the_cap_and_a_higher_one_finishes_the_job(rolebatch, fake, tmp_path):
    fake.state.latency = 0.02
    job = write_job(tmp_path / "j.jsonl", poem_records(40))
    concurrency = 4
    cap = 0.004  # about ten records' worth
    first = rolebatch(
        str(job), "-o", "o.jsonl", "--concurrency", str(concurrency), "--max-cost", str(cap)
    )
    assert first.code == 3, first.err
    assert "budget reached: $" in first.err and f"of ${cap:.4f}" in first.err
    assert "records not started; raise --max-cost and run the same command" in first.err
    lines = read_lines(Path("o.jsonl"))
    assert 0 < len(lines) < 40
    assert {line["status"] for line in lines} == {"ok"}  # stopped records have no line
    spent = sum(line["cost_usd"] for line in lines)
    most = max(line["cost_usd"] for line in lines)
    # Nothing starts past the cap; what was in flight may finish.
    assert spent <= cap + concurrency * most
    assert spent > cap - 2 * concurrency * most  # and it did not stop far short of it
    assert f"{40 - len(lines):,} records not started" in first.err
    # The same command with room to spare finishes it, buying each record once.
    second = rolebatch(str(job), "-o", "o.jsonl", "--concurrency", "4", "--max-cost", "1")
    assert second.code == 0, second.err
    assert [line["id"] for line in read_lines(Path("o.jsonl"))] == [f"r{i}" for i in range(40)]
    assert set(asked(fake).values()) == {1} and len(asked(fake)) == 40


def test_the_budget_counts_what_the_output_already_cost(rolebatch, fake, tmp_path):
    job = write_job(tmp_path / "j.jsonl", poem_records(6))
    assert rolebatch(str(job), "-o", "o.jsonl").code == 0
    spent = sum(line["cost_usd"] for line in read_lines(Path("o.jsonl")))
    with job.open("a") as handle:  # one more record, and a cap the output already exceeds
        handle.write(json.dumps({"id": "r6", "query": "Write a poem about thing 6."}) + "\n")
    fake.reset()
    result = rolebatch(str(job), "-o", "o.jsonl", "--max-cost", f"{spent * 0.99:.10f}")
    assert result.code == 3 and "budget reached" in result.err
    assert fake.requests == []
    assert "1 records not started" in result.err
