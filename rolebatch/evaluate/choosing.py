"""What choosing a group is worth, and whether the best group depends on
a stratum (a model, say): the study's lines beyond each group against the
baseline.

    oracle          the mean score if the best group were picked per question
    random role     the mean score of a group picked at random
    picked on half  the best group on a seeded random half of the questions,
                    scored on the other half against the baseline: does
                    choosing a group generalize at all?  (At least 4
                    questions every group answered: 2 to pick on, 2 to score.)
    interaction     with two strata, each group's gain over its baseline in
                    one against the same in the other
"""

from __future__ import annotations

import random
from array import array
from collections.abc import Callable
from typing import Any

from . import stats
from .questions import QuestionScores, means_on_both

# How a comparison of two groups is tested (``Scores.design``).
Design = Callable[[QuestionScores, QuestionScores], dict[str, Any]]


def choosing(
    groups: list[QuestionScores],
    base: QuestionScores | None,
    questions: int,
    seed: int,
    design: Design,
) -> dict[str, Any]:
    """What choosing a group is worth, on the questions every group answered."""
    common = array("i", (q for q in range(questions) if all(g.counts_on(q) for g in groups)))
    return {
        "common_questions": len(common),
        "oracle": _oracle(groups, common),
        "random_role": _random(groups, base, common),
        "picked_on_half": _picked_on_half(groups, base, common, seed, design),
    }


def _oracle(groups: list[QuestionScores], common: array) -> float | None:
    if not common or len(groups) < 2:
        return None
    return sum(max(g.mean_on(q) or 0.0 for g in groups) for q in common) / len(common)


def _random(
    groups: list[QuestionScores], base: QuestionScores | None, common: array
) -> float | None:
    """The mean of a group picked at random among those that are not the
    baseline (as picked-on-half picks): what choosing blindly is worth."""
    candidates = [g for g in groups if g is not base] or groups
    if not common or not candidates:
        return None
    total = sum(g.mean_on(q) or 0.0 for g in candidates for q in common)
    return total / (len(common) * len(candidates))


def _picked_on_half(
    groups: list[QuestionScores],
    base: QuestionScores | None,
    common: array,
    seed: int,
    design: Design,
) -> dict[str, Any] | None:
    if len(common) < 4 or len(groups) < 2:
        return None
    shuffled = array("i", common)
    random.Random(seed).shuffle(shuffled)
    half = len(shuffled) // 2
    pick, hold_out = shuffled[:half], shuffled[half:]
    candidates = [g for g in groups if g is not base] or groups
    best = max(candidates, key=lambda g: sum(g.mean_on(q) or 0.0 for q in pick))
    score = sum(best.mean_on(q) or 0.0 for q in hold_out) / len(hold_out)
    found: dict[str, Any] = {
        "seed": seed,
        "picked": best.key,
        "picked_on": len(pick),
        "scored_on": len(hold_out),
        "score": score,
    }
    if base is not None:
        p = stats.paired(*means_on_both(best, base, hold_out), **design(best, base))
        found.update(
            baseline=base.key,
            baseline_score=sum(base.mean_on(q) or 0.0 for q in hold_out) / len(hold_out),
            diff=p.diff,
            ci_low=p.ci_low,
            ci_high=p.ci_high,
            p=p.p,
            test=p.test,
            verdict=stats.verdict(p.diff, p.p),
        )
    return found


def interaction(
    strata: dict[str | None, list[QuestionScores]],
    bases: dict[str | None, QuestionScores | None],
    means: dict[str, float | None],
    questions: int,
) -> dict[str, Any]:
    """Does the best group differ by stratum (by model, say)?  The best
    of each stratum by its mean (``means``, by group, as the report
    has them); with exactly two strata, each group's
    difference from its baseline in the one against the same in the
    other, on the questions all four answered, tested as any paired
    difference (Holm across the groups)."""
    best = {}
    for name, members in strata.items():
        scored = [(means[g.key], g.inner) for g in members if means[g.key] is not None]
        best[str(name)] = max(scored)[1] if scored else None
    found: dict[str, Any] = {"best": best, "same_best": len(set(best.values())) <= 1}
    names = list(strata)
    if len(names) != 2 or not all(bases[n] for n in names):
        found["rows"] = []
        return found
    first, second = names
    base_a, base_b = bases[first], bases[second]
    assert base_a is not None and base_b is not None
    other = {g.inner: g for g in strata[second]}
    rows = []
    for g in strata[first]:
        h = other.get(g.inner)
        if g is base_a or h is None or h is base_b:
            continue
        da, db = array("d"), array("d")
        for q in range(questions):
            cells = (g.mean_on(q), base_a.mean_on(q), h.mean_on(q), base_b.mean_on(q))
            if None not in cells:
                x, y, u, v = cells
                da.append(x - y)  # type: ignore[operator]
                db.append(u - v)  # type: ignore[operator]
        rows.append((g.inner, da, db))
    family = sum(1 for _, da, _ in rows if len(da) >= 2)
    # Differences of differences: never one 0/1 score a question.
    tested = [(inner, stats.paired(da, db, family, binary=False)) for inner, da, db in rows]
    adjusted = stats.holm([p.p for _, p in tested])
    found["rows"] = [
        {
            "key": inner,
            "strata": [str(first), str(second)],
            "n_pairs": p.n_pairs,
            "diff": p.diff,
            "ci_low": p.ci_low,
            "ci_high": p.ci_high,
            "p": p.p,
            "p_holm": p_holm,
            "test": p.test,
            "verdict": _differs(p.diff, p_holm),
        }
        for (inner, p), p_holm in zip(tested, adjusted, strict=True)
    ]
    return found


def _differs(diff: float | None, p_adjusted: float | None) -> str:
    """An interaction's verdict: does a group's gain differ between strata?"""
    if diff is None or p_adjusted is None:
        return "too few pairs"
    return "differs" if p_adjusted < stats.ALPHA else "no detectable difference"
