"""ROUGE scorers (``--score rouge-l:FIELD``, ``rouge-1``, ``rouge-2``): the
figures against an LCS and n-gram count written here, against Google's
rouge-score called directly, and through ``report``'s paired statistics."""

from __future__ import annotations

import json
import re
from collections import Counter

import pytest

from rolebatch.cli import main
from rolebatch.errors import UsageError
from rolebatch.evaluate.scorers import scorer
from tests.helpers import write_job


def tokens(text: str) -> list[str]:
    """rouge-score's tokenizer without stemming: lower case, runs of a-z and 0-9."""
    return re.findall(r"[a-z0-9]+", text.lower())


def f_measure(overlap: int, candidate: int, reference: int) -> float:
    if not overlap:
        return 0.0
    precision, recall = overlap / candidate, overlap / reference
    return 2 * precision * recall / (precision + recall)


def lcs(a: list[str], b: list[str]) -> int:
    table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i, x in enumerate(a, 1):
        for j, y in enumerate(b, 1):
            table[i][j] = (
                table[i - 1][j - 1] + 1 if x == y else max(table[i - 1][j], table[i][j - 1])
            )
    return table[-1][-1]


def by_hand(kind: str, reference: str, candidate: str) -> float:
    ref, cand = tokens(reference), tokens(candidate)
    if kind == "rouge-l":
        return f_measure(lcs(ref, cand), len(cand), len(ref))
    n = int(kind[-1])
    grams = [Counter(zip(*(t[i:] for i in range(n)), strict=False)) for t in (ref, cand)]
    overlap = sum((grams[0] & grams[1]).values())
    return f_measure(overlap, max(1, len(cand) - n + 1), max(1, len(ref) - n + 1))


def line(answer: str, expected: object) -> dict:
    return {"status": "ok", "response": {"answer": answer}, "expected": expected}


PAIRS = [
    ("the cat sat on the mat", "the cat lay on the mat"),
    ("Elementary, my dear Watson.", "It is elementary, my dear fellow"),
    ("A B C D E F", "F E D C B A"),
    ("one two three", "four five six"),
    ("the game is afoot", "The game, Watson, is afoot!"),
    ("to be or not to be that is the question", "to be is the question"),
]


@pytest.mark.parametrize("kind", ["rouge-l", "rouge-1", "rouge-2"])
def test_the_scores_are_the_lcs_and_n_gram_f_measures_computed_here(kind):
    score = scorer(f"{kind}:answer:nostem")
    for reference, candidate in PAIRS:
        assert score(line(candidate, reference)) == pytest.approx(
            by_hand(kind, reference, candidate)
        ), (reference, candidate)


def test_a_few_cases_by_hand():
    ref, cand = "the cat sat on the mat", "the cat lay on the mat"
    assert scorer("rouge-l:answer")(line(cand, ref)) == pytest.approx(5 / 6)  # the cat on the mat
    assert scorer("rouge-1:answer")(line(cand, ref)) == pytest.approx(5 / 6)
    assert scorer("rouge-2:answer")(line(cand, ref)) == pytest.approx(
        3 / 5
    )  # the cat, on the, the mat
    assert scorer("rouge-l:answer")(line("F E D C B A", "A B C D E F")) == pytest.approx(1 / 6)
    assert scorer("rouge-l:answer")(line("four five six", "one two three")) == 0.0


def test_the_library_s_own_figures_stemming_and_the_best_of_several_references():
    from rouge_score import rouge_scorer

    own = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    score = scorer("rouge-l:answer")
    for reference, candidate in PAIRS:
        expected = own.score(reference, candidate)["rougeL"].fmeasure
        assert score(line(candidate, reference)) == pytest.approx(expected)
    # Porter stemming by default; :nostem compares the words as written.
    assert scorer("rouge-l:answer")(line("running dogs", "run dog")) == pytest.approx(1.0)
    assert scorer("rouge-l:answer:nostem")(line("running dogs", "run dog")) == 0.0
    # A list of references: the best match.
    best = scorer("rouge-l:answer")(
        line("the game is afoot", ["no match at all", "the game is afoot"])
    )
    assert best == pytest.approx(1.0)


def test_what_cannot_be_scored_is_left_out_and_bad_specs_are_refused():
    score = scorer("rouge-l:answer")
    assert score({"status": "ok", "response": {"answer": "x"}}) is None  # no expected
    assert score({"status": "ok", "response": {"other": "x"}, "expected": "x"}) is None
    for bad in ("rouge-l:", "rouge-l:answer:stem", "rouge-3:answer"):
        with pytest.raises(UsageError):
            scorer(bad)


def test_a_report_by_rouge_l_compares_roles_with_the_paired_t_test(tmp_path, capsys):
    """Graded scores in [0, 1]: the paired t-test, its difference the mean of
    the per-question differences computed here."""
    references = [f"the answer to question {i} is plain and short" for i in range(12)]
    rows, diffs = [], []
    for i, reference in enumerate(references):
        close = f"the answer to question {i} is short"
        far = f"question {i} has a long and winding reply" + " indeed" * (i % 3)
        for role, text in (("none", far), ("expert", close)):
            rows.append(
                {
                    "id": f"q{i}@{role}",
                    "line": len(rows) + 1,
                    "status": "ok",
                    "response": {"answer": text},
                    "expected": reference,
                    "query": f"Question {i}?",
                    "role": None if role == "none" else "You are an expert.",
                    "role_id": role,
                    "model": "m",
                }
            )
        diffs.append(by_hand("rouge-l", reference, close) - by_hand("rouge-l", reference, far))
    write_job(tmp_path / "out.jsonl", rows)
    code = main(
        [
            "report",
            str(tmp_path / "out.jsonl"),
            "--score",
            "rouge-l:answer:nostem",
            "--format",
            "json",
        ]
    )
    assert code == 0
    found = json.loads(capsys.readouterr().out)["scores"]
    (comparison,) = found["comparisons"]
    assert comparison["test"] == "paired-t" and comparison["verdict"] == "better"
    assert comparison["diff"] == pytest.approx(sum(diffs) / len(diffs))
