"""What a real third-party server (llama-cpp-python's) showed: an endpoint
that answers every request with the same error is found out by the first
few requests and named in one clear message, not in a file of error lines or
after 20 retries.  The fake reproduces each behaviour that server had."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import poem_records, read_lines, write_job

LLAMA_CPP_500 = {
    "error": {
        "message": "Input should be 'text' or 'json_object' (response_format.type)",
        "type": "server_error",
    }
}


def lines_of(path: str) -> list[dict]:
    return read_lines(Path(path)) if Path(path).exists() else []


def test_a_mode_the_server_does_not_take_stops_after_three_requests(rolebatch, fake, tmp_path):
    # llama-cpp-python's server answers json_schema requests with a 500.
    fake.fault(status=500, body=LLAMA_CPP_500)
    job = write_job(tmp_path / "j.jsonl", poem_records(20))
    result = rolebatch(
        str(job),
        "-o",
        "o.jsonl",
        "--model",
        "llamacpp/qwen2.5",
        "--concurrency",
        "8",
        "--mode",
        "json_schema",
    )
    assert result.code == 3
    assert len(fake.requests) == 3  # one at a time until something works; three decide
    assert "answered 3 requests in a row with the same error" in result.err
    # The summary counts the three requests sent, lines or none.
    assert "requests: 3" in result.err
    assert "response_format.type" in result.err  # what the server said
    assert "try --mode json (or md_json, tools)" in result.err  # and what to try
    assert "cannot reach" not in result.err
    assert lines_of("o.jsonl") == []  # no record got a line: all are still to do


def test_a_model_the_server_does_not_have_is_named(rolebatch, fake, tmp_path):
    fake.fault(status=404, body={"error": {"message": "The model `gpt-5o` does not exist"}})
    job = write_job(tmp_path / "j.jsonl", poem_records(20))
    result = rolebatch(str(job), "-o", "o.jsonl", "--model", "openai/gpt-5o", "--concurrency", "8")
    assert result.code == 3
    assert len(fake.requests) == 3
    assert "404 The model `gpt-5o` does not exist" in result.err
    assert "Check the model name" in result.err
    assert len(lines_of("o.jsonl")) <= 2  # not a file full of error lines


def test_a_wrong_base_url_is_named(rolebatch, fake, tmp_path):
    job = write_job(tmp_path / "j.jsonl", poem_records(20))
    # Without /v1: the server has no /chat/completions.
    result = rolebatch(str(job), "-o", "o.jsonl", "--concurrency", "8", base_url=fake.root)
    assert result.code == 3
    assert "404 no route /chat/completions" in result.err
    assert "Check --base-url" in result.err and "/v1" in result.err


def test_after_a_success_the_same_errors_fail_only_their_records(rolebatch, fake, tmp_path):
    fake.fault(match="thing 0.", times=1)  # the first one works
    fake.fault(status=400, body={"error": {"message": "prompt too long"}}, times=5)
    job = write_job(tmp_path / "j.jsonl", poem_records(8))
    result = rolebatch(str(job), "-o", "o.jsonl", "--concurrency", "1")
    assert result.code == 1
    lines = read_lines(Path("o.jsonl"))
    assert [line["status"] for line in lines] == ["ok"] + ["error"] * 5 + ["ok"] * 2


def test_different_errors_at_the_start_do_not_stop_the_run(rolebatch, fake, tmp_path):
    for n in range(3):
        fake.fault(match=f"thing {n}.", status=400, body={"error": {"message": f"bad {n}"}})
    job = write_job(tmp_path / "j.jsonl", poem_records(5))
    result = rolebatch(str(job), "-o", "o.jsonl")
    assert result.code == 1
    assert [line["status"] for line in read_lines(Path("o.jsonl"))] == ["error"] * 3 + ["ok"] * 2


def test_a_server_that_answers_only_5xx_is_not_called_unreachable(rolebatch, fake, tmp_path):
    fake.fault(status=502, body={"error": {"message": "bad gateway"}})
    job = write_job(tmp_path / "j.jsonl", poem_records(30))
    result = rolebatch(str(job), "-o", "o.jsonl", "--max-retries", "0")
    assert result.code == 3
    assert "cannot reach" not in result.err and "none answered" not in result.err
    assert "20 requests in a row" in result.err and "none has succeeded" in result.err
    assert "502 bad gateway" in result.err


def test_validation_errors_name_the_field_and_the_problem(rolebatch, fake, tmp_path):
    fake.fault(match="thing 0.", answer={"poem": 42})
    fake.fault(match="thing 1.", answer={"title": "no poem here"})
    job = write_job(tmp_path / "j.jsonl", poem_records(2))
    result = rolebatch(str(job), "-o", "o.jsonl", "--mode", "json", "--max-reasks", "0")
    assert result.code == 1
    wrong_type, missing = read_lines(Path("o.jsonl"))
    assert "poem: Input should be a valid string" in wrong_type["error"]["message"]
    assert "poem: Field required" in missing["error"]["message"]
    assert "1 validation error for" not in wrong_type["error"]["message"]
