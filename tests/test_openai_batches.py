"""--via batch: the OpenAI Batch API, against the loopback fake of it.

Every record must be bought exactly once: the tests count, at the fake
provider, the custom ids of every batch ever created.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest

from tests.helpers import SECRET_KEY, poem_records, read_lines, wait_for_batch, write_job

ROOT = Path(__file__).resolve().parent.parent
OUT = "o.jsonl"
BATCH = ("--via", "batch", "--poll-interval", "0.01")


def record_of(custom_id: str) -> int:
    return int(custom_id.split("-")[0][1:])


def plain(custom_id: str) -> str:
    """A custom_id without its batch's mark: "L3-a2"."""
    line, attempt, mark = custom_id.split("-")
    assert len(mark) == 8, custom_id
    return f"{line}-{attempt}"


def test_a_job_end_to_end_at_half_price(rolebatch, fake, tmp_path, bought):
    job = write_job(tmp_path / "j.jsonl", poem_records(6))
    result = rolebatch(str(job), "-o", OUT, *BATCH, "--max-tokens", "60", "--temperature", "0.3")
    assert result.code == 0, result.err
    lines = read_lines(Path(OUT))
    assert [line["id"] for line in lines] == [f"r{i}" for i in range(6)]
    assert {line["status"] for line in lines} == {"ok"}
    (batch_id,) = fake.state.batches.batches
    assert {line["batch_id"] for line in lines} == {batch_id}
    for line in lines:  # gpt-4o through the batch API: $1.25 / $5 per million
        usage = line["usage"]
        expected = Decimal(usage["prompt_tokens"]) * Decimal("1.25") + usage[
            "completion_tokens"
        ] * Decimal(5)
        assert line["cost_usd"] == pytest.approx(float(expected / 1_000_000), rel=1e-9)
    assert bought() == Counter(range(1, 7))
    assert "batch " + batch_id + ": completed, 6 of 6 done" in result.err


def test_a_batch_request_is_exactly_what_the_live_path_sends(rolebatch, fake, tmp_path):
    job = write_job(tmp_path / "j.jsonl", poem_records(2))
    options = ("--layout", "split", "--max-tokens", "60", "--temperature", "0.3")
    assert rolebatch(str(job), "-o", "live.jsonl", *options).code == 0
    live = [request.body for request in fake.requests]
    fake.reset()
    assert rolebatch(str(job), "-o", OUT, *options, *BATCH).code == 0
    (batch_id,) = fake.state.batches.batches
    sent = fake.state.batches.requests_of(batch_id)
    assert [request["url"] for request in sent] == ["/v1/chat/completions"] * 2
    assert [plain(request["custom_id"]) for request in sent] == ["L1-a1", "L2-a1"]
    assert len({request["custom_id"][-8:] for request in sent}) == 1  # one batch, one mark
    assert [request["body"] for request in sent] == live


def test_no_wait_exits_4_then_the_same_command_collects(rolebatch, fake, tmp_path, bought):
    fake.state.batches.plan.polls = 1  # ends at its first retrieve: by the next run
    job = write_job(tmp_path / "j.jsonl", poem_records(4))
    first = rolebatch(str(job), "-o", OUT, *BATCH, "--no-wait")
    assert first.code == 4, first.err
    assert "4 requests in 1 batch(es) are at the provider" in first.err
    assert "Run the same command to collect" in first.err
    assert not Path(OUT).read_text()  # nothing answered yet
    second = rolebatch(str(job), "-o", OUT, *BATCH, "--no-wait")
    assert second.code == 0, second.err
    assert [line["status"] for line in read_lines(Path(OUT))] == ["ok"] * 4
    third = rolebatch(str(job), "-o", OUT, *BATCH, "--no-wait")
    assert third.code == 0 and "already done" in third.err
    assert bought() == Counter(range(1, 5))


def test_a_live_run_is_refused_while_batches_are_out(rolebatch, fake, tmp_path):
    job = write_job(tmp_path / "j.jsonl", poem_records(3))
    assert rolebatch(str(job), "-o", OUT, *BATCH, "--no-wait").code == 4
    (batch_id,) = fake.state.batches.batches
    live = rolebatch(str(job), "-o", OUT)
    assert live.code == 2
    assert batch_id in live.err and "--via batch" in live.err
    fresh = rolebatch(str(job), "-o", OUT, *BATCH, "--fresh")
    assert fresh.code == 2 and "--fresh would forget them" in fresh.err
    assert [r for r in fake.requests if not r.path.startswith("batch:")] == []


