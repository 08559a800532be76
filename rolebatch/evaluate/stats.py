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
narrower than two separate ones).  The test follows the study's design, not
the data: the exact McNemar test when every question has one 0/1 score (a
two-sided binomial test, p = 0.5, on the discordant pairs), and a paired
t-test otherwise (several samples of 0/1 scores too); differences without
any spread (every question moved by the same amount) leave the t-test
undefined, and the sign test on them is used instead, so that two questions
never make a verdict, with an exact bound as its interval: no interval is
ever a point, and no claim rests on a lack of spread.  Many conditions against one baseline: Holm's
step-down adjustment.  Distributions come from scipy's special functions
(the normal and Student t quantiles, the binomial and Student t
distribution functions): ``scipy.stats`` would cost the report twice the
memory (88 MB to import, against 41).
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass

ALPHA = 0.05
POWER = 0.8


def normal_quantile(level: float) -> float:
    """The standard normal quantile at ``level``."""
    from scipy.special import ndtri

    return float(ndtri(level))


def _t(level: float, df: int) -> float:
    """Student's t quantile on ``df`` degrees of freedom."""
    from scipy.special import stdtrit

    return float(stdtrit(df, level))


# Differences whose range is within this share of their size are equal: the
# rest is float rounding (1 - 2/3 is not 2/3 - 1/3), not spread.
SAME = 1e-9


@dataclass
class Estimate:
    """A mean with its standard error and 95 % interval, and how the interval
    was made: ``wilson`` (0/1 scores, Wilson's score interval; on clusters,
    on their effective number of answers) or ``t`` (Student's t)."""

    n: int
    mean: float | None
    se: float | None
    ci_low: float | None
    ci_high: float | None
    clustered: bool = False
    method: str | None = None


def estimate(
    sums: Sequence[float],
    counts: Sequence[int],
    binary: bool = False,
    scale: tuple[float, float] | None = None,
) -> Estimate:
    """The mean of every score, its standard error, and its interval, from
    each question's sum of scores and count of answers (``binary``: every
    score was 0 or 1; ``scale``: the lowest and highest score there can be,
    where known).  With any question answered more than once, the
    errors of a question are a cluster: SE = sqrt(G/(G-1) sum_c (S_c -
    n_c mean)^2) / n over G questions (CR1); otherwise sqrt(sum_i (s_i -
    mean)^2 / (n (n - 1))).  0/1 scores get Wilson's interval (on clusters,
    on the effective number of answers, p(1-p)/SE^2, never more than the
    answers; the questions when every answer is alike), which never leaves [0, 1] nor
    shrinks to a point; others Student's t on G - 1 degrees of freedom.
    Scores without any spread get the exact bound of ``no_spread_bound``
    where the scale is known, and no interval where it is not."""
    n = sum(counts)
    if n == 0:
        return Estimate(0, None, None, None, None)
    mean = sum(sums) / n
    clustered = any(count > 1 for count in counts)
    spread = sum((S - c * mean) ** 2 for S, c in zip(sums, counts, strict=True) if c)
    questions = sum(1 for c in counts if c)
    if questions < 2:
        return Estimate(n, mean, None, None, None, clustered)
    if clustered:
        se = math.sqrt(spread * questions / (questions - 1)) / n
    else:
        se = math.sqrt(spread / (n * (n - 1)))
    if binary:
        answers = float(n)
        if clustered:
            # Clusters of alike answers are worth fewer independent ones:
            # p(1-p)/SE^2 of them, at most the answers (where the formula
            # tends as SE falls to 0, so no jump there).  Every answer alike
            # (p is 0 or 1) shows nothing of how alike a question's answers
            # are: then the questions count, the cautious end.
            variance = mean * (1 - mean)
            if variance == 0:
                answers = float(questions)
            elif se > 0:
                answers = min(answers, variance / se**2)
        low, high = wilson(mean * answers, answers)
        return Estimate(n, mean, se, low, high, clustered, "wilson")
    if se <= SAME * max(1.0, abs(mean)):
        # Every score alike: Student's t would make the interval a point.
        low, high = no_spread_bound(mean, questions, scale)
        return Estimate(n, mean, 0.0, low, high, clustered, "exact")
    half = _t(1 - ALPHA / 2, questions - 1) * se
    return Estimate(n, mean, se, mean - half, mean + half, clustered, "t")


