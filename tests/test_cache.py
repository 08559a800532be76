"""--cache DIR: no answer bought twice across outputs, shards and runs,
against the loopback fake; and the store itself (``cache.store``) with
garbage over its files, two processes at once and its size limit."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from rolebatch.cache.store import FILE, ResponseCache, parse_size
from rolebatch.cli import main
from tests.helpers import (
    ROOT,
    SECRET_KEY,
    capital_questions,
    poem_records,
    read_lines,
    start,
    wait_for_lines,
    whole_lines,
    write_job,
)

CACHE = "cache"


def cached(*args: str) -> tuple[str, ...]:
    return (*args, "--cache", CACHE)


def summary(path: str = "s.json") -> dict:
    return json.loads(Path(path).read_text())


def test_a_second_output_of_the_same_job_buys_nothing(rolebatch, fake, tmp_path, monkeypatch):
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path / "step.md"))
    job = write_job(tmp_path / "j.jsonl", poem_records(6))
    first = rolebatch(*cached(str(job), "-o", "a.jsonl"))
    assert first.code == 0, first.err
    assert len(fake.requests) == 6
    fake.reset()
    second = rolebatch(*cached(str(job), "-o", "b.jsonl", "--summary-json", "s.json"))
    assert second.code == 0, second.err
    assert fake.requests == []
    before, after = read_lines(Path("a.jsonl")), read_lines(Path("b.jsonl"))
    assert [line["id"] for line in after] == [f"r{i}" for i in range(6)]
    for old, new in zip(before, after, strict=True):
        assert new["response"] == old["response"]
        assert new["usage"] == old["usage"]  # the original's
        assert old["cost_usd"] > 0 and new["cost_usd"] == 0
        assert new["cached"] is True and "cached" not in old
        assert new["attempts"] == 0
    saved = sum(line["cost_usd"] for line in before)
    facts = summary()
    assert facts["cache"]["answers"] == 6 and facts["cache"]["stored"] == 0
    assert facts["cache"]["saved_usd"] == pytest.approx(saved, rel=1e-9)
    assert facts["requests"] == 0 and facts["cost_usd"] == 0
    assert "cache: 6 answers served, not bought" in second.err
    assert "| cache | 6 answers served, not bought" in (tmp_path / "step.md").read_text()
    # The key never reaches the cache: only digests of the requests and the answers.
    for path in Path(CACHE).iterdir():
        assert SECRET_KEY.encode() not in path.read_bytes()


def test_an_edited_record_buys_one_request(rolebatch, fake, tmp_path):
    records = poem_records(5)
    job = write_job(tmp_path / "j.jsonl", records)
    assert rolebatch(*cached(str(job), "-o", "a.jsonl")).code == 0
    records[3]["query"] = "Write a poem about something else entirely."
    write_job(job, records)
    fake.reset()
    assert rolebatch(*cached(str(job), "-o", "b.jsonl")).code == 0
    assert [r.text for r in fake.requests] == [fake.requests[0].text]
    assert "something else entirely" in fake.requests[0].text
    flags = [line.get("cached", False) for line in read_lines(Path("b.jsonl"))]
    assert flags == [True, True, True, False, True]


@pytest.mark.parametrize(
    "change", [("--model", "openai/gpt-4o-mini"), ("--temperature", "0.7"), ("--max-tokens", "99")]
)
def test_another_model_or_parameter_buys_everything_again(rolebatch, fake, tmp_path, change):
    job = write_job(tmp_path / "j.jsonl", poem_records(4))
    assert rolebatch(*cached(str(job), "-o", "a.jsonl")).code == 0
    fake.reset()
    assert rolebatch(*cached(str(job), "-o", "b.jsonl", *change)).code == 0
    assert len(fake.requests) == 4
    fake.reset()
    assert rolebatch(*cached(str(job), "-o", "c.jsonl", *change)).code == 0
    assert fake.requests == []  # and then that one is cached too


def test_samples_stay_distinct_answers_bought_once(rolebatch, fake, tmp_path):
    job = write_job(tmp_path / "j.jsonl", poem_records(3))
    options = ("--samples", "3", "--temperature", "1")
    assert rolebatch(*cached(str(job), "-o", "a.jsonl", *options)).code == 0
    assert Counter(r.text for r in fake.requests) == Counter(
        {text: 3 for text in {r.text for r in fake.requests}}
    )
    assert len(fake.requests) == 9
    assert len({r.body["seed"] for r in fake.requests}) == 9  # a seed per sample
    with sqlite3.connect(Path(CACHE) / FILE) as db:
        assert db.execute("SELECT count(*) FROM answers").fetchone()[0] == 9
    fake.reset()
    assert rolebatch(*cached(str(job), "-o", "b.jsonl", *options)).code == 0
    assert fake.requests == []
    with sqlite3.connect(Path(CACHE) / FILE) as db:  # nothing stored twice
        assert db.execute("SELECT count(*) FROM answers").fetchone()[0] == 9


def test_failures_are_never_cached_and_a_reask_is_stored_as_its_final_answer(
    rolebatch, fake, tmp_path
):
    job = write_job(tmp_path / "j.jsonl", poem_records(6))
    fake.fault(match="thing 1.", status=500)
    fake.fault(match="thing 2.", refusal=True)
    fake.fault(match="thing 3.", truncated=True)
    fake.fault(match="thing 4.", invalid=True, times=1)  # valid on the re-ask
    first = rolebatch(*cached(str(job), "-o", "a.jsonl", "--max-retries", "0"))
    assert first.code == 1
    lines = read_lines(Path("a.jsonl"))
    assert [line["status"] for line in lines] == ["ok", "error", "error", "error", "ok", "ok"]
    assert lines[4]["attempts"] == 2
    fake.reset()
    second = rolebatch(*cached(str(job), "-o", "b.jsonl", "--summary-json", "s.json"))
    assert second.code == 0, second.err
    asked = sorted(r.text[r.text.index("thing") :] for r in fake.requests)
    assert [text[:8] for text in asked] == ["thing 1.", "thing 2.", "thing 3."]
    again = read_lines(Path("b.jsonl"))
    assert again[4]["cached"] is True and again[4]["response"] == lines[4]["response"]
    assert again[4]["usage"] == lines[4]["usage"]  # both attempts' tokens
    assert summary()["cache"] == {**summary()["cache"], "answers": 3, "stored": 3}


def test_a_spent_budget_still_serves_what_the_cache_holds(rolebatch, fake, tmp_path):
    job = write_job(tmp_path / "j.jsonl", poem_records(3))
    assert rolebatch(*cached(str(job), "-o", "a.jsonl")).code == 0
    write_job(job, poem_records(4))
    fake.reset()
    run = rolebatch(*cached(str(job), "-o", "b.jsonl", "--max-cost", "0"))
    assert run.code == 3 and "budget reached" in run.err
    assert fake.requests == []
    assert [line["id"] for line in whole_lines(Path("b.jsonl"))] == ["r0", "r1", "r2"]


def test_no_cache_and_the_environment_variable(rolebatch, fake, tmp_path, monkeypatch):
    job = write_job(tmp_path / "j.jsonl", poem_records(3))
    monkeypatch.setenv("ROLEBATCH_CACHE", str(tmp_path / "env-cache"))
    assert rolebatch(str(job), "-o", "a.jsonl").code == 0
    assert (tmp_path / "env-cache" / FILE).exists()
    fake.reset()
    assert rolebatch(str(job), "-o", "b.jsonl", "--no-cache").code == 0
    assert len(fake.requests) == 3
    fake.reset()
    assert rolebatch(str(job), "-o", "c.jsonl").code == 0
    assert fake.requests == []


def test_under_trio(rolebatch, fake, tmp_path):
    job = write_job(tmp_path / "j.jsonl", poem_records(4))
    assert rolebatch(*cached(str(job), "-o", "a.jsonl", "--backend", "trio")).code == 0
    fake.reset()
    assert rolebatch(*cached(str(job), "-o", "b.jsonl", "--backend", "trio")).code == 0
    assert fake.requests == []
    assert all(line["cached"] for line in read_lines(Path("b.jsonl")))


def test_garbage_over_the_cache_files_gives_a_working_run(rolebatch, fake, tmp_path):
    job = write_job(tmp_path / "j.jsonl", poem_records(4))
    assert rolebatch(*cached(str(job), "-o", "a.jsonl")).code == 0
    files = [p for p in Path(CACHE).iterdir() if p.name.startswith(FILE)]
    assert files
    for path in files:
        path.write_bytes(os.urandom(max(path.stat().st_size, 4096)))
    fake.reset()
    run = rolebatch(*cached(str(job), "-o", "b.jsonl", "--summary-json", "s.json"))
    assert run.code == 0, run.err
    assert len(fake.requests) == 4  # a miss, not a crash
    assert run.err.count("is damaged") == 2  # the warning, and the summary's note of it
    assert "Traceback" not in run.err
    assert len(list(Path(CACHE).glob(FILE + ".damaged-*"))) == 1  # set aside, with its WAL
    fake.reset()
    assert rolebatch(*cached(str(job), "-o", "c.jsonl")).code == 0
    assert fake.requests == []  # the new cache works


def test_a_cache_file_cut_short_is_a_miss(rolebatch, fake, tmp_path):
    job = write_job(tmp_path / "j.jsonl", poem_records(60))
    assert rolebatch(*cached(str(job), "-o", "a.jsonl")).code == 0
    with sqlite3.connect(Path(CACHE) / FILE) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    path = Path(CACHE) / FILE
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    fake.reset()
    run = rolebatch(*cached(str(job), "-o", "b.jsonl"))
    assert run.code == 0, run.err
    assert "is damaged" in run.err and "Traceback" not in run.err
    assert 0 < len(fake.requests) <= 60


def test_a_cache_folder_that_cannot_be_written_is_a_warning(rolebatch, fake, tmp_path):
    job = write_job(tmp_path / "j.jsonl", poem_records(2))
    Path("file").write_text("not a folder")
    run = rolebatch(str(job), "-o", "a.jsonl", "--cache", "file/cache")
    assert run.code == 0, run.err
    assert "cannot be used" in run.err and len(fake.requests) == 2


def test_two_shards_on_one_cache_at_once_then_a_third_run_buys_nothing(fake, tmp_path):
    job = write_job(tmp_path / "j.jsonl", poem_records(40))
    fake.fault(delay=0.02)  # so that the two overlap
    cache = str(tmp_path / CACHE)
    shards = [
        start(fake, job, tmp_path / f"s{k}.jsonl", "--shard", f"{k}/2", "--cache", cache)
        for k in range(2)
    ]
    for proc in shards:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    assert len(fake.requests) == 40
    fake.reset()
    third = start(fake, job, tmp_path / "all.jsonl", "--cache", cache)
    _, err = third.communicate(timeout=120)
    assert third.returncode == 0, err
    assert fake.requests == []
    assert len(read_lines(tmp_path / "all.jsonl")) == 40


def test_killed_right_after_answers_came_back_buys_none_of_them_again(fake, tmp_path):
    """The writer stores an answer before its line is written: every line a
    killed run wrote is served from the cache to the next run, whatever its output."""
    job = write_job(tmp_path / "j.jsonl", poem_records(30))
    fake.fault(delay=0.05)
    cache = str(tmp_path / CACHE)
    proc = start(fake, job, tmp_path / "a.jsonl", "--cache", cache, "--concurrency", "2")
    wait_for_lines(tmp_path / "a.jsonl", proc, 6)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    written = {line["id"] for line in whole_lines(tmp_path / "a.jsonl")}
    assert len(written) >= 6
    fake.reset()
    again = start(fake, job, tmp_path / "b.jsonl", "--cache", cache)
    _, err = again.communicate(timeout=120)
    assert again.returncode == 0, err
    lines = read_lines(tmp_path / "b.jsonl")
    served = {line["id"] for line in lines if line.get("cached")}
    assert written <= served
    assert len(fake.requests) == 30 - len(served)


def test_a_batch_run_submits_only_what_the_cache_lacks_and_fills_it(
    rolebatch, fake, tmp_path, bought
):
    job = write_job(tmp_path / "j.jsonl", poem_records(6))
    assert (
        rolebatch(
            *cached(str(job), "-o", "live.jsonl", "--via", "batch", "--poll-interval", "0.01")
        ).code
        == 0
    )
    assert bought() == Counter(range(1, 7))
    fake.reset()
    # Live answers and batch answers are the same request: a batch run of a
    # bigger job submits only the new records.
    job = write_job(tmp_path / "j.jsonl", poem_records(9))
    run = rolebatch(*cached(str(job), "-o", "b.jsonl", "--via", "batch", "--poll-interval", "0.01"))
    assert run.code == 0, run.err
    assert bought() == Counter(range(7, 10))
    lines = read_lines(Path("b.jsonl"))
    assert [bool(line.get("cached")) for line in lines] == [True] * 6 + [False] * 3
    assert all("batch_id" not in line for line in lines[:6])
    fake.reset()
    assert rolebatch(*cached(str(job), "-o", "c.jsonl")).code == 0  # live: all from the batch's
    assert fake.requests == []


def test_a_judge_grades_each_answer_once(rolebatch, fake, tmp_path):
    job = write_job(tmp_path / "j.jsonl", poem_records(4))
    assert rolebatch(str(job), "-o", "answers.jsonl").code == 0
    Path("rubric.md").write_text("# Poems\nScale: 1-5\n5: vivid. 1: off topic.\n")
    fake.reset()

    def judge(out: str) -> int:
        return main(
            [
                "judge",
                "answers.jsonl",
                "--rubric",
                "rubric.md",
                "-o",
                out,
                "--cache",
                CACHE,
                "--base-url",
                fake.base_url,
                "--progress",
                "none",
            ]
        )

    assert judge("j1.jsonl") == 0
    assert len(fake.requests) == 4
    fake.reset()
    assert judge("j2.jsonl") == 0
    assert fake.requests == []
    assert [line["response"] for line in read_lines(Path("j2.jsonl"))] == [
        line["response"] for line in read_lines(Path("j1.jsonl"))
    ]


def test_a_panel_synthesizes_each_question_once(rolebatch, fake, tmp_path):
    job = write_job(tmp_path / "quiz.jsonl", capital_questions(4))
    roles = write_job(
        tmp_path / "roles.jsonl",
        [{"id": "none", "role": ""}, {"id": "geo", "role": "You are a geographer."}],
    )
    assert (
        rolebatch(str(job), "--task", "choice", "--roles", str(roles), "-o", "sweep.jsonl").code
        == 0
    )

    def panel(out: str) -> int:
        args = ["panel", "sweep.jsonl", "--synthesizer", "You are an editor.", "-o", out]
        return main([*args, "--cache", CACHE, "--base-url", fake.base_url, "--progress", "none"])

    fake.reset()
    assert panel("p1.jsonl") == 0
    assert len(fake.requests) == 4
    fake.reset()
    assert panel("p2.jsonl") == 0
    assert fake.requests == []
    assert all(line["cached"] for line in read_lines(Path("p2.jsonl")))


def test_the_estimate_counts_the_hits(rolebatch, fake, tmp_path, capsys):
    job = write_job(tmp_path / "j.jsonl", poem_records(5))
    assert rolebatch(*cached(str(job), "-o", "a.jsonl")).code == 0
    write_job(job, poem_records(8))
    capsys.readouterr()
    with sqlite3.connect(Path(CACHE) / FILE) as db:
        used = sorted(db.execute("SELECT key, used FROM answers"))
    estimate = ["estimate", str(job), "-o", "b.jsonl", "--model", "openai/gpt-4o", "--json"]
    estimate += ["--base-url", fake.base_url]
    assert main([*estimate, "--cache", CACHE]) == 0
    facts = json.loads(capsys.readouterr().out)
    assert facts["to_do"] == 8 and facts["cached"] == 5
    assert main(estimate) == 0
    full = json.loads(capsys.readouterr().out)
    assert facts["cost_usd"] == pytest.approx(full["cost_usd"] * 3 / 8, rel=0.05)
    with sqlite3.connect(Path(CACHE) / FILE) as db:  # looking marks nothing as used
        assert sorted(db.execute("SELECT key, used FROM answers")) == used


# -- the store -------------------------------------------------------------


def test_the_least_recently_used_answers_go_first_past_the_size_limit(tmp_path):
    warnings: list[str] = []
    store = ResponseCache(tmp_path, 200_000, warnings.append).open()
    keys = [i.to_bytes(32, "big") for i in range(200)]

    def put(first: int, last: int) -> None:
        for at in range(first, last, 10):
            store.put_many([(k, {"response": {"x": "a" * 1000}}) for k in keys[at : at + 10]])

    put(0, 100)
    assert len(store.get_many(keys[:10])) == 10  # the oldest ten, used again
    put(100, 200)
    assert store.size() <= 200_000
    kept = store.get_many(keys, touch=False)
    assert set(keys[:10]) <= set(kept)  # used recently: kept
    assert keys[10] not in kept and keys[199] in kept
    assert warnings == []
    store.close()


def test_two_processes_write_at_once(tmp_path):
    code = (
        "import sys; from pathlib import Path; from rolebatch.cache.store import ResponseCache\n"
        "s = ResponseCache(Path(sys.argv[1]), 1 << 30, print).open()\n"
        "n = int(sys.argv[2])\n"
        "for i in range(200):\n"
        "    s.put_many([((n * 1000 + i).to_bytes(32, 'big'), {'response': {'i': i}})])\n"
        "    assert s.get_many([(n * 1000 + i).to_bytes(32, 'big')])\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(tmp_path), str(n)],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        for n in range(2)
    ]
    for proc in procs:
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0 and out == ""  # no warning: nothing was dropped
    store = ResponseCache(tmp_path, 1 << 30, print).open()
    keys = [(n * 1000 + i).to_bytes(32, "big") for n in range(2) for i in range(200)]
    assert len(store.get_many(keys)) == 400


@pytest.mark.parametrize("text,size", [("500M", 500 << 20), ("2G", 2 << 30), ("1.5GiB", 3 << 29)])
def test_sizes(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "lots", "10K", "-5G"])
def test_sizes_refused(text):
    with pytest.raises(ValueError):
        parse_size(text)
