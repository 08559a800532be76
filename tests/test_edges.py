"""A run fails cleanly at every edge: a disk that fills while the output is
put in order, an output folder that cannot be written, a signal, a local
server's JSON with a raw newline in a string, a checkout that moved; and
``--summary-json`` says how it ended, with the same keys, every time."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rolebatch.cli import main
from tests.helpers import (
    ANTHROPIC_KEY,
    CLAUDE,
    SECRET_KEY,
    poem_records,
    read_lines,
    start,
    wait_for_lines,
    write_job,
)

BATCH = ("--via", "batch", "--poll-interval", "0.01")


# -- an answer whose JSON has a raw newline in a string --------------------


@pytest.mark.parametrize("mode", ["json", "tools"])
def test_a_raw_newline_in_a_string_is_mended_not_asked_again(rolebatch, fake, tmp_path, mode):
    fake.fault(match="thing 1.", raw_newline=True)
    job = write_job(tmp_path / "j.jsonl", poem_records(3))
    result = rolebatch(str(job), "-o", "o.jsonl", "--mode", mode, "--summary-json", "s.json")
    assert result.code == 0, result.err
    lines = read_lines(Path("o.jsonl"))
    assert [line["status"] for line in lines] == ["ok"] * 3
    mended = lines[1]
    assert mended["attempts"] == 1 and mended["repaired"] == ["json_control_characters"]
    assert mended["response"]["poem"].endswith("\nand a second line")  # the newline kept
    assert all("repaired" not in line for line in (lines[0], lines[2]))
    assert len(fake.requests) == 3  # nothing asked again
    assert "mended: 1 answers" in result.err
    assert json.loads(Path("s.json").read_text())["answers_mended"] == 1


def test_a_raw_newline_in_a_batch_answer_is_mended_too(rolebatch, fake, tmp_path):
    fake.fault(match="thing 0.", raw_newline=True)
    job = write_job(tmp_path / "j.jsonl", poem_records(2))
    result = rolebatch(str(job), "-o", "o.jsonl", *BATCH)
    assert result.code == 0, result.err
    first = read_lines(Path("o.jsonl"))[0]
    assert first["status"] == "ok" and first["repaired"] == ["json_control_characters"]
    assert first["attempts"] == 1 and len(fake.state.batches.batches) == 1  # no re-ask round


def test_json_that_is_broken_otherwise_is_still_asked_again(rolebatch, fake, tmp_path):
    fake.fault(match="thing 0.", invalid=True, times=1)
    job = write_job(tmp_path / "j.jsonl", poem_records(1))
    assert rolebatch(str(job), "-o", "o.jsonl", "--mode", "json").code == 0
    (line,) = read_lines(Path("o.jsonl"))
    assert line["attempts"] == 2 and "repaired" not in line


# -- a disk that fills while the output is put in order ---------------------


def tmpfs(folder: Path, options: str) -> Iterator[Path]:
    """``folder`` as a tmpfs mounted with ``options`` (root only: the test is
    skipped where mounting is refused), unmounted after."""
    folder.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({options}): {done.stderr.decode().strip()}")
    yield folder
    subprocess.run(["umount", str(folder)], check=False)


@pytest.fixture
def small_disk(tmp_path):
    """A 48 KB disk."""
    yield from tmpfs(tmp_path / "disk", "size=48k")


def test_a_disk_that_fills_while_the_output_is_put_in_order(fake, small_disk, tmp_path):
    # 60 lines fit on the disk, and a second copy of them does not.
    job = write_job(tmp_path / "j.jsonl", poem_records(60))
    out = small_disk / "out.jsonl"
    # First run: record 0 fails (a 400), one at a time, so the file is in input
    # order and is not rewritten.
    fake.fault(match="thing 0.", status=400, times=1)
    proc = start(fake, job, out, "--concurrency", "1")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, err
    size = out.stat().st_size
    free = shutil.disk_usage(small_disk).free
    assert size > free, f"the test needs a copy not to fit: {size} bytes, {free} free"
    # Second run: record 0 is bought again and appended; putting the lines in
    # order needs a second copy, which does not fit.
    fake.state.requests.clear()
    proc = start(fake, job, out, "--summary-json", str(tmp_path / "s.json"))
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 3, err
    assert "Traceback" not in err
    assert f"cannot write {out}" in err and "No space left on device" in err
    assert "run the same command again" in err
    assert sorted(p.name for p in small_disk.iterdir() if p.name.endswith(".tmp")) == []
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["exit_code"] == 3 and summary["status"] == "stopped"
    assert "No space left on device" in summary["message"]
    assert len(fake.requests) == 1  # record 0, once
    lines = [json.loads(raw) for raw in out.read_bytes().splitlines()]
    assert len(lines) == 61 and sum(line["status"] == "ok" for line in lines) == 60
    # Space freed: the same command puts them in order and buys nothing.
    subprocess.run(["mount", "-o", "remount,size=512k", "tmpfs", str(small_disk)], check=True)
    fake.state.requests.clear()
    proc = start(fake, job, out)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert fake.requests == []
    lines = read_lines(out)
    assert [line["id"] for line in lines] == [f"r{i}" for i in range(60)]
    assert {line["status"] for line in lines} == {"ok"}
    replaced = read_lines(small_disk / "out.jsonl.replaced.jsonl")
    assert {line["id"] for line in replaced} == {"r0"}  # the error line set aside, kept
    assert not [p for p in small_disk.iterdir() if p.name.endswith(".tmp")]


def test_a_temporary_file_left_by_a_killed_run_goes_at_the_next_start(rolebatch, tmp_path):
    job = write_job(tmp_path / "j.jsonl", poem_records(3))
    assert rolebatch(str(job), "-o", "o.jsonl").code == 0
    # A killed process's own (named for it), and an earlier version's.
    left = ("o.jsonl.4242.tmp", "o.jsonl.rolebatch.json.4242.tmp", "o.jsonl.tmp")
    for name in left:
        Path(name).write_bytes(b"half a copy")
    assert rolebatch(str(job), "-o", "o.jsonl").code == 0
    assert not [name for name in left if Path(name).exists()]


# -- --summary-json on every exit path, with one schema ---------------------


@pytest.fixture
def read_only_folder(tmp_path):
    """A folder mounted read-only (root writes anywhere a mode bit forbids)."""
    yield from tmpfs(tmp_path / "ro", "ro,size=16k")


def test_summary_json_has_the_same_keys_on_every_exit_path(
    rolebatch, fake, tmp_path, monkeypatch, read_only_folder
):
    job = write_job(tmp_path / "j.jsonl", poem_records(3))
    seen: dict[str, dict] = {}

    def ran(name: str, *args: str, code: int, base_url: str | None = None) -> None:
        path = tmp_path / f"{name}.json"
        result = rolebatch(*args, "--summary-json", str(path), base_url=base_url)
        assert result.code == code, (name, result.err)
        seen[name] = json.loads(path.read_text())
        assert SECRET_KEY not in path.read_text()

    ran("ok", str(job), "-o", "ok.jsonl", code=0)
    fake.fault(match="thing 1.", status=400)
    ran("failed", str(job), "-o", "failed.jsonl", code=1)
    fake.reset()
    bad = write_job(tmp_path / "bad.jsonl", [{"id": "a", "qurey": "typo"}])
    ran("refused", str(bad), "-o", "bad-out.jsonl", code=2)
    ran("bad option", str(job), "--shard", "7/2", code=2)
    ran("unreachable", str(job), "-o", "u.jsonl", code=3, base_url="http://127.0.0.1:9/v1")
    ran("read-only", str(job), "-o", str(read_only_folder / "out.jsonl"), code=3)
    monkeypatch.setenv("ANTHROPIC_API_KEY", ANTHROPIC_KEY)
    fake.state.message_batches.plan.polls = 10**9
    pending = ("-o", "p.jsonl", "--model", CLAUDE, *BATCH, "--no-wait")
    ran("pending", str(job), *pending, code=4, base_url=fake.root)
    keys = {name: set(data) for name, data in seen.items()}
    first = keys["ok"]
    assert all(k == first for k in keys.values()), keys
    assert {"exit_code", "status", "message", "records", "errors", "cost_usd"} <= first
    assert {name: data["status"] for name, data in seen.items()} == {
        "ok": "ok",
        "failed": "failed",
        "refused": "refused",
        "bad option": "refused",
        "unreachable": "stopped",
        "read-only": "stopped",
        "pending": "pending",
    }
    assert {name: data["exit_code"] for name, data in seen.items()} == {
        "ok": 0, "failed": 1, "refused": 2, "bad option": 2, "unreachable": 3, "read-only": 3,
        "pending": 4,
    }  # fmt: skip
    assert "qurey" in seen["refused"]["message"] and seen["refused"]["records"]["total"] == 0
    assert "Read-only file system" in seen["read-only"]["message"]
    assert seen["ok"]["message"] is None and seen["failed"]["records"]["failed"] == 1


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_summary_json_after_a_signal(fake, tmp_path, signum):
    fake.state.latency = 0.1
    job = write_job(tmp_path / "j.jsonl", poem_records(40))
    out, path = tmp_path / "out.jsonl", tmp_path / "s.json"
    proc = start(fake, job, out, "--concurrency", "2", "--summary-json", str(path))
    wait_for_lines(out, proc, 2)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 3, err
    data = json.loads(path.read_text())
    assert data["status"] == "interrupted" and data["exit_code"] == 3
    assert signal.Signals(signum).name in data["message"]
    assert 2 <= data["records"]["ok"] < 40


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_summary_json_after_a_signal_before_the_run_started(fake, tmp_path, signum):
    # The job is a pipe: the process blocks reading it, before the run and its
    # own signal handling have started.
    job = tmp_path / "j.jsonl"
    os.mkfifo(job)
    path = tmp_path / "s.json"
    proc = start(fake, job, tmp_path / "out.jsonl", "--summary-json", str(path))
    with job.open("w"):
        wait_for_open(proc)
        proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 3, err
    assert "rolebatch: interrupted" in err and "Traceback" not in err
    data = json.loads(path.read_text())
    assert data["status"] == "interrupted" and data["records"]["total"] == 0
    assert fake.requests == []


def wait_for_open(proc: subprocess.Popen) -> None:
    """Until the process has the job's pipe open (it reads it, blocked)."""
    fds = Path(f"/proc/{proc.pid}/fd")
    while not any(_target(fd).endswith("j.jsonl") for fd in _fds(fds)):
        assert proc.poll() is None, "the process ended before reading its job"
        time.sleep(0.01)


