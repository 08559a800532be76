"""rolebatch report --score: the figures of a study, read from an output in one
pass, each checked against a computation of its own on fixed lines."""

from __future__ import annotations

import json
import math
import random
import statistics
from pathlib import Path

import pytest

from rolebatch.cli import main
from rolebatch.evaluate import scorers
from tests.helpers import cr1_se, newcombe_ci, student_t_quantile, wilson_ci, write_job

T = student_t_quantile(0.975, 39)  # 40 questions
ROLES = ["none", "expert", "friend", "robot"]


CHANCE = {"none": 0.5, "expert": 0.75, "friend": 0.5, "robot": 0.3}


def _right(role: str, question: int, sample: int | None = None) -> int:
    """A fixed, uneven pattern: the expert is right more often, the robot less."""
    rng = random.Random(f"{role}-{question}-{sample}")
    return int(rng.random() < CHANCE[role])


def _line(question: int, role: str, status: str = "ok", sample: int | None = None) -> dict:
    expected = 1 + question % 3
    right = _right(role, question, sample)
    chosen = expected if right else 1 + (expected % 3)
    suffix = "" if sample is None else f"#{sample}"
    return {
        "id": f"q{question}@{role}{suffix}",
        "line": question * len(ROLES) + ROLES.index(role) + 1,
        "status": status,
        "response": {"option": chosen} if status == "ok" else None,
        "error": None if status == "ok" else {"kind": "validation", "message": "m"},
        "role": None if role == "none" else f"You are a {role}.",
        "role_id": role,
        "role_metadata": {"kind": "control" if role == "none" else "other"},
        "query": f"Question {question}?",
        "model": "openai/gpt-4o",
        "attempts": 1,
        "usage": None,
        "latency_s": 0.1,
        "metadata": None,
        "options": ["a", "b", "c"],
        "expected": expected,
        "cost_usd": None,
    }


def _report(path: Path, capsys, *extra: str) -> dict:
    assert main(["report", str(path), "--format", "json", *extra]) == 0
    return json.loads(capsys.readouterr().out)["scores"]


@pytest.fixture
def study(tmp_path: Path) -> tuple[Path, dict[str, list[float]]]:
    """40 questions under 4 roles; the robot fails 3 of them with an error."""
    lines, scores = [], {role: [] for role in ROLES}
    for q in range(40):
        for role in ROLES:
            failed = role == "robot" and q in (3, 17, 29)
            lines.append(_line(q, role, "error" if failed else "ok"))
            scores[role].append(0.0 if failed else float(_right(role, q)))
    random.Random(7).shuffle(lines)  # an unfinished output is in completion order
    return write_job(tmp_path / "out.jsonl", lines), scores


def test_every_group_s_mean_and_interval(study, capsys):
    path, scores = study
    found = {g["key"]: g for g in _report(path, capsys)["groups"]}
    for role in ROLES:
        values = scores[role]
        mean, se = statistics.fmean(values), statistics.stdev(values) / math.sqrt(len(values))
        g = found[role]
        assert g["n"] == 40 and g["errors"] == (3 if role == "robot" else 0)
        assert g["mean"] == pytest.approx(mean) and g["se"] == pytest.approx(se)
        # 0/1 scores, one answer a question: Wilson's score interval.
        assert g["method"] == "wilson"
        assert (g["ci_low"], g["ci_high"]) == pytest.approx(wilson_ci(sum(values), 40))
    assert found["none"]["baseline"] is True  # the control: a role id with no role text


