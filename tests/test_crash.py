"""A real process, really stopped: SIGINT, SIGTERM, kill -9, a full disk."""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.helpers import poem_records, start, wait_for_lines, whole_lines, write_job

ROOT = Path(__file__).resolve().parent.parent


def asked_ids(requests) -> set[str]:
    found = set()
    for request in requests:
        text = request.text
        begin = text.find("thing ") + len("thing ")
        found.add("r" + text[begin : text.index(".", begin)])
    return found


def test_ctrl_c_before_the_run_starts_is_quiet(fake, tmp_path):
    # The job is a pipe: the process blocks reading it, before the run and its
    # signal handling have started, and opening the writing end waits for it.
    job = tmp_path / "j.jsonl"
    os.mkfifo(job)
    out = tmp_path / "out.jsonl"
    proc = start(fake, job, out)
    with job.open("w"):
        # A worker thread holds the reading end, and the process cannot end
        # before it does: no condition to wait on shows the signal was taken
        # before the pipe closes (then the job would read as empty), so a pause.
        time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        time.sleep(0.2)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 3, err
    assert "rolebatch: interrupted" in err and "Traceback" not in err
    assert not out.exists() and fake.requests == []


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_signal_stops_gracefully_and_the_same_command_resumes(fake, tmp_path, signum):
    fake.state.latency = 0.1
    job = write_job(tmp_path / "j.jsonl", poem_records(40))
    out = tmp_path / "out.jsonl"
    proc = start(fake, job, out, "--concurrency", "2", "--grace", "5")
    wait_for_lines(out, proc, 4)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 3, err
    name = signal.Signals(signum).name
    assert f"interrupted by {name}" in err
    # Said at once, before the calls in flight finish: how many, for how long.
    said = next(line for line in err.splitlines() if line.startswith(f"rolebatch: {name}:"))
    assert re.fullmatch(
        rf"rolebatch: {name}: no new record starts; [0-2] calls? in flight gets? up to 5s to"
        rf" finish \({name} again stops (it|them) now\)",
        said,
    ), said
    assert err.index(said) < err.index(f"interrupted by {name}")
    assert "the same command resumes" in err and "Traceback" not in err
    before = whole_lines(out)
    assert 4 <= len(before) < 40
    assert out.read_bytes().endswith(b"\n")  # calls in flight finished within the grace
    done = {line["id"] for line in before if line["status"] == "ok"}

    fake.state.latency = 0.0
    fake.state.requests.clear()
    proc = start(fake, job, out)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert not asked_ids(fake.requests) & done
    assert [line["id"] for line in whole_lines(out)] == [f"r{i}" for i in range(40)]


def test_kill_9_at_random_moments_loses_and_repeats_nothing(fake, tmp_path):
    fake.state.latency = 0.03
    records = poem_records(80)
    job = write_job(tmp_path / "j.jsonl", records)
    out = tmp_path / "out.jsonl"
    rng = random.Random(1234)
    for _ in range(6):
        done = {line["id"] for line in whole_lines(out) if line["status"] == "ok"}
        if len(done) == len(records):
            break
        fake.state.requests.clear()
        proc = start(fake, job, out, "--concurrency", "4")
        wait_for_lines(out, proc, min(len(records), len(done) + rng.randint(1, 12)))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
        # Nothing that was already ok was asked for again.
        assert not asked_ids(fake.requests) & done
    fake.state.requests.clear()
    done = {line["id"] for line in whole_lines(out) if line["status"] == "ok"}
    proc = start(fake, job, out)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert not asked_ids(fake.requests) & done
    lines = whole_lines(out)  # every line parses
    assert out.read_bytes().endswith(b"\n")
    assert Counter(line["id"] for line in lines) == Counter(r["id"] for r in records)
    assert [line["id"] for line in lines] == [r["id"] for r in records]


def test_full_disk_ends_the_run_and_keeps_what_was_written(fake, tmp_path):
    job = write_job(tmp_path / "j.jsonl", poem_records(30))
    out = tmp_path / "out.jsonl"
    proc = start(fake, job, out, "--concurrency", "1", limit_bytes=4000)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 3, err
    assert "cannot write" in err and "run the same command to resume" in err
    assert "Traceback" not in err
    kept = whole_lines(out)
    assert 0 < len(kept) < 30
    assert [line["id"] for line in kept] == [f"r{i}" for i in range(len(kept))]

    proc = start(fake, job, out)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert [line["id"] for line in whole_lines(out)] == [f"r{i}" for i in range(30)]


def test_a_second_ctrl_c_keeps_every_answer_that_came_back(tmp_path):
    """On the embedded model a generation cannot be stopped half way: when a
    second SIGINT comes during one, its answer must still reach the file, and
    the summary counts exactly the lines that are there."""
    pytest.importorskip("llama_cpp", reason="the embedded model needs the local extra")
    job = write_job(tmp_path / "j.jsonl", poem_records(4))
    out = tmp_path / "out.jsonl"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONDONTWRITEBYTECODE": "1"}
    args = ["run", str(job), "-o", str(out), "--progress", "lines", "--progress-interval", "0.1"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "rolebatch", *args],
        env=env,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stderr is not None
    line = proc.stderr.readline()  # the first progress line: the model is loaded, asking
    assert line.startswith("progress:"), line
    proc.send_signal(signal.SIGINT)
    # The run says at once what the first signal does, and what is in flight:
    # a generation (over a second on 2 cores) that the second signal meets.
    said = [proc.stderr.readline()]
    while not said[-1].startswith("rolebatch: SIGINT:"):
        assert said[-1], "the run ended without a word on the first SIGINT"
        said.append(proc.stderr.readline())
    assert "1 call in flight gets up to 5s to finish" in said[-1], said[-1]
    proc.send_signal(signal.SIGINT)
    err = "".join(said) + proc.stderr.read()
    proc.wait(timeout=60)
    assert proc.returncode == 3, err
    assert "interrupted twice" in err and "Traceback" not in err
    written = whole_lines(out)
    assert len(written) >= 1  # the generation under way when the signals came
    summary = next(text for text in err.splitlines() if " records in " in text)
    assert f"{len(written)} ok" in summary, summary
