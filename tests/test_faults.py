"""Server faults: what each one does to a record, to the run and to its exit code."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import SECRET_KEY, poem_records, read_lines, write_job

FAST = ("--max-retries", "2")


def by_id(path: str) -> dict[str, dict]:
    return {line["id"]: line for line in read_lines(Path(path))}


def test_all_ok_exits_0(rolebatch, tmp_path):
    job = write_job(tmp_path / "j.jsonl", poem_records(3))
    assert rolebatch(str(job)).code == 0


def test_429_with_retry_after_is_retried_and_counted(rolebatch, fake, tmp_path):
    fake.fault(match="thing 0.", status=429, retry_after=0.05, times=2)
    job = write_job(tmp_path / "j.jsonl", poem_records(2))
    result = rolebatch(str(job), *FAST, "-o", "o.jsonl")
    assert result.code == 0, result.err
    lines = by_id("o.jsonl")
    assert lines["r0"]["status"] == "ok" and lines["r0"]["attempts"] == 3
    assert lines["r1"]["attempts"] == 1


def test_retry_after_ms_is_honoured(rolebatch, fake, tmp_path):
    fake.fault(status=429, retry_after_ms=20, times=1)
    job = write_job(tmp_path / "j.jsonl", poem_records(1))
    result = rolebatch(str(job), *FAST, "-o", "o.jsonl")
    assert result.code == 0
    assert by_id("o.jsonl")["r0"]["attempts"] == 2


def test_429_that_outlasts_retries_is_a_rate_limit_line_and_exit_1(rolebatch, fake, tmp_path):
    fake.fault(match="thing 1.", status=429, retry_after=0.01)
    job = write_job(tmp_path / "j.jsonl", poem_records(3))
    result = rolebatch(str(job), "--max-rate-limit-retries", "2", "-o", "o.jsonl")
    assert result.code == 1
    bad = by_id("o.jsonl")["r1"]
    assert bad["error"] == {"kind": "rate_limit", "message": "fake error 429", "status_code": 429}
    assert bad["attempts"] == 3 and bad["usage"] is None
    assert "errors: rate_limit 1" in result.err


def test_500_is_retried_then_succeeds(rolebatch, fake, tmp_path):
    fake.fault(match="thing 0.", status=500, times=1)
    job = write_job(tmp_path / "j.jsonl", poem_records(1))
    result = rolebatch(str(job), *FAST, "-o", "o.jsonl")
    assert result.code == 0
    assert by_id("o.jsonl")["r0"]["attempts"] == 2


def test_persistent_500_is_a_server_line(rolebatch, fake, tmp_path):
    fake.fault(match="thing 0.", status=503, retry_after=0)
    job = write_job(tmp_path / "j.jsonl", poem_records(2))
    result = rolebatch(str(job), "--max-retries", "1", "-o", "o.jsonl")
    assert result.code == 1
    lines = by_id("o.jsonl")
    assert lines["r0"]["error"]["kind"] == "server" and lines["r0"]["attempts"] == 2
    assert lines["r1"]["status"] == "ok"


def test_400_fails_only_its_record_without_retry(rolebatch, fake, tmp_path):
    fake.fault(match="thing 1.", status=400)
    job = write_job(tmp_path / "j.jsonl", poem_records(3))
    result = rolebatch(str(job), *FAST, "-o", "o.jsonl")
    assert result.code == 1
    lines = by_id("o.jsonl")
    assert lines["r1"]["error"]["kind"] == "bad_request"
    assert lines["r1"]["error"]["status_code"] == 400
    assert lines["r1"]["attempts"] == 1
    assert [r for r in fake.requests if "thing 1." in r.text].__len__() == 1
    assert lines["r0"]["status"] == lines["r2"]["status"] == "ok"


def test_slow_answer_times_out(rolebatch, fake, tmp_path):
    fake.fault(match="thing 0.", delay=1.0)
    job = write_job(tmp_path / "j.jsonl", poem_records(2))
    result = rolebatch(str(job), "--timeout", "0.2", "--max-retries", "0", "-o", "o.jsonl")
    assert result.code == 1
    lines = by_id("o.jsonl")
    assert lines["r0"]["error"]["kind"] == "timeout"
    assert lines["r1"]["status"] == "ok"


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_hang_up_is_a_connection_error_not_a_timeout(rolebatch, fake, tmp_path, backend):
    # asyncio sends through aiohttp, whose adapter calls every connection error
    # a timeout; trio through httpx.  Both must say what happened.
    fake.fault(match="thing 0.", drop=True, delay=0.3)  # after r1 has answered
    job = write_job(tmp_path / "j.jsonl", poem_records(2))
    result = rolebatch(str(job), "--max-retries", "1", "--backend", backend, "-o", "o.jsonl")
    assert result.code == 1, result.err
    lines = by_id("o.jsonl")
    assert lines["r0"]["error"]["kind"] == "connection", lines["r0"]
    assert lines["r0"]["attempts"] == 2
    assert lines["r1"]["status"] == "ok"


def test_answer_that_is_not_json_fails_its_record(rolebatch, fake, tmp_path):
    fake.fault(match="thing 0.", raw="<html>Bad gateway, try later</html>")
    job = write_job(tmp_path / "j.jsonl", poem_records(2))
    result = rolebatch(str(job), "-o", "o.jsonl")
    assert result.code == 1
    lines = by_id("o.jsonl")
    assert lines["r0"]["error"]["kind"] == "server"
    assert "not a chat completion: '<html>Bad gateway" in lines["r0"]["error"]["message"]
    assert lines["r1"]["status"] == "ok"


def test_completion_missing_fields_is_still_read(rolebatch, fake, tmp_path):
    # Loose OpenAI-compatible servers leave out id, created or object; the
    # strict fast parse fails and the lenient one must take over.
    fake.fault(omit=("id", "created", "object"))
    job = write_job(tmp_path / "j.jsonl", poem_records(2))
    result = rolebatch(str(job), "-o", "o.jsonl")
    assert result.code == 0, result.err
    lines = by_id("o.jsonl")
    assert all(line["status"] == "ok" for line in lines.values())
    assert lines["r0"]["usage"]["total_tokens"] > 0


def test_truncated_answer_is_its_own_kind(rolebatch, fake, tmp_path):
    fake.fault(match="thing 0.", truncated=True)
    job = write_job(tmp_path / "j.jsonl", poem_records(2))
    result = rolebatch(str(job), "-o", "o.jsonl")
    assert result.code == 1
    bad = by_id("o.jsonl")["r0"]
    assert bad["error"]["kind"] == "truncated"
    assert bad["attempts"] == 1 and bad["usage"]["completion_tokens"] > 0


def test_refusal_is_its_own_kind(rolebatch, fake, tmp_path):
    fake.fault(match="thing 0.", refusal=True)
    job = write_job(tmp_path / "j.jsonl", poem_records(1))
    result = rolebatch(str(job), "-o", "o.jsonl")
    assert result.code == 1
    assert by_id("o.jsonl")["r0"]["error"]["kind"] == "refusal"


def test_401_stops_the_run_with_exit_3_and_names_the_variable(rolebatch, fake, tmp_path):
    fake.fault(status=401, body={"error": {"message": "Incorrect API key provided"}})
    job = write_job(tmp_path / "j.jsonl", poem_records(50))
    result = rolebatch(str(job), "--concurrency", "2", "-o", "o.jsonl")
    assert result.code == 3
    assert "set OPENAI_API_KEY to a valid key" in result.err
    assert "Traceback" not in result.err
    # It stopped at once: no retries of a 401, nowhere near every record sent.
    assert len(fake.requests) <= 2
    assert Path("o.jsonl").read_text() == ""


def test_403_also_stops(rolebatch, fake, tmp_path):
    fake.fault(status=403)
    job = write_job(tmp_path / "j.jsonl", poem_records(3))
    assert rolebatch(str(job), "--concurrency", "1").code == 3


def test_auth_failure_mid_run_keeps_finished_lines(rolebatch, fake, tmp_path):
    fake.fault(match="thing 5.", status=401)
    job = write_job(tmp_path / "j.jsonl", poem_records(10))
    result = rolebatch(str(job), "--concurrency", "1", "-o", "o.jsonl")
    assert result.code == 3
    assert [line["id"] for line in read_lines(Path("o.jsonl"))] == [f"r{i}" for i in range(5)]
    assert "finished lines are kept in o.jsonl" in result.err


def test_unreachable_endpoint_exits_3_with_a_clear_message(rolebatch, fake, tmp_path):
    job = write_job(tmp_path / "j.jsonl", poem_records(5))
    result = rolebatch(str(job), "--max-retries", "1", base_url="http://127.0.0.1:9/v1")
    assert result.code == 3
    assert "cannot reach http://127.0.0.1:9/v1" in result.err
    assert "Traceback" not in result.err


def test_endpoint_that_keeps_failing_trips_the_breaker(fake, tmp_path):
    import anyio

    from rolebatch import EndpointError, RunConfig, run_job

    job = write_job(tmp_path / "j.jsonl", poem_records(200))
    fake.fault(match="thing 0.", times=1)  # one success first, so it is not "unreachable"
    fake.fault(status=500)
    config = RunConfig.of(
        job=job,
        output=tmp_path / "o.jsonl",
        base_url=fake.base_url,
        model="openai/gpt-4o",
        api_key="sk-x-000000",
        concurrency=1,
        max_retries=0,
        breaker_threshold=5,
        backoff_base=0.001,
    )
    try:
        anyio.run(run_job, config)
    except EndpointError as exc:
        assert "5 requests in a row" in str(exc)
        assert exc.summary.tally.ok == 1  # type: ignore[attr-defined]
    else:
        raise AssertionError("the breaker did not trip")
    assert len(fake.requests) == 6


def test_missing_key_for_openai_is_a_usage_error(capsys, tmp_path):
    from rolebatch.cli import main

    job = write_job(tmp_path / "j.jsonl", poem_records(1))
    assert main(["run", str(job), "--model", "openai/gpt-4o"]) == 2
    assert "OPENAI_API_KEY is not set" in capsys.readouterr().err


def test_unknown_provider_is_a_usage_error(rolebatch, tmp_path):
    job = write_job(tmp_path / "j.jsonl", poem_records(1))
    result = rolebatch(str(job), "--model", "nosuch/model")
    assert result.code == 2 and "unknown provider 'nosuch'" in result.err


def test_key_never_appears_in_output_or_messages(rolebatch, fake, tmp_path):
    # Servers echo keys back in error bodies, whole or partly masked.
    masked = SECRET_KEY[:8] + "*" * 10 + SECRET_KEY[-4:]
    fake.fault(
        match="thing 0.",
        status=400,
        body={"error": {"message": f"bad key {SECRET_KEY} for this model"}},
    )
    fake.fault(
        match="thing 1.",
        status=429,
        retry_after=0,
        body={"error": {"message": f"limit hit for key {masked}"}},
    )
    fake.fault(
        match="thing 3.",
        status=401,
        body={"error": {"message": f"Incorrect API key provided: {masked}"}},
    )
    job = write_job(tmp_path / "j.jsonl", poem_records(4))
    result = rolebatch(str(job), "--concurrency", "1", "--max-retries", "0", "-o", "o.jsonl")
    assert result.code == 3
    written = Path("o.jsonl").read_text()
    assert "[redacted]" in written and "[redacted]" in result.err
    for text in (written, result.out, result.err):
        assert SECRET_KEY not in text
        assert SECRET_KEY[-12:] not in text
        assert masked not in text
    assert fake.requests[0].headers["authorization"] == f"Bearer {SECRET_KEY}"
