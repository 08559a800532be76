"""A gate a CI job can trust (``rolebatch report --fail-if-worse``,
``--non-inferiority MARGIN``, ``--fail-under SCORE``): rules decided by the
report's own statistics, never by a bare mean against a threshold.

    fail-if-worse     fails when a group is *worse* than the baseline by the
                      report's verdict (the paired test, Holm-adjusted; a
                      judge's head-to-head too)
    non-inferiority   passes only when every group compared with the baseline
                      is shown no worse than it by more than MARGIN: the
                      one-sided p of "worse by MARGIN or more", read off the
                      paired interval, Holm-adjusted across the groups, under
                      0.025 (the lower end of the two-sided 95 % interval
                      above -MARGIN, at Holm's step); too few questions fail,
                      with about how many would do
    fail-under        fails when a group's mean is confidently below SCORE
                      (its interval's upper end is); a mean below SCORE whose
                      interval reaches it is a warning, not a failure
"""

from __future__ import annotations

import math
from typing import Any

from ..errors import UsageError
from . import stats


def decide(
    scores: dict[str, Any] | None,
    pairwise: dict[str, Any] | None,
    fail_if_worse: bool = False,
    margin: float | None = None,
    fail_under: float | None = None,
) -> dict[str, Any] | None:
    """The gate's outcome: its rules, each passed or failed with the groups
    that failed it and their figures (None: no rule given)."""
    if not fail_if_worse and margin is None and fail_under is None:
        return None
    comparisons = (scores or {}).get("comparisons") or []
    rules: list[dict[str, Any]] = []
    if fail_if_worse:
        worse = [_figures(c) for c in comparisons if c["verdict"] == "worse"]
        worse += [
            {"key": r["key"], "win_rate": r["win_rate"], "p_holm": r["p_holm"]}
            for r in (pairwise or {}).get("rows", [])
            if r["verdict"] == "worse"
        ]
        rules.append({"rule": "fail-if-worse", "passed": not worse, "failing": worse})
    if margin is not None:
        rules.append(_noninferiority(scores, comparisons, pairwise, margin))
    if fail_under is not None:
        if scores is None:
            raise UsageError("--fail-under needs scores: give --score")
        below, close = [], []
        for g in scores["groups"]:
            if g["mean"] is None or g["mean"] >= fail_under:
                continue
            shown = {k: g[k] for k in ("key", "mean", "ci_low", "ci_high")}
            if g["ci_high"] is not None and g["ci_high"] < fail_under:
                below.append(shown)
            else:
                close.append(shown)
        rules.append(
            {
                "rule": "fail-under",
                "score": fail_under,
                "passed": not below,
                "failing": below,
                "warnings": close,
            }
        )
    return {"passed": all(rule["passed"] for rule in rules), "rules": rules}


def _noninferiority(
    scores: dict[str, Any] | None,
    comparisons: list[dict[str, Any]],
    pairwise: dict[str, Any] | None,
    margin: float,
) -> dict[str, Any]:
    """Every comparison with the baseline shown no worse by more than
    ``margin``: a paired difference's interval above -margin, a head-to-head's
    win rate's interval above 0.5 - margin; one-sided p-values, Holm-adjusted
    together, under NI_ALPHA."""
    if margin <= 0:
        raise UsageError(f"--non-inferiority {margin}: the margin must be above 0")
    heads = (pairwise or {}).get("rows") or []
    if not comparisons and not heads:
        raise UsageError(
            "--non-inferiority needs groups compared with a baseline: give --score, and"
            " --baseline GROUP where the outputs have no control; or a judge's head-to-head"
        )
    for r in heads:
        decided = r["wins"] + r["losses"]
        r["p_noninferior"] = stats.p_noninferior_rate(r["wins"], decided, margin)
        # At a true win rate of one half a decided question is a coin: SD 0.5.
        r["needed"] = math.ceil(
            (
                (stats.normal_quantile(1 - stats.NI_ALPHA) + stats.normal_quantile(stats.POWER))
                * 0.5
                / margin
            )
            ** 2
        )
    adjusted = stats.holm([c["p_noninferior"] for c in [*comparisons, *heads]])
    failing = []
    for c, p_holm in zip([*comparisons, *heads], adjusted, strict=True):
        c["p_noninferior_holm"] = p_holm
        c["noninferior"] = p_holm is not None and p_holm < stats.NI_ALPHA
        if c["noninferior"]:
            continue
        if "win_rate" in c:
            shown = {k: c.get(k) for k in ("key", "win_rate", "ci_low", "ci_high", "questions")}
            shown["decided"] = c["wins"] + c["losses"]
        else:
            shown = _figures(c)
        failing.append({**shown, "p_noninferior_holm": p_holm, "questions_needed": c["needed"]})
    return {
        "rule": "non-inferiority",
        "margin": margin,
        "alpha": stats.NI_ALPHA,
        "passed": not failing,
        "failing": failing,
    }


