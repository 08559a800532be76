"""The gate never passes on nothing nor on a margin that cannot fail (#39):
margins in their own unit, refused where no candidate could fail them;
"undecided" (exit 5) wherever there is nothing to decide on; no proof from a
lack of spread; one Holm family for every comparison a rule rules on."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest

from rolebatch.cli import main
from rolebatch.evaluate.gate import Rules, decide
from rolebatch.evaluate.pairwise import Pairwise
from rolebatch.evaluate.scores import Scores
from tests.helpers import scored_line, write_job

PASSED, FAILED, REFUSED, UNDECIDED = 0, 1, 2, 5


def line(question: int, role: str, score: float, sample: int | None = None) -> dict:
    return scored_line(question, role, score, sample, control="old")


def head(question: int, role: str, outcome: str, order: str) -> dict:
    """One order of a judge's head-to-head of ``role``'s answer against the
    baseline's: ``outcome`` won, lost, tie, or first (the judge always picks
    the answer shown first: an unreliable judge)."""
    first = order == "ab"  # the judged answer was shown as A
    winner = {
        "won": "A" if first else "B",
        "lost": "B" if first else "A",
        "tie": "tie",
        "first": "A",
    }[outcome]
    return {
        **scored_line(question, role, 0.0, control="old"),
        "id": f"q{question}@{role}:{order}",
        "response": {"reasoning": "r", "winner": winner},
        "order": order,
        "pair": f"q{question}@{role}",
        "against": "old",
    }


def heads(questions: list[str], role: str = "new") -> list[dict]:
    return [
        head(q, role, outcome, order)
        for q, outcome in enumerate(questions)
        for order in ("ab", "ba")
    ]


def report(capsys, paths: list[Path], *args: str) -> tuple[int, dict, str]:
    """The exit code, the JSON and the table's text of one report."""
    argv = ["report", *map(str, paths), *args]
    capsys.readouterr()
    code = main([*argv, "--format", "json"])
    out = capsys.readouterr().out
    data = json.loads(out)  # always JSON, however empty
    assert main(argv) == code
    captured = capsys.readouterr()
    return code, data, captured.out + captured.err


# -- margins in their unit ---------------------------------------------------


@pytest.mark.parametrize("margin", [0.5, 0.6, 0.9, 1.0, 5.0])
def test_a_win_rate_margin_that_cannot_fail_is_refused(tmp_path, capsys, margin):
    path = write_job(tmp_path / "h.jsonl", heads(["won"] * 1 + ["lost"] * 6))
    capsys.readouterr()
    assert main(["report", str(path), "--win-margin", str(margin)]) == REFUSED
    assert "a candidate that lost every question would pass" in capsys.readouterr().err


def test_the_one_issue_case_a_role_that_won_1_and_lost_6(tmp_path, capsys):
    path = write_job(tmp_path / "h.jsonl", heads(["won"] + ["lost"] * 6))
    # The score margin is not for a win rate: refused, naming the right option.
    capsys.readouterr()
    assert main(["report", str(path), "--non-inferiority", "0.6"]) == REFUSED
    assert "--win-margin" in capsys.readouterr().err
    code, data, _ = report(capsys, [path], "--win-margin", "0.3")
    assert code == FAILED and data["gate"]["passed"] is False


@pytest.mark.parametrize(
    "margin,scale", [(1.0, None), (5.0, None), (9.0, (1, 10)), (12.0, (1, 10))]
)
def test_a_score_margin_at_or_past_the_score_s_range_is_refused(tmp_path, capsys, margin, scale):
    if scale is None:  # 0/1 scores: the range is 1
        lines = [line(q, r, float(q % 2)) for q in range(20) for r in ("old", "new")]
        args = ["--score", "field:right"]
    else:  # a judge's 1-10 scores, its rubric's scale in the sidecar
        lines = [
            {**line(q, r, 0.0), "response": {"reasoning": "r", "score": 5.0 + q % 3}}
            for q in range(20)
            for r in ("old", "new")
        ]
        args = ["--score", "field:score"]
    path = write_job(tmp_path / "o.jsonl", lines)
    if scale is not None:
        from rolebatch.records.sidecar import sidecar_path

        sidecar_path(path).write_text(json.dumps({"config": {"scale": list(scale)}}))
    capsys.readouterr()
    assert main(["report", str(path), *args, "--non-inferiority", str(margin)]) == REFUSED
    assert "could never fail" in capsys.readouterr().err