def test_expired_batches_give_what_finished_and_the_rest_is_bought_again(rolebatch, fake, tmp_path):
    fake.state.batches.plan.ends = ["expired"]
    fake.state.batches.plan.share = 0.5
    job = write_job(tmp_path / "j.jsonl", poem_records(8))
    result = rolebatch(str(job), "-o", OUT, *BATCH)
    assert result.code == 0, result.err
    first, second = fake.state.batches.batches
    lines = read_lines(Path(OUT))
    assert [line["id"] for line in lines] == [f"r{i}" for i in range(8)]
    assert Counter(line["batch_id"] for line in lines) == {first: 4, second: 4}
    # The expired batch's unanswered half went again; every record was answered once.
    sent = Counter(record_of(v) for v in fake.state.batches.custom_ids())
    assert sent == {**{i: 1 for i in range(1, 5)}, **{i: 2 for i in range(5, 9)}}
    answers = Counter(r.text for r in fake.requests if r.path.startswith("batch:"))
    assert set(answers.values()) == {1} and len(answers) == 8


def test_invalid_answers_are_reasked_in_a_follow_up_batch(rolebatch, fake, tmp_path):
    fake.fault(match="thing 2.", invalid=True, times=1)
    job = write_job(tmp_path / "j.jsonl", poem_records(4))
    result = rolebatch(str(job), "-o", OUT, *BATCH)
    assert result.code == 0, result.err
    _, second = fake.state.batches.batches
    (reask,) = fake.state.batches.requests_of(second)
    assert plain(reask["custom_id"]) == "L3-a2"
    messages = reask["body"]["messages"]
    assert len(messages) > 1 and "validation error" in json.dumps(messages[1:]).lower()
    line = read_lines(Path(OUT))[2]
    assert line["status"] == "ok" and line["attempts"] == 2 and line["batch_id"] == second
    usages = [r.usage for r in fake.requests if "thing 2." in r.text and r.usage]
    assert line["usage"]["total_tokens"] == sum(u["total_tokens"] for u in usages)


def test_answers_that_never_validate_end_as_validation_errors(rolebatch, fake, tmp_path):
    fake.fault(match="thing 1.", invalid=True)
    job = write_job(tmp_path / "j.jsonl", poem_records(2))
    result = rolebatch(str(job), "-o", OUT, *BATCH, "--max-reasks", "1")
    assert result.code == 1
    bad = read_lines(Path(OUT))[1]
    assert bad["error"]["kind"] == "validation" and bad["attempts"] == 2
    assert "poem: Field required" in bad["error"]["message"]
    assert len(fake.state.batches.batches) == 2  # the first round and one re-ask


def test_per_line_errors_are_error_lines_with_their_kinds(rolebatch, fake, tmp_path, bought):
    fake.fault(match="thing 1.", status=500)
    fake.fault(match="thing 2.", status=0)
    fake.fault(match="thing 3.", status=400)
    fake.fault(match="thing 4.", truncated=True)
    job = write_job(tmp_path / "j.jsonl", poem_records(5))
    result = rolebatch(str(job), "-o", OUT, *BATCH)
    assert result.code == 1
    kinds = [line["error"] and line["error"]["kind"] for line in read_lines(Path(OUT))]
    assert kinds == [None, "server", "server", "bad_request", "truncated"]
    # A rerun retries the failed ones, in a new batch, and only them.
    fake.reset()
    again = rolebatch(str(job), "-o", OUT, *BATCH)
    assert again.code == 0, again.err
    assert sorted(bought()) == [2, 3, 4, 5]


def test_a_batch_with_no_output_file_at_all(rolebatch, fake, tmp_path):
    fake.fault(status=503)
    job = write_job(tmp_path / "j.jsonl", poem_records(3))
    result = rolebatch(str(job), "-o", OUT, *BATCH, "--max-retries", "0")
    assert result.code == 1
    (batch,) = fake.state.batches.batches.values()
    assert batch.output_file_id is None and batch.error_file_id is not None
    lines = read_lines(Path(OUT))
    assert [line["error"]["status_code"] for line in lines] == [503] * 3
    assert [line["attempts"] for line in lines] == [1] * 3


