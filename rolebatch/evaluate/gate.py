"""A gate a CI job can trust (``rolebatch report --fail-if-worse``,
``--non-inferiority MARGIN``, ``--win-margin MARGIN``, ``--fail-under
SCORE``): rules decided by the report's own statistics, never by a bare mean
against a threshold, and never passed on nothing.

    fail-if-worse     fails when a candidate is *worse* than the baseline: the
                      paired test (and a judge's head-to-head sign test), all
                      in one Holm family
    non-inferiority   passes only when every candidate is shown no worse than
                      the baseline: a score difference by more than MARGIN
                      (--non-inferiority, in the score's unit), a head-to-head
                      win rate below 0.5 - MARGIN (--win-margin, in win rate);
                      the one-sided p of "worse by the margin or more", read off
                      the interval, Holm-adjusted in one family over both kinds,
                      under 0.025; too few questions fail, with about how many
                      would do
    fail-under        fails when a group's mean is confidently below SCORE
                      (its interval's upper end is); a mean below SCORE whose
                      interval reaches it is a warning, not a failure

A gate has three outcomes: passed, failed (a rule failed: exit 1) and
undecided (nothing to decide on: exit 5, never a pass).  Undecided is every
candidate a rule cannot rule on: no lines, no scores, no baseline, outputs
with no question in common, too few pairs to test, a comparison that could
not come out worse even were every question lost, a judge whose two orders
disagree.  A failure anywhere outweighs the undecided; the undecided
outweigh passes.  Margins that make a rule impossible to fail are refused
(exit 2): a win-rate margin of 0.5 or more, a score margin at or past the
score's range.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import UsageError
from ..exits import Exit
from . import stats
from .numbers import number, p_value
from .pairwise import RELIABLE

GATE_ALPHA = stats.ALPHA
# What a failing paired comparison shows of itself.
PAIRED_FIGURES = ("key", "baseline", "n_pairs", "diff", "ci_low", "ci_high")


@dataclass(frozen=True)
class Rules:
    """What a gate was asked to check; ``margin`` is on score differences,
    ``win_margin`` on head-to-head win rates."""

    fail_if_worse: bool = False
    margin: float | None = None
    win_margin: float | None = None
    fail_under: float | None = None

    def given(self) -> bool:
        return (
            self.fail_if_worse
            or self.margin is not None
            or self.win_margin is not None
            or self.fail_under is not None
        )

    def names(self) -> list[str]:
        return [
            *(["fail-if-worse"] if self.fail_if_worse else []),
            *(
                ["non-inferiority"]
                if self.margin is not None or self.win_margin is not None
                else []
            ),
            *(["fail-under"] if self.fail_under is not None else []),
        ]


def check(rules: Rules, scores: dict[str, Any] | None, pairwise: dict[str, Any] | None) -> None:
    """Refuse (UsageError, exit 2) a margin no candidate could fail, or a
    margin in the wrong unit for what the lines hold."""
    heads = bool((pairwise or {}).get("rows"))
    compared = bool((scores or {}).get("comparisons"))
    if rules.margin is not None:
        if rules.margin <= 0:
            raise UsageError(f"--non-inferiority {rules.margin:g}: the margin must be above 0")
        if heads and not compared:
            raise UsageError(
                f"--non-inferiority {rules.margin:g} is a margin on a score difference, and these"
                " lines are a head-to-head, judged by its win rate: give --win-margin (above 0,"
                " below 0.5: the win rate must be shown above 0.5 - MARGIN)"
            )
        scale = (scores or {}).get("scale")
        if scale is not None and rules.margin >= scale[1] - scale[0]:
            raise UsageError(
                f"--non-inferiority {rules.margin:g}: the scores run from {scale[0]:g} to"
                f" {scale[1]:g}, so no difference can be {rules.margin:g} or worse and the rule"
                f" could never fail; give a margin below {scale[1] - scale[0]:g}"
            )
    if rules.win_margin is not None:
        if not 0 < rules.win_margin < 0.5:
            raise UsageError(
                f"--win-margin {rules.win_margin:g}: a win rate must be shown above 0.5 - MARGIN;"
                " at 0.5 or more that is 0 or below, and a candidate that lost every question"
                " would pass. Give a margin above 0 and below 0.5 (0.1: a win rate above 0.4)"
            )
        if compared and not heads:
            raise UsageError(
                f"--win-margin {rules.win_margin:g} is a margin on a judge's head-to-head win"
                " rate, and these lines are scored: give --non-inferiority (in the score's unit)"
            )


def decide(
    rules: Rules,
    scores: dict[str, Any] | None,
    pairwise: dict[str, Any] | None,
    missing: str | None = None,
) -> dict[str, Any] | None:
    """The gate's outcome: each rule passed (True), failed (False) or
    undecided (None), with the candidates that failed it and those it could
    not rule on, and why; ``missing``: why there is nothing at all to decide
    on (no lines, say).  None: no rule was given."""
    if not rules.given():
        return None
    if missing is not None:
        found = [_rule(name, [], [{"key": None, "why": missing}]) for name in rules.names()]
        return _gate(found, missing)
    check(rules, scores, pairwise)
    found = []
    if rules.fail_if_worse:
        found.append(_fail_if_worse(scores, pairwise))
    if rules.margin is not None or rules.win_margin is not None:
        found.append(_noninferiority(scores, pairwise, rules.margin, rules.win_margin))
    if rules.fail_under is not None:
        found.append(_fail_under(scores, rules.fail_under))
    return _gate(found, None)


def exit_code(gate: dict[str, Any] | None) -> Exit:
    if gate is None or gate["passed"] is True:
        return Exit.OK
    return Exit.FAILED if gate["passed"] is False else Exit.UNDECIDED


def _gate(rules: list[dict[str, Any]], missing: str | None) -> dict[str, Any]:
    outcomes = [rule["passed"] for rule in rules]
    passed = False if False in outcomes else None if None in outcomes else True
    word = {True: "passed", False: "failed", None: "undecided"}[passed]
    return {"passed": passed, "outcome": word, "missing": missing, "rules": rules}


def _rule(
    name: str,
    failing: list[dict[str, Any]],
    undecided: list[dict[str, Any]],
    **more: Any,
) -> dict[str, Any]:
    passed = False if failing else None if undecided else True
    return {"rule": name, "passed": passed, "failing": failing, "undecided": undecided, **more}


# -- the candidates: every comparison with a baseline ----------------------


def _candidates(
    scores: dict[str, Any] | None,
    pairwise: dict[str, Any] | None,
    with_scores: bool = True,
    with_heads: bool = True,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """(paired comparisons, head-to-heads, undecided): the comparisons a rule
    can rule on, and why the others cannot be."""
    undecided: list[dict[str, Any]] = []
    paired = list((scores or {}).get("comparisons") or []) if with_scores else []
    heads = list((pairwise or {}).get("rows") or []) if with_heads else []
    if with_scores and scores is not None and not paired:
        groups = ", ".join(g["key"] for g in scores["groups"]) or "none"
        bases = [g["key"] for g in scores["groups"] if g["baseline"]]
        why = (
            f"nothing to compare with the baseline: only {', '.join(bases)} has scored lines"
            if bases
            else "no baseline to compare with (no control role in the sweep): give --baseline"
            f" GROUP (the groups: {groups})"
        )
        undecided.append({"key": None, "why": why})
    if heads and pairwise is not None and pairwise.get("unreliable"):
        consistency = pairwise["consistency"]
        undecided += [
            {
                "key": r["key"],
                "why": f"the judge is unreliable: its two orders agreed on {consistency:.3f} of"
                f" pairs (under {RELIABLE:g}), so its verdicts follow the order, not the answers",
            }
            for r in heads
        ]
        heads = []
    return paired, heads, undecided


def _testable(
    paired: list[dict[str, Any]], heads: list[dict[str, Any]], undecided: list[dict[str, Any]]
) -> list[tuple[dict[str, Any], bool]]:
    """(comparison, is a head-to-head) of those with a test; the others go
    to ``undecided`` with why."""
    found = []
    for c, head in [*((c, False) for c in paired), *((r, True) for r in heads)]:
        why = _too_few(c, head)
        if why is None:
            found.append((c, head))
        else:
            undecided.append({"key": c["key"], "why": why})
    return found


def _too_few(c: dict[str, Any], head: bool) -> str | None:
    """Why a comparison has no test (None: it has one)."""
    if head and c["p"] is None:
        return f"{c['questions']} question(s) judged in both orders: too few to test"
    if not head and c["p"] is None:
        if not c["n_pairs"]:
            return "no question in common with the baseline"
        return f"{c['n_pairs']} question(s) in common with the baseline: too few to test"
    return None


def _least_p(c: dict[str, Any], head: bool) -> float:
    """The smallest p the comparison's test could give on its questions:
    every question lost, for a sign test (McNemar's is one); any, for t."""
    if head:
        return stats.sign_test(0, c["questions"])
    if c["test"] in ("mcnemar-exact", "sign"):
        return stats.sign_test(0, c["n_pairs"])
    return 0.0


def _fail_if_worse(
    scores: dict[str, Any] | None, pairwise: dict[str, Any] | None
) -> dict[str, Any]:
    paired, heads, undecided = _candidates(scores, pairwise)
    members = _testable(paired, heads, undecided)
    adjusted = stats.holm([c["p"] for c, _ in members])
    failing, ruled = [], []
    m = len(members)
    for (c, head), p_holm in zip(members, adjusted, strict=True):
        assert p_holm is not None
        kind = "head-to-head" if head else "paired"
        ruled.append({"key": c["key"], "kind": kind, "p": c["p"], "p_holm": p_holm})
        if m * _least_p(c, head) >= GATE_ALPHA:
            size = c["questions"] if head else c["n_pairs"]
            undecided.append(
                {
                    "key": c["key"],
                    "why": f"{size} question(s): even every one lost could not show it worse"
                    f" (the sign test's least p, Holm over {m}, is not under {GATE_ALPHA:g})",
                }
            )
            continue
        toward = c["win_rate"] - 0.5 if head and c["win_rate"] is not None else c.get("diff")
        lower = toward is not None and toward < 0
        if p_holm < GATE_ALPHA and lower:
            shown = (
                {"key": c["key"], "win_rate": c["win_rate"]}
                if head
                else {k: c.get(k) for k in PAIRED_FIGURES}
            )
            failing.append({**shown, "p_holm": p_holm})
    return _rule("fail-if-worse", failing, undecided, family=m, ruled=ruled)


def _noninferiority(
    scores: dict[str, Any] | None,
    pairwise: dict[str, Any] | None,
    margin: float | None,
    win_margin: float | None,
) -> dict[str, Any]:
    """Every candidate shown no worse than the baseline: a paired difference's
    interval above -margin, a head-to-head's win rate's above 0.5 -
    win_margin; one-sided p-values, Holm-adjusted together, under NI_ALPHA."""
    paired, heads, undecided = _candidates(
        scores, pairwise, with_scores=margin is not None, with_heads=win_margin is not None
    )
    members = []
    for c, head in _testable(paired, heads, undecided):
        if head:
            assert win_margin is not None
            decided = c["wins"] + c["losses"]
            p = stats.p_noninferior_rate(c["wins"], decided, win_margin)
            # At a true win rate of one half a decided question is a coin: SD 0.5.
            needed = stats.questions_needed(0.5, win_margin)
        else:
            p, needed = c["p_noninferior"], c["needed"]
        members.append((c, head, p, needed))
    adjusted = stats.holm([p for _, _, p, _ in members])
    failing, shown_no_worse = [], []
    for (c, head, p, needed), p_holm in zip(members, adjusted, strict=True):
        if p_holm is not None and p_holm < stats.NI_ALPHA:
            shown_no_worse.append(
                {"key": c["key"], "p_noninferior": p, "p_noninferior_holm": p_holm}
            )
            continue
        if head:
            shown = {k: c.get(k) for k in ("key", "win_rate", "ci_low", "ci_high", "questions")}
            shown["decided"] = c["wins"] + c["losses"]
        else:
            shown = {k: c.get(k) for k in PAIRED_FIGURES}
        failing.append(
            {**shown, "p_noninferior": p, "p_noninferior_holm": p_holm, "questions_needed": needed}
        )
    return _rule(
        "non-inferiority",
        failing,
        undecided,
        margin=margin,
        win_margin=win_margin,
        alpha=stats.NI_ALPHA,
        family=len(members),
        noninferior=shown_no_worse,
    )


def _fail_under(scores: dict[str, Any] | None, score: float) -> dict[str, Any]:
    if scores is None:
        raise UsageError("--fail-under needs scores: give --score")
    below, close, undecided = [], [], []
    for g in scores["groups"]:
        shown = {k: g[k] for k in ("key", "mean", "ci_low", "ci_high")}
        if g["mean"] is None:
            undecided.append({"key": g["key"], "why": "no score: no mean to hold to it"})
        elif g["mean"] >= score:
            continue
        elif g["ci_high"] is None:
            undecided.append(
                {
                    "key": g["key"],
                    "why": f"mean {number(g['mean'])} but no interval to say how sure",
                }
            )
        elif g["ci_high"] < score:
            below.append(shown)
        else:
            close.append(shown)
    if not scores["groups"]:
        undecided.append({"key": None, "why": "no group has a score"})
    return _rule("fail-under", below, undecided, score=score, warnings=close)


# -- in words ---------------------------------------------------------------


def lines(gate: dict[str, Any]) -> list[str]:
    """A line per rule (and per warning), as text and markdown end with."""
    out = []
    for rule in gate["rules"]:
        name = _name(rule)
        if rule["passed"] is True:
            out.append(f"gate: {name}: passed")
        elif rule["passed"] is False:
            out.append(
                f"gate: {name}: FAILED for {', '.join(_why(rule, f) for f in rule['failing'])}"
            )
        if rule["undecided"] and (rule["passed"] is None or rule["passed"] is False):
            said = "; ".join(
                f"{u['key']}: {u['why']}" if u["key"] is not None else u["why"]
                for u in rule["undecided"]
            )
            out.append(f"gate: {name}: UNDECIDED: {said}")
        for warn in rule.get("warnings", []):
            out.append(
                f"gate: {name}: warning: {warn['key']}'s mean {number(warn['mean'])} is below it,"
                f" but its interval ({number(warn['ci_low'])} to {number(warn['ci_high'])})"
                " reaches it: not a failure"
            )
    if gate["passed"] is None:
        out.append("gate: UNDECIDED: nothing to decide on for what is named above; not a pass")
    else:
        out.append(f"gate: {'passed' if gate['passed'] else 'FAILED'}")
    return out


def _name(rule: dict[str, Any]) -> str:
    if rule["rule"] == "non-inferiority" and "margin" in rule:
        margins = []
        if rule["margin"] is not None:
            margins.append(f"a margin of {rule['margin']:g}")
        if rule["win_margin"] is not None:
            margins.append(f"a win-rate margin of {rule['win_margin']:g}")
        return f"non-inferiority at {' and '.join(margins)}"
    if rule["rule"] == "fail-under" and "score" in rule:
        return f"fail-under {rule['score']:g}"
    return rule["rule"]


def _why(rule: dict[str, Any], failing: dict[str, Any]) -> str:
    key = failing["key"]
    if rule["rule"] == "fail-if-worse":
        p_holm = p_value(failing["p_holm"])
        if "win_rate" in failing:
            return f"{key} (win rate {number(failing['win_rate'])}, p Holm {p_holm})"
        low, high = number(failing["ci_low"]), number(failing["ci_high"])
        return f"{key} (diff {number(failing['diff'])}, {low} to {high}, p Holm {p_holm})"
    if rule["rule"] == "fail-under":
        return (
            f"{key} (mean {number(failing['mean'])}, interval up to {number(failing['ci_high'])})"
        )
    needed = failing.get("questions_needed")
    if "win_rate" in failing:
        size = (
            f"; about {needed:,} decided questions would show it if the two are even (80 %"
            " power, one-sided 0.025, before Holm)"
            if needed and needed > failing["decided"]
            else ""
        )
        return (
            f"{key} (win rate {number(failing['win_rate'])}, interval from"
            f" {number(failing['ci_low'])}, above {0.5 - rule['win_margin']:g} needed, p Holm"
            f" {p_value(failing['p_noninferior_holm'])}, {failing['decided']} decided"
            f" questions{size})"
        )
    size = (
        f"; about {needed:,} questions would show it for this spread (80 % power,"
        " one-sided 0.025, before Holm)"
        if needed and needed > (failing.get("n_pairs") or 0)
        else ""
        if needed
        else "; no spread and no known scale to say how many questions would"
    )
    return (
        f"{key} (diff {number(failing['diff'])}, interval from {number(failing['ci_low'])},"
        f" p Holm {p_value(failing['p_noninferior_holm'])}, {failing['n_pairs']} questions{size})"
    )