SHAPES = {
    # name: (scores of the baseline and the candidate per question, samples)
    "binary": lambda n, margin: ([1.0] * n, [0.0] * n, 1),
    "graded": lambda n, margin: (
        [0.5 + 0.01 * (q % 5) for q in range(n)],
        [0.5 + 0.01 * (q % 5) - margin - 0.001 * (1 + q % 3) for q in range(n)],
        1,
    ),
    "samples": lambda n, margin: ([1.0] * n, [0.0] * n, 3),
}


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_no_configuration_passes_a_candidate_below_minus_margin_everywhere(tmp_path, capsys, shape):
    """A grid of margins, sizes and rules: a candidate whose every paired
    difference is below -margin never passes (exit 1, 2 or 5, never 0)."""
    for n in (2, 5, 12, 40):
        for margin in (0.001, 0.05, 0.3, 0.6, 0.99):
            base, cand, samples = SHAPES[shape](n, margin)
            lines = [
                line(q, role, s, k if samples > 1 else None)
                for role, scores in (("old", base), ("new", cand))
                for q, s in enumerate(scores)
                for k in range(samples)
            ]
            path = write_job(tmp_path / "o.jsonl", lines)
            for rules in (
                ["--non-inferiority", str(margin)],
                ["--non-inferiority", str(margin), "--fail-if-worse"],
                ["--non-inferiority", str(margin), "--fail-under", "0"],
            ):
                capsys.readouterr()
                code = main(["report", str(path), "--score", "field:right", *rules])
                assert code != PASSED, (shape, n, margin, rules)


def test_no_configuration_passes_a_candidate_that_lost_every_decided_question(tmp_path, capsys):
    for decided in (1, 3, 8, 30):
        for ties in (0, 5):
            path = write_job(tmp_path / "h.jsonl", heads(["lost"] * decided + ["tie"] * ties))
            for margin in (0.01, 0.1, 0.25, 0.45, 0.499):
                for extra in ([], ["--fail-if-worse"]):
                    capsys.readouterr()
                    argv = ["report", str(path), "--win-margin", str(margin), *extra]
                    assert main(argv) != PASSED, (decided, ties, margin, extra)
            if not ties:  # every question lost: fail-if-worse alone passes none either
                capsys.readouterr()
                assert main(["report", str(path), "--fail-if-worse"]) != PASSED


# -- no evidence is not a pass ---------------------------------------------


def undecided(capsys, paths: list[Path], *args: str, why: str) -> dict:
    code, data, text = report(capsys, paths, *args)
    assert code == UNDECIDED, text
    assert data["gate"]["passed"] is None and data["gate"]["outcome"] == "undecided"
    assert "gate: UNDECIDED" in text and why in text
    return data


@pytest.mark.parametrize(
    "rules", [["--fail-if-worse"], ["--non-inferiority", "0.05"], ["--fail-under", "0.5"]]
)
def test_an_empty_output_is_undecided_in_every_format(tmp_path, capsys, monkeypatch, rules):
    empty = write_job(tmp_path / "empty.jsonl", [])
    summary = tmp_path / "step.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    data = undecided(capsys, [empty], "--score", "choice", *rules, why="no lines")
    assert data["groups"] == {}
    assert "the gate undecided" in summary.read_text()
    capsys.readouterr()
    assert main(["report", str(empty), "--score", "choice", *rules, "--format", "md"]) == 5
    assert "gate: UNDECIDED" in capsys.readouterr().out


def test_a_baseline_against_an_empty_output_is_undecided(tmp_path, capsys):
    base = write_job(tmp_path / "base.jsonl", [line(q, "old", 1.0) for q in range(10)])
    empty = write_job(tmp_path / "empty.jsonl", [])
    args = ["--by", "output", "--baseline", str(base), "--score", "field:right"]
    undecided(capsys, [base, empty], *args, "--fail-if-worse", why="nothing to compare")


