"""Migrating an open-ended job: the successor model's output judged head to
head against the output of the model it replaces (judge --against-output),
grouped by the model judged, with the gate's non-inferiority on the win
rate; against the loopback server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rolebatch.cli import main
from tests.helpers import read_lines, wilson_ci, write_job

RUBRIC = "# Poems\n5: vivid and on topic. 1: off topic.\n"
OLD, NEW = "openai/gpt-4o", "openai/gpt-4o-mini"


def poems(n: int) -> list[dict]:
    return [
        {
            "id": f"p{i}",
            "query": f"Write a poem about thing {i}.",
            "role": "You are a renowned poet.",
            "metadata": {"topic": "science" if i % 2 else "nature"},
        }
        for i in range(n)
    ]


@pytest.fixture
def two_outputs(rolebatch, fake, tmp_path) -> tuple[Path, Path]:
    """The same job answered by the old model ("OLD ...") and the new ("NEW ...")."""
    job = write_job(tmp_path / "poems.jsonl", poems(12))
    for model, word, out in ((OLD, "OLD", "old.jsonl"), (NEW, "NEW", "new.jsonl")):
        fake.fault(answer={"poem": f"{word} verses"})
        assert rolebatch(str(job), "--model", model, "-o", out).code == 0
        fake.reset()
    Path("rubric.md").write_text(RUBRIC)
    return Path("new.jsonl"), Path("old.jsonl")


def judge(fake, *args: str) -> int:
    return main(["judge", *args, "--model", OLD, "--base-url", fake.base_url, "--progress", "none"])


def prefer(fake, word: str) -> None:
    """A judge that prefers the answer with ``word`` in whichever place it is."""
    fake.fault(match=f"Answer A:\n{word}", answer={"reasoning": "r", "winner": "A"})
    fake.fault(match=f"Answer B:\n{word}", answer={"reasoning": "r", "winner": "B"})


def report(capsys, *args: str) -> tuple[int, dict]:
    capsys.readouterr()
    code = main(["report", *args, "--format", "json"])
    return code, json.loads(capsys.readouterr().out)


def test_two_outputs_judged_head_to_head_blind_in_both_orders(two_outputs, fake, capsys):
    new, old = two_outputs
    prefer(fake, "NEW")
    args = [str(new), "--against-output", str(old), "--rubric", "rubric.md", "-o", "h2h.jsonl"]
    assert judge(fake, *args) == 0
    assert len(fake.requests) == 24  # 12 pairs, both orders
    orders = {}
    for request in fake.requests:
        text = request.text
        assert "gpt-4o" not in text  # blind: no model named
        first = text.index("Answer A:")
        orders.setdefault(text[: text.index("Answer A:")], []).append(
            text[first + len("Answer A:\n") :].split()[0]
        )
    assert all(sorted(seen) == ["NEW", "OLD"] for seen in orders.values())
    lines = read_lines(Path("h2h.jsonl"))
    assert {line["judged_model"] for line in lines} == {NEW}
    assert {line["against_model"] for line in lines} == {OLD}
    assert {line["against"] for line in lines} == {"old"}
    # The record's metadata stays on the judge's lines.
    by_id = {line["judged_id"]: line["metadata"] for line in lines}
    assert by_id["p1"] == {"topic": "science"} and by_id["p2"] == {"topic": "nature"}

    code, data = report(capsys, "h2h.jsonl", "--by", "judged_model")
    assert code == 0
    (row,) = data["pairwise"]["rows"]
    assert row["key"] == NEW and (row["wins"], row["ties"], row["losses"]) == (12, 0, 0)
    assert data["pairwise"]["baseline"] == "old" and data["pairwise"]["consistency"] == 1.0
    low, high = wilson_ci(12, 12)
    assert (row["ci_low"], row["ci_high"]) == (pytest.approx(low), pytest.approx(high))
    # What the report is of, and what it found, in its JSON too.
    about = data["provenance"]
    assert about["models"] == [OLD] and about["calls"] == 24 and about["requests"] == 24
    assert about["groups"] == 1 and about["by"] == "judged_model" and about["rolebatch"]
    assert data["headline"] == [
        f"{NEW} against old: won 12 of 12 decided questions (0 tied), win rate 1.00"
        f" ({low:.3f} to 1.000): better"
    ]
    # --by metadata.KEY works on a judge's lines.
    code, data = report(capsys, "h2h.jsonl", "--by", "metadata.topic")
    assert sorted(r["key"] for r in data["pairwise"]["rows"]) == ["nature", "science"]


@pytest.mark.parametrize("preferred,passes", [("NEW", True), ("OLD", False)])
def test_the_gate_on_a_head_to_head_win_rate(two_outputs, fake, capsys, preferred, passes):
    new, old = two_outputs
    prefer(fake, preferred)
    args = [str(new), "--against-output", str(old), "--rubric", "rubric.md", "-o", "h2h.jsonl"]
    assert judge(fake, *args) == 0
    margin = 0.1
    # A score difference's margin is refused on a win rate: another unit.
    assert main(["report", "h2h.jsonl", "--by", "judged_model", "--non-inferiority", "0.1"]) == 2
    assert "--win-margin" in capsys.readouterr().err
    code, data = report(capsys, "h2h.jsonl", "--by", "judged_model", "--win-margin", str(margin))
    (row,) = data["pairwise"]["rows"]
    decided = row["wins"] + row["losses"]
    low, _ = wilson_ci(row["wins"], decided)  # the lower end of the two-sided 95 % interval
    assert (low > 0.5 - margin) is passes
    assert data["gate"]["passed"] is passes and code == (0 if passes else 1)
    if not passes:
        (failing,) = data["gate"]["rules"][0]["failing"]
        assert failing["key"] == NEW and failing["win_rate"] == 0.0


def test_non_inferiority_of_a_win_rate_against_the_wilson_interval():
    """The one-sided p read off Wilson's interval: under 0.025 exactly when the
    two-sided 95 % interval's lower end is above 0.5 - margin."""
    from rolebatch.evaluate import stats

    for wins, decided in [(30, 50), (26, 50), (22, 50), (60, 100), (9, 12), (0, 3)]:
        for margin in (0.05, 0.1, 0.2):
            p = stats.p_noninferior_rate(wins, decided, margin)
            low, _ = wilson_ci(wins, decided)
            assert (p < 0.025) == (low > 0.5 - margin), (wins, decided, margin, p, low)
            if 1e-9 < p < 0.5:  # at its p, the interval's lower end meets the bound
                z = stats.normal_quantile(1 - p)
                assert wilson_ci(wins, decided, z)[0] == pytest.approx(0.5 - margin, abs=1e-9)