def _target(fd: Path) -> str:
    try:
        return os.readlink(fd)
    except OSError:
        return ""


def _fds(folder: Path) -> list[Path]:
    try:
        return list(folder.iterdir())
    except OSError:
        return []


# -- a checkout that moved ---------------------------------------------------


def test_a_moved_checkout_resumes_and_its_shards_merge(rolebatch, fake, tmp_path):
    first = tmp_path / "first"
    first.mkdir()
    job = write_job(first / "j.jsonl", poem_records(12))
    fake.fault(match="thing 3.", status=400, times=1)
    for k in range(2):
        code = rolebatch(str(job), "--shard", f"{k}/2", "-o", str(first / f"s{k}.jsonl")).code
        assert code in (0, 1)
    moved = tmp_path / "elsewhere"
    shutil.move(first, moved)
    fake.state.requests.clear()
    # The shards resume where they are now: only the failed record is bought again.
    for k in range(2):
        result = rolebatch(str(moved / "j.jsonl"), "--shard", f"{k}/2", "-o",
                           str(moved / f"s{k}.jsonl"))  # fmt: skip
        assert result.code == 0, result.err
    assert len(fake.requests) == 1 and "thing 3." in fake.requests[0].text
    merged = moved / "all.jsonl"
    argv = ["merge", str(moved / "j.jsonl"), str(moved / "s0.jsonl"), str(moved / "s1.jsonl")]
    assert main([*argv, "-o", str(merged)]) == 0
    assert [line["id"] for line in read_lines(merged)] == [f"r{i}" for i in range(12)]
    # Shards of another job are still refused, by their records.
    other = write_job(tmp_path / "other.jsonl", poem_records(12, prefix="x"))
    code = main(["merge", str(other), argv[2], argv[3], "-o", str(tmp_path / "x.jsonl")])
    assert code == 2
    assert not (tmp_path / "x.jsonl").exists()


def test_a_sidecar_with_garbage_over_it_is_refused_and_the_lines_are_kept(rolebatch, tmp_path):
    job = write_job(tmp_path / "j.jsonl", poem_records(3))
    assert rolebatch(str(job), "-o", "o.jsonl").code == 0
    before = Path("o.jsonl").read_bytes()
    Path("o.jsonl.rolebatch.json").write_bytes(b"\x00garbage{")
    result = rolebatch(str(job), "-o", "o.jsonl", "--summary-json", "s.json")
    assert result.code == 2 and "o.jsonl.rolebatch.json is damaged" in result.err
    assert Path("o.jsonl").read_bytes() == before
    assert json.loads(Path("s.json").read_text())["status"] == "refused"
