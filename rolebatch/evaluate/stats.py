"""The statistics a study of roles publishes, on plain lists of numbers.

Intervals follow Miller, "Adding Error Bars to Evals" (arXiv 2411.00640):
the questions are a sample, so each score is a mean with a standard error
and a 95 % interval, mean +- q x SE with q Student's t quantile on one
degree of freedom fewer than the questions (1.96, the normal quantile, at
many questions; wider at a few, where 1.96 would claim more than the data
hold); several answers to one question are a cluster, whose errors are
summed before squaring.
Two conditions on the same questions are compared on the per-question
differences, which keeps their covariance (a paired interval is much
narrower than two separate ones).  The test is the exact McNemar test when
every paired score is 0 or 1 (a two-sided binomial test, p = 0.5, on the
discordant pairs), and a paired t-test otherwise; differences without any
spread (every question moved by the same amount) leave the t-test
undefined, and the sign test on them is used instead, so that two questions
never make a verdict.  Many conditions against one baseline: Holm's
step-down adjustment.  Distributions come from scipy's special functions
(the normal and Student t quantiles, the binomial and Student t
distribution functions): ``scipy.stats`` would cost the report twice the
memory (88 MB to import, against 41).
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Sequence
from dataclasses import dataclass

ALPHA = 0.05
POWER = 0.8


def _z(level: float) -> float:
    from scipy.special import ndtri

    return float(ndtri(level))


def _t(level: float, df: int) -> float:
    """Student's t quantile on ``df`` degrees of freedom."""
    from scipy.special import stdtrit

    return float(stdtrit(df, level))


@dataclass
class Estimate:
    """A mean with its standard error and 95 % interval."""

    n: int
    mean: float | None
    se: float | None
    ci_low: float | None
    ci_high: float | None
    clustered: bool = False


def estimate(sums: Sequence[float], counts: Sequence[int]) -> Estimate:
    """The mean of every score, its standard error, and its interval, from
    each question's sum of scores and count of answers.  With any question
    answered more than once, the errors of a question are a cluster and the
    standard error is sqrt(sum_c (S_c - n_c mean)^2) / n; otherwise it is
    sqrt(sum_i (s_i - mean)^2 / (n (n - 1)))."""
    n = sum(counts)
    if n == 0:
        return Estimate(0, None, None, None, None)
    mean = sum(sums) / n
    clustered = any(count > 1 for count in counts)
    spread = sum((S - c * mean) ** 2 for S, c in zip(sums, counts, strict=True) if c)
    questions = sum(1 for c in counts if c)
    if questions < 2:
        return Estimate(n, mean, None, None, None, clustered)
    se = math.sqrt(spread) / n if clustered else math.sqrt(spread / (n * (n - 1)))
    half = _t(1 - ALPHA / 2, questions - 1) * se
    return Estimate(n, mean, se, mean - half, mean + half, clustered)


@dataclass
class Paired:
    """Condition against baseline on the questions both answered."""

    n_pairs: int
    diff: float | None
    se: float | None
    ci_low: float | None
    ci_high: float | None
    p: float | None
    test: str | None
    mde: float | None  # the smallest difference these pairs detect 80 % of the time


def paired(condition: Sequence[float], baseline: Sequence[float]) -> Paired:
    """``condition`` and ``baseline`` hold each shared question's score (the
    mean of its answers), in the same order."""
    n = len(condition)
    if n != len(baseline):
        raise ValueError("paired scores must be of the same questions")
    if n == 0:
        return Paired(0, None, None, None, None, None, None, None)
    diffs = array("d", (c - b for c, b in zip(condition, baseline, strict=True)))
    diff = sum(diffs) / n
    if n < 2:
        return Paired(n, diff, None, None, None, None, None, None)
    sd = math.sqrt(sum((d - diff) ** 2 for d in diffs) / (n - 1))
    se = sd / math.sqrt(n)
    half = _t(1 - ALPHA / 2, n - 1) * se
    # No spread, no power calculation: the detectable difference is unknown.
    mde = (_t(1 - ALPHA / 2, n - 1) + _t(POWER, n - 1)) * se if se > 0 else None
    binary = all(v in (0, 1) for v in condition) and all(v in (0, 1) for v in baseline)
    if binary:
        test, p = "mcnemar-exact", mcnemar_exact(condition, baseline)
    elif sd == 0:
        test, p = "sign", sign_test(sum(d > 0 for d in diffs), sum(d < 0 for d in diffs))
    else:
        test, p = "paired-t", paired_t(diffs)
    return Paired(n, diff, se, diff - half, diff + half, p, test, mde)


def mcnemar_exact(condition: Sequence[float], baseline: Sequence[float]) -> float:
    """Two-sided exact McNemar p: a binomial test (p = 0.5) on the pairs where
    exactly one of the two was right."""
    wins = sum(1 for c, b in zip(condition, baseline, strict=True) if c > b)
    losses = sum(1 for c, b in zip(condition, baseline, strict=True) if c < b)
    return sign_test(wins, losses)


def paired_t(diffs: Sequence[float]) -> float:
    """Two-sided p of a paired t-test on the differences."""
    from scipy.special import stdtr

    n = len(diffs)
    mean = sum(diffs) / n
    sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (n - 1))
    if sd == 0:
        raise ValueError("a t-test of differences without spread is undefined")
    t = mean / (sd / math.sqrt(n))
    return float(min(1.0, 2 * stdtr(n - 1, -abs(t))))


def sign_test(wins: int, losses: int) -> float:
    """Two-sided p of the sign test (an exact binomial test at p = 0.5, whose
    two tails are alike): wins against losses, ties left out."""
    from scipy.special import bdtr

    n = wins + losses
    if n == 0:
        return 1.0
    return float(min(1.0, 2 * bdtr(min(wins, losses), n, 0.5)))


def share_interval(successes: float, n: int) -> tuple[float | None, float | None]:
    """A 95 % interval for a share (Wilson's, which stays inside [0, 1])."""
    if n == 0:
        return None, None
    z = _z(1 - ALPHA / 2)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def holm(pvalues: Sequence[float | None]) -> list[float | None]:
    """Holm's step-down adjustment: sorted ascending, the k-th (from 1) of m
    times (m - k + 1), kept monotone, capped at 1.  None stays None."""
    known = sorted((p, i) for i, p in enumerate(pvalues) if p is not None)
    m = len(known)
    adjusted: list[float | None] = [None] * len(pvalues)
    running = 0.0
    for k, (p, i) in enumerate(known, start=1):
        running = max(running, min(1.0, (m - k + 1) * p))
        adjusted[i] = running
    return adjusted


def verdict(diff: float | None, p_adjusted: float | None) -> str:
    if diff is None or p_adjusted is None:
        return "too few pairs"
    if p_adjusted < ALPHA:
        return "better" if diff > 0 else "worse"
    return "no detectable difference"