def no_spread_bound(
    value: float, n: int, scale: tuple[float, float] | None, alpha: float = ALPHA / 2
) -> tuple[float | None, float | None]:
    """A 1 - 2 ``alpha`` interval for the mean of a bounded quantity seen
    ``n`` times, always at ``value``: by the exact binomial bound, the share
    of the population away from ``value`` is at most r = 1 - alpha^(1/n)
    (one-sided, each end), and at most that share can lie as far as the
    scale's end.  Distribution-free, never a point; None without a scale
    (nothing bounds how far the unseen part lies)."""
    if scale is None or n < 1:
        return None, None
    low_end, high_end = scale
    r = 1 - alpha ** (1 / n)
    return value - (value - low_end) * r, value + (high_end - value) * r


def p_no_spread_noninferior(value: float, n: int, span: float | None, margin: float) -> float:
    """The one-sided p of "worse by ``margin`` or more" for ``n`` paired
    differences all equal to ``value``, each within [-span, span]: the
    largest chance, under that hypothesis, that every difference is at
    least ``value``.  A mean of -margin or less with a share q below
    ``value`` needs q >= (value + margin) / (value + span), so the chance is
    at most ((span - margin) / (value + span))^n.  1 without a span."""
    if span is None or value <= -margin or margin >= span:
        return 1.0
    return min(1.0, ((span - margin) / (value + span)) ** n)


def within(
    low: float | None, high: float | None, bounds: tuple[float, float] | None
) -> tuple[float | None, float | None]:
    """An interval kept inside a scale's ``bounds`` (None: no scale known)."""
    if bounds is None or low is None or high is None:
        return low, high
    return max(bounds[0], low), min(bounds[1], high)


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
    # The smallest difference these pairs detect 80 % of the time, at Holm's
    # first step (two-sided alpha / the comparisons in the family).
    mde: float | None
    interval: str | None = None  # newcombe, t, exact (no spread: no_spread_bound)
    # Non-inferiority at a margin (``paired(..., margin=)``): the one-sided
    # p of "worse by the margin or more", read off the paired interval (the
    # smallest one-sided alpha at which its lower end is above -margin), and
    # about how many questions would show it with 80 % power at one-sided
    # 0.025 for the spread seen (None: no spread to go by).
    p_noninferior: float | None = None
    needed: int | None = None


def paired(
    condition: Sequence[float],
    baseline: Sequence[float],
    family: int = 1,
    margin: float | None = None,
    binary: bool | None = None,
    span: float | None = None,
) -> Paired:
    """As ``compare``, and with a ``margin``, the non-inferiority figures."""
    found = compare(condition, baseline, family, binary, span)
    if margin is None or found.n_pairs < 2 or found.diff is None:
        return found
    n, diff, se = found.n_pairs, found.diff, found.se or 0.0
    if found.interval == "newcombe":
        table = _table(condition, baseline)
        found.p_noninferior = _newcombe_p(table, -margin)
    elif found.interval == "exact":
        # No spread: no proof from a zero-width interval; the exact bound.
        found.p_noninferior = p_no_spread_noninferior(diff, n, span, margin)
        if span is not None and -margin < diff and margin < span:
            found.needed = math.ceil(math.log(NI_ALPHA) / math.log((span - margin) / (diff + span)))
        return found
    else:
        from scipy.special import stdtr

        found.p_noninferior = float(stdtr(n - 1, -(diff + margin) / se))
    sd = se * math.sqrt(n)
    if sd > 0:
        found.needed = questions_needed(sd, margin)
    return found


