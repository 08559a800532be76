"""Shards of one job (--shard K/N) and `rolebatch merge`."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from rolebatch.cli import main
from rolebatch.records.shards import shard_of
from tests.helpers import poem_records, read_lines, write_job


def test_assignment_is_even_and_depends_on_the_id_alone():
    ids = [f"rec-{n}" for n in range(20_000)] + list(range(20_000))
    counts = Counter(shard_of(i, 4) for i in ids)
    assert set(counts) == {0, 1, 2, 3}
    assert all(abs(c - 10_000) < 400 for c in counts.values()), counts
    # Pinned: an upgrade that changed these would move records between the
    # shards of a job that is part-way done.  An integer id and its string
    # are different records.
    assert [shard_of(i, 7) for i in ("a", "b", 1, "1", "coffee", "ocean")] == [4, 5, 2, 4, 1, 5]


def test_shard_assignment_is_the_same_in_another_process():
    import subprocess
    import sys

    here = [shard_of(f"id{n}", 5) for n in range(50)]
    code = (
        "from rolebatch.records.shards import shard_of;"
        " print([shard_of(f'id{n}', 5) for n in range(50)])"
    )
    there = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(there.stdout) == here


def test_three_shards_then_merge_give_every_record_once_in_input_order(rolebatch, fake, tmp_path):
    records = poem_records(30)
    job = write_job(tmp_path / "j.jsonl", records)
    sizes = []
    for k in range(3):
        result = rolebatch(str(job), "--shard", f"{k}/3")
        assert result.code == 0, result.err
        lines = read_lines(Path(f"out/j.shard-{k}-of-3.jsonl"))
        assert all(shard_of(line["id"], 3) == k for line in lines)
        sizes.append(len(lines))
    assert sum(sizes) == 30 and min(sizes) > 0
    assert len(fake.requests) == 30  # no record asked twice
    assert main(["merge", str(job), "-o", "merged.jsonl"]) == 0
    merged = read_lines(Path("merged.jsonl"))
    assert [line["id"] for line in merged] == [r["id"] for r in records]
    assert [line["line"] for line in merged] == list(range(1, 31))


def test_merge_names_what_is_missing_and_exits_1(rolebatch, fake, tmp_path, capsys):
    job = write_job(tmp_path / "j.jsonl", poem_records(20))
    for k in (0, 2):
        assert rolebatch(str(job), "--shard", f"{k}/3").code == 0
    capsys.readouterr()
    assert main(["merge", str(job), "-o", "merged.jsonl"]) == 1
    err = capsys.readouterr().err
    absent = [f"r{n}" for n in range(20) if shard_of(f"r{n}", 3) == 1]
    assert f"{len(absent)} missing" in err
    assert f"missing ({len(absent)}): {absent[0]!r}" in err
    assert len(read_lines(Path("merged.jsonl"))) == 20 - len(absent)


def test_merge_names_records_in_two_shards(rolebatch, fake, tmp_path, capsys):
    job = write_job(tmp_path / "j.jsonl", poem_records(12))
    assert rolebatch(str(job), "-o", "whole.jsonl").code == 0
    assert rolebatch(str(job), "--shard", "1/2").code == 0
    capsys.readouterr()
    code = main(["merge", str(job), "whole.jsonl", "out/j.shard-1-of-2.jsonl", "-o", "m.jsonl"])
    assert code == 1
    twice = sum(1 for n in range(12) if shard_of(f"r{n}", 2) == 1)
    assert f"{twice} doubled" in capsys.readouterr().err
    assert [line["id"] for line in read_lines(Path("m.jsonl"))] == [f"r{n}" for n in range(12)]


def test_a_growing_job_keeps_old_records_on_their_shard(rolebatch, fake, tmp_path):
    job = write_job(tmp_path / "j.jsonl", poem_records(20))
    assert rolebatch(str(job), "--shard", "0/2").code == 0
    before = {line["id"] for line in read_lines(Path("out/j.shard-0-of-2.jsonl"))}
    fake.reset()
    write_job(job, poem_records(20) + poem_records(10, prefix="new"))
    assert rolebatch(str(job), "--shard", "0/2").code == 0
    after = {line["id"] for line in read_lines(Path("out/j.shard-0-of-2.jsonl"))}
    assert before < after
    new = {f"new{n}" for n in range(10) if shard_of(f"new{n}", 2) == 0}
    assert after - before == new
    assert len(fake.requests) == len(new)  # only the new records of this shard were sent


def test_the_index_can_come_from_kubernetes(rolebatch, fake, tmp_path, monkeypatch):
    monkeypatch.setenv("JOB_COMPLETION_INDEX", "1")
    job = write_job(tmp_path / "j.jsonl", poem_records(10))
    assert rolebatch(str(job), "--shard-count", "2").code == 0
    lines = read_lines(Path("out/j.shard-1-of-2.jsonl"))
    assert lines and all(shard_of(line["id"], 2) == 1 for line in lines)


def test_changing_the_shard_count_of_an_unfinished_output_is_refused(rolebatch, fake, tmp_path):
    fake.fault(match="thing 3.", status=401)  # the run stops part-way
    job = write_job(tmp_path / "j.jsonl", poem_records(10))
    assert rolebatch(str(job), "--shard", "0/1", "-o", "s.jsonl").code == 3
    fake.reset()
    result = rolebatch(str(job), "--shard", "0/2", "-o", "s.jsonl")
    assert result.code == 2
    assert "shard" in result.err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--shard", "3/3"), "out of range"),
        (("--shard", "x/3"), "expected a shard index"),
        (("--shard", "1"), "how many shards"),
        (("--shard-count", "2"), "JOB_COMPLETION_INDEX"),
        (("--shard", "1/2", "--shard-count", "3"), "disagree"),
    ],
)
def test_bad_shard_options_exit_2(rolebatch, tmp_path, args, message):
    job = write_job(tmp_path / "j.jsonl", poem_records(2))
    result = rolebatch(str(job), *args)
    assert result.code == 2
    assert message in result.err
    assert not Path("out").exists()


def test_merge_never_writes_onto_its_job(rolebatch, fake, tmp_path, capsys):
    job = write_job(tmp_path / "j.jsonl", poem_records(4))
    before = job.read_bytes()
    for k in range(2):
        assert rolebatch(str(job), "--shard", f"{k}/2").code == 0
    assert main(["merge", str(job), "-o", str(job)]) == 2
    assert "the merged output cannot be the job file" in capsys.readouterr().err
    assert job.read_bytes() == before
