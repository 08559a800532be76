"""Lose nothing, repeat nothing: resume, order, locks, torn lines, hostile input."""

from __future__ import annotations

import fcntl
import json
from pathlib import Path

from tests.helpers import poem_records, read_lines, write_job

OUT = "o.jsonl"


def ids(path: str = OUT) -> list[str]:
    return [line["id"] for line in read_lines(Path(path))]


def asked(fake) -> set[str]:
    """Record ids whose prompt reached the server ("thing N." -> rN)."""
    found = set()
    for request in fake.requests:
        text = request.text
        start = text.find("thing ") + len("thing ")
        found.add("r" + text[start : text.index(".", start)])
    return found


def test_rerun_skips_ok_records_and_retries_failed_ones(rolebatch, fake, tmp_path):
    job = write_job(tmp_path / "j.jsonl", poem_records(6))
    fake.fault(match="thing 2.", status=400)
    first = rolebatch(str(job), "-o", OUT)
    assert first.code == 1
    assert read_lines(Path(OUT))[2]["error"]["kind"] == "bad_request"
    fake.reset()
    second = rolebatch(str(job), "-o", OUT)
    assert second.code == 0, second.err
    assert asked(fake) == {"r2"}
    assert ids() == [f"r{i}" for i in range(6)]
    assert {line["status"] for line in read_lines(Path(OUT))} == {"ok"}
    assert "resumed: 5 already in the output; 1 failed before and run again" in second.err


def test_finished_output_resumes_with_zero_requests(rolebatch, fake, tmp_path):
    job = write_job(tmp_path / "j.jsonl", poem_records(5))
    assert rolebatch(str(job), "-o", OUT).code == 0
    before = Path(OUT).read_bytes()
    fake.reset()
    again = rolebatch(str(job), "-o", OUT)
    assert again.code == 0
    assert "all 5 records are already done; nothing to run" in again.err
    assert fake.requests == []
    assert Path(OUT).read_bytes() == before


def test_no_retry_failed_keeps_error_lines(rolebatch, fake, tmp_path):
    job = write_job(tmp_path / "j.jsonl", poem_records(3))
    fake.fault(match="thing 1.", status=400)
    assert rolebatch(str(job), "-o", OUT).code == 1
    fake.reset()
    again = rolebatch(str(job), "-o", OUT, "--no-retry-failed")
    assert again.code == 1  # the kept error still counts
    assert fake.requests == []
    assert read_lines(Path(OUT))[1]["status"] == "error"
    assert "(1 of them failed, kept as they are)" in again.err


def test_fresh_starts_over(rolebatch, fake, tmp_path):
    job = write_job(tmp_path / "j.jsonl", poem_records(3))
    assert rolebatch(str(job), "-o", OUT).code == 0
    fake.reset()
    assert rolebatch(str(job), "-o", OUT, "--fresh").code == 0
    assert asked(fake) == {"r0", "r1", "r2"}
    assert ids() == ["r0", "r1", "r2"]


def test_changed_configuration_is_refused_and_named(rolebatch, fake, tmp_path):
    job = write_job(tmp_path / "j.jsonl", poem_records(3))
    assert rolebatch(str(job), "-o", OUT).code == 0
    before = Path(OUT).read_bytes()
    fake.reset()
    result = rolebatch(str(job), "-o", OUT, "--layout", "split", "--temperature", "0.5")
    assert result.code == 2
    assert "layout was 'system', now 'split'" in result.err
    assert "temperature was not set, now 0.5" in result.err
    assert "--fresh" in result.err
    assert fake.requests == [] and Path(OUT).read_bytes() == before


def test_output_not_written_by_rolebatch_is_not_touched(rolebatch, fake, tmp_path):
    Path(OUT).write_text("my own notes\n")
    job = write_job(tmp_path / "j.jsonl", poem_records(2))
    result = rolebatch(str(job), "-o", OUT)
    assert result.code == 2 and "was not written by rolebatch" in result.err
    assert Path(OUT).read_text() == "my own notes\n"


def test_torn_last_line_is_repaired_on_resume(rolebatch, fake, tmp_path):
    job = write_job(tmp_path / "j.jsonl", poem_records(4))
    assert rolebatch(str(job), "-o", OUT).code == 0
    lines = Path(OUT).read_bytes().splitlines(keepends=True)
    # As a kill -9 mid-write leaves it: two whole lines and half of a third.
    Path(OUT).write_bytes(lines[0] + lines[1] + lines[2][:40])
    fake.reset()
    result = rolebatch(str(job), "-o", OUT)
    assert result.code == 0, result.err
    assert "repaired" in result.err
    assert asked(fake) == {"r2", "r3"}
    assert ids() == ["r0", "r1", "r2", "r3"]


