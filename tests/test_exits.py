"""Exit codes are one enum (``rolebatch.exits.Exit``): the docs' table is
its own, and an exception that is not ours gets its own code, one line,
its traceback in a file, and the same --summary-json as any other ending."""

from __future__ import annotations

import json
from pathlib import Path

from rolebatch.cli import main
from rolebatch.exits import Exit, table
from tests.helpers import poem_records, scored_line, write_job

ROOT = Path(__file__).resolve().parents[1]


def test_the_docs_table_of_exit_codes_is_the_enum_s():
    recovery = (ROOT / "docs" / "recovery.md").read_text()
    assert table() in recovery
    # Every code named in the docs' table is a member, and no two share a word.
    assert len({code.word for code in Exit}) == len(Exit)
    assert [code.value for code in Exit] == [0, 1, 2, 3, 4, 5, 70]


def test_an_exception_not_ours_in_a_run_is_a_bug_with_its_summary(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("ROLEBATCH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-never-shown-123456")
    (tmp_path / "boom_schema.py").write_text("raise RuntimeError('boom at import')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    job = write_job(tmp_path / "j.jsonl", poem_records(2))
    summary = tmp_path / "s.json"
    code = main(
        ["run", str(job), "--schema", "boom_schema:Answer", "--model", "openai/gpt-4o",
         "--summary-json", str(summary), "--progress", "none"]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code == Exit.BUG == 70
    (said,) = [line for line in err.splitlines() if line.startswith("rolebatch:")]
    assert "unexpected error (RuntimeError: boom at import)" in said
    assert "Traceback" not in err
    where = Path(said.split("the traceback is in ", 1)[1].split(";", 1)[0])
    assert where.is_file() and where.parent == tmp_path / "cache" / "tracebacks"
    assert "boom at import" in where.read_text() and "Traceback" in where.read_text()
    data = json.loads(summary.read_text())
    assert data["exit_code"] == 70 and data["status"] == "bug"
    assert "unexpected error" in data["message"]
    assert "sk-test-never-shown" not in err + summary.read_text() + where.read_text()


def test_an_exception_not_ours_in_a_report_is_a_bug(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("ROLEBATCH_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "raising_scorer.py").write_text("def score(line):\n    return 1 / 0\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    path = write_job(tmp_path / "o.jsonl", [scored_line(0, "none", 1.0)])
    code = main(["report", str(path), "--score", "python:raising_scorer:score"])
    err = capsys.readouterr().err
    assert code == 70 and "ZeroDivisionError" in err and "Traceback" not in err
    assert list((tmp_path / "cache" / "tracebacks").iterdir())
