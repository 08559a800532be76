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
from tests.helpers import (
    cr1_se,
    newcombe_ci,
    student_t_quantile,
    student_t_two_sided,
    wilson_ci,
)

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
    found = stats.estimate(sums, counts, binary=True)
    scores = [s for c in clusters for s in c]
    mean = statistics.fmean(scores)
    # Miller (2024), eq. 4: the errors summed within each cluster, then squared.
    se = math.sqrt(sum(sum(s - mean for s in c) ** 2 for c in clusters)) / len(scores)
    se *= math.sqrt(5 / 4)  # CR1: G / (G - 1) on the variance, for G = 5 questions
    assert se == pytest.approx(cr1_se(clusters))
    assert found.clustered and found.mean == pytest.approx(mean)
    assert found.se == pytest.approx(se)
    # Larger than the naive error, which treats the 15 answers as independent.
    assert found.se > statistics.stdev(scores) / math.sqrt(len(scores))
    # 0/1 scores in clusters: Wilson's interval on the effective number of
    # answers, p(1 - p) / SE^2 (fewer than the 15 given: alike answers in a
    # cluster are worth less).
    effective = mean * (1 - mean) / se**2
    assert effective < 15
    assert (found.ci_low, found.ci_high) == pytest.approx(wilson_ci(mean * effective, effective))
    # Graded scores in the same clusters: Student's t on the questions less one.
    graded = [[s * 0.5 + 0.25 for s in c] for c in clusters]
    found = stats.estimate(
        array("d", [sum(c) for c in graded]), array("i", [len(c) for c in graded])
    )
    mean, se = statistics.fmean(s for c in graded for s in c), cr1_se(graded)
    q = student_t_quantile(0.975, 4)
    assert found.method == "t" and found.se == pytest.approx(se)
    assert (found.ci_low, found.ci_high) == pytest.approx((mean - q * se, mean + q * se))


def test_one_repeated_answer_does_not_shrink_the_error_without_cause():
    # Three graded questions, the middle one answered twice the same: without
    # CR1 the clustered SE would fall from 0.577 to 0.354; with it, 0.433.
    plain = stats.estimate(array("d", [1, 2, 3]), array("i", [1, 1, 1]))
    repeated = stats.estimate(array("d", [1, 4, 3]), array("i", [1, 2, 1]))
    assert plain.se == pytest.approx(0.577, abs=5e-4)
    assert repeated.se == pytest.approx(cr1_se([[1], [2, 2], [3]]))
    assert repeated.se == pytest.approx(0.433, abs=5e-4)
    assert repeated.se / math.sqrt(3 / 2) == pytest.approx(0.354, abs=5e-4)


def test_zero_one_means_get_wilson_s_interval():
    # Ten of ten right: not "1.000 to 1.000"; never outside [0, 1].
    found = stats.estimate(array("d", [1] * 10), array("i", [1] * 10), binary=True)
    assert found.method == "wilson"
    assert (found.ci_low, found.ci_high) == pytest.approx(wilson_ci(10, 10))
    assert found.ci_low < 0.75 and found.ci_high == pytest.approx(1.0)
    # Altman et al., Statistics with Confidence, 2nd ed., ch. 6: 81 of 263,
    # 0.255 to 0.366 (Wilson); 0 of 29 (table 6.1 style), 0 to 0.117.
    found = stats.estimate(array("d", [1] * 81 + [0] * 182), array("i", [1] * 263), True)
    assert (found.ci_low, found.ci_high) == pytest.approx((0.255, 0.366), abs=5e-4)
    found = stats.estimate(array("d", [0] * 29), array("i", [1] * 29), binary=True)
    assert found.ci_low == 0 and found.ci_high == pytest.approx(0.117, abs=5e-4)
    # One wrong answer in three: inside [0, 1] where Student's t left it.
    found = stats.estimate(array("d", [1, 1, 0]), array("i", [1, 1, 1]), binary=True)
    assert found.ci_low > 0 and found.ci_high < 1
    assert (found.ci_low, found.ci_high) == pytest.approx(wilson_ci(2, 3))


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
    both = sum(1 for c, b in zip(condition, baseline, strict=True) if c == b == 1)
    neither = len(diffs) - both - wins - losses
    assert found.interval == "newcombe"
    assert (found.ci_low, found.ci_high) == pytest.approx(newcombe_ci(both, wins, losses, neither))
    q = student_t_quantile(0.975, 19)
    assert found.mde == pytest.approx((q + student_t_quantile(0.8, 19)) * se)
    # Compared among 4 (Holm's family): detectable at Holm's first step, 0.05 / 4.
    found = stats.paired(condition, baseline, family=4)
    q = student_t_quantile(1 - 0.05 / 8, 19)
    assert found.mde == pytest.approx((q + student_t_quantile(0.8, 19)) * se)


