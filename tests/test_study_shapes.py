"""The study shapes that gave a wrong verdict, each a small fixed output read
by ``rolebatch report``: samples whose differences are equal up to float
rounding, a pairwise judge over samples, a scorer that returns NaN, ten of
ten right, five discordant pairs in forty, the Holm family of each side,
error lines left out, and several models in one report.  Every figure is
checked against a computation of its own (tests.helpers)."""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

import pytest

from rolebatch.cli import main
from tests.helpers import newcombe_ci, scored_line, wilson_ci, write_job

line = scored_line


def report(paths: list[Path], capsys, *extra: str) -> dict:
    code = main(["report", *map(str, paths), "--format", "json", *extra])
    out, err = capsys.readouterr()
    assert code == 0, err
    # Always JSON: a NaN anywhere would fail here.
    return json.loads(out, parse_constant=lambda name: pytest.fail(f"not JSON: {name}"))


def test_samples_whose_differences_are_equal_up_to_rounding_make_no_verdict(tmp_path, capsys):
    # 2 questions x 3 samples: the control right 1 and 2 times, the role 2 and
    # 3 times.  Both differences are 1/3 (in floats, 1 - 2/3 != 2/3 - 1/3).
    right = {"none": [[1, 0, 0], [1, 1, 0]], "poet": [[1, 1, 0], [1, 1, 1]]}
    lines = [
        line(q, role, float(score), sample=k)
        for role, questions in right.items()
        for q, samples in enumerate(questions)
        for k, score in enumerate(samples)
    ]
    path = write_job(tmp_path / "o.jsonl", lines)
    (c,) = report([path], capsys, "--score", "field:right")["scores"]["comparisons"]
    assert c["test"] == "sign" and c["p"] == pytest.approx(0.5)
    assert c["verdict"] == "no detectable difference" and c["mde"] is None
    assert c["diff"] == pytest.approx(1 / 3)
    # Graded: 0.1 vs 0.2, 0.7 vs 0.8, 0.2 vs 0.3 (was p = 1e-31, "better").
    lines = [
        line(q, role, score)
        for q, (low, high) in enumerate([(0.1, 0.2), (0.7, 0.8), (0.2, 0.3)])
        for role, score in (("none", low), ("poet", high))
    ]
    path = write_job(tmp_path / "g.jsonl", lines)
    (c,) = report([path], capsys, "--score", "field:right")["scores"]["comparisons"]
    assert c["test"] == "sign" and c["p"] == pytest.approx(0.25)
    assert c["verdict"] == "no detectable difference"


def judged(question: int, sample: int, role: str, order: str, winner: str) -> dict:
    pair = f"q{question}@{role}#{sample}"
    return {
        "id": f"{pair}~{order}",
        "status": "ok",
        "response": {"reasoning": "r", "winner": winner},
        "role_id": role,
        "query_id": f"q{question}",
        "pair": pair,
        "order": order,
        "against": "none",
        "judged_id": pair,
    }


def test_a_pairwise_judge_over_samples_counts_questions_not_samples(tmp_path, capsys):
    # 3 questions x 4 samples, every pair won in both orders: 3 questions won
    # (sign test p = 0.25), not 12 independent wins (p = 0.00049, "better").
    lines = [
        judged(q, k, "poet", order, winner)
        for q in range(3)
        for k in range(4)
        for order, winner in (("ab", "A"), ("ba", "B"))
    ]
    path = write_job(tmp_path / "heads.jsonl", lines)
    (row,) = report([path], capsys)["pairwise"]["rows"]
    assert (row["wins"], row["ties"], row["losses"]) == (3, 0, 0)
    assert row["pairs"] == 12 and row["pair_wins"] == 12 and row["questions"] == 3
    assert row["p"] == pytest.approx(2 / 2**3) and row["verdict"] == "no detectable difference"
    assert (row["ci_low"], row["ci_high"]) == pytest.approx(wilson_ci(3, 3))


def test_a_question_s_samples_are_won_lost_or_tied_by_their_net(tmp_path, capsys):
    # Per question (samples won, lost): q0 3-1 won, q1 1-3 lost, q2 2-2 tied,
    # q3..q8 each 1-0 won; a role judged on one question only is no comparison.
    plan = {0: (3, 1), 1: (1, 3), 2: (2, 2), **{q: (1, 0) for q in range(3, 9)}}
    lines = []
    for q, (won, lost) in plan.items():
        outcomes = ["A"] * won + ["B"] * lost
        for k, answer in enumerate(outcomes):
            other = "B" if answer == "A" else "A"
            lines += [judged(q, k, "poet", "ab", answer), judged(q, k, "poet", "ba", other)]
    lines += [judged(0, 0, "kid", "ab", "A"), judged(0, 0, "kid", "ba", "B")]
    path = write_job(tmp_path / "heads.jsonl", lines)
    rows = {r["key"]: r for r in report([path], capsys)["pairwise"]["rows"]}
    poet, kid = rows["poet"], rows["kid"]
    assert (poet["wins"], poet["ties"], poet["losses"]) == (7, 1, 1)
    tail = sum(math.comb(8, i) for i in range(2)) / 2**8
    assert poet["p"] == pytest.approx(2 * tail)
    # Holm's family: the roles compared on two questions or more, as for scores.
    assert kid["p"] is None and kid["p_holm"] is None
    assert poet["p_holm"] == pytest.approx(poet["p"])


