"""rolebatch report as a CI gate: --fail-if-worse, --non-inferiority MARGIN
and --fail-under SCORE on fixed outputs with planted effects; each decision
checked against a computation of its own (Newcombe's and Student's t
intervals by their closed forms, one-sided, Holm's steps by hand)."""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path
from statistics import NormalDist

import pytest

from rolebatch.cli import main
from tests.helpers import newcombe_ci, scored_line, student_t_quantile, write_job


def line(question: int, role: str, score: float) -> dict:
    """A scored line whose baseline role is "old" (the control)."""
    return scored_line(question, role, score, control="old")


def planted(tmp_path: Path, groups: dict[str, list[float]]) -> Path:
    """An output of these groups' scores, question by question; "old" is the
    baseline (the control: a role id with no role text)."""
    lines = [line(q, role, s) for role, scores in groups.items() for q, s in enumerate(scores)]
    return write_job(tmp_path / "out.jsonl", lines)


def table(a: int, b: int, c: int, d: int) -> tuple[list[float], list[float]]:
    """0/1 scores of a new and an old group: a both right, b only the new, c
    only the old, d neither."""
    new = [1.0] * a + [1.0] * b + [0.0] * c + [0.0] * d
    old = [1.0] * a + [0.0] * b + [1.0] * c + [0.0] * d
    return new, old


def gate(path: Path, capsys, *rules: str) -> tuple[int, dict, str]:
    code = main(["report", str(path), "--score", "field:right", "--format", "json", *rules])
    data = json.loads(capsys.readouterr().out)
    assert main(["report", str(path), "--score", "field:right", *rules]) == code
    return code, data, capsys.readouterr().out


Z = NormalDist().inv_cdf


def test_a_successor_better_by_002_is_non_inferior_at_005_on_300_questions(tmp_path, capsys):
    new, old = table(240, 15, 9, 36)  # +0.02
    path = planted(tmp_path, {"old": old, "new": new})
    code, data, text = gate(path, capsys, "--non-inferiority", "0.05", "--fail-if-worse")
    assert code == 0 and data["gate"]["passed"] is True
    assert "gate: non-inferiority at a margin of 0.05: passed" in text
    (c,) = data["scores"]["comparisons"]
    assert c["diff"] == pytest.approx(0.02)
    # Independent: the lower end of the two-sided 95 % interval, one-sided 0.025.
    assert newcombe_ci(240, 15, 9, 36)[0] > -0.05
    # The p read off the interval: at that one-sided level its lower end is -0.05.
    level = c["p_noninferior"]
    assert newcombe_ci(240, 15, 9, 36, Z(1 - level))[0] == pytest.approx(-0.05, abs=1e-6)


def test_a_model_worse_by_015_fails_both_rules(tmp_path, capsys):
    new, old = table(40, 5, 20, 35)  # -0.15 on 100 questions
    path = planted(tmp_path, {"old": old, "new": new})
    code, data, text = gate(path, capsys, "--fail-if-worse", "--non-inferiority", "0.05")
    assert code == 1 and data["gate"]["passed"] is False
    rules = {r["rule"]: r for r in data["gate"]["rules"]}
    assert [f["key"] for f in rules["fail-if-worse"]["failing"]] == ["new"]
    assert [f["key"] for f in rules["non-inferiority"]["failing"]] == ["new"]
    assert rules["fail-if-worse"]["failing"][0]["diff"] == pytest.approx(-0.15)
    assert "gate: fail-if-worse: FAILED for new" in text and text.rstrip().endswith("FAILED")