def test_damage_in_the_middle_is_refused(rolebatch, fake, tmp_path):
    job = write_job(tmp_path / "j.jsonl", poem_records(3))
    assert rolebatch(str(job), "-o", OUT).code == 0
    lines = Path(OUT).read_bytes().splitlines(keepends=True)
    Path(OUT).write_bytes(lines[0] + b"garbage\n" + lines[2])
    result = rolebatch(str(job), "-o", OUT)
    assert result.code == 2 and f"{OUT}:2: not a rolebatch result line" in result.err


def test_a_whole_last_line_that_is_not_ours_is_named_not_cut_off(rolebatch, fake, tmp_path):
    # Only a line without its newline is torn: a kill mid-write leaves no
    # newline after it.  A whole line that is not ours is someone's words.
    job = write_job(tmp_path / "j.jsonl", poem_records(3))
    assert rolebatch(str(job), "-o", OUT).code == 0
    lines = Path(OUT).read_bytes().splitlines(keepends=True)
    Path(OUT).write_bytes(lines[0] + lines[1] + b"my note\n")
    fake.reset()
    result = rolebatch(str(job), "-o", OUT)
    assert result.code == 2 and f"{OUT}:3: not a rolebatch result line" in result.err
    assert Path(OUT).read_bytes() == lines[0] + lines[1] + b"my note\n"
    assert fake.requests == []


def test_blank_lines_are_passed_over_by_resume_as_by_report(rolebatch, fake, tmp_path, capsys):
    # The run reading an output back and the report reading it agree on what
    # it holds: a blank line (an editor's) is no line, and no damage.
    job = write_job(tmp_path / "j.jsonl", poem_records(4))
    assert rolebatch(str(job), "-o", OUT).code == 0
    lines = Path(OUT).read_bytes().splitlines(keepends=True)
    Path(OUT).write_bytes(lines[0] + b"\n" + lines[2] + b"  \n" + lines[3] + b"\n")
    from rolebatch.cli import main

    capsys.readouterr()
    assert main(["report", OUT, "--format", "json"]) == 0
    reported = json.loads(capsys.readouterr().out)
    assert sum(group["records"] for group in reported["groups"].values()) == 3
    fake.reset()
    result = rolebatch(str(job), "-o", OUT)
    assert result.code == 0, result.err
    assert asked(fake) == {"r1"}  # the one record the file does not answer
    assert ids() == ["r0", "r1", "r2", "r3"]
    assert b"\n\n" not in Path(OUT).read_bytes()  # put in order, without the blanks


def test_output_comes_back_in_input_order(rolebatch, fake, tmp_path):
    fake.fault(match="thing 0.", delay=0.3)  # finishes last
    job = write_job(tmp_path / "j.jsonl", poem_records(8))
    assert rolebatch(str(job), "-o", OUT, "--concurrency", "4").code == 0
    assert ids() == [f"r{i}" for i in range(8)]
    assert [line["line"] for line in read_lines(Path(OUT))] == list(range(1, 9))


def test_a_second_run_on_the_same_output_exits_at_once(rolebatch, fake, tmp_path):
    job = write_job(tmp_path / "j.jsonl", poem_records(2))
    with Path(OUT + ".lock").open("ab") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)  # a run in progress
        result = rolebatch(str(job), "-o", OUT)
    assert result.code == 2
    assert "another rolebatch run is writing" in result.err
    assert fake.requests == [] and not Path(OUT).exists()


def test_empty_job_is_nothing_to_do(rolebatch, fake, tmp_path):
    job = tmp_path / "empty.jsonl"
    job.write_text("\n\n")
    result = rolebatch(str(job), "-o", OUT)
    assert result.code == 0
    assert "no records; nothing to do" in result.err
    assert fake.requests == [] and Path(OUT).read_text() == ""


def test_hostile_input_leaves_existing_output_untouched(rolebatch, fake, tmp_path):
    job = write_job(tmp_path / "j.jsonl", poem_records(2))
    assert rolebatch(str(job), "-o", OUT).code == 0
    before = Path(OUT).read_bytes()
    fake.reset()
    cases = {
        "utf8.jsonl": b'{"query": "caf\xe9"}\n',
        "huge.jsonl": json.dumps({"query": "x" * 10_000_000}).encode() + b"\n",
        "array.jsonl": b'["query"]\n',
    }
    for name, content in cases.items():
        bad = tmp_path / name
        bad.write_bytes(content)
        result = rolebatch(str(bad), "-o", OUT)
        assert result.code == 2 and f"{bad}:1:" in result.err, name
    assert rolebatch(str(tmp_path / "missing.jsonl"), "-o", OUT).code == 2
    assert rolebatch(str(tmp_path), "-o", OUT).code == 2
    assert fake.requests == [] and Path(OUT).read_bytes() == before