def test_against_output_refusals(two_outputs, fake, tmp_path):
    new, old = two_outputs
    rubric = ("--rubric", "rubric.md")
    assert judge(fake, str(new), "--against-output", str(new), *rubric) == 2
    assert judge(fake, str(new), "--against", "x", "--against-output", str(old), *rubric) == 2
    other = write_job(tmp_path / "other-job.jsonl", [{"id": "p1", "query": "Something else."}])
    run = ["run", str(other), "-o", "other.jsonl", "--model", OLD, "--base-url", fake.base_url]
    assert main(run) == 0
    fake.reset()
    assert judge(fake, str(new), "--against-output", "other.jsonl", *rubric) == 2
    assert fake.requests == []


def test_a_judge_estimate_writes_nothing(two_outputs, fake, capsys):
    new, old = two_outputs
    before = sorted(p.name for p in Path(".").rglob("*"))
    args = [str(new), "--against-output", str(old), "--rubric", "rubric.md", "--estimate"]
    assert judge(fake, *args) == 0
    assert "24 to do" in capsys.readouterr().out
    assert sorted(p.name for p in Path(".").rglob("*")) == before
    assert fake.requests == []


def test_two_judged_outputs_grouped_by_the_model_judged(two_outputs, fake, capsys):
    new, old = two_outputs
    fake.fault(match="NEW verses", answer={"reasoning": "r", "score": 9})
    fake.fault(match="OLD verses", answer={"reasoning": "r", "score": 6})
    for judged, out in ((new, "new.judged.jsonl"), (old, "old.judged.jsonl")):
        assert judge(fake, str(judged), "--rubric", "rubric.md", "-o", out) == 0
    code, data = report(
        capsys,
        "new.judged.jsonl",
        "old.judged.jsonl",
        "--by",
        "judged_model",
        "--score",
        "field:score",
        "--baseline",
        OLD,
    )
    assert code == 0
    means = {g["key"]: g["mean"] for g in data["scores"]["groups"]}
    assert means == {NEW: 9.0, OLD: 6.0}
    (c,) = data["scores"]["comparisons"]
    assert c["key"] == NEW and c["n_pairs"] == 12 and c["diff"] == 3.0


def test_a_judge_estimate_as_json(two_outputs, fake, capsys):
    new, old = two_outputs
    args = [str(new), "--against-output", str(old), "--rubric", "rubric.md"]
    capsys.readouterr()
    assert judge(fake, *args, "--estimate", "--json") == 0
    facts = json.loads(capsys.readouterr().out)
    assert facts["to_do"] == 24 and facts["job"] == str(new)
    assert any("judged 12 answers of new.jsonl" in note for note in facts["notes"])