def test_nothing_compared_is_undecided(tmp_path, capsys):
    # --by output with no --baseline, and a sweep with no control role.
    a = write_job(tmp_path / "a.jsonl", [line(q, "old", 1.0) for q in range(10)])
    b = write_job(tmp_path / "b.jsonl", [line(q, "old", 0.0) for q in range(10)])
    for rules in (["--fail-if-worse"], ["--non-inferiority", "0.1"]):
        args = ["--by", "output", "--score", "field:right", *rules]
        undecided(capsys, [a, b], *args, why="no baseline")
    roles = [{**line(q, r, 1.0), "role": f"You are a {r}."} for q in range(10) for r in ("x", "y")]
    sweep = write_job(tmp_path / "sweep.jsonl", roles)
    undecided(capsys, [sweep], "--score", "field:right", "--fail-if-worse", why="no baseline")


def test_every_line_an_error_is_undecided(tmp_path, capsys):
    lines = [
        {**line(q, r, 0.0), "status": "error", "response": None, "error": {"kind": "server"}}
        for q in range(10)
        for r in ("old", "new")
    ]
    path = write_job(tmp_path / "o.jsonl", lines)
    undecided(capsys, [path], "--fail-if-worse", why="every line is an error")
    # Scored with --errors skip: no group has a score.
    args = ["--score", "field:right", "--errors", "skip", "--fail-under", "0.5"]
    undecided(capsys, [path], *args, why="no score")


def test_outputs_of_different_jobs_are_undecided(tmp_path, capsys):
    a = write_job(tmp_path / "a.jsonl", [line(q, "old", 1.0) for q in range(10)])
    b = write_job(
        tmp_path / "b.jsonl", [{**line(q, "old", 0.0), "id": f"other{q}"} for q in range(10)]
    )
    args = ["--by", "output", "--baseline", str(a), "--score", "field:right", "--fail-if-worse"]
    undecided(capsys, [a, b], *args, why="no question in common")


def test_too_few_pairs_and_a_test_that_could_not_fail_are_undecided(tmp_path, capsys):
    lines = [line(q, r, float(r == "old")) for q in range(5) for r in ("old", "new")]
    path = write_job(tmp_path / "o.jsonl", lines)
    # Five questions, all lost: McNemar's least p is 2/2^5 = 0.0625.
    data = undecided(
        capsys, [path], "--score", "field:right", "--fail-if-worse", why="could not show it worse"
    )
    assert data["scores"]["comparisons"][0]["p"] == pytest.approx(0.0625)
    one = write_job(tmp_path / "one.jsonl", [line(0, "old", 1.0), line(0, "new", 0.0)])
    undecided(capsys, [one], "--score", "field:right", "--fail-if-worse", why="too few to test")


def test_an_unreliable_judge_is_undecided(tmp_path, capsys):
    path = write_job(tmp_path / "h.jsonl", heads(["first"] * 12))
    for rules in (["--fail-if-worse"], ["--win-margin", "0.1"]):
        data = undecided(capsys, [path], *rules, why="the judge is unreliable")
        assert data["pairwise"]["unreliable"] is True


def test_a_reliable_verdict_still_passes_and_fails(tmp_path, capsys):
    path = write_job(tmp_path / "h.jsonl", heads(["won"] * 10 + ["lost"] * 2))
    code, data, _ = report(capsys, [path], "--fail-if-worse", "--win-margin", "0.1")
    assert code == PASSED and data["gate"]["passed"] is True
    path = write_job(tmp_path / "h.jsonl", heads(["lost"] * 10 + ["won"] * 1))
    code, data, text = report(capsys, [path], "--fail-if-worse")
    assert code == FAILED and "gate: fail-if-worse: FAILED for new" in text


# -- no proof from no spread -------------------------------------------------