def test_unwritable_output_directory_exits_3(rolebatch, fake, tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    job = write_job(tmp_path / "j.jsonl", poem_records(1))
    result = rolebatch(str(job), "-o", str(blocker / "out.jsonl"))
    assert result.code == 3
    assert "cannot write to" in result.err and "Traceback" not in result.err
    assert fake.requests == []


def test_an_edited_job_is_checked_again_before_resuming(rolebatch, fake, tmp_path):
    job = write_job(tmp_path / "j.jsonl", poem_records(3))
    assert rolebatch(str(job), "-o", OUT).code == 0
    with job.open("a") as handle:
        handle.write('{"id": "new", "qurey": "typo"}\n')
    fake.reset()
    result = rolebatch(str(job), "-o", OUT)
    assert result.code == 2 and f"{job}:4: field 'qurey'" in result.err
    with job.open("w") as handle:
        for record in [*poem_records(3), {"id": "r3", "query": "Write a poem about thing 3."}]:
            handle.write(json.dumps(record) + "\n")
    result = rolebatch(str(job), "-o", OUT)
    assert result.code == 0, result.err
    assert asked(fake) == {"r3"}
    assert ids() == ["r0", "r1", "r2", "r3"]


# Python hashes an int modulo 2**61 - 1: these two ids share one hash.
TWIN = 2**61 + 4


def test_two_ids_with_one_hash_are_told_apart_on_every_path(rolebatch, fake, tmp_path):
    assert hash(5) == hash(TWIN)
    five, twin, seven = (
        {"id": 5, "query": "Write a poem about thing 5."},
        {"id": TWIN, "query": "Write a poem about thing 6."},
        {"id": "r7", "query": "Write a poem about thing 7."},
    )
    job = write_job(tmp_path / "j.jsonl", [five, seven])
    assert rolebatch(str(job), "-o", OUT).code == 0
    # The job changes (the twin joins, a record at the top moves every line):
    # lines are matched to records by id, and the twin's hash finds 5's line,
    # which is not the twin's.  It must be asked, not taken as done.
    first = {"id": "r4", "query": "Write a poem about thing 4."}
    write_job(job, [first, five, twin, seven])
    fake.reset()
    fake.fault(match="thing 6.", status=400)
    second = rolebatch(str(job), "-o", OUT)
    assert second.code == 1, second.err  # nor refused as a duplicate id
    assert asked(fake) == {"r4", "r6"}
    lines = read_lines(Path(OUT))
    assert [line["id"] for line in lines] == ["r4", 5, TWIN, "r7"]
    assert [line["status"] for line in lines] == ["ok", "ok", "error", "ok"]
    assert [line["line"] for line in lines] == [1, 2, 3, 4]  # where they are now
    # Both twins with a line of their own: each keeps its own; the error is retried.
    write_job(job, [{"id": "r3", "query": "Write a poem about thing 3."}, first, five, twin, seven])
    fake.reset()
    third = rolebatch(str(job), "-o", OUT)
    assert third.code == 0, third.err
    assert asked(fake) == {"r3", "r6"}
    lines = read_lines(Path(OUT))
    assert [line["id"] for line in lines] == ["r3", "r4", 5, TWIN, "r7"]
    assert [line["status"] for line in lines] == ["ok"] * 5


def test_a_job_edited_mid_run_resumes_by_id(rolebatch, fake, tmp_path):
    job = write_job(tmp_path / "j.jsonl", poem_records(6))
    fake.fault(match="thing 4.", status=400)
    fake.fault(match="thing 5.", status=400)
    assert rolebatch(str(job), "-o", OUT, "--no-retry-failed").code == 1
    # Records removed (r2, r4), moved and added (n8, n9); a blank line shifts the rest.
    added = [{"id": f"n{i}", "query": f"Write a poem about thing {i}."} for i in (8, 9)]
    edited = [poem_records(6)[i] for i in (3, 1, 0, 5)] + added
    write_job(job, ["", *[json.dumps(r) for r in edited]])
    fake.reset()
    result = rolebatch(str(job), "-o", OUT)
    assert result.code == 0, result.err
    assert asked(fake) == {"r5", "r8", "r9"}  # r5's error is retried now; n8, n9 are new
    lines = read_lines(Path(OUT))
    assert [line["id"] for line in lines] == ["r3", "r1", "r0", "r5", "n8", "n9"]
    assert [line["line"] for line in lines] == [2, 3, 4, 5, 6, 7]
