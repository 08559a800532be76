"""The study's figures as text: a table for a terminal, markdown for a CI
step summary, CSV for a notebook (one row per group, its comparison with
the baseline beside it); and head-to-head judgements the same ways."""

from __future__ import annotations

import csv
import io
from typing import Any

from .numbers import interval as _interval
from .numbers import number as _number
from .numbers import p_value as _p
from .numbers import plain, text_table


def _family(comparisons: list[dict[str, Any]]) -> int:
    """How many comparisons Holm's adjustment was across (those tested)."""
    return next((c["family"] for c in comparisons if c["family"]), 0)


def text(scores: dict[str, Any], fmt: str) -> str:
    """``table`` or ``md``: the groups, the paired comparisons, the study's lines."""
    errors = "count as 0" if scores["errors_as"] == "0" else "are left out"
    out = [
        f"\nscores: {scores['scorer']} (error lines {errors}); {scores['questions']:,} questions\n"
    ]
    rows = [
        [
            g["key"] + (" (baseline)" if g["baseline"] else ""),
            f"{g['n']:,}",
            f"{g['errors']:,}",
            _number(g["mean"]),
            _number(g["se"]),
            _interval(g["ci_low"], g["ci_high"]),
        ]
        for g in scores["groups"]
    ]
    out.append(text_table(["group", "n", "errors", "mean", "se", "95% interval"], rows, fmt))
    unscored = sum(g["unscored"] for g in scores["groups"])
    if unscored:
        out.append(
            f"\nunscored: {unscored:,} ok line{'s' if unscored != 1 else ''}, left out of n:"
            f" {_cannot(scores['scorer'])}\n"
        )
    comparisons = scores["comparisons"]
    if comparisons:
        against = (
            f"each {scores['strata_by']}'s baseline"
            if scores.get("strata_by")
            else str(scores["baseline"])
        )
        out.append(
            f"\npaired against {against} on the questions both answered"
            f" (p adjusted by Holm across {_family(comparisons)} comparisons)\n"
        )
        strata = bool(scores.get("strata_by"))
        rows = [
            [
                c["key"],
                *([c["baseline"]] if strata else []),
                f"{c['n_pairs']:,}",
                _number(c["diff"]),
                _interval(c["ci_low"], c["ci_high"]),
                _p(c["p"]),
                _p(c["p_holm"]),
                c["test"] or "-",
                c["verdict"],
                _number(c["mde"]),
            ]
            for c in comparisons
        ]
        header = [
            "group", *(["baseline"] if strata else []), "pairs", "diff", "95% interval", "p",
            "p Holm", "test", "verdict", "detectable",
        ]  # fmt: skip
        out.append(text_table(header, rows, fmt))
    notes = footnotes(scores)
    if notes:
        out.append("\n" + "\n".join(notes) + "\n")
    out.append("\n" + "\n".join(study_lines(scores)) + "\n")
    return "".join(out)


def footnotes(scores: dict[str, Any]) -> list[str]:
    """What a reader of the tables must know to read them right."""
    notes = []
    comparisons = scores["comparisons"]
    if comparisons:
        family = _family(comparisons)
        notes.append(
            "detectable: the smallest difference these pairs find 80 % of the time at"
            f" Holm's first step (two-sided alpha 0.05 / {family} comparison"
            f"{'s' if family != 1 else ''})"
            + (
                "; - where none the score's scale allows would be, or no spread says"
                if any(c["mde"] is None for c in comparisons)
                else ""
            )
        )
    for c in comparisons:
        if c.get("edge"):
            notes.append(
                f"{c['key']}: the score interval leaves out 0, the exact test does not reach"
                f" 0.05 (p {_p(c['p'])}): too close to call, and the verdict follows the test"
            )
    skipped = [g for g in scores["groups"] if g["errors"]]
    if scores["errors_as"] == "left out" and skipped and comparisons:
        notes.append(
            "error lines left out: a group's mean weights its answers, the paired difference"
            " weights the questions both answered, so the difference of two means is not"
            f" the paired difference ({', '.join(g['key'] for g in skipped)} lost answers)"
        )
    return notes


