"""The command itself: help, entry points, start-up cost, the allocator setting."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from rolebatch.cli import main
from tests.helpers import SECRET_KEY, poem_records, read_lines, write_job

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


def test_glibc_can_keep_large_blocks_in_the_heap_again():
    # What loading the embedded model does (see quirks/glibc.py), in a process
    # of its own: glibc takes both settings.
    code = "from rolebatch.quirks.glibc import keep_large_blocks; print(keep_large_blocks())"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == ("True" if sys.platform.startswith("linux") else "False")
