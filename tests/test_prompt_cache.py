"""Requests shaped for the providers' prompt caches: one prompt_cache_key per
role (OpenAI), a cache_control mark after a long role (Anthropic), cache
writes and reads priced at their rates, a sweep's requests sent a role at a
time, and the estimate's assumption; against the loopback fakes."""

from __future__ import annotations

import json
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import pytest

from rolebatch.cli import main
from tests.helpers import poem_records, read_lines, write_job

# About 1,300 tokens at 4 characters a token: over the 1,024 a prefix needs.
LONG_ROLE = "You are Ada, a lighthouse keeper of the northern coast. " + " ".join(
    f"Catchphrase {i}: the lamp is lit, the sea is watched." for i in range(110)
)
ROLES = [
    {"id": "poet", "role": "You are a renowned poet."},
    {"id": "pirate", "role": "You are a pirate captain."},
]


def test_every_request_of_one_role_carries_one_prompt_cache_key(rolebatch, fake, tmp_path):
    job = write_job(tmp_path / "j.jsonl", [{"query": f"Write about thing {i}."} for i in range(4)])
    roles = write_job(tmp_path / "roles.jsonl", ROLES)
    assert rolebatch(str(job), "-o", "o.jsonl", "--roles", str(roles)).code == 0
    keys = defaultdict(set)
    for request in fake.requests:
        role = next(r["id"] for r in ROLES if r["role"] in request.text)
        keys[role].add(request.body["prompt_cache_key"])
    assert {role: len(found) for role, found in keys.items()} == {"poet": 1, "pirate": 1}
    assert keys["poet"] != keys["pirate"]
    # The role comes first: the same prefix for every query of the role.
    for request in fake.requests:
        assert request.body["messages"][0]["content"].startswith("You are a")


def test_a_batch_request_carries_the_key_too(rolebatch, fake, tmp_path):
    job = write_job(tmp_path / "j.jsonl", poem_records(3))
    batch = ("--via", "batch", "--poll-interval", "0.01")
    assert rolebatch(str(job), "-o", "o.jsonl", *batch).code == 0
    (batch_id,) = fake.state.batches.batches
    bodies = [request["body"] for request in fake.state.batches.requests_of(batch_id)]
    assert len(bodies) == 3
    assert len({body["prompt_cache_key"] for body in bodies}) == 1


def test_a_provider_not_known_to_take_it_gets_no_key(rolebatch, fake, tmp_path):
    job = write_job(tmp_path / "j.jsonl", poem_records(2))
    assert rolebatch(str(job), "-o", "o.jsonl", "--model", "compat/some-model").code == 0
    assert all("prompt_cache_key" not in r.body for r in fake.requests)


def marks(body: dict) -> list[tuple[str, int, dict]]:
    """(where, block index, block) of every block marked cache_control."""
    found = []
    system = body.get("system")
    for i, block in enumerate(system if isinstance(system, list) else []):
        if "cache_control" in block:
            found.append(("system", i, block))
    for m, message in enumerate(body["messages"]):
        content = message["content"]
        for i, block in enumerate(content if isinstance(content, list) else []):
            if "cache_control" in block:
                found.append((f"message {m}", i, block))
    return found


@pytest.mark.parametrize("layout", ["system", "split"])
def test_a_long_role_gets_one_breakpoint_after_its_text(claude, fake, tmp_path, layout):
    job = write_job(
        tmp_path / "j.jsonl",
        [{"query": f"Write about thing {i}.", "role": LONG_ROLE} for i in range(3)],
    )
    model = ("--model", "anthropic/claude-sonnet-4-5")
    result = claude(
        str(job), "-o", "o.jsonl", "--layout", layout, *model, "--summary-json", "s.json"
    )
    assert result.code == 0, result.err
    for i, request in enumerate(fake.requests):
        (mark,) = marks(request.body)
        where, index, block = mark
        assert block["cache_control"] == {"type": "ephemeral"}
        assert block["text"].strip() == LONG_ROLE and index == 0
        # The model reads what it read before: the role, then the query.
        assert f"thing {i}." in request.text and request.text.index(LONG_ROLE) == 0
        assert where == ("system" if layout == "split" else "message 0")
    # The fake caches the marked prefix: the first request writes it, the others read it.
    lines = read_lines(Path("o.jsonl"))
    assert lines[0]["usage"]["cache_write_tokens"] > 1024
    assert "cached_tokens" not in lines[0]["usage"]
    for line in lines[1:]:
        assert line["usage"]["cached_tokens"] == lines[0]["usage"]["cache_write_tokens"]
    # Priced at Sonnet 4.5's rates: input $3, writes $3.75, reads $0.30, output $15.
    for line in lines:
        usage = line["usage"]
        read = usage.get("cached_tokens", 0)
        written = usage.get("cache_write_tokens", 0)
        plain = usage["prompt_tokens"] - read - written
        expected = (
            Decimal(plain) * 3
            + Decimal(written) * Decimal("3.75")
            + Decimal(read) * Decimal("0.3")
            + Decimal(usage["completion_tokens"]) * 15
        ) / 1_000_000
        assert line["cost_usd"] == pytest.approx(float(expected), rel=1e-9)
    facts = json.loads(Path("s.json").read_text())["prompt_cache"]
    read = sum(line["usage"].get("cached_tokens", 0) for line in lines)
    written = lines[0]["usage"]["cache_write_tokens"]
    assert facts["read_tokens"] == read and facts["written_tokens"] == written
    saving = (Decimal(read) * Decimal("2.7") - Decimal(written) * Decimal("0.75")) / 1_000_000
    assert facts["saving_usd"] == pytest.approx(float(saving), rel=1e-9)
    assert "of prompt tokens read from the provider's cache" in result.err