def test_a_copy_of_the_baseline_proves_nothing_at_a_tiny_margin(tmp_path, capsys):
    lines = [
        line(q, role, float((q + len(role)) % 2)) for q in range(13) for role in ("old", "a", "b")
    ]
    base = write_job(tmp_path / "base.jsonl", lines)
    copy = write_job(tmp_path / "copy.jsonl", lines)
    args = ["--by", "output", "--baseline", str(base), "--score", "field:right"]
    code, data, text = report(capsys, [base, copy], *args, "--non-inferiority", "0.0001")
    assert code == FAILED
    (c,) = data["scores"]["comparisons"]
    assert c["ci_low"] < 0 < c["ci_high"]  # never "0.000 to 0.000"
    (failing,) = data["gate"]["rules"][0]["failing"]
    # The exact bound for 13 differences all 0 on a reach of 1: p = (1 - 0.0001)^13.
    assert failing["p_noninferior"] == pytest.approx((1 - 0.0001) ** 13)
    needed = math.ceil(math.log(0.025) / math.log(1 - 0.0001))
    assert failing["questions_needed"] == needed
    assert f"about {needed:,} questions would show it" in text
    # At a margin that 13 questions can show, the same copy passes.
    code, _, _ = report(capsys, [base, copy], *args, "--non-inferiority", "0.3")
    assert code == PASSED and 0.7**13 < 0.025


def test_an_output_with_its_own_lines_twice_is_refused(tmp_path, capsys):
    lines = [line(q, r, 1.0) for q in range(5) for r in ("old", "new")]
    path = write_job(tmp_path / "twice.jsonl", lines + lines)
    capsys.readouterr()
    assert main(["report", str(path), "--score", "field:right"]) == REFUSED
    err = capsys.readouterr().err
    assert f"{path}:11:" in err and "in this output twice" in err


# -- one family ------------------------------------------------------------


def test_one_holm_family_keeps_the_family_wise_error_at_alpha():
    """Null worlds, each with a planted worse paired comparison and a planted
    worse head-to-head (found every time) beside a null one of each kind:
    a null comparison ruled on (p Holm under 0.05) is a family-wise error.
    The gate's one family keeps it at most alpha (within the binomial
    interval); the same worlds adjusted in two families, ORed, go well past
    it, so the worlds can tell the two apart."""
    from rolebatch.evaluate import stats

    worlds, alpha = 3000, 0.05
    rng = random.Random(39)
    errors = separate = 0
    for _ in range(worlds):
        scores, pairwise = Scores("field:right"), Pairwise()
        for q in range(30):
            base = rng.gauss(0.5, 0.1)
            for role, value in (
                ("old", base),
                ("null", base + rng.gauss(0, 0.1)),
                ("worse", base - 0.3 + rng.gauss(0, 0.1)),
            ):
                scores.add(line(q, role, value), role)
        for q in range(17):  # 17 decided questions: the sign test's size is 0.049
            for role, outcome in (("h-null", rng.choice(["won", "lost"])), ("h-worse", "lost")):
                for order in ("ab", "ba"):
                    pairwise.add(head(q, role, outcome, order), role)
        figures, found = scores.report(), pairwise.report()
        gate = decide(Rules(fail_if_worse=True), figures, found)
        (rule,) = gate["rules"]
        ruled = {r["key"]: r for r in rule["ruled"]}
        assert rule["family"] == 4 and {f["key"] for f in rule["failing"]} >= {"worse", "h-worse"}
        errors += any(ruled[k]["p_holm"] < alpha for k in ("null", "h-null"))
        # The same p-values, Holm-adjusted in their own two families, ORed.
        paired = stats.holm([ruled["null"]["p"], ruled["worse"]["p"]])
        heads_ = stats.holm([ruled["h-null"]["p"], ruled["h-worse"]["p"]])
        separate += paired[0] < alpha or heads_[0] < alpha
    bound = alpha + 2.576 * math.sqrt(alpha * (1 - alpha) / worlds)
    assert errors / worlds <= bound, errors / worlds
    assert separate / worlds > bound, separate / worlds


# -- statistics exactly as documented ----------------------------------------