def _cannot(scorer: str) -> str:
    """Why ``scorer`` leaves an ok line unscored."""
    name, _, arg = scorer.partition(":")
    if name == "field":
        return f"their response has no numeric field {arg!r} (or it is not a finite number)"
    if name == "python":
        return "your function gave None, NaN or an infinity for them"
    if name == "choice":
        return "they have no 'expected' option or no chosen 'option' (not a --task choice output?)"
    if name == "regex":
        return "their response has no 'answer' field or single text field"
    return (
        "they have no 'expected' answer to compare with, or their response has no 'answer'"
        " field or single text field"
    )


def study_lines(scores: dict[str, Any]) -> list[str]:
    """The lines on choosing a group: the whole study's, or each stratum's
    and then whether the best group differs between them."""
    if "strata" not in scores:
        return _choosing(scores)
    lines = []
    for stratum in scores["strata"]:
        lines += [f"{stratum['stratum']}: {line}" for line in _choosing(stratum)]
    interaction = scores["interaction"]
    best = ", ".join(f"{k}: {v}" for k, v in interaction["best"].items())
    same = (
        "the same"
        if interaction["same_best"]
        else "not the same here; whether a group's gain really differs is tested below"
        if interaction["rows"]
        else "not the same here"
    )
    lines.append(f"the best group by {scores['strata_by']}: {best} ({same})")
    for row in interaction["rows"]:
        first, second = row["strata"]
        lines.append(
            f"{row['key']}'s gain over the baseline, {first} less {second}:"
            f" {_number(row['diff'])} ({_interval(row['ci_low'], row['ci_high'])}),"
            f" p Holm {_p(row['p_holm'])}, {row['verdict']}"
        )
    return lines


def _choosing(scores: dict[str, Any]) -> list[str]:
    lines = [
        f"oracle (the best group per question): {_number(scores['oracle'])}",
        "random group (a group other than the baseline, picked at random):"
        f" {_number(scores['random_role'])}",
    ]
    half = scores["picked_on_half"]
    if half:
        line = (
            f"picked on half (seed {half['seed']}): {half['picked']}, the best on"
            f" {half['picked_on']} questions, scores {_number(half['score'])} on the other"
            f" {half['scored_on']}"
        )
        if "baseline" in half:
            line += (
                f"; {half['baseline']} there {_number(half['baseline_score'])}: diff"
                f" {_number(half['diff'])} ({_interval(half['ci_low'], half['ci_high'])}),"
                f" p {_p(half['p'])}, {half['verdict']}"
            )
        lines.append(line)
    lines.append(
        f"questions every group answered: {scores['common_questions']:,}"
        " (the oracle, the random group and the halves use these)"
    )
    return lines


CSV_COLUMNS = [
    "key", "n", "errors", "unscored", "mean", "se", "ci_low", "ci_high",
    "baseline", "n_pairs", "diff", "diff_ci_low", "diff_ci_high", "p", "p_holm", "test",
    "verdict", "mde", "method", "interval", "family", "stratum",
]  # fmt: skip


def as_csv(scores: dict[str, Any]) -> str:
    comparisons = {c["key"]: c for c in scores["comparisons"]}
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for g in scores["groups"]:
        c = comparisons.get(g["key"], {})
        row = {
            **g,
            "baseline": scores["baseline"] if c else ("" if not g["baseline"] else "itself"),
            "n_pairs": c.get("n_pairs"),
            "diff": c.get("diff"),
            "diff_ci_low": c.get("ci_low"),
            "diff_ci_high": c.get("ci_high"),
            "p": c.get("p"),
            "p_holm": c.get("p_holm"),
            "test": c.get("test"),
            "verdict": c.get("verdict"),
            "mde": c.get("mde"),
            "interval": c.get("interval"),
            "family": c.get("family"),
            "stratum": g.get("stratum"),
        }
        writer.writerow(["" if row[k] is None else plain(row[k]) for k in CSV_COLUMNS])
    return out.getvalue()


