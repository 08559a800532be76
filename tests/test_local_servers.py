"""Servers on the user's machine (llamacpp, ollama, vllm presets): not
flooded, bounded answers, and the schema sent where llama.cpp's servers take
it.  Against the fake server made to work on a few answers at a time."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fakes.server import Slots
from tests.helpers import poem_records, read_lines, write_job


def test_a_one_slot_server_is_not_flooded_and_nothing_times_out(rolebatch, fake, tmp_path):
    """Eight workers asked for; the server works on one answer at a time
    (0.25 s each).  Eight at once would queue for 2 s and time out at 1.5 s.
    How few go at once is read from answer times, which a loaded machine
    stretches: ``python -m bench queue`` measures it (at most 2), the window's
    rules are tested on a clock the tests move (``test_limiter``), and here
    the outcome that matters: never the eight, nothing timed out or retried."""
    fake.state.latency = 0.25
    fake.state.slots = Slots(1)
    # Answers of one length: this server's time is per answer, and the pacing
    # reads time per token (a one-token-longer answer looked faster per token,
    # and one that waited in line read as not queued: 1 run in 10 went to 3).
    fake.fault(answer={"poem": "Every answer is this long."})
    job = write_job(tmp_path / "j.jsonl", poem_records(12))
    result = rolebatch(
        str(job), "-o", "o.jsonl", "--model", "llamacpp/any", "--concurrency", "8",
        "--timeout", "1.5",
    )  # fmt: skip
    assert result.code == 0, result.err
    lines = read_lines(Path("o.jsonl"))
    assert [line["status"] for line in lines] == ["ok"] * 12
    assert [line["attempts"] for line in lines] == [1] * 12  # no timeout, no retry
    assert fake.state.slots.most_at_once < 8


def test_slots_the_server_reports_are_what_goes_at_once(rolebatch, fake, tmp_path):
    fake.state.latency = 0.2
    fake.state.slots = Slots(3, report=True)  # GET /props: total_slots 3
    job = write_job(tmp_path / "j.jsonl", poem_records(12))
    result = rolebatch(str(job), "-o", "o.jsonl", "--model", "llamacpp/any", "--timeout", "2")
    assert result.code == 0, result.err
    assert fake.state.slots.most_at_once == 3  # from the first requests after the probe on


@pytest.mark.parametrize(
    ("model", "mode", "schema_sent"),
    [
        ("llamacpp/any", (), True),  # json by default, with the schema
        ("llamacpp/any", ("--mode", "json"), True),
        ("ollama/llama3.1", ("--mode", "json"), False),  # Ollama: any JSON
    ],
)
def test_json_mode_sends_the_schema_where_llama_cpp_takes_it(
    rolebatch, fake, tmp_path, model, mode, schema_sent
):
    job = write_job(tmp_path / "j.jsonl", poem_records(1))
    assert rolebatch(str(job), "-o", "o.jsonl", "--model", model, *mode).code == 0
    (sent,) = fake.requests
    response_format = sent.body["response_format"]
    assert response_format["type"] == "json_object"
    if schema_sent:
        assert response_format["schema"]["properties"]["poem"]["type"] == "string"
        assert "extra_body" not in sent.body
    else:
        assert "schema" not in response_format


@pytest.mark.parametrize("model", ["llamacpp/any", "ollama/llama3.1", "vllm/Qwen/Qwen2.5-7B"])
def test_local_presets_bound_every_answer(rolebatch, fake, tmp_path, model):
    job = write_job(tmp_path / "j.jsonl", poem_records(1))
    assert rolebatch(str(job), "-o", "o.jsonl", "--model", model).code == 0
    assert fake.requests[0].body["max_tokens"] == 512
    fake.reset()
    fake.fault(truncated=True)
    assert rolebatch(str(job), "-o", "t.jsonl", "--model", model).code == 1
    (line,) = read_lines(Path("t.jsonl"))
    assert line["error"]["kind"] == "truncated"


def test_a_remote_provider_keeps_every_worker_busy(rolebatch, fake, tmp_path):
    """The queue watch is for servers on the user's machine: a hosted API is
    sent the workers it was given from the first answer on."""
    fake.state.latency = 0.2
    fake.state.slots = Slots(8)
    job = write_job(tmp_path / "j.jsonl", poem_records(16))
    assert rolebatch(str(job), "-o", "o.jsonl", "--concurrency", "8").code == 0
    assert fake.state.slots.most_at_once == 8
