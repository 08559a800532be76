"""The command itself: help, entry points, progress display and summary."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

from rolebatch.cli import main
from rolebatch.progress import BarReporter, LineReporter, Tally, default_reporter
from tests.conftest import SECRET_KEY, poem_records, read_lines, write_job

ROOT = Path(__file__).resolve().parent.parent


def test_help_lists_options_with_env_vars(capsys):
    assert main(["run", "--help"]) == 0
    text = capsys.readouterr().out
    for option in (
        "--model",
        "--base-url",
        "--mode",
        "--schema",
        "--layout",
        "--concurrency",
        "--max-tokens",
        "--temperature",
        "--timeout",
        "--max-reasks",
        "OPENAI_BASE_URL",
        "ROLEBATCH_MODEL",
    ):
        assert option in text


def test_bad_option_value_exits_2(capsys):
    assert main(["run", "x.jsonl", "--concurrency", "0"]) == 2
    assert "--concurrency" in capsys.readouterr().err


def test_python_dash_m_batch_runs_a_job(fake, tmp_path):
    job = write_job(tmp_path / "j.jsonl", poem_records(3))
    env = {**os.environ, "OPENAI_API_KEY": SECRET_KEY, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "rolebatch",
            "run",
            str(job),
            "--base-url",
            fake.base_url,
            "--model",
            "openai/gpt-4o",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "out/j.jsonl"
    assert len(read_lines(tmp_path / "out/j.jsonl")) == 3
    # stderr is not a terminal here: plain lines, no carriage-return bar.
    assert "\r" not in proc.stderr
    assert "3 of 3 records" in proc.stderr
    assert SECRET_KEY not in proc.stdout + proc.stderr


def test_plain_progress_lines_at_intervals(rolebatch, fake, tmp_path):
    fake.state.latency = 0.05
    job = write_job(tmp_path / "j.jsonl", poem_records(12))
    result = rolebatch(str(job), "--concurrency", "1", "--progress-interval", "0.1")
    assert result.code == 0
    progress = [line for line in result.err.splitlines() if line.startswith("progress: ")]
    assert len(progress) >= 2
    assert "/12 (" in progress[0] and "ok=" in progress[0] and "eta=" in progress[0]


def test_bar_reporter_draws_in_place():
    stream = io.StringIO()
    tally = Tally(total=10, ok=3, failed=1, prompt_tokens=100, completion_tokens=20)
    reporter = BarReporter(stream, width=10)
    reporter.update(tally)
    reporter.finish(tally)
    text = stream.getvalue()
    assert text.startswith("\r████░░░░░░ 4/10 ok 3 failed 1")
    assert "120 tok" in text and text.endswith("\n")


def test_default_reporter_follows_the_terminal():
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert isinstance(default_reporter(Tty()), BarReporter)
    assert isinstance(default_reporter(io.StringIO()), LineReporter)


def test_summary_counts_kinds_and_tokens(rolebatch, fake, tmp_path):
    fake.fault(match="thing 1.", status=400)
    fake.fault(match="thing 2.", status=400)
    fake.fault(match="thing 3.", truncated=True)
    job = write_job(tmp_path / "j.jsonl", poem_records(5))
    result = rolebatch(str(job))
    assert result.code == 1
    assert "5 of 5 records" in result.err and "2 ok, 3 failed" in result.err
    assert "errors: bad_request 2, truncated 1" in result.err
    tokens = sum(r.usage["total_tokens"] for r in fake.requests if r.usage)
    assert f"tokens: {tokens:,}" in result.err
    assert "output: out/j.jsonl" in result.err


def test_the_command_line_starts_without_importing_openai():
    # --help and usage errors answer at once; openai and instructor take a
    # second or two to import and are loaded only when a run starts.
    code = "import sys, rolebatch.cli; print(sorted({'openai', 'instructor'} & set(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_glibc_keeps_large_blocks_in_their_own_mappings():
    import sys

    from rolebatch.quirks.glibc import fix_mmap_threshold

    if not sys.platform.startswith("linux"):
        return
    assert fix_mmap_threshold() is True  # glibc took it: see quirks/glibc.py