def test_a_failed_batch_stops_the_run_and_its_records_stay_to_do(rolebatch, fake, tmp_path):
    fake.state.batches.plan.ends = ["failed"]
    job = write_job(tmp_path / "j.jsonl", poem_records(3))
    result = rolebatch(str(job), "-o", OUT, *BATCH)
    assert result.code == 3
    assert "refused batch" in result.err and "invalid_request: bad line 1" in result.err
    assert Path(OUT).read_text() == ""
    again = rolebatch(str(job), "-o", OUT, *BATCH)
    assert again.code == 0, again.err
    assert len(read_lines(Path(OUT))) == 3


def test_a_full_queue_waits_for_earlier_batches(rolebatch, fake, tmp_path):
    plan = fake.state.batches.plan
    plan.queue_limit = 6  # two batches of 3 at a time; the third is refused on create
    plan.ends = ["completed", "queue"]  # and the second fails later for the same reason
    job = write_job(tmp_path / "j.jsonl", poem_records(9))
    result = rolebatch(str(job), "-o", OUT, *BATCH, "--batch-size", "3")
    assert result.code == 0, result.err
    assert [line["status"] for line in read_lines(Path(OUT))] == ["ok"] * 9
    texts = Counter(r.text for r in fake.requests if r.path.startswith("batch:"))
    assert len(texts) == 9 and set(texts.values()) == {1}


def test_a_queue_too_small_for_one_batch_says_what_to_do(rolebatch, fake, tmp_path):
    fake.state.batches.plan.refuse_creates = 5
    job = write_job(tmp_path / "j.jsonl", poem_records(2))
    result = rolebatch(str(job), "-o", OUT, *BATCH)
    assert result.code == 3 and "lower --batch-size" in result.err


def test_a_create_that_timed_out_is_looked_for_before_trying_again(
    rolebatch, fake, tmp_path, bought
):
    fake.state.batches.plan.create_delay = 1.5  # the batch exists; the answer comes late
    job = write_job(tmp_path / "j.jsonl", poem_records(3))
    result = rolebatch(str(job), "-o", OUT, *BATCH, "--timeout", "0.5")
    assert result.code == 0, result.err
    assert len(fake.state.batches.batches) == 1
    assert bought() == Counter(range(1, 4))


@pytest.mark.parametrize("provider", ["local/gemma-3-270m", "compat/mine", "ollama/llama3.1"])
def test_providers_without_a_batch_api_are_refused(rolebatch, fake, tmp_path, provider):
    job = write_job(tmp_path / "j.jsonl", poem_records(1))
    result = rolebatch(str(job), "-o", OUT, *BATCH, "--model", provider)
    assert result.code == 2 and "--via batch needs a provider with a batch API" in result.err
    assert fake.requests == [] and not Path(OUT).exists()


