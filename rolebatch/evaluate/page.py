"""``rolebatch report --format html``: one self-contained page (no script, no
font, nothing fetched), for a paper or a slide: the headline (what the study
found, and the gate's outcome), where the figures come from (models, dates,
roles, temperature, questions, groups, calls, version), a dot plot of every
group's score with its 95 % interval, sorted, the baseline and the chance
level marked; the paired differences against the baseline, the significant
ones marked; a head-to-head's wins, ties and losses; and the tables.  Every
axis says what it measures, every plot has its legend, no cell wraps, and a
wide table scrolls in its own box: the page fits 1,000 px."""

from __future__ import annotations

from typing import Any

from .gate import lines
from .numbers import interval, number, p_value
from .plots import dot_plot, escape, legend, outcomes
from .tables import footnotes, study_lines

STYLE = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d2330;
       margin: 24px auto; max-width: 1100px; padding: 0 16px; background: #fff; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 17px; margin: 28px 0 6px; }
p.note { color: #4b5563; margin: 4px 0 10px; }
.gate { padding: 10px 14px; border-radius: 6px; margin: 8px 0 18px; }
.gate.passed { background: #ecfdf5; border: 1px solid #059669; }
.gate.failed { background: #fef2f2; border: 1px solid #dc2626; }
.gate.undecided { background: #fffbeb; border: 1px solid #d97706; }
table { border-collapse: collapse; margin: 6px 0 12px; }
th, td { padding: 3px 10px; border-bottom: 1px solid #e5e7eb; text-align: right;
         white-space: nowrap; }
.scroll { overflow-x: auto; max-width: 100%; }
.headline { font-size: 16px; background: #f8fafc; border-left: 4px solid #2563eb;
            padding: 8px 14px; margin: 10px 0 14px; }
.headline p { margin: 2px 0; }
p.legend { color: #4b5563; font-size: 12px; margin: 0 0 12px; }
.swatch { display: inline-block; width: 18px; height: 0; vertical-align: middle;
          border-top: 3px solid #2563eb; margin: 0 4px 0 10px; }
.swatch.baseline { border-top-color: #b45309; } .swatch.better { border-top-color: #059669; }
.swatch.worse { border-top-color: #dc2626; } .swatch.dashed { border-top: 2px dashed #6b7280; }
.swatch.dotted { border-top: 2px dotted #7c3aed; }
.chance { stroke: #7c3aed; stroke-dasharray: 1 3; stroke-width: 2; }
.won { fill: #059669; } .tied { fill: #d1d5db; } .lost { fill: #dc2626; }
th:first-child, td:first-child { text-align: left; }
th { background: #f3f4f6; font-weight: 600; }
svg text { font: 12px system-ui, sans-serif; fill: #1d2330; }
.axis { stroke: #9ca3af; stroke-width: 1; } .grid { stroke: #eef0f3; }
.interval { stroke: #2563eb; stroke-width: 3; stroke-linecap: round; }
.point { fill: #2563eb; } .baseline .interval { stroke: #b45309; }
.baseline .point { fill: #b45309; } .zero { stroke: #6b7280; stroke-dasharray: 4 3; }
.significant .interval { stroke: #059669; } .significant .point { fill: #059669; }
.worse .interval { stroke: #dc2626; } .worse .point { fill: #dc2626; }
"""


def html_table(header: list[str], rows: list[list[Any]]) -> str:
    """A table in a box of its own that scrolls sideways when it is wide."""
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in r) + "</tr>" for r in rows)
    return (
        f"<div class='scroll'><table><thead><tr>{head}</tr></thead>"
        f"<tbody>{body}</tbody></table></div>"
    )


def page(
    title: str,
    by: str,
    scores: dict[str, Any] | None,
    descriptive: tuple[list[str], list[list[Any]]],
    pairwise: dict[str, Any] | None = None,
    gate: dict[str, Any] | None = None,
    about: dict[str, Any] | None = None,
    headline: list[str] | None = None,
) -> str:
    """The whole page, as text: the headline and the gate's outcome first,
    then where the figures come from, then the plots and the tables."""
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
    ]
    if headline or gate is not None:
        said = "".join(f"<p>{escape(line)}.</p>" for line in headline or [])
        if gate is not None:
            word = gate["outcome"]
            said += (
                f"<div class='gate {word}' data-gate='{word}'><b>The gate {word}</b><br>"
                + "<br>".join(escape(line) for line in lines(gate)[:-1])
                + "</div>"
            )
        parts.append(f"<div class='headline'>{said}</div>")
    if about is not None:
        parts.append(_provenance(about, scores))
    if scores:
        parts.append(_scores(by, scores, (about or {}).get("chance")))
    if pairwise:
        parts.append(_pairwise(pairwise))
    header, rows = descriptive
    parts.append(f"<h2>Every group's lines</h2>{html_table(header, rows)}")
    parts.append("</body></html>\n")
    return "".join(parts)


def _provenance(about: dict[str, Any], scores: dict[str, Any] | None) -> str:
    models = about["models"]
    temperatures = ", ".join("default" if t is None else f"{t:g}" for t in about["temperatures"])
    said = [
        f"model{'s' if len(models) > 1 else ''} <b>{escape(', '.join(models) or '-')}</b>",
        *(
            [f"newest line written {escape(about['newest_line_written'])}"]
            if about["newest_line_written"]
            else []
        ),
        *([f"roles {escape(', '.join(about['roles']))}"] if about["roles"] else []),
        *([f"temperature {escape(temperatures)}"] if temperatures else []),
        *([f"{about['questions']:,} questions"] if about["questions"] is not None else []),
        f"{about['groups']:,} groups by {escape(about['by'])}",
        f"{about['calls']:,} calls ({about['requests']:,} requests)",
        *([f"scorer <b>{escape(scores['scorer'])}</b>"] if scores else []),
        f"rolebatch {escape(about['rolebatch'])}",
    ]
    return f"<p class='head' data-provenance>{'; '.join(said)}</p>"


def _scores(by: str, scores: dict[str, Any], chance: float | None = None) -> str:
    errors = "count as 0" if scores["errors_as"] == "0" else "are left out"
    groups = sorted(scores["groups"], key=lambda g: (g["mean"] is None, -(g["mean"] or 0)))
    rows = [
        {
            "key": g["key"],
            "label": g["key"] + (" (baseline)" if g["baseline"] else ""),
            "value": g["mean"],
            "low": g["ci_low"],
            "high": g["ci_high"],
            "baseline": g["baseline"],
        }
        for g in groups
    ]
    base = next((g["mean"] for g in groups if g["baseline"]), None)
    measure = "share correct" if scores.get("binary") else f"mean score ({scores['scorer']})"
    baseline_name = scores["baseline"] or "the baseline"
    keys = [("baseline", f"{baseline_name}, the baseline"), ("", "another group")]
    if base is not None:
        keys.append(("dashed", "the baseline's mean"))
    if chance is not None:
        keys.append(("dotted", f"chance ({chance:.2f}: an option picked at random)"))
    parts = [
        f"<h2>Score by {escape(by)}</h2>",
        f"<p class='note'>Scorer <b>{escape(scores['scorer'])}</b>; error lines {errors};"
        f" {scores['questions']:,} questions. Each point is a mean, each bar its 95 %"
        " interval: Wilson's for 0/1 scores, Student's t for graded ones (clustered by"
        " question when a question was asked more than once).</p>",
        dot_plot(
            rows,
            lambda r: "baseline" if r["baseline"] else "",
            base,
            f"{measure} by {by}, with its 95 % interval",
            chance,
        ),
        legend(*keys),
        html_table(
            ["group", "n", "errors", "mean", "95% interval"],
            [
                [
                    r["label"],
                    f"{g['n']:,}",
                    f"{g['errors']:,}",
                    number(g["mean"]),
                    interval(g["ci_low"], g["ci_high"]),
                ]
                for r, g in zip(rows, groups, strict=True)
            ],
        ),
    ]
    if scores["comparisons"]:
        # The table in the plot's order: the largest difference first.
        comparisons = sorted(scores["comparisons"], key=lambda c: -(c["diff"] or 0))
        diff_rows = [_point(c, c["diff"]) for c in comparisons]

        def marker(row: dict[str, Any]) -> str:
            return {"better": "significant", "worse": "worse"}.get(row["verdict"], "")

        against = scores["baseline"] or f"each {scores.get('strata_by')}'s baseline"
        parts += [
            f"<h2>Against {escape(against)}, question by question</h2>",
            "<p class='note'>The mean of the paired differences on the questions both"
            " answered, with its 95 % interval (Newcombe's for 0/1 scores, Student's t"
            " for graded ones); * marks a difference Holm's adjustment across all the"
            " comparisons keeps below 0.05.</p>",
            dot_plot(
                diff_rows,
                marker,
                0.0,
                f"difference in {measure} from {against}, with its 95 % interval",
            ),
            legend(
                ("better", "better (Holm)"),
                ("worse", "worse (Holm)"),
                ("", "no detectable difference"),
                ("dashed", "no difference"),
            ),
            html_table(
                [
                    "group",
                    "pairs",
                    "diff",
                    "95% interval",
                    "p",
                    "p (Holm)",
                    "test",
                    "verdict",
                    "detectable",
                ],
                [
                    [
                        c["key"],
                        f"{c['n_pairs']:,}",
                        number(c["diff"]),
                        interval(c["ci_low"], c["ci_high"]),
                        p_value(c["p"]),
                        p_value(c["p_holm"]),
                        c["test"] or "–",
                        c["verdict"],
                        number(c["mde"]),
                    ]
                    for c in comparisons
                ],
            ),
        ]
        notes = footnotes(scores)
        if notes:
            parts.append("<p class='note'>" + "<br>".join(escape(n) for n in notes) + "</p>")
    parts.append("<h2>Does picking a group help?</h2>")
    for stratum in scores.get("strata") or [scores]:
        if "stratum" in stratum:
            parts.append(f"<h3>{escape(stratum['stratum'])}</h3>")
        parts.append(html_table(["", "score"], _choosing(stratum)))
    if "interaction" in scores:
        lines = study_lines(scores)[-1 - len(scores["interaction"]["rows"]) :]
        parts.append("<p class='note'>" + "<br>".join(escape(line) for line in lines) + "</p>")
    return "".join(parts)


def _choosing(scores: dict[str, Any]) -> list[list[str]]:
    study = [
        ["oracle (the best group per question)", number(scores["oracle"])],
        ["a group other than the baseline, picked at random", number(scores["random_role"])],
    ]
    half = scores["picked_on_half"]
    if half:
        value = f"{half['picked']}: {number(half['score'])}"
        if "baseline" in half:
            value += f" against {number(half['baseline_score'])} ({half['verdict']})"
        study.append([f"the best on one half, scored on the other (seed {half['seed']})", value])
    return study


def _point(row: dict[str, Any], value: float | None) -> dict[str, Any]:
    """A point of a plot with its interval, starred when its verdict is one."""
    return {
        "key": row["key"],
        "label": row["key"] + (" *" if row["verdict"] in ("better", "worse") else ""),
        "value": value,
        "low": row["ci_low"],
        "high": row["ci_high"],
        "verdict": row["verdict"],
    }


def _pairwise(pairwise: dict[str, Any]) -> str:
    """Head-to-head judgements (``rolebatch judge --against``,
    ``--against-output``): every group's questions won, tied and lost, drawn
    always; the win rate with its interval where questions were decided."""
    rows = [_point(r, r["win_rate"]) for r in pairwise["rows"]]
    consistency = pairwise.get("consistency")
    against = pairwise["baseline"]
    rates = dot_plot(
        rows,
        lambda r: {"better": "significant", "worse": "worse"}.get(r["verdict"], ""),
        0.5,
        f"win rate against {against} (questions won of those decided), with its 95 % interval",
    )
    return "".join(
        [
            f"<h2>Head to head against {escape(against)}</h2>",
            "<p class='note'>A pair counts only when both orders agree, and a question's"
            " samples are one unit, decided by their net. Position consistency:"
            f" {number(consistency)}.</p>",
            outcomes(pairwise["rows"], against),
            legend(("won", "won"), ("tied", "tied"), ("lost", "lost")),
            *(
                [
                    rates,
                    legend(
                        ("better", "better (Holm)"),
                        ("worse", "worse (Holm)"),
                        ("", "no detectable difference"),
                        ("dashed", "even (0.5)"),
                    ),
                ]
                if rates
                else []
            ),
            html_table(
                [
                    "group",
                    "wins",
                    "ties",
                    "losses",
                    "win rate",
                    "95% interval",
                    "p (Holm)",
                    "verdict",
                ],
                [
                    [
                        r["key"],
                        r["wins"],
                        r["ties"],
                        r["losses"],
                        number(r["win_rate"]) if r["win_rate"] is not None else "none decided",
                        interval(r["ci_low"], r["ci_high"])
                        if r["ci_low"] is not None
                        else "none decided",
                        p_value(r["p_holm"]),
                        r["verdict"],
                    ]
                    for r in pairwise["rows"]
                ],
            ),
        ]
    )