def _figures(c: dict[str, Any]) -> dict[str, Any]:
    return {k: c.get(k) for k in ("key", "baseline", "n_pairs", "diff", "ci_low", "ci_high")}


def lines(gate: dict[str, Any]) -> list[str]:
    """A line per rule (and per warning), as text and markdown end with."""
    out = []
    for rule in gate["rules"]:
        name, failing = rule["rule"], rule["failing"]
        if rule["rule"] == "non-inferiority":
            name = f"non-inferiority at a margin of {rule['margin']:g}"
        elif rule["rule"] == "fail-under":
            name = f"fail-under {rule['score']:g}"
        if rule["passed"]:
            out.append(f"gate: {name}: passed")
        else:
            out.append(f"gate: {name}: FAILED for {', '.join(_why(rule, f) for f in failing)}")
        for warn in rule.get("warnings", []):
            out.append(
                f"gate: {name}: warning: {warn['key']}'s mean {_n(warn['mean'])} is below it,"
                f" but its interval ({_n(warn['ci_low'])} to {_n(warn['ci_high'])}) reaches it:"
                " not a failure"
            )
    out.append(f"gate: {'passed' if gate['passed'] else 'FAILED'}")
    return out


def _why(rule: dict[str, Any], failing: dict[str, Any]) -> str:
    key = failing["key"]
    if rule["rule"] == "fail-if-worse":
        if "win_rate" in failing:
            return f"{key} (win rate {_n(failing['win_rate'])}, p Holm {_n(failing['p_holm'])})"
        low, high = _n(failing["ci_low"]), _n(failing["ci_high"])
        return f"{key} (diff {_n(failing['diff'])}, {low} to {high})"
    if rule["rule"] == "fail-under":
        return f"{key} (mean {_n(failing['mean'])}, interval up to {_n(failing['ci_high'])})"
    needed = failing.get("questions_needed")
    if "win_rate" in failing:
        size = (
            f"; about {needed:,} decided questions would show it if the two are even (80 %"
            " power, one-sided 0.025, before Holm)"
            if needed and needed > failing["decided"]
            else ""
        )
        return (
            f"{key} (win rate {_n(failing['win_rate'])}, interval from {_n(failing['ci_low'])},"
            f" above {0.5 - rule['margin']:g} needed, p Holm {_n(failing['p_noninferior_holm'])},"
            f" {failing['decided']} decided questions{size})"
        )
    size = (
        f"; about {needed:,} questions would show it for this spread (80 % power,"
        " one-sided 0.025, before Holm)"
        if needed and needed > (failing.get("n_pairs") or 0)
        else ""
        if needed
        else "; no spread yet to say how many questions would"
    )
    return (
        f"{key} (diff {_n(failing['diff'])}, interval from {_n(failing['ci_low'])},"
        f" p Holm {_n(failing['p_noninferior_holm'])}, {failing['n_pairs']} questions{size})"
    )


def _n(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"
