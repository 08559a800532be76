"""rolebatch report: an output's lines compared per role, model or metadata key."""

from __future__ import annotations

import csv
import io
import json

import pytest

from rolebatch.cli import main
from rolebatch.records.report import percentile
from tests.helpers import write_job


def _line(n: int, role: str, status: str = "ok", **extra) -> dict:
    line = {
        "id": f"r{n}@{role}",
        "line": n,
        "status": status,
        "response": {
            "poem": "x" * (40 * n),  # text, longer than a label
            "score": n,
            "good": n % 2 == 0,
            "mood": "sad" if n < 3 else "glad",
            "tags": ["t"] * (n % 3),
        }
        if status == "ok"
        else None,
        "error": None if status == "ok" else {"kind": "validation", "message": "m"},
        "role": f"You are {role}.",
        "role_id": role,
        "query": "q",
        "model": "openai/gpt-4o",
        "attempts": 1,
        "usage": {"prompt_tokens": 10 * n, "completion_tokens": n, "total_tokens": 11 * n},
        "latency_s": float(n),
        "metadata": {"batch": "b1" if n < 3 else "b2"},
        "cost_usd": 0.001 * n,
    }
    line.update(extra)
    return line


def test_percentiles_interpolate_between_ranks():
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert percentile([5.0], 0.95) == 5.0
    assert percentile(list(map(float, range(1, 101))), 0.95) == pytest.approx(95.05)
    assert percentile([], 0.5) is None


def test_report_per_role_in_json(tmp_path, capsys):
    out = write_job(
        tmp_path / "o.jsonl",
        [_line(n, "poet") for n in (1, 2, 3, 4)] + [_line(5, "kid"), _line(6, "kid", "error")],
    )
    assert main(["report", str(out), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    poet, kid = data["groups"]["poet"], data["groups"]["kid"]
    assert poet["records"] == 4 and poet["ok_share"] == 1.0
    assert kid["records"] == 2 and kid["ok_share"] == 0.5 and kid["errors_validation"] == 1
    keys = {key for group in (poet, kid) for key in group}
    assert all(key.isidentifier() for key in keys), keys
    assert poet["latency_p50_s"] == 2.5 and poet["latency_p95_s"] == pytest.approx(3.85)
    assert poet["prompt_tokens_mean"] == 25 and poet["completion_tokens_mean"] == 2.5
    assert poet["cost_usd"] == pytest.approx(0.010)
    assert poet["poem_length_mean"] == 100 and poet["poem_length_p50"] == 100
    assert poet["score_mean"] == 2.5 and poet["score_spread"] == pytest.approx(1.118, abs=1e-3)
    assert poet["good_true"] == 0.5
    assert poet["mood_sad"] == 0.5 and poet["mood_glad"] == 0.5
    assert "mood_length_mean" not in poet and "poem_" + "x" * 40 not in poet
    assert poet["tags_items_mean"] == 1.0  # lists of 1, 2, 0 and 1 items
    assert "tags_mean" not in poet


def test_report_by_metadata_key_in_csv_and_markdown(tmp_path, capsys):
    out = write_job(tmp_path / "o.jsonl", [_line(n, "poet") for n in (1, 2, 3, 4, 5)])
    assert main(["report", str(out), "--by", "metadata.batch", "--format", "csv"]) == 0
    table = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert table[0] == ["metric", "b1", "b2"]
    assert dict((row[0], row[1:]) for row in table)["records"] == ["2", "3"]
    assert main(["report", str(out), "--by", "model", "--format", "md"]) == 0
    md = capsys.readouterr().out
    assert md.startswith("| model | openai/gpt-4o |\n|---|---:|\n| records | 5 |")


def test_report_table_is_aligned_and_bad_input_is_exit_2(tmp_path, capsys):
    out = write_job(tmp_path / "o.jsonl", [_line(1, "poet"), _line(2, "kid")])
    assert main(["report", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["role", "poet", "kid"]
    assert len({len(line) for line in lines[:3]}) == 1  # aligned columns
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": 1}\n')
    assert main(["report", str(bad)]) == 2
    assert "bad.jsonl:1: not a rolebatch output line" in capsys.readouterr().err
    # A torn last line (a run still writing) is passed over; a broken whole line is named.
    torn = tmp_path / "torn.jsonl"
    torn.write_text(out.read_text() + '{"id": "r3@poet", "sta')
    assert main(["report", str(torn), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["groups"]["poet"]["records"] == 1
    broken = tmp_path / "broken.jsonl"
    broken.write_text(out.read_text().replace("\n", "\nnot json\n", 1))
    assert main(["report", str(broken)]) == 2
    assert "broken.jsonl:2: not a JSON line" in capsys.readouterr().err
    assert main(["report", str(out), "--by", "colour"]) == 2


def test_an_output_given_twice_or_a_copy_of_it_is_refused(tmp_path, capsys):
    from tests.helpers import scored_line

    out = tmp_path / "quiz.jsonl"
    out.write_text(
        "".join(json.dumps(scored_line(q, r, 1)) + "\n" for q in range(3) for r in ("none", "a"))
    )
    copy = tmp_path / "copy.jsonl"
    copy.write_bytes(out.read_bytes())
    assert main(["report", str(out), str(out)]) == 2
    assert "given twice" in capsys.readouterr().err
    assert main(["report", str(out), str(copy)]) == 2
    err = capsys.readouterr().err
    assert str(copy) in err and str(out) in err and "count twice" in err
    # Compared as outputs, the same answers in both are what is wanted.
    assert main(["report", str(out), str(copy), "--by", "output"]) == 0
    # Outputs of two models answer the same records: no line is counted twice.
    other = tmp_path / "other.jsonl"
    other.write_text(
        "".join(
            json.dumps({**scored_line(q, r, 1), "model": "openai/gpt-4o-mini"}) + "\n"
            for q in range(3)
            for r in ("none", "a")
        )
    )
    assert main(["report", str(out), str(other), "--by", "model,role"]) == 0