def test_a_python_scorer_that_returns_nan_leaves_the_line_unscored(tmp_path, capsys, monkeypatch):
    (tmp_path / "nanscore.py").write_text(
        "def score(line):\n"
        "    return float('nan') if line['id'].startswith('q1@') else line['response']['right']\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    lines = [line(q, role, float((q + (role == "poet")) % 2)) for q in range(6)
             for role in ("none", "poet")]  # fmt: skip
    path = write_job(tmp_path / "o.jsonl", lines)
    scores = report([path], capsys, "--score", "python:nanscore:score")["scores"]
    groups = {g["key"]: g for g in scores["groups"]}
    assert groups["none"]["unscored"] == 1 and groups["none"]["n"] == 5
    assert all(isinstance(g["mean"], float) and not math.isnan(g["mean"]) for g in groups.values())
    assert main(["report", str(path), "--score", "python:nanscore:score"]) == 0
    assert "NaN" in capsys.readouterr().out  # why they were left out


def test_ten_of_ten_right_is_not_a_point(tmp_path, capsys):
    lines = [line(q, "none", 1.0) for q in range(10)]
    path = write_job(tmp_path / "o.jsonl", lines)
    (g,) = report([path], capsys, "--score", "field:right")["scores"]["groups"]
    assert (g["ci_low"], g["ci_high"]) == pytest.approx(wilson_ci(10, 10))
    assert g["ci_low"] < 0.75


def test_five_discordant_pairs_in_forty_the_interval_and_the_test(tmp_path, capsys):
    # 20 both right, 5 only the role, 15 neither: exact McNemar p = 0.0625; the
    # score interval leaves out 0.  The verdict follows the test, and says so.
    role = [1] * 20 + [1] * 5 + [0] * 15
    control = [1] * 20 + [0] * 5 + [0] * 15
    lines = [line(q, "none", float(s)) for q, s in enumerate(control)]
    lines += [line(q, "poet", float(s)) for q, s in enumerate(role)]
    path = write_job(tmp_path / "o.jsonl", lines)
    (c,) = report([path], capsys, "--score", "field:right")["scores"]["comparisons"]
    assert c["p"] == pytest.approx(0.0625) and c["verdict"] == "no detectable difference"
    assert (c["ci_low"], c["ci_high"]) == pytest.approx(newcombe_ci(20, 5, 0, 15))
    assert c["ci_low"] > 0 and c["edge"] is True
    assert main(["report", str(path), "--score", "field:right"]) == 0
    assert "the verdict follows the test" in capsys.readouterr().out


def test_left_out_errors_are_explained_under_the_table(tmp_path, capsys):
    lines = [
        line(q, r, float((q * 7 + len(r)) % 3 == 0)) for q in range(8) for r in ("none", "kid")
    ]
    lines[3] = {**lines[3], "status": "error", "response": None,
                "error": {"kind": "validation", "message": "m"}}  # fmt: skip
    path = write_job(tmp_path / "o.jsonl", lines)
    assert main(["report", str(path), "--score", "field:right", "--errors", "skip"]) == 0
    assert "a group's mean weights its answers" in capsys.readouterr().out


def two_models(tmp_path: Path) -> tuple[Path, Path, dict[str, dict[str, list[float]]]]:
    """The same 12 questions under the control and two roles, by two models;
    the expert helps the big model, the friend the small one."""
    scores: dict[str, dict[str, list[float]]] = {}
    paths = []
    for model, helped in (("openai/big", "expert"), ("openai/small", "friend")):
        lines, scores[model] = [], {}
        for role in ("none", "expert", "friend"):
            values = [float((q * 5 + len(role) + len(model)) % 4 != 0) for q in range(12)]
            if role == helped:
                values = [1.0] * 12
            scores[model][role] = values
            lines += [{**line(q, role, v), "model": model} for q, v in enumerate(values)]
        paths.append(write_job(tmp_path / f"{model.split('/')[1]}.jsonl", lines))
    return paths[0], paths[1], scores


