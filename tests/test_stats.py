"""Every figure of the statistics against an independent computation on fixed
data: the standard library's NormalDist and statistics, binomial tails from
math.comb, and the Student t density integrated numerically (its quantiles
by bisection); none of them scipy, which the package uses."""

from __future__ import annotations

import math
import statistics
from array import array
from statistics import NormalDist

import pytest

from rolebatch.evaluate import stats
from tests.helpers import student_t_quantile, student_t_two_sided

Z = NormalDist().inv_cdf(0.975)


def test_the_independent_t_quantiles_are_the_printed_tables():
    # Student's t tables (e.g. NIST/SEMATECH e-Handbook 1.3.6.7.2): 4.303 at
    # 2 degrees of freedom, 2.262 at 9, 2.023 at 39; the one-sided 0.8 at 9: 0.883.
    assert student_t_quantile(0.975, 2) == pytest.approx(4.303, abs=5e-4)
    assert student_t_quantile(0.975, 9) == pytest.approx(2.262, abs=5e-4)
    assert student_t_quantile(0.975, 39) == pytest.approx(2.023, abs=5e-4)
    assert student_t_quantile(0.8, 9) == pytest.approx(0.883, abs=5e-4)


def test_a_mean_its_standard_error_and_its_interval():
    scores = [1, 0, 1, 1, 0, 1, 1, 1, 0, 1, 1, 0]
    found = stats.estimate(array("d", scores), array("i", [1] * len(scores)))
    mean = statistics.fmean(scores)
    se = statistics.stdev(scores) / math.sqrt(len(scores))  # sqrt(sum sq / (n (n - 1)))
    assert found.n == 12 and not found.clustered
    assert found.mean == pytest.approx(mean)
    assert found.se == pytest.approx(se)
    q = student_t_quantile(0.975, 11)
    assert (found.ci_low, found.ci_high) == pytest.approx((mean - q * se, mean + q * se))


def test_a_few_questions_give_the_wide_interval_they_deserve():
    # Three grades on a 1-10 scale: 1.96 SE would claim 3.1 to 12.2; Student's
    # t on 2 degrees of freedom says -2.4 to 17.7.
    found = stats.estimate(array("d", [10, 10, 3]), array("i", [1, 1, 1]))
    se = statistics.stdev([10, 10, 3]) / math.sqrt(3)
    q = student_t_quantile(0.975, 2)
    assert (found.ci_low, found.ci_high) == pytest.approx(
        (7.667 - q * se, 7.667 + q * se), abs=1e-3
    )
    assert found.ci_low < 0 and found.ci_high > 17
    assert stats.estimate(array("d", [7]), array("i", [1])).ci_low is None


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
    # Five clusters: the interval's degrees of freedom are the questions' less one.
    q = student_t_quantile(0.975, 4)
    assert (found.ci_low, found.ci_high) == pytest.approx((mean - q * se, mean + q * se))


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
    q = student_t_quantile(0.975, 19)
    assert (found.ci_low, found.ci_high) == pytest.approx(
        (found.diff - q * se, found.diff + q * se)
    )
    assert found.mde == pytest.approx((q + student_t_quantile(0.8, 19)) * se)


def test_other_scores_are_compared_by_a_paired_t_test():
    condition = [0.7, 0.5, 0.9, 0.4, 0.8, 0.6, 0.75, 0.55, 0.65, 0.85]
    baseline = [0.6, 0.45, 0.7, 0.5, 0.6, 0.55, 0.6, 0.5, 0.7, 0.6]
    found = stats.paired(condition, baseline)
    diffs = [c - b for c, b in zip(condition, baseline, strict=True)]
    t = statistics.fmean(diffs) / (statistics.stdev(diffs) / math.sqrt(len(diffs)))
    assert found.test == "paired-t"
    assert found.p == pytest.approx(student_t_two_sided(t, len(diffs) - 1), abs=1e-7)
    q = student_t_quantile(0.975, 9)
    se = statistics.stdev(diffs) / math.sqrt(len(diffs))
    assert (found.ci_low, found.ci_high) == pytest.approx(
        (found.diff - q * se, found.diff + q * se)
    )
    # The interval and the test agree: it leaves out 0 exactly when p < 0.05.
    assert (found.ci_low > 0) == (found.p < 0.05)


def test_differences_without_spread_are_left_to_the_sign_test():
    # Every one of three questions a point better: no t-test exists (no
    # spread), and three of three is not enough for the sign test either.
    found = stats.paired([8, 7, 9], [7, 6, 8])
    assert found.test == "sign" and found.diff == 1
    assert found.p == pytest.approx(_binomial_two_sided(0, 3))  # 0.25
    assert found.mde is None  # no spread, no power to speak of
    assert stats.verdict(found.diff, found.p) == "no detectable difference"
    # Seven of seven is: the exact binomial says 2 / 2^7.
    found = stats.paired([0.5] * 7, [0.25] * 7)
    assert found.p == pytest.approx(2 / 2**7)
    assert stats.verdict(found.diff, found.p) == "better"


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