def questions_needed(sd: float, margin: float) -> int:
    """About how many questions show non-inferiority at ``margin`` with 80 %
    power at one-sided NI_ALPHA, when the true difference is 0 and the
    paired differences' SD is ``sd``: ((z_(1-alpha) + z_power) sd / margin)^2."""
    return math.ceil(((normal_quantile(1 - NI_ALPHA) + normal_quantile(POWER)) * sd / margin) ** 2)


# One-sided alpha of a non-inferiority claim: the lower end of a two-sided
# 95 % interval (the regulatory convention).
NI_ALPHA = 0.025


def _table(condition: Sequence[float], baseline: Sequence[float]) -> tuple[int, int, int, int]:
    """Pairs (both right, only the condition, only the baseline, neither)."""
    pairs = list(zip(condition, baseline, strict=True))
    a = sum(1 for c, b in pairs if c == b == 1)
    b = sum(1 for c, y in pairs if c > y)
    c = sum(1 for x, y in pairs if x < y)
    return a, b, c, len(pairs) - a - b - c


def _newcombe_p(table: tuple[int, int, int, int], bound: float) -> float:
    """The smallest one-sided alpha at which Newcombe's interval's lower end
    is above ``bound`` (its lower end falls as z grows: found by bisection)."""

    def low(z: float) -> float:
        found = newcombe(*table, z=z)[0]
        assert found is not None
        return found

    return _lower_end_p(low, bound)


def p_noninferior_rate(wins: int, decided: int, margin: float) -> float:
    """A head-to-head's non-inferiority: the smallest one-sided alpha at which
    the Wilson interval of the win rate (``wins`` of ``decided``) has its
    lower end above 0.5 - ``margin``.  Under NI_ALPHA: the lower end of the
    two-sided 95 % interval is above it."""
    if decided <= 0:
        return 1.0

    def low(z: float) -> float:
        found = wilson(wins, decided, z)[0]
        assert found is not None
        return found

    return _lower_end_p(low, 0.5 - margin)


def _lower_end_p(low: Callable[[float], float], bound: float) -> float:
    """The one-sided p at which an interval's lower end, ``low(z)`` (falling
    as z grows), meets ``bound``: found by bisection on z."""
    from scipy.special import ndtr

    if low(0.0) <= bound:
        return 1.0  # even at no confidence the difference is not above it
    top = 40.0
    if low(top) > bound:
        return float(ndtr(-top))
    bottom = 0.0
    for _ in range(100):
        middle = (bottom + top) / 2
        if low(middle) > bound:
            bottom = middle
        else:
            top = middle
    return float(ndtr(-bottom))