def test_paired_comparisons_with_holm_and_verdicts(study, capsys):
    path, scores = study
    report = _report(path, capsys)
    assert report["baseline"] == "none"
    found = {c["key"]: c for c in report["comparisons"]}
    assert set(found) == {"expert", "friend", "robot"}
    base, ps = scores["none"], {}
    for role in ("expert", "friend", "robot"):
        diffs = [c - b for c, b in zip(scores[role], base, strict=True)]
        wins, losses = diffs.count(1), diffs.count(-1)
        tail = sum(math.comb(wins + losses, i) for i in range(min(wins, losses) + 1))
        ps[role] = min(1.0, 2 * tail / 2 ** (wins + losses)) if wins + losses else 1.0
        c = found[role]
        assert c["n_pairs"] == 40 and c["test"] == "mcnemar-exact"
        assert c["diff"] == pytest.approx(statistics.fmean(diffs))
        se = statistics.stdev(diffs) / math.sqrt(40)
        both = sum(1 for x, y in zip(scores[role], base, strict=True) if x == y == 1)
        table = (both, wins, losses, 40 - both - wins - losses)
        assert (c["ci_low"], c["ci_high"]) == pytest.approx(newcombe_ci(*table))
        assert c["p"] == pytest.approx(ps[role])
        # Detectable at Holm's first step: 0.05 / 3 comparisons, two-sided.
        first = student_t_quantile(1 - 0.05 / 6, 39)
        assert c["family"] == 3
        assert c["mde"] == pytest.approx((first + student_t_quantile(0.8, 39)) * se)
    order = sorted(ps, key=ps.get)
    running = 0.0
    for k, role in enumerate(order):
        running = max(running, min(1.0, (3 - k) * ps[role]))
        assert found[role]["p_holm"] == pytest.approx(running)
        expected = "no detectable difference"
        if running < 0.05:
            expected = "better" if found[role]["diff"] > 0 else "worse"
        assert found[role]["verdict"] == expected


def test_the_oracle_a_random_role_and_a_role_picked_on_half(study, capsys):
    path, scores = study
    report = _report(path, capsys, "--seed", "3")
    per_question = list(zip(*(scores[r] for r in ROLES), strict=True))
    assert report["oracle"] == pytest.approx(statistics.fmean(max(q) for q in per_question))
    # A group picked at random among those that are not the baseline (as the
    # one picked on half is).
    others = list(zip(*(scores[r] for r in ROLES if r != "none"), strict=True))
    assert report["random_role"] == pytest.approx(
        statistics.fmean(statistics.fmean(q) for q in others)
    )
    # Questions are numbered as they first appear in the file.
    first_seen: list[int] = []
    for raw in path.read_text().splitlines():
        q = int(json.loads(raw)["id"].split("@")[0][1:])
        if q not in first_seen:
            first_seen.append(q)
    order = list(range(40))
    random.Random(3).shuffle(order)
    pick = [first_seen[i] for i in order[:20]]
    held = [first_seen[i] for i in order[20:]]
    best = max(("expert", "friend", "robot"), key=lambda r: sum(scores[r][q] for q in pick))
    half = report["picked_on_half"]
    assert half["picked"] == best and half["scored_on"] == 20
    assert half["score"] == pytest.approx(statistics.fmean(scores[best][q] for q in held))
    assert half["baseline_score"] == pytest.approx(
        statistics.fmean(scores["none"][q] for q in held)
    )


def test_error_lines_can_be_left_out(study, capsys):
    path, scores = study
    robot = next(
        g for g in _report(path, capsys, "--errors", "skip")["groups"] if g["key"] == "robot"
    )
    kept = [s for q, s in enumerate(scores["robot"]) if q not in (3, 17, 29)]
    assert robot["n"] == 37 and robot["errors"] == 3
    assert robot["mean"] == pytest.approx(statistics.fmean(kept))