def _start(fake, job: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "OPENAI_API_KEY": SECRET_KEY, "PYTHONPATH": str(ROOT)}
    args = ["run", str(job), "-o", OUT, "--model", "openai/gpt-4o", "--base-url", fake.base_url]
    return subprocess.Popen(
        [sys.executable, "-m", "rolebatch", *args, "--progress", "lines", *BATCH, *extra],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_killed_right_after_the_batch_is_created_the_rerun_adopts_it(
    rolebatch, fake, tmp_path, bought
):
    plan = fake.state.batches.plan
    plan.create_delay = 30  # created at once; the answer would come in 30 s
    job = write_job(tmp_path / "j.jsonl", poem_records(5))
    proc = _start(fake, job)
    assert plan.created.wait(30), "the batch was never created"
    proc.kill()  # kill -9 between "created" and its journal entry
    proc.wait()
    steps = Path(OUT + ".batches/journal.jsonl").read_text().splitlines()
    journal = [json.loads(line) for line in steps]
    assert [event["step"] for event in journal] == ["intent", "uploaded"]
    plan.create_delay = 0
    result = rolebatch(str(job), "-o", OUT, *BATCH)
    assert result.code == 0, result.err
    (batch_id,) = fake.state.batches.batches  # adopted, not created again
    assert bought() == Counter(range(1, 6))
    assert {line["batch_id"] for line in read_lines(Path(OUT))} == {batch_id}


def test_interrupted_while_waiting_the_batches_go_on_and_are_collected(rolebatch, fake, tmp_path):
    fake.state.batches.plan.polls = 10**9  # never ends while we wait
    job = write_job(tmp_path / "j.jsonl", poem_records(3))
    proc = _start(fake, job)
    assert fake.state.batches.plan.created.wait(30), "no batch was created"
    wait_for_batch(Path(OUT), proc)  # and journaled
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 3, err
    assert "interrupted by SIGINT while waiting" in err
    assert "rolebatch: SIGINT: nothing more is submitted and the run stops waiting" in err
    assert "Run the same command to collect them" in err and "Traceback" not in err
    fake.state.batches.plan.polls = 1
    result = rolebatch(str(job), "-o", OUT, *BATCH)
    assert result.code == 0, result.err
    assert len(fake.state.batches.batches) == 1
    assert len(read_lines(Path(OUT))) == 3


def test_reasks_can_go_live_at_the_live_price(rolebatch, fake, tmp_path):
    fake.fault(match="thing 1.", invalid=True, times=1)
    job = write_job(tmp_path / "j.jsonl", poem_records(3))
    result = rolebatch(str(job), "-o", OUT, *BATCH, "--reask", "live")
    assert result.code == 0, result.err
    assert len(fake.state.batches.batches) == 1  # no follow-up batch
    (reask,) = [r for r in fake.requests if not r.path.startswith("batch:")]
    assert "validation error" in reask.text.lower()  # instructor's re-ask, sent live
    line = read_lines(Path(OUT))[1]
    assert line["status"] == "ok" and line["attempts"] == 2
    batched = [r for r in fake.requests if r.path.startswith("batch:")]
    (answer,) = [r.usage for r in batched if "thing 1." in r.text]
    batch_part = answer["prompt_tokens"] * 1.25 + answer["completion_tokens"] * 5
    live_part = reask.usage["prompt_tokens"] * 2.5 + reask.usage["completion_tokens"] * 10
    assert line["cost_usd"] == pytest.approx((batch_part + live_part) / 1e6, rel=1e-9)


def test_status_shows_and_cancel_stops_the_batches_of_an_output(rolebatch, fake, tmp_path, capsys):
    from rolebatch.cli import main

    fake.state.batches.plan.polls = 10**9
    fake.state.batches.plan.share = 0.5
    job = write_job(tmp_path / "j.jsonl", poem_records(4))
    assert rolebatch(str(job), "-o", OUT, *BATCH, "--no-wait").code == 4
    (batch_id,) = fake.state.batches.batches
    assert main(["status", OUT]) == 0
    shown = capsys.readouterr().out
    assert f"batch {batch_id}: validating, 0 of 4 done" in shown and "4 requests" in shown
    assert main(["cancel", OUT]) == 0
    assert f"cancelling: batch {batch_id}: cancelling" in capsys.readouterr().out
    # The next run collects what the cancelled batch answered and buys the rest.
    fake.state.batches.plan.polls = 1
    result = rolebatch(str(job), "-o", OUT, *BATCH)
    assert result.code == 0, result.err
    first, second = fake.state.batches.batches
    lines = read_lines(Path(OUT))
    assert Counter(line["batch_id"] for line in lines) == {first: 2, second: 2}
    assert main(["status", OUT]) == 0
    assert "no batches at the provider" in capsys.readouterr().out


def test_a_batch_collected_again_after_a_crash_writes_nothing_twice(rolebatch, fake, tmp_path):
    fake.fault(match="thing 1.", invalid=True, times=1)
    job = write_job(tmp_path / "j.jsonl", poem_records(3))
    assert rolebatch(str(job), "-o", OUT, *BATCH, "--no-wait").code == 4
    fake.state.batches.plan.polls = 1
    assert rolebatch(str(job), "-o", OUT, *BATCH, "--no-wait").code == 4  # collected; re-ask out
    # As a crash would leave it: the lines and the kept answer were written,
    # the journal never said the first batch was collected.
    journal = Path(OUT + ".batches/journal.jsonl")
    steps = journal.read_text().splitlines()
    collected = [i for i, s in enumerate(steps) if json.loads(s)["step"] == "ended"]
    journal.write_text("".join(s + "\n" for i, s in enumerate(steps) if i not in collected))
    result = rolebatch(str(job), "-o", OUT, *BATCH)
    assert result.code == 0, result.err
    lines = read_lines(Path(OUT))
    assert [line["id"] for line in lines] == ["r0", "r1", "r2"]
    assert lines[1]["attempts"] == 2
    assert sorted(map(plain, fake.state.batches.custom_ids())) == [
        "L1-a1",
        "L2-a1",
        "L2-a2",
        "L3-a1",
    ]


# -- rounds: what a batch did not finish goes again, never becomes a failure --


def error_file(fake, batch_id: str) -> list[dict]:
    batch = fake.state.batches.batches[batch_id]
    _, data = fake.state.batches.files[batch.error_file_id]
    return [json.loads(line) for line in data.splitlines()]


def test_requests_an_expired_batch_never_ran_go_again_and_count_as_attempts(
    rolebatch, fake, tmp_path
):
    fake.state.batches.plan.ends = ["expired"]
    fake.state.batches.plan.share = 0.5
    job = write_job(tmp_path / "j.jsonl", poem_records(4))
    summary = tmp_path / "summary.json"
    result = rolebatch(str(job), "-o", OUT, *BATCH, "--summary-json", str(summary))
    assert result.code == 0, result.err
    first, second = fake.state.batches.batches
    # As OpenAI documents it: the requests never run are lines of the error file.
    unrun = error_file(fake, first)
    assert {line["error"]["code"] for line in unrun} == {"batch_expired"}
    assert all(line["response"] is None for line in unrun)
    lines = read_lines(Path(OUT))
    assert [line["status"] for line in lines] == ["ok"] * 4
    assert [line["attempts"] for line in lines] == [1, 1, 2, 2]
    assert [line["batch_id"] for line in lines] == [first, first, second, second]
    assert "batches: 2 rounds; went again: 2 not run (batch expired or cancelled)" in result.err
    report = json.loads(summary.read_text())
    assert report["batch_rounds"] == 2 and report["requests_again"] == {"expired": 2}


def test_transient_line_errors_go_again_and_only_then_become_error_lines(
    rolebatch, fake, tmp_path, bought
):
    fake.fault(match="thing 0.", status=500, times=1)
    fake.fault(match="thing 1.", status=429, times=1)
    fake.fault(match="thing 2.", status=0, times=1)
    fake.fault(match="thing 3.", status=408, times=1)
    fake.fault(match="thing 4.", status=502)  # every time
    fake.fault(match="thing 5.", status=400)  # permanent: written at once
    job = write_job(tmp_path / "j.jsonl", poem_records(7))
    result = rolebatch(str(job), "-o", OUT, *BATCH, "--max-retries", "2")
    assert result.code == 1, result.err
    lines = read_lines(Path(OUT))
    assert [line["status"] for line in lines] == ["ok"] * 4 + ["error"] * 2 + ["ok"]
    assert [line["attempts"] for line in lines] == [2, 2, 2, 2, 3, 1, 1]
    assert lines[4]["error"]["kind"] == "server" and lines[4]["error"]["status_code"] == 502
    assert lines[5]["error"]["kind"] == "bad_request"
    # Bought: once each, plus once more for each fault dealt; 502 three times in all.
    assert bought() == Counter({1: 2, 2: 2, 3: 2, 4: 2, 5: 3, 6: 1, 7: 1})
    assert "went again: 6 after a transient error" in result.err


def test_rate_limited_lines_have_their_own_budget(rolebatch, fake, tmp_path):
    fake.fault(match="thing 0.", status=429, times=2)
    job = write_job(tmp_path / "j.jsonl", poem_records(1))
    result = rolebatch(str(job), "-o", OUT, *BATCH, "--max-retries", "0")
    assert result.code == 0, result.err
    assert read_lines(Path(OUT))[0]["attempts"] == 3
    fake.reset()
    fake.fault(status=429)
    result = rolebatch(str(job), "-o", OUT, *BATCH, "--fresh", "--max-rate-limit-retries", "1")
    assert result.code == 1
    (line,) = read_lines(Path(OUT))
    assert line["error"]["kind"] == "rate_limit" and line["attempts"] == 2


def test_a_provider_that_never_runs_the_requests_ends_the_run_instead_of_looping(
    rolebatch, fake, tmp_path, bought
):
    fake.state.batches.plan.end = "expired"
    fake.state.batches.plan.share = 0.25
    job = write_job(tmp_path / "j.jsonl", poem_records(4))
    result = rolebatch(str(job), "-o", OUT, *BATCH, "--max-retries", "2")
    assert result.code == 3, result.err
    assert "3 records were not run by 3 batches in a row" in result.err
    assert "still to do" in result.err
    lines = read_lines(Path(OUT))
    assert [line["id"] for line in lines] == ["r0"]  # no line for the others
    assert bought() == Counter({1: 1, 2: 3, 3: 3, 4: 3})
    # The next run submits them again.
    fake.state.batches.plan.end = "completed"
    again = rolebatch(str(job), "-o", OUT, *BATCH)
    assert again.code == 0, again.err
    assert [line["status"] for line in read_lines(Path(OUT))] == ["ok"] * 4


def test_a_wait_run_over_a_thousand_records_ends_with_every_record_ok(
    rolebatch, fake, tmp_path, bought
):
    """The first batch expires half answered, 2 % of lines are answered 500 and
    3 % do not validate: one --wait run ends exit 0, every record ok, once."""
    plan = fake.state.batches.plan
    plan.ends = ["expired"]
    plan.share = 0.5
    server_errors = set(range(7, 1000, 50))  # 20 records
    invalid = set(range(11, 1000, 33))  # 30 records
    for n in server_errors:
        fake.fault(match=f"thing {n}.", status=500, times=1)
    for n in invalid:
        fake.fault(match=f"thing {n}.", invalid=True, times=1)
    job = write_job(tmp_path / "j.jsonl", poem_records(1000))
    result = rolebatch(str(job), "-o", OUT, *BATCH, "--batch-size", "400")
    assert result.code == 0, result.err
    lines = read_lines(Path(OUT))
    assert [line["id"] for line in lines] == [f"r{i}" for i in range(1000)]
    assert {line["status"] for line in lines} == {"ok"}
    first = fake.state.batches.batches[next(iter(fake.state.batches.batches))]
    unrun = {
        record_of(line["custom_id"]) - 1
        for line in error_file(fake, first.id)
        if line["response"] is None
    }
    assert len(unrun) == 200  # the second half of the first batch of 400
    dealt = Counter(n + 1 for n in [*server_errors, *invalid, *unrun])
    expected = Counter({n: 1 for n in range(1, 1001)}) + dealt
    assert bought() == expected
    by_id = {line["id"]: line for line in lines}
    assert all(by_id[f"r{n - 1}"]["attempts"] == k for n, k in expected.items())
    assert "went again: 200 not run (batch expired or cancelled)" in result.err
    assert "batches: 3 rounds;" in result.err
    assert f"{len(server_errors)} after a transient error, {len(invalid)} re-asks" in result.err
    assert f"requests: {1000 + 200 + len(server_errors) + len(invalid):,}" in result.err


def test_a_batch_cancelled_while_the_run_waits_stops_it_and_the_rest_goes_next_run(
    rolebatch, fake, tmp_path, capsys, bought
):
    from rolebatch.cli import main

    plan = fake.state.batches.plan
    plan.polls = 10**9
    plan.share = 0.5
    job = write_job(tmp_path / "j.jsonl", poem_records(4))
    proc = _start(fake, job)
    assert fake.state.batches.plan.created.wait(30), "no batch was created"
    wait_for_batch(Path(OUT), proc)  # and journaled
    assert main(["cancel", OUT]) == 0  # as an operator would, from another shell
    capsys.readouterr()
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 3, err
    (batch_id,) = fake.state.batches.batches
    assert f"batch {batch_id} was cancelled" in err and "2 requests it never ran" in err
    assert "Traceback" not in err
    assert len(fake.state.batches.batches) == 1  # not resubmitted by the waiting run
    assert [line["id"] for line in read_lines(Path(OUT))] == ["r0", "r1"]
    plan.polls = 1
    result = rolebatch(str(job), "-o", OUT, *BATCH)
    assert result.code == 0, result.err
    lines = read_lines(Path(OUT))
    assert [line["status"] for line in lines] == ["ok"] * 4
    assert [line["attempts"] for line in lines] == [1, 1, 2, 2]
    assert bought() == Counter({1: 1, 2: 1, 3: 2, 4: 2})


def test_a_round_kept_before_a_crash_is_not_counted_twice(rolebatch, fake, tmp_path):
    fake.fault(match="thing 1.", status=500, times=1)
    job = write_job(tmp_path / "j.jsonl", poem_records(3))
    assert rolebatch(str(job), "-o", OUT, *BATCH, "--no-wait").code == 4
    fake.state.batches.plan.polls = 1
    assert rolebatch(str(job), "-o", OUT, *BATCH, "--no-wait").code == 4  # collected; retry out
    # As a crash would leave it: the round was kept, the journal never said
    # the first batch was collected.
    journal = Path(OUT + ".batches/journal.jsonl")
    steps = journal.read_text().splitlines()
    journal.write_text("".join(s + "\n" for s in steps if json.loads(s)["step"] != "ended"))
    result = rolebatch(str(job), "-o", OUT, *BATCH)
    assert result.code == 0, result.err
    lines = read_lines(Path(OUT))
    assert [line["attempts"] for line in lines] == [1, 2, 1]
    assert sorted(map(plain, fake.state.batches.custom_ids())) == [
        "L1-a1",
        "L2-a1",
        "L2-a2",
        "L3-a1",
    ]
