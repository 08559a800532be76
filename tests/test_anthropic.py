"""Anthropic live: the Messages API through the official SDK, against the
loopback fake (tests.fakes.anthropic) with Anthropic's headers and errors."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from tests.fakes.quota import Quota
from tests.helpers import ANTHROPIC_KEY, CLAUDE, poem_records, read_lines, write_job


def test_tools_mode_sends_one_user_message_with_the_role_and_the_query(claude, fake, tmp_path):
    job = write_job(tmp_path / "j.jsonl", poem_records(3))
    result = claude(str(job), "-o", "o.jsonl")
    assert result.code == 0, result.err
    lines = read_lines(Path("o.jsonl"))
    assert [line["status"] for line in lines] == ["ok"] * 3
    assert all(line["model"] == CLAUDE for line in lines)
    sent = fake.requests[0]
    assert sent.path == "/v1/messages"
    # The key, in whichever header this SDK version sends it.
    sent_key = sent.headers.get("x-api-key") or sent.headers.get("authorization", "")
    assert sent_key.removeprefix("Bearer ") == ANTHROPIC_KEY
    body = sent.body
    # The seed's technique: the role and the query in one prompt.  The
    # Messages API needs a user message, so that is where it goes.
    assert "system" not in body
    assert body["messages"] == [
        {"role": "user", "content": "You are a renowned poet. Write a poem about thing 0."}
    ]
    assert body["tools"][0]["name"] == "Response"
    assert body["tools"][0]["input_schema"]["required"] == ["poem"]
    assert body["tool_choice"]["type"] == "tool"
    assert body["max_tokens"] == 1024  # the Messages API requires one
    assert lines[0]["response"]["poem"].startswith("Answer to: You are a renowned poet.")


def test_split_layout_and_json_mode_put_the_role_into_the_system_prompt(claude, fake, tmp_path):
    job = write_job(tmp_path / "j.jsonl", poem_records(2))
    result = claude(str(job), "-o", "o.jsonl", "--layout", "split", "--mode", "json")
    assert result.code == 0, result.err
    assert [line["status"] for line in read_lines(Path("o.jsonl"))] == ["ok", "ok"]
    body = fake.requests[0].body
    assert "tools" not in body
    assert body["messages"] == [{"role": "user", "content": "Write a poem about thing 0."}]
    system = body["system"]
    texts = [system] if isinstance(system, str) else [block["text"] for block in system]
    assert texts[0] == "You are a renowned poet."
    assert any('"poem"' in text for text in texts)  # instructor's JSON mode: the schema


def test_mode_anthropic_does_not_take_is_refused(claude, tmp_path):
    job = write_job(tmp_path / "j.jsonl", poem_records(1))
    result = claude(str(job), "--mode", "json_schema")
    assert result.code == 2
    assert "anthropic takes tools, json" in result.err


def test_cost_uses_anthropic_prices_and_counts_cache_reads(claude, fake, tmp_path):
    fake.state.cached_tokens = 40
    job = write_job(tmp_path / "j.jsonl", poem_records(2))
    result = claude(str(job), "-o", "o.jsonl")
    assert result.code == 0, result.err
    for line, sent in zip(read_lines(Path("o.jsonl")), fake.requests, strict=True):
        usage = sent.usage
        prompt = usage["input_tokens"] + usage["cache_read_input_tokens"]
        assert line["usage"]["prompt_tokens"] == prompt  # cache reads are prompt tokens
        assert line["usage"]["completion_tokens"] == usage["output_tokens"]
        # claude-3-haiku: $0.25 in, $0.03 cache reads, $1.25 out, per million.
        expected = (
            Decimal(usage["input_tokens"]) * Decimal("0.25")
            + Decimal(40) * Decimal("0.03")
            + Decimal(usage["output_tokens"]) * Decimal("1.25")
        ) / 1_000_000
        assert Decimal(str(line["cost_usd"])) == pytest.approx(expected, rel=Decimal("0.001"))


def test_overloaded_529_is_retried(claude, fake, tmp_path):
    fake.fault(status=529, times=2)
    job = write_job(tmp_path / "j.jsonl", poem_records(1))
    result = claude(str(job), "-o", "o.jsonl")
    assert result.code == 0, result.err
    (line,) = read_lines(Path("o.jsonl"))
    assert line["status"] == "ok" and line["attempts"] == 3


def test_429_waits_out_retry_after(claude, fake, tmp_path):
    fake.fault(status=429, retry_after=0.2, times=1)
    job = write_job(tmp_path / "j.jsonl", poem_records(1))
    result = claude(str(job), "-o", "o.jsonl")
    assert result.code == 0, result.err
    first, second = fake.requests
    assert second.at - first.at >= 0.19
    assert read_lines(Path("o.jsonl"))[0]["attempts"] == 2


def test_truncated_and_refused_answers_are_their_own_kinds(claude, fake, tmp_path):
    fake.fault(match="thing 0", truncated=True)
    fake.fault(match="thing 1", refusal=True)
    job = write_job(tmp_path / "j.jsonl", poem_records(3))
    result = claude(str(job), "-o", "o.jsonl", "--max-reasks", "0")
    assert result.code == 1
    kinds = [(line["error"] or {}).get("kind") for line in read_lines(Path("o.jsonl"))]
    assert kinds == ["truncated", "refusal", None]


def test_invalid_answer_names_the_field_and_is_reasked(claude, fake, tmp_path):
    fake.fault(match="thing 0", invalid=True)
    job = write_job(tmp_path / "j.jsonl", poem_records(2))
    result = claude(str(job), "-o", "o.jsonl", "--max-reasks", "1")
    assert result.code == 1
    failed, ok = read_lines(Path("o.jsonl"))
    assert ok["status"] == "ok"
    assert failed["attempts"] == 2 and failed["error"]["kind"] == "validation"
    assert "poem: Field required" in failed["error"]["message"]
    # The re-ask carries instructor's tool_result with the validation error.
    reask = [r for r in fake.requests if "thing 0" in r.text][-1].body
    assert len(reask["messages"]) == 3


def test_rejected_key_stops_and_never_shows_it(claude, fake, tmp_path):
    fake.fault(status=401)
    job = write_job(tmp_path / "j.jsonl", poem_records(2))
    result = claude(str(job), "-o", "o.jsonl")
    assert result.code == 3
    assert "ANTHROPIC_API_KEY" in result.err
    assert ANTHROPIC_KEY not in result.err + result.out
    assert ANTHROPIC_KEY not in Path("o.jsonl").read_text() if Path("o.jsonl").exists() else True


def test_anthropic_headers_set_the_pace_with_no_limit_given(claude, fake, tmp_path):
    # 600 requests/min, enforced per second, told only by
    # anthropic-ratelimit-requests-* headers with RFC 3339 resets.
    fake.state.quota = Quota(rpm=600, style="anthropic")
    fake.state.latency = 0.03
    job = write_job(tmp_path / "j.jsonl", poem_records(30))
    result = claude(str(job), "-o", "o.jsonl", "--concurrency", "16")
    assert result.code == 0, result.err
    assert fake.state.quota.accepted == 30
    # Paced by the headers (unpaced, 16 at once into 10 a second draw six or
    # more at the start); how few is timing, the bench's figure.
    assert fake.state.quota.rejected <= 3


def test_input_token_limit_from_headers_is_kept_apart_from_output(claude, fake, tmp_path):
    # Only input tokens are limited (~95 a request, 1,500 a second): the
    # limiter holds that budget alone, learned from
    # anthropic-ratelimit-input-tokens-*.
    fake.state.quota = Quota(itpm=60 * 1500, style="anthropic")
    fake.state.latency = 0.03
    job = write_job(tmp_path / "j.jsonl", poem_records(60))
    result = claude(str(job), "-o", "o.jsonl", "--concurrency", "32")
    assert result.code == 0, result.err
    stats = fake.state.quota.stats()
    assert stats["accepted"] == 60
    assert fake.state.quota.rejected <= 3  # unpaced: dozens
    sent_input = sum(r.usage["input_tokens"] for r in fake.requests if r.usage)
    # Paced, not all at once: what is beyond the one-second burst takes time.
    assert stats["span_s"] >= 0.8 * (sent_input - 1500) / 1500


def test_itpm_and_otpm_given_on_the_command_line_pace_a_server_without_headers(
    claude, fake, tmp_path
):
    # Output tokens bind (~25 an answer, 150 a second).  An answer's length is
    # known only once it is back, so the limits given leave a margin.
    fake.state.quota = Quota(itpm=60 * 1500, otpm=60 * 150, style="anthropic", headers=False)
    job = write_job(tmp_path / "j.jsonl", poem_records(40))
    result = claude(
        str(job), "-o", "o.jsonl", "--concurrency", "32", "--itpm", "81000", "--otpm", "8100"
    )
    assert result.code == 0, result.err
    assert fake.state.quota.accepted == 40
    assert fake.state.quota.rejected <= 3  # unpaced: dozens
    sent_output = sum(r.usage["output_tokens"] for r in fake.requests if r.usage)
    assert fake.state.quota.stats()["span_s"] >= 0.8 * (sent_output - 150) / 150


def test_estimate_prices_anthropic_live_and_in_batches(tmp_path, capsys, monkeypatch):
    import json

    from rolebatch.cli import main

    monkeypatch.setenv("ANTHROPIC_API_KEY", ANTHROPIC_KEY)
    job = write_job(tmp_path / "j.jsonl", poem_records(4))
    assert main(["estimate", str(job), "--model", CLAUDE, "--json", "--otpm", "4096"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["completion_tokens"] == 4 * 1024  # the max_tokens that is sent
    expected = (data["prompt_tokens"] * 0.25 + data["completion_tokens"] * 1.25) / 1e6
    assert data["cost_usd"] == pytest.approx(expected, rel=1e-3)
    assert data["batch_cost_usd"] == pytest.approx(expected / 2, rel=1e-3)
    assert data["seconds"] == pytest.approx(60.0)  # 4,096 output tokens at --otpm 4096
    assert "--otpm 4096" in data["time_basis"]