def test_a_short_role_gets_no_breakpoint(claude, fake, tmp_path):
    job = write_job(tmp_path / "j.jsonl", poem_records(2))
    assert claude(str(job), "-o", "o.jsonl").code == 0
    assert fake.requests and all(marks(r.body) == [] for r in fake.requests)
    assert "cache_control" not in json.dumps([r.body for r in fake.requests])


def test_haiku_needs_twice_the_prefix(claude, fake, tmp_path):
    job = write_job(tmp_path / "j.jsonl", [{"query": "Write.", "role": LONG_ROLE}])
    assert (
        claude(str(job), "-o", "o.jsonl", "--model", "anthropic/claude-3-haiku-20240307").code == 0
    )
    assert marks(fake.requests[0].body) == []  # 1,300 tokens: under Haiku's 2,048


def test_a_sweep_sends_a_role_at_a_time_and_writes_in_place_order(rolebatch, fake, tmp_path):
    job = write_job(tmp_path / "j.jsonl", [{"query": f"Write about thing {i}."} for i in range(5)])
    roles = write_job(tmp_path / "roles.jsonl", [{"id": "none", "role": ""}, *ROLES])
    run = rolebatch(str(job), "-o", "o.jsonl", "--roles", str(roles), "--concurrency", "1")
    assert run.code == 0, run.err

    def role_of(text: str) -> str:
        return next((r["id"] for r in ROLES if r["role"] in text), "none")

    sent = [role_of(r.text) for r in fake.requests]
    assert sent == ["none"] * 5 + ["poet"] * 5 + ["pirate"] * 5
    lines = read_lines(Path("o.jsonl"))
    assert [line["line"] for line in lines] == list(range(1, 16))
    assert [line["id"] for line in lines[:3]] == ["line-1@none", "line-1@poet", "line-1@pirate"]


@pytest.mark.parametrize(
    "model,writes", [("anthropic/claude-sonnet-4-5", True), ("openai/gpt-4o", False)]
)
def test_the_estimate_assumes_a_hit_after_each_roles_first_and_says_so(
    tmp_path, capsys, model, writes
):
    records = [{"query": f"Write about thing {i}.", "role": LONG_ROLE} for i in range(4)]
    records += [{"query": f"Write about thing {i}.", "role": "You are short."} for i in range(4)]
    job = write_job(tmp_path / "j.jsonl", records)
    args = ["estimate", str(job), "--model", model, "--max-tokens", "100", "--json"]
    assert main(args) == 0
    facts = json.loads(capsys.readouterr().out)
    read, written = facts["prompt_cache_read_tokens"], facts["prompt_cache_written_tokens"]
    # Three of the long role's four requests read its prefix; the short role has none.
    assert read > 3 * 1024 and read % 3 == 0
    assert written == (read // 3 if writes else 0)
    assert main(args[:-1]) == 0
    assert "assumes" in capsys.readouterr().out
    # Priced: the reads at the cache-read rate, the write at the write rate.
    assert main([*args, "--price", "3/15/0.3"]) == 0  # no write rate given: the input rate
    plain = json.loads(capsys.readouterr().out)
    each = (facts["prompt_tokens"] - read - 0) * 3 + read * 0.3 + facts["completion_tokens"] * 15
    assert plain["cost_usd"] == pytest.approx(each / 1e6, rel=1e-3)  # tokens a record, rounded


def test_no_assumption_for_a_provider_without_one(tmp_path, capsys):
    job = write_job(tmp_path / "j.jsonl", [{"query": "Write.", "role": LONG_ROLE}] * 1)
    records = [{"id": i, "query": f"Write {i}.", "role": LONG_ROLE} for i in range(3)]
    write_job(job, records)
    assert main(["estimate", str(job), "--model", "groq/llama-3.1-8b-instant", "--json"]) == 0
    facts = json.loads(capsys.readouterr().out)
    assert facts["prompt_cache_read_tokens"] == 0