def compare(
    condition: Sequence[float],
    baseline: Sequence[float],
    family: int = 1,
    binary: bool | None = None,
    span: float | None = None,
) -> Paired:
    """``condition`` and ``baseline`` hold each shared question's score (the
    mean of its answers), in the same order; ``family``: how many
    comparisons Holm's adjustment will share the p-values among;
    ``binary``: the study's design, one 0/1 score per question (None: read
    it off the scores); ``span``: how far a difference can reach, where the
    scale is known.

    0/1 scores, one per question: exact McNemar, with Newcombe's score
    interval for paired proportions (method 10).  Others (means of several
    0/1 answers too, however alike they happen to be): the paired t-test with
    Student's t interval; when the differences have no spread (all equal, up
    to float rounding) the t-test is undefined and the sign test decides,
    with the exact distribution-free bound of ``no_spread_bound`` as its
    interval (none without a span)."""
    n = len(condition)
    if n != len(baseline):
        raise ValueError("paired scores must be of the same questions")
    if n == 0:
        return Paired(0, None, None, None, None, None, None, None)
    diffs = array("d", (c - b for c, b in zip(condition, baseline, strict=True)))
    diff = sum(diffs) / n
    if n < 2:
        return Paired(n, diff, None, None, None, None, None, None)
    sd = 0.0 if no_spread(diffs) else math.sqrt(sum((d - diff) ** 2 for d in diffs) / (n - 1))
    se = sd / math.sqrt(n)
    level = 1 - ALPHA / (2 * max(1, family))
    # No spread, no power calculation: the detectable difference is unknown;
    # Student's t on n - 1 degrees of freedom, at Holm's first step.
    mde = (_t(level, n - 1) + _t(POWER, n - 1)) * se if se > 0 else None
    if mde is not None and span is not None and mde > span:
        mde = None  # no difference the scale allows is detectable
    if binary is None:
        binary = all(v in (0, 1) for v in condition) and all(v in (0, 1) for v in baseline)
    if binary:
        both, wins, losses, neither = _table(condition, baseline)
        low, high = newcombe(both, wins, losses, neither)
        p = sign_test(wins, losses)
        return Paired(n, diff, se, low, high, p, "mcnemar-exact", mde, "newcombe")
    if sd == 0:
        tolerance = SAME * max(1.0, max(abs(d) for d in diffs))
        up = sum(d > tolerance for d in diffs)
        down = sum(d < -tolerance for d in diffs)
        p = sign_test(up, down)
        low, high = no_spread_bound(diff, n, None if span is None else (-span, span))
        return Paired(n, diff, 0.0, low, high, p, "sign", None, "exact")
    half = _t(1 - ALPHA / 2, n - 1) * se
    return Paired(n, diff, se, diff - half, diff + half, paired_t(diffs), "paired-t", mde, "t")


def no_spread(values: Sequence[float]) -> bool:
    """Whether ``values`` are all equal, up to float rounding."""
    low, high = min(values), max(values)
    return high - low <= SAME * max(1.0, abs(low), abs(high))


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
    if sd == 0 or no_spread(diffs):
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


def wilson(successes: float, n: float, z: float | None = None) -> tuple[float | None, float | None]:
    """A 95 % interval for a share (Wilson's score interval, which stays
    inside [0, 1] and is never a point); ``z``: another normal quantile."""
    if n <= 0:
        return None, None
    z = normal_quantile(1 - ALPHA / 2) if z is None else z
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(max(0.0, p * (1 - p)) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def newcombe(
    a: int, b: int, c: int, d: int, z: float | None = None
) -> tuple[float | None, float | None]:
    """A 95 % interval (``z``: at another normal quantile) for the difference
    of two paired proportions (Newcombe 1998, Statistics in Medicine
    17:2635, method 10): ``a`` pairs both right, ``b`` only the condition
    right, ``c`` only the baseline, ``d`` neither; the difference is
    (b - c) / n."""
    n = a + b + c + d
    if n == 0:
        return None, None
    p1, p2 = (a + b) / n, (a + c) / n
    l1, u1 = wilson(a + b, n, z)
    l2, u2 = wilson(a + c, n, z)
    assert l1 is not None and u1 is not None and l2 is not None and u2 is not None
    # The correlation of the pairs, continuity-corrected as Newcombe's method
    # 10 has it (Altman et al., Statistics with Confidence, 2nd ed., p. 52):
    # uncorrected, pairs that all agree (b = c = 0) would make the interval a
    # point however few they are.
    product = (a + b) * (c + d) * (a + c) * (b + d)
    cross = a * d - b * c
    corrected = cross - n / 2 if cross > n / 2 else (cross if cross < 0 else 0.0)
    phi = corrected / math.sqrt(product) if product else 0.0
    diff = (b - c) / n
    low = diff - math.sqrt(
        max(0.0, (p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2)
    )
    high = diff + math.sqrt(
        max(0.0, (u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2)
    )
    return max(-1.0, low), min(1.0, high)


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
