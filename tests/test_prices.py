"""What answers cost: each line priced at the model's rates, cached tokens at
the cached rate, --price, and a price nobody knows."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from tests.helpers import poem_records, read_lines, write_job

# gpt-4o in genai-prices: $2.50 / $10 per million input / output tokens, $1.25 cached.
GPT4O_IN, GPT4O_OUT, GPT4O_CACHED = Decimal("2.5"), Decimal(10), Decimal("1.25")


def priced(usage: dict, price_in: Decimal, price_out: Decimal, cached_price: Decimal) -> float:
    cached = usage.get("cached_tokens", 0)
    total = (
        (usage["prompt_tokens"] - cached) * price_in
        + cached * cached_price
        + usage["completion_tokens"] * price_out
    )
    return float(total / 1_000_000)


def test_each_line_costs_its_usage_at_the_models_price_reasks_included(rolebatch, fake, tmp_path):
    fake.fault(match="thing 2.", invalid=True, times=1)  # one re-ask
    job = write_job(tmp_path / "j.jsonl", poem_records(4))
    result = rolebatch(str(job), "-o", "o.jsonl")
    assert result.code == 0, result.err
    lines = read_lines(Path("o.jsonl"))
    assert lines[2]["attempts"] == 2
    for line in lines:
        expected = priced(line["usage"], GPT4O_IN, GPT4O_OUT, GPT4O_CACHED)
        assert line["cost_usd"] == pytest.approx(expected, rel=1e-9, abs=1e-15)
        assert list(line)[-1] == "cost_usd"
    total = sum(line["cost_usd"] for line in lines)
    per_ok = total / 4
    assert f"cost: ${Decimal(repr(total)):.{3 - Decimal(repr(total)).adjusted()}f}" in result.err
    assert "per ok record" in result.err and f"{per_ok:.3g}"[:4] in result.err


def test_cached_prompt_tokens_are_priced_at_the_cached_rate(rolebatch, fake, tmp_path):
    fake.state.cached_tokens = 40
    job = write_job(tmp_path / "j.jsonl", poem_records(2))
    assert rolebatch(str(job), "-o", "o.jsonl").code == 0
    for line in read_lines(Path("o.jsonl")):
        assert line["usage"]["cached_tokens"] == 40
        expected = priced(line["usage"], GPT4O_IN, GPT4O_OUT, GPT4O_CACHED)
        uncached = priced({**line["usage"], "cached_tokens": 0}, GPT4O_IN, GPT4O_OUT, GPT4O_IN)
        assert line["cost_usd"] == pytest.approx(expected, rel=1e-9)
        assert line["cost_usd"] < uncached


def test_price_option_prices_a_server_nobody_knows(rolebatch, fake, tmp_path):
    job = write_job(tmp_path / "j.jsonl", poem_records(3))
    result = rolebatch(str(job), "-o", "o.jsonl", "--model", "compat/mine", "--price", "1/2")
    assert result.code == 0, result.err
    for line in read_lines(Path("o.jsonl")):
        expected = priced(line["usage"], Decimal(1), Decimal(2), Decimal(1))
        assert line["cost_usd"] == pytest.approx(expected, rel=1e-9)


def test_an_unknown_price_is_said_once_and_lines_say_null(rolebatch, fake, tmp_path):
    job = write_job(tmp_path / "j.jsonl", poem_records(3))
    result = rolebatch(str(job), "-o", "o.jsonl", "--model", "compat/mine")
    assert result.code == 0, result.err
    assert [line["cost_usd"] for line in read_lines(Path("o.jsonl"))] == [None] * 3
    assert result.err.count("cost unknown for compat/mine: give --price") == 1


def test_a_bad_price_is_a_usage_error(rolebatch, fake, tmp_path):
    job = write_job(tmp_path / "j.jsonl", poem_records(1))
    result = rolebatch(str(job), "--price", "cheap")
    assert result.code == 2 and "--price 'cheap'" in result.err
    assert fake.requests == []
