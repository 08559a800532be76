"""End-to-end runs against the loopback server: output contract, modes, layouts, re-asks."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import anyio
import pytest

from rolebatch import Asked, Bought, Paced, Response, RunConfig, run_job
from tests.helpers import SECRET_KEY, poem_records, read_lines, write_job

CONTRACT_KEYS = [
    "id",
    "line",
    "status",
    "response",
    "error",
    "role",
    "query",
    "model",
    "attempts",
    "usage",
    "latency_s",
    "metadata",
    "seed",
    "cost_usd",
]


def test_thousand_records_each_id_once_all_ok_and_valid(rolebatch, fake, tmp_path):
    records = poem_records(1000)
    job = write_job(tmp_path / "big.jsonl", records)
    result = rolebatch(str(job), "--concurrency", "32")
    assert result.code == 0, result.err
    out = Path("out/big.jsonl")
    assert result.out.strip() == str(out)
    lines = read_lines(out)
    assert len(lines) == 1000
    assert Counter(line["id"] for line in lines) == Counter(r["id"] for r in records)
    assert {line["status"] for line in lines} == {"ok"}
    for line in lines:
        assert list(line) == CONTRACT_KEYS
        Response.model_validate(line["response"], strict=True)
        assert line["model"] == "openai/gpt-4o"
        assert line["attempts"] == 1
    assert len(fake.requests) == 1000
    assert "1,000 of 1,000 records" in result.err and "1,000 ok, 0 failed" in result.err


def test_output_line_carries_the_record(rolebatch, fake, tmp_path):
    record = {
        "id": "coffee",
        "query": "Write me a short poem about coffee.",
        "role": "You are a renowned poet.",
        "metadata": {"any": "thing"},
    }
    job = write_job(tmp_path / "one.jsonl", ["", record])
    assert rolebatch(str(job), "-o", "res.jsonl").code == 0
    (line,) = read_lines(Path("res.jsonl"))
    sent = fake.requests[0]
    assert line["id"] == "coffee" and line["line"] == 2
    assert line["role"] == record["role"] and line["query"] == record["query"]
    assert line["metadata"] == {"any": "thing"}
    assert line["error"] is None
    assert line["usage"] == sent.usage
    assert line["latency_s"] >= 0
    assert line["response"]["poem"].startswith("Answer to: You are a renowned poet.")


@pytest.mark.parametrize(
    ("layout", "expected"),
    [
        (
            "system",
            [
                {
                    "role": "system",
                    "content": "You are a renowned poet. Write me a short poem about coffee.",
                }
            ],
        ),
        (
            "split",
            [
                {"role": "system", "content": "You are a renowned poet."},
                {"role": "user", "content": "Write me a short poem about coffee."},
            ],
        ),
    ],
)
def test_layouts_send_exact_messages(rolebatch, fake, tmp_path, layout, expected):
    job = write_job(
        tmp_path / "j.jsonl",
        [{"query": "Write me a short poem about coffee.", "role": "You are a renowned poet."}],
    )
    assert rolebatch(str(job), "--layout", layout, "--mode", "tools").code == 0
    assert fake.requests[0].body["messages"] == expected


def test_record_without_role_sends_the_query_alone(rolebatch, fake, tmp_path):
    job = write_job(tmp_path / "j.jsonl", [{"query": "Just the query."}])
    assert rolebatch(str(job), "--layout", "split").code == 0
    assert fake.requests[0].body["messages"] == [{"role": "user", "content": "Just the query."}]


@pytest.mark.parametrize("mode", ["tools", "json", "json_schema", "md_json"])
def test_each_mode_round_trips(rolebatch, fake, tmp_path, mode):
    job = write_job(tmp_path / "j.jsonl", poem_records(3))
    result = rolebatch(str(job), "--mode", mode, "-o", "m.jsonl")
    assert result.code == 0, result.err
    lines = read_lines(Path("m.jsonl"))
    assert {line["status"] for line in lines} == {"ok"}
    body = fake.requests[0].body
    if mode == "tools":
        assert body["tools"][0]["function"]["name"] == "Response"
    elif mode == "json":
        assert body["response_format"] == {"type": "json_object"}
    elif mode == "json_schema":
        assert body["response_format"]["type"] == "json_schema"
    else:
        assert "tools" not in body and "response_format" not in body


def test_generation_options_are_sent(rolebatch, fake, tmp_path):
    job = write_job(tmp_path / "j.jsonl", poem_records(1))
    result = rolebatch(
        str(job), "--model", "openai/gpt-4o-mini", "--max-tokens", "77", "--temperature", "0.3"
    )
    assert result.code == 0
    body = fake.requests[0].body
    assert (body["model"], body["max_tokens"], body["temperature"]) == ("gpt-4o-mini", 77, 0.3)
    assert fake.requests[0].headers["authorization"] == f"Bearer {SECRET_KEY}"


def test_reask_counts_attempts_and_sums_usage(rolebatch, fake, tmp_path):
    records = poem_records(4)
    fake.fault(match="thing 2.", invalid=True, times=2)
    job = write_job(tmp_path / "j.jsonl", records)
    result = rolebatch(str(job), "--max-reasks", "2", "-o", "r.jsonl")
    assert result.code == 0, result.err
    by_id = {line["id"]: line for line in read_lines(Path("r.jsonl"))}
    reasked = by_id["r2"]
    assert reasked["status"] == "ok" and reasked["attempts"] == 3
    sent = [r for r in fake.requests if "thing 2." in r.text]
    assert len(sent) == 3
    expected = {key: sum(r.usage[key] for r in sent) for key in sent[0].usage}
    assert reasked["usage"] == expected
    # The re-asks carry the validation error back to the model.
    assert "validation error" in sent[-1].text.lower()
    assert by_id["r1"]["attempts"] == 1


def test_validation_failure_after_reasks_is_an_error_line(rolebatch, fake, tmp_path):
    fake.fault(match="thing 1.", invalid=True)
    job = write_job(tmp_path / "j.jsonl", poem_records(3))
    result = rolebatch(str(job), "--max-reasks", "1", "-o", "v.jsonl")
    assert result.code == 1
    by_id = {line["id"]: line for line in read_lines(Path("v.jsonl"))}
    bad = by_id["r1"]
    assert bad["status"] == "error" and bad["response"] is None
    assert bad["error"]["kind"] == "validation"
    # The field and its problem, not pydantic's "1 validation error for Response".
    assert bad["error"]["message"] == "no valid answer after 2 attempt(s): poem: Field required"
    assert bad["attempts"] == 2
    assert bad["usage"]["total_tokens"] == sum(
        r.usage["total_tokens"] for r in fake.requests if "thing 1." in r.text
    )
    assert by_id["r0"]["status"] == by_id["r2"]["status"] == "ok"
    assert "errors: validation 1" in result.err


def test_json_schema_file(rolebatch, fake, tmp_path):
    schema = {
        "title": "Review",
        "type": "object",
        "properties": {
            "stars": {"type": "integer", "minimum": 1, "maximum": 5},
            "summary": {"type": "string", "maxLength": 40},
            "tags": {"type": "array", "items": {"type": "string"}},
            "tone": {"enum": ["warm", "cold"]},
        },
        "required": ["stars", "summary", "tags", "tone"],
    }
    (tmp_path / "review.json").write_text(json.dumps(schema))
    job = write_job(tmp_path / "j.jsonl", poem_records(2))
    result = rolebatch(str(job), "--schema", "review.json", "-o", "s.jsonl")
    assert result.code == 0, result.err
    for line in read_lines(Path("s.jsonl")):
        response = line["response"]
        assert set(response) == {"stars", "summary", "tags", "tone"}
        assert 1 <= response["stars"] <= 5 and len(response["summary"]) <= 40
    sent_schema = fake.requests[0].body["tools"][0]["function"]["parameters"]
    assert sent_schema["properties"]["stars"]["maximum"] == 5


def test_schema_from_module(rolebatch, fake, tmp_path):
    (tmp_path / "mymodels.py").write_text(
        "from pydantic import BaseModel\n\nclass Haiku(BaseModel):\n"
        "    title: str\n    lines: list[str]\n"
    )
    job = write_job(tmp_path / "j.jsonl", poem_records(1))
    result = rolebatch(str(job), "--schema", "mymodels:Haiku", "-o", "h.jsonl")
    assert result.code == 0, result.err
    (line,) = read_lines(Path("h.jsonl"))
    assert set(line["response"]) == {"title", "lines"}
    assert fake.requests[0].body["tools"][0]["function"]["name"] == "Haiku"


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_library_entry_point_on_both_backends(fake, tmp_path, backend):
    job = write_job(tmp_path / "j.jsonl", poem_records(20))
    config = RunConfig(
        job=job,
        output=tmp_path / "lib.jsonl",
        asked=Asked(model="openai/gpt-4o", base_url=fake.base_url),
        bought=Bought(api_key="sk-lib-key-000"),
        paced=Paced(concurrency=4),
    )
    # The same run from options named as on the command line.
    flat = RunConfig.of(
        job,
        tmp_path / "lib.jsonl",
        base_url=fake.base_url,
        model="openai/gpt-4o",
        api_key="sk-lib-key-000",
        concurrency=4,
    )
    assert flat == config
    summary = anyio.run(run_job, config, backend=backend)
    assert (summary.tally.ok, summary.tally.failed, summary.exit_code) == (20, 0, 0)
    assert len(read_lines(tmp_path / "lib.jsonl")) == 20


def test_trio_backend_from_the_cli(rolebatch, fake, tmp_path):
    job = write_job(tmp_path / "j.jsonl", poem_records(5))
    result = rolebatch(str(job), "--backend", "trio", "-o", "t.jsonl")
    assert result.code == 0, result.err
    assert len(read_lines(Path("t.jsonl"))) == 5