def test_the_test_follows_the_design_not_the_data(tmp_path, capsys):
    """0/1 scores with samples get the paired t-test even when every
    question's samples happen to agree (they would look like one 0/1 score)."""
    lines = [
        line(q, role, float((q + (role == "new")) % 3 != 0), k)
        for q in range(20)
        for role in ("old", "new")
        for k in range(3)
    ]
    path = write_job(tmp_path / "o.jsonl", lines)
    _, data, _ = report(capsys, [path], "--score", "field:right")
    (c,) = data["scores"]["comparisons"]
    assert c["test"] == "paired-t"
    one = write_job(tmp_path / "one.jsonl", [x for x in lines if x["id"].endswith("#0")])
    _, data, _ = report(capsys, [one], "--score", "field:right")
    assert data["scores"]["comparisons"][0]["test"] == "mcnemar-exact"


def test_the_headline_counts_only_comparisons_made(tmp_path, capsys):
    lines = [line(0, r, 1.0) for r in ("old", "a", "b")]  # one question each: no test
    path = write_job(tmp_path / "o.jsonl", lines)
    _, data, _ = report(capsys, [path], "--score", "field:right")
    said = " ".join(data["headline"])
    assert "does not differ" not in said and "no group differs" not in said
    assert "not tested" in said and "a, b" in said
    assert [c["family"] for c in data["scores"]["comparisons"]] == [None, None]


def test_a_clustered_wilson_interval_does_not_jump_at_no_spread():
    from rolebatch.evaluate import stats

    # Ten questions, each answered twice, one right and one wrong: SE = 0.
    at_zero = stats.estimate([1.0] * 10, [2] * 10, binary=True)
    assert at_zero.se == 0 and (at_zero.ci_low, at_zero.ci_high) == pytest.approx(
        stats.wilson(10, 20)
    )
    # One question's pair moved a hair: SE just above 0, the interval beside it.
    near = stats.estimate([1.0] * 9 + [1.0 + 1e-6], [2] * 10, binary=True)
    assert near.ci_low == pytest.approx(at_zero.ci_low, abs=1e-4)
    # Every answer alike: nothing shows how alike a question's answers are.
    alike = stats.estimate([2.0] * 10, [2] * 10, binary=True)
    assert (alike.ci_low, alike.ci_high) == pytest.approx(stats.wilson(10, 10))


# -- small things ------------------------------------------------------------


def test_report_writes_to_a_file_with_o(tmp_path, capsys):
    lines = [line(q, r, float(q % 2)) for q in range(10) for r in ("old", "new")]
    path = write_job(tmp_path / "o.jsonl", lines)
    target = tmp_path / "out" / "report.json"
    target.parent.mkdir()
    capsys.readouterr()
    argv = ["report", str(path), "--score", "field:right", "--format", "json", "-o", str(target)]
    assert main(argv) == PASSED
    assert capsys.readouterr().out == ""
    assert json.loads(target.read_text())["scores"]["questions"] == 10
    assert [p.name for p in target.parent.iterdir()] == ["report.json"]  # no temporary file


def test_a_detectable_difference_past_the_scale_is_not_shown(tmp_path, capsys):
    from rolebatch.records.sidecar import sidecar_path

    # Three questions graded 1-10 with a wide spread: t on 2 degrees of
    # freedom would call a difference past the scale's width "detectable".
    grades = {"old": [9.0, 2.0, 8.0], "new": [2.0, 9.0, 1.0]}
    lines = [
        {**line(q, role, 0.0), "response": {"reasoning": "r", "score": grade}}
        for role, values in grades.items()
        for q, grade in enumerate(values)
    ]
    path = write_job(tmp_path / "o.jsonl", lines)
    sidecar_path(path).write_text(json.dumps({"config": {"scale": [1, 10]}}))
    _, data, _ = report(capsys, [path], "--score", "field:score")
    (c,) = data["scores"]["comparisons"]
    assert c["mde"] is None
    # Without the scale known, the same figures give a number past 9.
    other = write_job(tmp_path / "plain.jsonl", lines)
    _, data, _ = report(capsys, [other], "--score", "field:score")
    assert data["scores"]["comparisons"][0]["mde"] > 9
