"""What a run counts and shows: the progress display, the summary at the end
for people and for scripts (--summary-json, the CI step summary)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from rolebatch.progress import BarReporter, LineReporter, Tally, default_reporter
from tests.helpers import poem_records, read_lines, write_job


def test_summary_json_and_the_ci_step_summary(rolebatch, fake, tmp_path, monkeypatch):
    step = tmp_path / "step.md"
    step.write_text("earlier steps\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step))
    fake.fault(match="thing 1.", status=400)
    job = write_job(tmp_path / "j.jsonl", poem_records(3))
    result = rolebatch(str(job), "-o", "o.jsonl", "--summary-json", "sum/s.json")
    assert result.code == 1
    summary = json.loads(Path("sum/s.json").read_text())
    lines = read_lines(Path("o.jsonl"))
    assert summary["exit_code"] == 1 and summary["output"] == "o.jsonl"
    assert summary["records"]["ok"] == 2 and summary["records"]["failed"] == 1
    assert summary["errors"] == {"bad_request": 1}
    assert summary["cost_usd"] == pytest.approx(sum(line["cost_usd"] for line in lines))
    used = [line["usage"] for line in lines if line["usage"]]
    assert summary["tokens"]["total"] == sum(usage["total_tokens"] for usage in used)
    assert summary["wall_s"] > 0
    markdown = step.read_text()
    assert markdown.startswith("earlier steps\n")
    assert "### rolebatch: finished with failed records" in markdown
    assert "| errors | bad_request 1 |" in markdown


def test_summary_json_says_why_nothing_ran(rolebatch, fake, tmp_path):
    job = write_job(tmp_path / "j.jsonl", ['{"qurey": "typo"}'])
    result = rolebatch(str(job), "--summary-json", "s.json")
    assert result.code == 2
    summary = json.loads(Path("s.json").read_text())
    assert summary["exit_code"] == 2 and summary["status"] == "refused"
    assert "qurey" in summary["message"] and summary["records"]["total"] == 0


def test_progress_lines_show_dollars(rolebatch, fake, tmp_path):
    fake.state.latency = 0.05
    job = write_job(tmp_path / "j.jsonl", poem_records(12))
    result = rolebatch(str(job), "--concurrency", "2", "--progress-interval", "0.1")
    assert result.code == 0
    progress = [line for line in result.err.splitlines() if line.startswith("progress:")]
    assert progress and all(" cost=$" in line for line in progress)


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