def test_twelve_questions_cannot_show_non_inferiority_and_say_how_many_would(tmp_path, capsys):
    new, old = table(7, 2, 1, 2)  # +0.083 on 12 questions
    path = planted(tmp_path, {"old": old, "new": new})
    code, data, text = gate(path, capsys, "--non-inferiority", "0.05")
    assert code == 1
    (failing,) = data["gate"]["rules"][0]["failing"]
    diffs = [a - b for a, b in zip(new, old, strict=True)]
    sd = statistics.stdev(diffs)
    needed = math.ceil(((Z(0.975) + Z(0.8)) * sd / 0.05) ** 2)
    assert failing["questions_needed"] == needed and needed > 12
    assert f"about {needed:,} questions would show it" in text


def test_a_re_run_of_the_same_model_passes_fail_if_worse(tmp_path, capsys):
    old = [float(q % 3 != 0) for q in range(60)]
    rerun = list(old)
    rerun[4], rerun[9] = 1 - rerun[4], 1 - rerun[9]  # noise: two answers flipped
    path = planted(tmp_path, {"old": old, "rerun": rerun})
    code, _data, text = gate(path, capsys, "--fail-if-worse")
    assert code == 0 and "gate: fail-if-worse: passed" in text


def test_graded_non_inferiority_and_holm_across_groups(tmp_path, capsys):
    old = [0.5 + 0.1 * math.sin(q) for q in range(40)]
    groups = {
        "old": old,
        "close": [s + 0.01 + 0.15 * math.cos(3 * q) for q, s in enumerate(old)],
        "far": [s - 0.03 + 0.15 * math.cos(5 * q) for q, s in enumerate(old)],
    }
    path = planted(tmp_path, groups)
    code, data, _ = gate(path, capsys, "--non-inferiority", "0.05")
    found = {c["key"]: c for c in data["scores"]["comparisons"]}
    ps = {}
    for key in ("close", "far"):
        diffs = [a - b for a, b in zip(groups[key], old, strict=True)]
        se = statistics.stdev(diffs) / math.sqrt(40)
        t = (statistics.fmean(diffs) + 0.05) / se
        # One-sided p by bisection on the independent t quantiles.
        low, high = 1e-15, 0.5
        for _ in range(60):
            mid = (low + high) / 2
            low, high = (mid, high) if student_t_quantile(1 - mid, 39) > t else (low, mid)
        ps[key] = low
        assert found[key]["p_noninferior"] == pytest.approx(ps[key], rel=1e-3, abs=1e-9)
    first, second = sorted(ps, key=ps.get)
    holm = {first: 2 * ps[first], second: max(2 * ps[first], ps[second])}
    (rule,) = data["gate"]["rules"]
    ruled = {f["key"]: f for f in rule["failing"] + rule["noninferior"]}
    shown = {f["key"] for f in rule["noninferior"]}
    for key in ps:
        assert ruled[key]["p_noninferior_holm"] == pytest.approx(min(1.0, holm[key]), rel=1e-3)
        assert (key in shown) == (min(1.0, holm[key]) < 0.025)
    assert code == (0 if all(min(1.0, holm[k]) < 0.025 for k in ps) else 1)
    assert shown == {"close"}


def test_fail_under_fails_only_when_the_mean_is_confidently_below(tmp_path, capsys):
    groups = {"old": [float(q % 10 < 9) for q in range(100)],  # 0.90
              "new": [float(q % 10 < 7) for q in range(100)]}  # 0.70  # fmt: skip
    path = planted(tmp_path, groups)
    code, data, text = gate(path, capsys, "--fail-under", "0.8")
    assert code == 1
    (rule,) = data["gate"]["rules"]
    assert [f["key"] for f in rule["failing"]] == ["new"]
    # new's 0.70 is below 0.75, but its interval (Wilson's, to 0.781) reaches it.
    code, data, text = gate(path, capsys, "--fail-under", "0.75")
    assert code == 0 and data["gate"]["rules"][0]["warnings"][0]["key"] == "new"
    assert "warning: new's mean 0.700 is below it" in text