def pairwise_text(pairwise: dict[str, Any], fmt: str) -> str:
    """``table`` or ``md``: head to head against the baseline, per role."""
    compared = sum(1 for r in pairwise["rows"] if r["p"] is not None)
    out = [
        f"\nhead to head against {pairwise['baseline']} (a pair is won or lost only when"
        " both orders agree; a question's samples are one unit, won, lost or tied by their"
        " net; wins, ties and losses count questions; p of a sign test of questions won"
        f" against lost, adjusted by Holm across the {compared} roles compared on two"
        " questions or more)\n"
    ]
    rows = [
        [
            r["key"],
            f"{r['pairs']:,}",
            f"{r['wins']:,}",
            f"{r['ties']:,}",
            f"{r['losses']:,}",
            _number(r["win_rate"]),
            _interval(r["ci_low"], r["ci_high"]),
            _p(r["p_holm"]),
            r["verdict"],
        ]
        for r in pairwise["rows"]
    ]
    header = ["group", "pairs", "wins", "ties", "losses", "win rate", "95% interval", "p Holm"]
    # pairs: pairs judged in both orders, every sample; wins..losses: questions
    out.append(text_table([*header, "verdict"], rows, fmt))
    consistency = pairwise["consistency"]
    line = f"\nposition consistency: {_number(consistency)}"
    if pairwise["unreliable"]:
        line += " (an unreliable judge: its verdict follows the order it is shown the answers in)"
    if pairwise["incomplete"]:
        line += f"; {pairwise['incomplete']:,} pairs wait for their other order"
    if pairwise["no_verdict"]:
        line += f"; {pairwise['no_verdict']:,} pairs with an order that failed"
    out.append(line + "\n")
    return "".join(out)


PAIRWISE_COLUMNS = [
    "key", "pairs", "wins", "ties", "losses", "win_rate", "ci_low", "ci_high", "p", "p_holm",
    "verdict", "consistency", "questions", "pair_wins", "pair_ties", "pair_losses",
]  # fmt: skip


def pairwise_csv(pairwise: dict[str, Any]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(PAIRWISE_COLUMNS)
    for row in pairwise["rows"]:
        writer.writerow(["" if row[k] is None else plain(row[k]) for k in PAIRWISE_COLUMNS])
    return out.getvalue()


def headline(scores: dict[str, Any] | None, pairwise: dict[str, Any] | None) -> list[str]:
    """What the study found, in a sentence or two, for the top of the page:
    the verdicts that are real, or that none is and the smallest difference
    the study could have found; a head-to-head's wins; an unreliable judge."""
    said: list[str] = []
    comparisons = (scores or {}).get("comparisons") or []
    if comparisons:
        against = scores.get("baseline") or "each baseline" if scores else ""
        real = [c for c in comparisons if c["verdict"] in ("better", "worse")]
        for c in sorted(real, key=lambda c: -abs(c["diff"] or 0)):
            said.append(
                f"{c['key']} is {c['verdict']} than {c.get('baseline') or against}:"
                f" {c['diff']:+.3f} ({_interval(c['ci_low'], c['ci_high'])}, p Holm"
                f" {_number(c['p_holm'], 4)}, {c['n_pairs']} questions)"
            )
        # Only comparisons made count: a group with too few pairs was not
        # tested, and is never said not to differ.
        tested = [c for c in comparisons if c["p"] is not None]
        untested = [c["key"] for c in comparisons if c["p"] is None]
        if not real and tested:
            mdes = [c["mde"] for c in tested if c.get("mde") is not None]
            smallest = (
                f"; the smallest difference this study could detect is {min(mdes):.2f}"
                + (f"–{max(mdes):.2f}" if max(mdes) - min(mdes) >= 0.005 else "")
                if mdes
                else ""
            )
            n = len(tested)
            who = "no group differs" if n > 1 else f"{tested[0]['key']} does not differ"
            said.append(
                f"{who} detectably from {against} ({n} comparison{'s' if n != 1 else ''},"
                f" Holm){smallest}"
            )
        if untested:
            said.append(
                f"not tested, too few questions in common with {against}: {', '.join(untested)}"
            )
    elif scores is not None:
        said.append(f"{len(scores['groups'])} groups, no baseline to compare them with")
    if pairwise:
        for r in pairwise["rows"]:
            decided = r["wins"] + r["losses"]
            if not decided:
                said.append(
                    f"{r['key']} against {pairwise['baseline']}: no question decided"
                    f" ({r['ties']} tied)"
                )
                continue
            said.append(
                f"{r['key']} against {pairwise['baseline']}: won {r['wins']} of {decided}"
                f" decided questions ({r['ties']} tied), win rate {r['win_rate']:.2f}"
                f" ({_interval(r['ci_low'], r['ci_high'])}): {r['verdict']}"
            )
        if pairwise.get("unreliable"):
            said.append(
                f"the judge is unreliable: its two orders agreed on"
                f" {pairwise['consistency']:.0%} of pairs, so its verdicts follow the order it"
                " is shown the answers in, not the answers"
            )
    return said