def test_newcombe_s_worked_examples():
    # By the closed form, on tables of every shape; with no discordant pairs
    # in 12 questions, about +-0.24: a small study claims little.
    for table in [(12, 9, 2, 4), (36, 12, 2, 0), (5, 5, 4, 16), (0, 3, 0, 0), (1, 0, 9, 0)]:
        assert stats.newcombe(*table) == pytest.approx(newcombe_ci(*table))
    low, high = stats.newcombe(12, 0, 0, 0)
    assert (low, high) == pytest.approx(newcombe_ci(12, 0, 0, 0))
    assert low == pytest.approx(-high) and 0.2 < high < 0.3
    # Twelve pairs that all agree, half right: never a point.
    low, high = stats.newcombe(6, 0, 0, 6)
    assert (low, high) == pytest.approx(newcombe_ci(6, 0, 0, 6))
    assert low == pytest.approx(-high) and high > 0.1


def test_a_verdict_of_the_exact_test_always_has_an_interval_that_leaves_out_0():
    # Every 2x2 table of up to 40 questions (three splits of the concordant
    # pairs): where exact McNemar says p < 0.05, Newcombe's interval leaves
    # out 0.  The reverse fails at the edge: five of five in 40 leaves out 0
    # at p = 0.0625, and the verdict follows the test.
    for n in range(2, 41):
        for b in range(n + 1):
            for c in range(n + 1 - b):
                rest = n - b - c
                for a in {0, rest // 2, rest}:
                    p = stats.sign_test(b, c)
                    low, high = stats.newcombe(a, b, c, rest - a)
                    if p < 0.05:
                        assert low > 0 or high < 0, (a, b, c, rest - a)
    low, _ = stats.newcombe(20, 5, 0, 15)
    assert low > 0 and stats.sign_test(5, 0) == pytest.approx(0.0625)


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


def test_differences_equal_up_to_float_rounding_have_no_spread():
    # Two questions x 3 samples: the control right 1 and 2 times, the role 2
    # and 3 times; both differences are 1/3, but 1 - 2/3 != 2/3 - 1/3.
    found = stats.paired([2 / 3, 1.0], [1 / 3, 2 / 3])
    assert found.test == "sign" and found.p == pytest.approx(0.5)
    assert found.mde is None and (found.ci_low, found.ci_high) == (None, None)
    assert stats.verdict(found.diff, found.p) == "no detectable difference"
    # Graded scores a tenth apart: no t-test on rounding either.
    found = stats.paired([0.2, 0.8, 0.3], [0.1, 0.7, 0.2])
    assert found.test == "sign" and found.p == pytest.approx(0.25)


def test_differences_without_spread_are_left_to_the_sign_test():
    # Every one of three questions a point better: no t-test exists (no
    # spread), and three of three is not enough for the sign test either.
    found = stats.paired([8, 7, 9], [7, 6, 8])
    assert found.test == "sign" and found.diff == 1
    assert found.p == pytest.approx(_binomial_two_sided(0, 3))  # 0.25
    assert found.mde is None  # no spread, no power to speak of
    assert stats.verdict(found.diff, found.p) == "no detectable difference"
    assert (found.ci_low, found.ci_high) == (None, None)  # no scale: nothing bounds it
    # Seven of seven is: the exact binomial says 2 / 2^7.  The interval is
    # never the difference itself (a point): with a known reach of a
    # difference (here 1, scores from 0 to 1), at most a share r = 1 -
    # 0.025^(1/7) of questions can differ unseen, by at most the reach.
    found = stats.paired([0.5] * 7, [0.25] * 7, span=1.0)
    assert found.p == pytest.approx(2 / 2**7)
    r = 1 - 0.025 ** (1 / 7)
    assert found.ci_low == pytest.approx(0.25 - 1.25 * r)
    assert found.ci_high == pytest.approx(0.25 + 0.75 * r)
    assert found.ci_low < 0.25 < found.ci_high
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
    low, high = stats.wilson(7, 20)
    p, n = 7 / 20, 20
    centre = (p + Z * Z / (2 * n)) / (1 + Z * Z / n)
    half = Z * math.sqrt(p * (1 - p) / n + Z * Z / (4 * n * n)) / (1 + Z * Z / n)
    assert (low, high) == pytest.approx((centre - half, centre + half))


def test_verdicts_need_the_adjusted_p():
    assert stats.verdict(0.1, 0.01) == "better"
    assert stats.verdict(-0.1, 0.049) == "worse"
    assert stats.verdict(0.3, 0.05) == "no detectable difference"
    assert stats.verdict(None, None) == "too few pairs"