def test_the_gate_in_the_step_summary_and_the_page(tmp_path, capsys, monkeypatch):
    new, old = table(40, 5, 20, 35)
    path = planted(tmp_path, {"old": old, "new": new})
    summary = tmp_path / "step.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    assert main(["report", str(path), "--score", "field:right", "--fail-if-worse"]) == 1
    written = summary.read_text()
    assert written.startswith("### rolebatch report: the gate failed")
    assert "- gate: fail-if-worse: FAILED for new" in written and "| new |" in written
    capsys.readouterr()
    monkeypatch.delenv("GITHUB_STEP_SUMMARY")
    code = main(["report", str(path), "--score", "field:right", "--fail-if-worse",
                 "--format", "html"])  # fmt: skip
    page = capsys.readouterr().out
    assert code == 1
    top = page.split("<h1>", 1)[1].split("<h2>", 1)[0]
    assert "data-gate='failed'" in top and "fail-if-worse: FAILED for new" in top


def test_a_gate_without_scores_is_a_usage_error(tmp_path, capsys):
    path = write_job(tmp_path / "o.jsonl", [{**line(0, "old", 1.0), "response": {"poem": "x"}}])
    assert main(["report", str(path), "--fail-if-worse"]) == 2
    assert "a gate needs scores" in capsys.readouterr().err


def test_last_week_s_output_against_today_s_by_output(tmp_path, capsys):
    """Two runs of one sweep, each its own output: --by output pairs them by
    the record's id, a question's answers under every role its one unit (the
    mean of its roles' scores in each output), and gates on it."""

    def run(name: str, flips: set[int]) -> Path:
        lines = []
        for q in range(30):
            for role in ("none", "poet"):
                score = float((q + len(role)) % 3 != 0)
                if q in flips and role == "poet":
                    score = 1 - score
                lines.append({**line(q, role, score), "id": f"q{q}@{role}"})
        return write_job(tmp_path / name, lines)

    old, new = run("last-week.jsonl", set()), run("today.jsonl", {3, 7})
    argv = ["report", str(old), str(new), "--score", "field:right", "--by", "output"]
    code = main([*argv, "--baseline", str(old), "--fail-if-worse", "--format", "json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 0
    (c,) = data["scores"]["comparisons"]
    assert (c["key"], c["baseline"], c["n_pairs"]) == ("today.jsonl", "last-week.jsonl", 30)
    scores = {name: [] for name in ("last-week.jsonl", "today.jsonl")}
    for path in (old, new):
        scores[path.name] = [json.loads(raw)["response"]["right"] for raw in path.open()]
    diffs = [a - b for a, b in zip(scores["today.jsonl"], scores["last-week.jsonl"], strict=True)]
    per_question = [(diffs[2 * q] + diffs[2 * q + 1]) / 2 for q in range(30)]
    assert c["diff"] == pytest.approx(statistics.fmean(per_question))
    assert c["test"] == "paired-t"  # per-question means of two roles: not 0/1


def test_by_model_pairs_two_models_outputs_by_id(tmp_path, capsys):
    paths = []
    for model, shift in (("openai/gpt-4o", 0), ("openai/gpt-5", 1)):
        lines = [
            {**line(q, "old", float((q + shift) % 4 != 0)), "id": f"q{q}", "role_id": None,
             "role": None, "model": model}
            for q in range(20)
        ]  # fmt: skip
        paths.append(write_job(tmp_path / f"{model.split('/')[1]}.jsonl", lines))
    argv = ["report", *map(str, paths), "--score", "field:right", "--by", "model"]
    code = main([*argv, "--baseline", "openai/gpt-4o", "--non-inferiority", "0.3", "--format",
                 "json"])  # fmt: skip
    data = json.loads(capsys.readouterr().out)
    (c,) = data["scores"]["comparisons"]
    assert c["key"] == "openai/gpt-5" and c["n_pairs"] == 20 and c["diff"] == pytest.approx(0.0)
    assert code == 0 and data["gate"]["rules"][0]["noninferior"][0]["key"] == "openai/gpt-5"
