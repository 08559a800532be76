"""--via batch through Anthropic's Message Batches API, against the loopback
fake (tests.fakes.anthropic): the batch mode's contracts, with no metadata to
tag a batch by."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.request
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest

from tests.helpers import ANTHROPIC_KEY, CLAUDE, poem_records, read_lines, wait_for_batch, write_job

ROOT = Path(__file__).resolve().parent.parent
OUT = "out.jsonl"
BATCH = ("--via", "batch", "--poll-interval", "0.01")


def batches(fake):
    return fake.state.message_batches


def post(url: str, payload: dict | None = None) -> dict:
    request = urllib.request.Request(
        url, json.dumps(payload or {}).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.loads(answer.read())


def foreign_batch(fake, size: int) -> str:
    """A batch someone else created on the same account: same size, its own ids."""
    requests = [
        {
            "custom_id": f"L{n}-a1-0000beef",
            "params": {
                "model": "claude-3-haiku-20240307",
                "max_tokens": 100,
                "messages": [{"role": "user", "content": f"someone else's question {n}"}],
            },
        }
        for n in range(1, size + 1)
    ]
    return post(f"{fake.root}/v1/messages/batches", {"requests": requests})["id"]


def test_a_job_end_to_end_at_half_price(claude, fake, tmp_path, bought):
    job = write_job(tmp_path / "j.jsonl", poem_records(5))
    live = claude(str(job), "-o", "live.jsonl")
    assert live.code == 0, live.err
    live_requests = [r.body for r in fake.requests]
    fake.reset()
    result = claude(str(job), "-o", OUT, *BATCH)
    assert result.code == 0, result.err
    (batch,) = batches(fake).batches.values()

    # Each request is what the live path sends; its custom_id is short and ours.
    def text(body):
        return json.dumps(body["messages"])

    assert sorted(live_requests, key=text) == sorted(
        (r["params"] for r in batch.requests), key=text
    )
    assert all(re.fullmatch(r"L\d+-a1-[0-9a-f]{8}", r["custom_id"]) for r in batch.requests)
    lines = read_lines(Path(OUT))
    assert [line["id"] for line in lines] == [f"r{i}" for i in range(5)]
    assert {line["status"] for line in lines} == {"ok"}
    assert {line["batch_id"] for line in lines} == {batch.id}
    assert [line["response"] for line in lines] == [
        line["response"] for line in read_lines(Path("live.jsonl"))
    ]
    for line in lines:  # claude-3-haiku through the batch API: $0.125 / $0.625 per million
        usage = line["usage"]
        expected = (
            Decimal(usage["prompt_tokens"]) * Decimal("0.125")
            + Decimal(usage["completion_tokens"]) * Decimal("0.625")
        ) / 1_000_000
        assert line["cost_usd"] == pytest.approx(float(expected), rel=1e-9)
    assert bought() == Counter(range(1, 6))


def test_no_wait_exits_4_then_the_same_command_collects(claude, fake, tmp_path):
    batches(fake).plan.polls = 3
    job = write_job(tmp_path / "j.jsonl", poem_records(3))
    first = claude(str(job), "-o", OUT, *BATCH, "--no-wait")
    assert first.code == 4, first.err
    assert "3 requests in 1 batch(es) are at the provider" in first.err
    assert not Path(OUT).exists() or read_lines(Path(OUT)) == []
    codes = [claude(str(job), "-o", OUT, *BATCH, "--no-wait").code for _ in range(3)]
    assert codes[-1] == 0
    assert len(batches(fake).batches) == 1  # submitted once, collected later
    assert len(read_lines(Path(OUT))) == 3


def test_expired_requests_are_bought_again_and_errored_ones_are_lines(
    claude, fake, tmp_path, bought
):
    plan = batches(fake).plan
    plan.ends = ["expired"]
    plan.share = 0.5
    fake.fault(match="thing 0.", status=400, times=1)
    job = write_job(tmp_path / "j.jsonl", poem_records(4))
    result = claude(str(job), "-o", OUT, *BATCH)
    assert result.code == 1, result.err
    first, second = batches(fake).batches
    lines = read_lines(Path(OUT))
    assert [line["status"] for line in lines] == ["error", "ok", "ok", "ok"]
    assert lines[0]["error"]["kind"] == "bad_request"
    assert "invalid_request_error" in lines[0]["error"]["message"]
    # The first two were answered (one with an error); the expired two went again.
    assert Counter(line["batch_id"] for line in lines) == {first: 2, second: 2}
    assert bought() == Counter({1: 1, 2: 1, 3: 2, 4: 2})


def test_invalid_answers_are_reasked_in_a_follow_up_batch(claude, fake, tmp_path):
    fake.fault(match="thing 1.", invalid=True, times=1)
    job = write_job(tmp_path / "j.jsonl", poem_records(3))
    result = claude(str(job), "-o", OUT, *BATCH)
    assert result.code == 0, result.err
    _, second = batches(fake).batches.values()
    (reask,) = second.requests
    assert reask["custom_id"].startswith("L2-a2-")
    messages = reask["params"]["messages"]
    assert len(messages) == 3  # the question, the tool_use answer, instructor's tool_result
    assert "validation error" in json.dumps(messages[2]).lower()
    line = read_lines(Path(OUT))[1]
    assert line["status"] == "ok" and line["attempts"] == 2


def _start(fake, job: Path) -> subprocess.Popen:
    env = {**os.environ, "ANTHROPIC_API_KEY": ANTHROPIC_KEY, "PYTHONPATH": str(ROOT)}
    args = ["run", str(job), "-o", OUT, "--model", CLAUDE, "--base-url", fake.root]
    return subprocess.Popen(
        [sys.executable, "-m", "rolebatch", *args, "--progress", "lines", *BATCH],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_killed_right_after_the_batch_is_created_the_rerun_adopts_it(
    claude, fake, tmp_path, bought
):
    plan = batches(fake).plan
    foreign = foreign_batch(fake, 4)  # someone else's, of another size: not a candidate
    plan.created.clear()
    plan.create_delay = 30  # created at once; the answer would come in 30 s
    job = write_job(tmp_path / "j.jsonl", poem_records(5))
    proc = _start(fake, job)
    assert plan.created.wait(30), "the batch was never created"
    proc.kill()  # kill -9 between "created" and its journal entry
    proc.wait()
    steps = Path(OUT + ".batches/journal.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in steps] == ["intent", "uploaded"]
    plan.create_delay = 0
    result = claude(str(job), "-o", OUT, *BATCH)
    assert result.code == 0, result.err
    assert len(batches(fake).batches) == 2  # ours was adopted, not created again
    (ours,) = set(batches(fake).batches) - {foreign}
    assert {line["batch_id"] for line in read_lines(Path(OUT))} == {ours}
    assert Counter(n for n in bought().elements() if n <= 5)[5] == 1


def test_a_batch_taken_for_ours_by_mistake_gives_nothing_and_the_records_go_again(
    claude, fake, tmp_path
):
    # A create fails with a 500 (it may or may not have made a batch): rolebatch
    # looks, and finds a batch of the same size made since, by someone else.
    # Adopted, its results carry another mark: none is taken for ours.
    foreign = foreign_batch(fake, 3)
    batches(fake).plan.fail_creates = 1
    job = write_job(tmp_path / "j.jsonl", poem_records(3))
    result = claude(str(job), "-o", OUT, *BATCH)
    assert result.code == 0, result.err
    (ours,) = set(batches(fake).batches) - {foreign}
    lines = read_lines(Path(OUT))
    assert {line["batch_id"] for line in lines} == {ours}
    assert [line["attempts"] for line in lines] == [1, 1, 1]  # no foreign answer in them
    assert all(line["response"]["poem"].startswith("Answer to: You are") for line in lines)


def test_two_batches_that_could_be_ours_stop_the_run_instead_of_paying_twice(
    claude, fake, tmp_path
):
    foreign = {foreign_batch(fake, 3), foreign_batch(fake, 3)}
    batches(fake).plan.fail_creates = 1
    job = write_job(tmp_path / "j.jsonl", poem_records(3))
    result = claude(str(job), "-o", OUT, *BATCH)
    assert result.code == 3
    assert "2 batches of that size" in result.err
    assert all(batch_id in result.err for batch_id in foreign)
    assert set(batches(fake).batches) == foreign  # nothing submitted again
    # The operator cancels one that is not ours: the next run adopts the other.
    _, drop = sorted(foreign)
    post(f"{fake.root}/v1/messages/batches/{drop}/cancel")
    result = claude(str(job), "-o", OUT, *BATCH)
    assert result.code == 0, result.err
    assert len(batches(fake).batches) == 3  # keep was adopted (foreign: nothing taken), then ours
    assert len(read_lines(Path(OUT))) == 3


def test_status_and_cancel(claude, fake, tmp_path, capsys):
    from rolebatch.cli import main

    plan = batches(fake).plan
    plan.polls = 10**9
    plan.share = 0.5
    job = write_job(tmp_path / "j.jsonl", poem_records(4))
    assert claude(str(job), "-o", OUT, *BATCH, "--no-wait").code == 4
    (batch_id,) = batches(fake).batches
    assert main(["status", OUT]) == 0
    assert f"batch {batch_id}: in_progress, 0 of 4 done" in capsys.readouterr().out
    assert main(["cancel", OUT]) == 0
    assert f"batch {batch_id}: canceling" in capsys.readouterr().out
    plan.polls = 1
    result = claude(str(job), "-o", OUT, *BATCH)
    assert result.code == 0, result.err
    first, second = batches(fake).batches
    lines = read_lines(Path(OUT))
    assert Counter(line["batch_id"] for line in lines) == {first: 2, second: 2}


def test_reasks_can_go_live(claude, fake, tmp_path):
    fake.fault(match="thing 1.", invalid=True, times=1)
    job = write_job(tmp_path / "j.jsonl", poem_records(3))
    result = claude(str(job), "-o", OUT, *BATCH, "--reask", "live")
    assert result.code == 0, result.err
    assert len(batches(fake).batches) == 1
    (reask,) = [r for r in fake.requests if not r.path.startswith("batch:")]
    assert reask.path == "/v1/messages" and len(reask.body["messages"]) == 3
    line = read_lines(Path(OUT))[1]
    assert line["status"] == "ok" and line["attempts"] == 2


def test_transient_errored_results_go_again_and_invalid_requests_do_not(
    claude, fake, tmp_path, bought
):
    fake.fault(match="thing 0.", status=529, times=1)  # overloaded_error
    fake.fault(match="thing 1.", status=500, times=1)  # api_error
    fake.fault(match="thing 2.", status=429, times=1)  # rate_limit_error
    fake.fault(match="thing 3.", status=400, times=1)  # invalid_request_error: final
    job = write_job(tmp_path / "j.jsonl", poem_records(5))
    result = claude(str(job), "-o", OUT, *BATCH)
    assert result.code == 1, result.err
    lines = read_lines(Path(OUT))
    assert [line["status"] for line in lines] == ["ok", "ok", "ok", "error", "ok"]
    assert [line["attempts"] for line in lines] == [2, 2, 2, 1, 1]
    assert lines[3]["error"]["kind"] == "bad_request"
    assert bought() == Counter({1: 2, 2: 2, 3: 2, 4: 1, 5: 1})


def test_a_batch_cancelled_while_the_run_waits_stops_it(claude, fake, tmp_path, capsys, bought):
    from rolebatch.cli import main

    plan = batches(fake).plan
    plan.polls = 10**9
    plan.share = 0.5
    job = write_job(tmp_path / "j.jsonl", poem_records(4))
    proc = _start(fake, job)
    assert batches(fake).plan.created.wait(30), "no batch was created"
    wait_for_batch(Path(OUT), proc)  # and journaled
    assert main(["cancel", OUT]) == 0
    capsys.readouterr()
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 3, err
    (batch_id,) = batches(fake).batches
    assert f"batch {batch_id} was cancelled" in err and "2 requests it never ran" in err
    assert len(read_lines(Path(OUT))) == 2
    plan.polls = 1
    result = claude(str(job), "-o", OUT, *BATCH)
    assert result.code == 0, result.err
    assert [line["attempts"] for line in read_lines(Path(OUT))] == [1, 1, 2, 2]
    assert bought() == Counter({1: 1, 2: 1, 3: 2, 4: 2})
