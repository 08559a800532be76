"""Every figure of the statistics against an independent computation on fixed
data: the standard library's NormalDist and statistics, binomial tails from
math.comb, and the Student t density integrated numerically; none of them
scipy, which the package uses."""

from __future__ import annotations

import math
import statistics
from array import array
from statistics import NormalDist

import pytest

from rolebatch.evaluate import stats

Z = NormalDist().inv_cdf(0.975)


def test_a_mean_its_standard_error_and_its_interval():
    scores = [1, 0, 1, 1, 0, 1, 1, 1, 0, 1, 1, 0]
    found = stats.estimate(array("d", scores), array("i", [1] * len(scores)))
    mean = statistics.fmean(scores)
    se = statistics.stdev(scores) / math.sqrt(len(scores))  # sqrt(sum sq / (n (n - 1)))
    assert found.n == 12 and not found.clustered
    assert found.mean == pytest.approx(mean)
    assert found.se == pytest.approx(se)
    assert (found.ci_low, found.ci_high) == pytest.approx((mean - Z * se, mean + Z * se))


def test_questions_asked_several_times_are_clusters():
    clusters = [[1, 1, 0], [0, 0, 0], [1, 1, 1], [1, 0, 1], [0, 1, 0]]
    sums = array("d", [sum(c) for c in clusters])
    counts = array("i", [len(c) for c in clusters])
    found = stats.estimate(sums, counts)
    scores = [s for c in clusters for s in c]
    mean = statistics.fmean(scores)
    # Miller (2024), eq. 4: the errors summed within each cluster, then squared.
    se = math.sqrt(sum(sum(s - mean for s in c) ** 2 for c in clusters)) / len(scores)
    assert found.clustered and found.mean == pytest.approx(mean)
    assert found.se == pytest.approx(se)
    # Larger than the naive error, which treats the 15 answers as independent.
    assert found.se > statistics.stdev(scores) / math.sqrt(len(scores))


def _binomial_two_sided(k: int, n: int) -> float:
    """Exact two-sided binomial p at p = 0.5 (symmetric: twice the smaller tail)."""
    tail = sum(math.comb(n, i) for i in range(min(k, n - k) + 1)) / 2**n
    return min(1.0, 2 * tail)


def test_zero_one_scores_are_compared_by_the_exact_mcnemar_test():
    condition = [1, 1, 1, 0, 1, 1, 0, 1, 1, 1, 1, 0, 1, 1, 1, 1, 0, 1, 1, 1]
    baseline = [0, 1, 0, 0, 1, 0, 0, 0, 1, 1, 0, 0, 1, 0, 1, 1, 1, 0, 1, 0]
    found = stats.paired(condition, baseline)
    diffs = [c - b for c, b in zip(condition, baseline, strict=True)]
    wins, losses = diffs.count(1), diffs.count(-1)
    assert (wins, losses) == (8, 1)
    assert found.test == "mcnemar-exact"
    assert found.p == pytest.approx(_binomial_two_sided(losses, wins + losses))
    assert found.diff == pytest.approx(statistics.fmean(diffs))
    se = statistics.stdev(diffs) / math.sqrt(len(diffs))
    assert found.se == pytest.approx(se)
    assert (found.ci_low, found.ci_high) == pytest.approx(
        (found.diff - Z * se, found.diff + Z * se)
    )
    assert found.mde == pytest.approx((Z + NormalDist().inv_cdf(0.8)) * se)


def _student_t_two_sided(t: float, df: int, steps: int = 20000) -> float:
    """2 P(T > |t|), from the density integrated by Simpson's rule on [0, |t|]."""
    const = math.gamma((df + 1) / 2) / (math.sqrt(df * math.pi) * math.gamma(df / 2))

    def density(x: float) -> float:
        return const * (1 + x * x / df) ** (-(df + 1) / 2)

    h = abs(t) / steps
    area = density(0) + density(abs(t))
    area += sum((4 if i % 2 else 2) * density(i * h) for i in range(1, steps))
    return 2 * (0.5 - area * h / 3)


def test_other_scores_are_compared_by_a_paired_t_test():
    condition = [0.7, 0.5, 0.9, 0.4, 0.8, 0.6, 0.75, 0.55, 0.65, 0.85]
    baseline = [0.6, 0.45, 0.7, 0.5, 0.6, 0.55, 0.6, 0.5, 0.7, 0.6]
    found = stats.paired(condition, baseline)
    diffs = [c - b for c, b in zip(condition, baseline, strict=True)]
    t = statistics.fmean(diffs) / (statistics.stdev(diffs) / math.sqrt(len(diffs)))
    assert found.test == "paired-t"
    assert found.p == pytest.approx(_student_t_two_sided(t, len(diffs) - 1), abs=1e-7)


def test_holm_step_down():
    # Sorted: 0.005, 0.01, 0.03, 0.04, times 4, 3, 2, 1: 0.02, 0.03, 0.06, 0.04 -> 0.06
    # (kept monotone); back in the order given.
    assert stats.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert stats.holm([0.5, None, 0.9]) == pytest.approx([1.0, None, 1.0])
    assert stats.holm([]) == []


def test_the_sign_test_and_a_share_s_interval():
    assert stats.sign_test(9, 2) == pytest.approx(_binomial_two_sided(2, 11))
    assert stats.sign_test(0, 0) == 1.0
    low, high = stats.share_interval(7, 20)
    p, n = 7 / 20, 20
    centre = (p + Z * Z / (2 * n)) / (1 + Z * Z / n)
    half = Z * math.sqrt(p * (1 - p) / n + Z * Z / (4 * n * n)) / (1 + Z * Z / n)
    assert (low, high) == pytest.approx((centre - half, centre + half))


def test_verdicts_need_the_adjusted_p():
    assert stats.verdict(0.1, 0.01) == "better"
    assert stats.verdict(-0.1, 0.049) == "worse"
    assert stats.verdict(0.3, 0.05) == "no detectable difference"
    assert stats.verdict(None, None) == "too few pairs"
