"""``rolebatch report --format html``: one self-contained page (no script, no
font, nothing fetched): a dot plot of every group's score with its 95 %
interval, sorted, the baseline marked; the paired differences against the
baseline, the significant ones marked; and the tables."""

from __future__ import annotations

import html
import math
from typing import Any

from .gate import lines
from .tables import footnotes, study_lines

WIDTH = 760
LABEL = 190  # room for the group names on the left
ROW = 26
PAD = 28
AXIS = 16  # room under the ticks for what the axis measures

STYLE = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d2330;
       margin: 24px auto; max-width: 900px; padding: 0 16px; background: #fff; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 17px; margin: 28px 0 6px; }
p.note { color: #4b5563; margin: 4px 0 10px; }
.gate { padding: 10px 14px; border-radius: 6px; margin: 8px 0 18px; }
.gate.passed { background: #ecfdf5; border: 1px solid #059669; }
.gate.failed { background: #fef2f2; border: 1px solid #dc2626; }
table { border-collapse: collapse; margin: 6px 0 12px; }
th, td { padding: 3px 10px; border-bottom: 1px solid #e5e7eb; text-align: right; }
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


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _fmt(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _scale(low: float, high: float) -> tuple[float, float, Any]:
    if high - low < 1e-9:
        low, high = low - 0.5, high + 0.5
    span = high - low
    low, high = low - span * 0.05, high + span * 0.05

    def x(value: float) -> float:
        return LABEL + (value - low) / (high - low) * (WIDTH - LABEL - PAD)

    return low, high, x


def _nice_step(span: float) -> float:
    """A round step giving about five ticks over ``span``."""
    raw = span / 5
    power = 10 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)


def _ticks(low: float, high: float, x: Any, height: float) -> str:
    step = _nice_step(high - low)
    value = math.ceil(low / step) * step
    parts = []
    while value <= high + 1e-12:
        px = x(value)
        parts.append(
            f'<line class="grid" x1="{px:.1f}" y1="8" x2="{px:.1f}" y2="{height - 22 - AXIS}"/>'
            f'<text x="{px:.1f}" y="{height - 6 - AXIS}" text-anchor="middle">{value:g}</text>'
        )
        value = round(value + step, 10)
    return "".join(parts)


def _plot(rows: list[dict[str, Any]], marker: Any, zero: float | None, caption: str) -> str:
    """One row a group: a point at ``value`` on its interval."""
    drawn = [r for r in rows if r["value"] is not None]
    if not drawn:
        return "<p class='note'>Nothing to plot.</p>"
    lows = [r["low"] if r["low"] is not None else r["value"] for r in drawn]
    highs = [r["high"] if r["high"] is not None else r["value"] for r in drawn]
    extra = [zero] if zero is not None else []
    low, high, x = _scale(min(lows + extra), max(highs + extra))
    height = PAD + ROW * len(drawn) + 24 + AXIS
    parts = [
        f'<svg role="img" aria-label="{_e(caption)}" width="{WIDTH}" height="{height}"'
        f' viewBox="0 0 {WIDTH} {height}" xmlns="http://www.w3.org/2000/svg">',
        _ticks(low, high, x, height),
    ]
    if zero is not None:
        parts.append(
            f'<line class="zero" x1="{x(zero):.1f}" y1="8" x2="{x(zero):.1f}"'
            f' y2="{height - 22 - AXIS}"/>'
        )
    for i, row in enumerate(drawn):
        y = PAD + ROW * i
        start = row["low"] if row["low"] is not None else row["value"]
        end = row["high"] if row["high"] is not None else row["value"]
        parts.append(
            f'<g class="row {marker(row)}" data-group="{_e(row["key"])}">'
            f'<text x="{LABEL - 10}" y="{y + 4}" text-anchor="end">{_e(row["label"])}</text>'
            f'<line class="interval" x1="{x(start):.1f}" y1="{y}" x2="{x(end):.1f}" y2="{y}"/>'
            f'<circle class="point" cx="{x(row["value"]):.1f}" cy="{y}" r="5"/></g>'
        )
    # The axis says what it measures.
    parts.append(
        f'<text class="axis" x="{(x(low) + x(high)) / 2:.1f}" y="{height - 4}"'
        f' text-anchor="middle">{_e(caption)}</text></svg>'
    )
    return "".join(parts)


def _table(header: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def page(
    title: str,
    by: str,
    scores: dict[str, Any] | None,
    descriptive: tuple[list[str], list[list[Any]]],
    pairwise: dict[str, Any] | None = None,
    gate: dict[str, Any] | None = None,
    written: str | None = None,
) -> str:
    """The whole page, as text: a head that says what the study is (its
    models, when its newest line was written, its questions, groups and
    scorer), then the gate's outcome, if one was given."""
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{_e(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
    ]
    if scores is not None:
        models = ", ".join(scores.get("models") or []) or "-"
        head = [
            f"model{'s' if len(scores.get('models') or []) > 1 else ''} <b>{_e(models)}</b>",
            *([f"newest line written {_e(written)}"] if written else []),
            f"{scores['questions']:,} questions",
            f"{len(scores['groups']):,} groups by {_e(by)}",
            f"scorer <b>{_e(scores['scorer'])}</b>",
        ]
        parts.append(f"<p class='head'>{'; '.join(head)}</p>")
    if gate is not None:
        word = "passed" if gate["passed"] else "failed"
        parts += [
            f"<div class='gate {word}' data-gate='{word}'><b>The gate {word}</b><br>",
            "<br>".join(_e(line) for line in lines(gate)[:-1]),
            "</div>",
        ]
    if scores:
        parts.append(_scores(by, scores))
    if pairwise:
        parts.append(_pairwise(pairwise))
    header, rows = descriptive
    parts.append(f"<h2>Every group's lines</h2>{_table(header, rows)}")
    parts.append("</body></html>\n")
    return "".join(parts)


def _scores(by: str, scores: dict[str, Any]) -> str:
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
    parts = [
        f"<h2>Score by {_e(by)}</h2>",
        f"<p class='note'>Scorer <b>{_e(scores['scorer'])}</b>; error lines {errors};"
        f" {scores['questions']:,} questions. Each point is a mean, each bar its 95 %"
        " interval: Wilson's for 0/1 scores, Student's t for graded ones (clustered by"
        " question when a question was asked more than once).</p>",
        _plot(
            rows,
            lambda r: "baseline" if r["baseline"] else "",
            base,
            f"mean score ({scores['scorer']}) by {by}, with its 95 % interval",
        ),
        _table(
            ["group", "n", "errors", "mean", "95% interval"],
            [
                [
                    r["label"],
                    f"{g['n']:,}",
                    f"{g['errors']:,}",
                    _fmt(g["mean"]),
                    f"{_fmt(g['ci_low'])} to {_fmt(g['ci_high'])}",
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
            f"<h2>Against {_e(against)}, question by question</h2>",
            "<p class='note'>The mean of the paired differences on the questions both"
            " answered, with its 95 % interval (Newcombe's for 0/1 scores, Student's t"
            " for graded ones); * marks a difference Holm's adjustment across all the"
            " comparisons keeps below 0.05.</p>",
            _plot(
                diff_rows,
                marker,
                0.0,
                f"difference in mean score from {against}, with its 95 % interval",
            ),
            _table(
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
                        _fmt(c["diff"]),
                        f"{_fmt(c['ci_low'])} to {_fmt(c['ci_high'])}",
                        _fmt(c["p"], 4),
                        _fmt(c["p_holm"], 4),
                        c["test"] or "–",
                        c["verdict"],
                        _fmt(c["mde"]),
                    ]
                    for c in comparisons
                ],
            ),
        ]
        notes = footnotes(scores)
        if notes:
            parts.append("<p class='note'>" + "<br>".join(_e(n) for n in notes) + "</p>")
    parts.append("<h2>Does picking a group help?</h2>")
    for stratum in scores.get("strata") or [scores]:
        if "stratum" in stratum:
            parts.append(f"<h3>{_e(stratum['stratum'])}</h3>")
        parts.append(_table(["", "score"], _choosing(stratum)))
    if "interaction" in scores:
        lines = study_lines(scores)[-1 - len(scores["interaction"]["rows"]) :]
        parts.append("<p class='note'>" + "<br>".join(_e(line) for line in lines) + "</p>")
    return "".join(parts)


def _choosing(scores: dict[str, Any]) -> list[list[str]]:
    study = [
        ["oracle (the best group per question)", _fmt(scores["oracle"])],
        ["a group other than the baseline, picked at random", _fmt(scores["random_role"])],
    ]
    half = scores["picked_on_half"]
    if half:
        value = f"{half['picked']}: {_fmt(half['score'])}"
        if "baseline" in half:
            value += f" against {_fmt(half['baseline_score'])} ({half['verdict']})"
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
    """Head-to-head judgements (``rolebatch judge --against``)."""
    rows = [_point(r, r["win_rate"]) for r in pairwise["rows"]]
    consistency = pairwise.get("consistency")
    return "".join(
        [
            f"<h2>Head to head against {_e(pairwise['baseline'])}</h2>",
            "<p class='note'>Win rate (questions won of those decided; a pair counts only"
            " when both orders agree, and a question's samples are one unit, decided by"
            " their net) with its 95 % interval. Position consistency:"
            f" {_fmt(consistency)}{' (unreliable judge)' if pairwise.get('unreliable') else ''}."
            "</p>",
            _plot(
                rows,
                lambda r: {"better": "significant", "worse": "worse"}.get(r["verdict"], ""),
                0.5,
                f"win rate against {pairwise['baseline']} (questions won of those decided)",
            ),
            _table(
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
                        _fmt(r["win_rate"]),
                        f"{_fmt(r['ci_low'])} to {_fmt(r['ci_high'])}",
                        _fmt(r["p_holm"], 4),
                        r["verdict"],
                    ]
                    for r in pairwise["rows"]
                ],
            ),
        ]
    )
