"""Runs against a server that enforces limits: 429 storms, Retry-After, no headers at all."""

from __future__ import annotations

from pathlib import Path

from rolebatch.pacing.limiter import PROBE_PATIENCE
from tests.fakes.quota import Quota
from tests.helpers import poem_records, read_lines, write_job


def statuses(path: str) -> set[str]:
    return {line["status"] for line in read_lines(Path(path))}


def test_429_storm_ends_with_every_record_ok(rolebatch, fake, tmp_path):
    fake.fault(status=429, retry_after=0.05, times=40)  # every early request is refused
    job = write_job(tmp_path / "j.jsonl", poem_records(20))
    result = rolebatch(str(job), "--concurrency", "8", "--max-retries", "0", "-o", "o.jsonl")
    assert result.code == 0, result.err
    lines = read_lines(Path("o.jsonl"))
    assert statuses("o.jsonl") == {"ok"} and len(lines) == 20
    assert sum(line["attempts"] for line in lines) == 20 + 40
    assert sum(r.status == 429 for r in fake.requests) == 40


def test_server_limit_per_second_is_reached_without_failures(rolebatch, fake, tmp_path):
    fake.state.quota = Quota(rpm=600)  # 10 per second, with x-ratelimit-* headers
    job = write_job(tmp_path / "j.jsonl", poem_records(30))
    result = rolebatch(str(job), "--concurrency", "16", "-o", "o.jsonl")
    assert result.code == 0, result.err
    assert statuses("o.jsonl") == {"ok"}
    assert fake.state.quota.accepted == 30


def test_limits_learned_from_the_first_answer_leave_no_opening_burst_of_429s(
    rolebatch, fake, tmp_path
):
    # 32 workers and no --rpm: before the first answer nothing says the server
    # takes 10 a second.  The first request goes alone; its headers set the pace.
    fake.state.quota = Quota(rpm=600)
    fake.state.latency = 0.05  # answers take a while, as real ones do
    job = write_job(tmp_path / "j.jsonl", poem_records(30))
    result = rolebatch(str(job), "--concurrency", "32", "-o", "o.jsonl")
    assert result.code == 0, result.err
    assert fake.state.quota.accepted == 30
    first, second = sorted(r.at for r in fake.requests)[:2]
    if second - first < PROBE_PATIENCE:
        assert fake.state.quota.rejected <= 1
    else:  # a loaded machine: the first answer outwaited the probe; one burst, then the pace
        assert fake.state.quota.rejected <= 16 - 10
    assert sum(line["attempts"] for line in read_lines(Path("o.jsonl"))) <= 31


def test_a_token_limit_is_kept_from_the_first_request_on(rolebatch, fake, tmp_path):
    # Before any answer a request is guessed at 256 completion tokens; the
    # answers say ~20.  Whatever the guess, the server's count is never exceeded.
    fake.state.latency = 0.05
    job = write_job(tmp_path / "j.jsonl", poem_records(24))
    for args in ((), ("--tpm", str(60 * 200))):
        fake.state.quota = Quota(tpm=60 * 200)
        result = rolebatch(str(job), "--concurrency", "16", "-o", "o.jsonl", "--fresh", *args)
        assert result.code == 0, result.err
        assert fake.state.quota.accepted == 24
        assert fake.state.quota.rejected <= 1, args


def test_server_without_headers_or_retry_after_is_backed_off_from(rolebatch, fake, tmp_path):
    fake.state.quota = Quota(rpm=600, headers=False, retry_after=False)
    job = write_job(tmp_path / "j.jsonl", poem_records(30))
    result = rolebatch(str(job), "--concurrency", "16", "-o", "o.jsonl")
    assert result.code == 0, result.err
    assert statuses("o.jsonl") == {"ok"}
    assert fake.state.quota.accepted == 30


def test_retry_after_holds_back_every_worker(rolebatch, fake, tmp_path):
    fake.fault(match="thing 0.", status=429, retry_after=0.6, times=1)
    job = write_job(tmp_path / "j.jsonl", poem_records(16))
    result = rolebatch(str(job), "--concurrency", "4", "--rpm", "60000", "-o", "o.jsonl")
    assert result.code == 0, result.err
    refused = next(r for r in fake.requests if r.status == 429)
    # Requests already on their way when the 429 went out may still arrive just
    # after it; from then on, no worker sends anything until the hold is over.
    during = [r for r in fake.requests if refused.at + 0.2 < r.at < refused.at + 0.6]
    after = [r for r in fake.requests if r.at >= refused.at + 0.6]
    assert during == []
    retried = [r for r in after if "thing 0." in r.text]
    assert len(retried) == 1 and retried[0].status == 200


def test_rpm_option_is_in_help(capsys):
    from rolebatch.cli import main

    assert main(["run", "--help"]) == 0
    text = capsys.readouterr().out
    assert "--rpm" in text and "--tpm" in text and "--max-rate-limit-retries" in text


def _openrouter_run(rolebatch, fake, tmp_path, monkeypatch, latency: float):
    """30 records through OpenRouter's preset against a limit of 10 requests
    in each one-second window, told only by OpenRouter's headers."""
    monkeypatch.setenv("OPENROUTER_API_KEY", "sk-or-test")
    fake.state.quota = Quota(rpm=600, style="openrouter")
    fake.state.latency = latency
    job = write_job(tmp_path / "j.jsonl", poem_records(30))
    return rolebatch(
        str(job), "-o", "o.jsonl", "--concurrency", "16", "--model", "openrouter/openai/gpt-4o"
    )


def test_openrouter_headers_hold_the_pace_with_no_limit_given(
    rolebatch, fake, tmp_path, monkeypatch
):
    # OpenRouter's headers: x-ratelimit-limit / -remaining for its window and
    # a reset in milliseconds since the epoch; no -requests/-tokens suffix.
    result = _openrouter_run(rolebatch, fake, tmp_path, monkeypatch, latency=0.03)
    assert result.code == 0, result.err
    assert fake.state.quota.accepted == 30
    first, second = sorted(r.at for r in fake.requests)[:2]
    if second - first < PROBE_PATIENCE:
        assert fake.state.quota.rejected <= 1
    else:  # a loaded machine: the first answer outwaited the probe; one burst, then the pace
        assert fake.state.quota.rejected <= 16 - 10


def test_openrouter_answers_slower_than_its_window_bring_no_429(
    rolebatch, fake, tmp_path, monkeypatch
):
    # Every answer comes after the one-second window it was counted in is over:
    # the first answer of a window renews it, the others are old news (before,
    # each renewed it again: 2 to 6 429s in this run).
    result = _openrouter_run(rolebatch, fake, tmp_path, monkeypatch, latency=1.2)
    assert result.code == 0, result.err
    assert fake.state.quota.accepted == 30 and fake.state.quota.rejected == 0