def test_two_models_are_not_pooled_as_samples_of_one_role(tmp_path, capsys):
    big, small, _ = two_models(tmp_path)
    assert main(["report", str(big), str(small), "--score", "field:right"]) == 2
    err = capsys.readouterr().err
    assert "two models" in err and "--by model,role" in err


def test_by_model_and_role_compares_within_each_model(tmp_path, capsys):
    big, small, scores = two_models(tmp_path)
    found = report([big, small], capsys, "--score", "field:right", "--by", "model,role")
    figures = found["scores"]
    assert {g["key"] for g in figures["groups"]} == {
        f"{m} · {r}" for m in scores for r in ("none", "expert", "friend")
    }
    comparisons = {c["key"]: c for c in figures["comparisons"]}
    assert len(comparisons) == 4 and {c["family"] for c in comparisons.values()} == {4}
    for model, roles in scores.items():
        for role in ("expert", "friend"):
            c = comparisons[f"{model} · {role}"]
            assert c["baseline"] == f"{model} · none"
            diffs = [x - y for x, y in zip(roles[role], roles["none"], strict=True)]
            assert c["diff"] == pytest.approx(statistics.fmean(diffs))
    interaction = figures["interaction"]
    assert interaction["best"] == {"openai/big": "expert", "openai/small": "friend"}
    assert interaction["same_best"] is False
    rows = {r["key"]: r for r in interaction["rows"]}
    for role in ("expert", "friend"):
        gain = {
            m: [x - y for x, y in zip(scores[m][role], scores[m]["none"], strict=True)]
            for m in scores
        }
        expected = statistics.fmean(a - b for a, b in zip(*gain.values(), strict=True))
        assert rows[role]["diff"] == pytest.approx(expected)
    assert main(["report", str(big), str(small), "--score", "field:right", "--by",
                 "model,role"]) == 0  # fmt: skip
    assert "the best group by model: openai/big: expert, openai/small: friend" in (
        capsys.readouterr().out
    )


def test_graded_scores_all_alike_are_never_a_point(tmp_path, capsys):
    lines = [line(q, "none", 10.0) for q in range(3)]
    lines += [line(q, "poet", 10.0) for q in range(3, 10)]  # seven questions of its own
    path = write_job(tmp_path / "o.jsonl", lines)
    groups = {
        g["key"]: g for g in report([path], capsys, "--score", "field:right")["scores"]["groups"]
    }
    # No scale known: nothing bounds what the questions not asked could score.
    assert (groups["none"]["ci_low"], groups["none"]["ci_high"]) == (None, None)
    assert (groups["poet"]["ci_low"], groups["poet"]["ci_high"]) == (None, None)
    assert groups["poet"]["method"] == "exact"


def test_scores_all_alike_on_a_known_scale_get_the_exact_bound():
    from rolebatch.evaluate import stats

    # Seven questions all at 8 on a 1-10 scale: at most a share r = 1 -
    # 0.025^(1/7) of questions scores otherwise unseen, as low as 1 or as
    # high as 10.
    found = stats.estimate([8.0] * 7, [1] * 7, scale=(1.0, 10.0))
    r = 1 - 0.025 ** (1 / 7)
    assert (found.ci_low, found.ci_high) == pytest.approx((8 - 7 * r, 8 + 2 * r))
    assert found.method == "exact" and found.ci_low < 8 < found.ci_high


def test_a_judge_s_scores_keep_to_its_rubric_s_scale(tmp_path, capsys):
    # Three questions graded 1-10: Student's t on 2 degrees of freedom would
    # reach below 1 and above 10; the judged output's sidecar says the scale.
    grades = {"none": [9.0, 10.0, 8.0], "poet": [2.0, 9.0, 5.0]}
    lines = [
        {**line(q, role, 0.0), "response": {"reasoning": "r", "score": grade}}
        for role, values in grades.items()
        for q, grade in enumerate(values)
    ]
    path = write_job(tmp_path / "judged.jsonl", lines)
    sidecar = {"rolebatch": 2, "config": {"task": "judge", "scale": [1, 10]}}
    Path(f"{path}.rolebatch.json").write_text(json.dumps(sidecar))
    figures = report([path], capsys, "--score", "field:score")["scores"]
    poet = next(g for g in figures["groups"] if g["key"] == "poet")
    mean, se = statistics.fmean(grades["poet"]), statistics.stdev(grades["poet"]) / math.sqrt(3)
    assert mean - 4.303 * se < 1 and poet["ci_low"] == 1.0
    assert 0 < poet["ci_high"] <= 10
    (c,) = figures["comparisons"]
    assert c["ci_low"] >= -9.0 and c["ci_high"] <= 9.0