def test_samples_are_clustered_by_question(tmp_path, capsys):
    lines = [
        _line(q, role, sample=k) for q in range(12) for role in ("none", "expert") for k in range(3)
    ]
    path = write_job(tmp_path / "out.jsonl", lines)
    found = {g["key"]: g for g in _report(path, capsys)["groups"]}
    for role in ("none", "expert"):
        clusters = [[_right(role, q, k) for k in range(3)] for q in range(12)]
        every = [s for c in clusters for s in c]
        mean = statistics.fmean(every)
        se = math.sqrt(12 / 11 * sum(sum(s - mean for s in c) ** 2 for c in clusters))
        se /= len(every)  # CR1 over 12 questions
        assert found[role]["clustered"] is True
        assert found[role]["se"] == pytest.approx(se) == pytest.approx(cr1_se(clusters))
        effective = mean * (1 - mean) / se**2
        found_ci = (found[role]["ci_low"], found[role]["ci_high"])
        assert found_ci == pytest.approx(wilson_ci(mean * effective, effective))
    # Paired on each question's mean over its samples: no longer 0/1, a t-test.
    (comparison,) = _report(path, capsys)["comparisons"]
    assert comparison["test"] == "paired-t" and comparison["n_pairs"] == 12


def test_grouping_by_what_the_roles_file_says(study, capsys):
    path, _ = study
    report = _report(path, capsys, "--by", "role.kind")
    assert {g["key"] for g in report["groups"]} == {"control", "other"}
    assert report["baseline"] == "control"


def test_a_baseline_that_is_not_a_group_is_named(study, capsys):
    path, _ = study
    assert main(["report", str(path), "--baseline", "chef"]) == 2
    assert "--baseline 'chef': no such group" in capsys.readouterr().err


def test_without_a_scorer_the_report_is_descriptive_and_with_one_asked_it_says_so(tmp_path, capsys):
    poem = {**_line(0, "none"), "response": {"poem": "x"}}
    for key in ("options", "expected"):
        poem.pop(key)
    path = write_job(tmp_path / "poems.jsonl", [poem])
    assert main(["report", str(path), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["scores"] is None
    assert main(["report", str(path), "--score", "choice"]) == 0
    out = capsys.readouterr().out
    assert "scores: choice" in out
    assert "unscored: 1 ok line, left out of n: they have no 'expected' option" in out
    assert main(["report", str(path), "--score", "exact"]) == 0
    assert "no 'expected' answer to compare with" in capsys.readouterr().out
    assert main(["report", str(path), "--baseline", "none"]) == 2
    assert "give --score" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("spec", "response", "expected", "score"),
    [
        ("exact", {"answer": " Paris. "}, "paris", 1.0),
        ("exact", {"answer": "Paris, France"}, ["paris", "Paris, France!"], 1.0),
        ("exact", {"answer": "Lyon"}, "Paris", 0.0),
        ("includes", {"answer": "It is Paris, of course"}, "paris", 1.0),
        ("regex:^\\d{4}$", {"answer": "1969"}, None, 1.0),
        ("number", {"answer": "about 42 of them"}, 42, 1.0),
        ("number:0.5", {"answer": "3.3"}, "3", 1.0),
        ("number:0.1", {"answer": "no idea"}, 3, 0.0),
        ("field:score", {"reasoning": "fine", "score": 7}, None, 7.0),
        ("exact", {"answer": "Paris"}, None, None),  # nothing to compare with
        ("field:score", {"reasoning": "fine"}, None, None),
    ],
)
def test_scorers(spec, response, expected, score):
    line = {"status": "ok", "response": response}
    if expected is not None:
        line["expected"] = expected
    assert scorers.scorer(spec)(line) == score


def test_a_choice_is_scored_by_number_or_by_the_option_s_text():
    line = {"response": {"option": 2}, "options": ["Rome", "Paris"], "expected": "Paris"}
    assert scorers.choice(line) == 1.0
    assert scorers.choice({**line, "expected": 1}) == 0.0


def test_your_own_scorer(tmp_path, monkeypatch):
    (tmp_path / "myscores.py").write_text(
        "def length(line):\n    return len(line['response']['answer'])\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert scorers.scorer("python:myscores:length")({"response": {"answer": "abcd"}}) == 4.0
