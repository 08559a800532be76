"""What a search found, in each format (text, md, json, html) and for a CI
step summary: the decision first, in one line; then the race round by
round, the pick's estimate on the search part beside the held-out one (the
winner's curse, measured), and the calls and cost against a full sweep.

Everything is read from the search's state (``search.json``), so
``rolebatch report FOLDER`` says the same as the search did."""

from __future__ import annotations

import json
from typing import Any

from ..evaluate.numbers import finite, interval, p_value, text_table
from ..evaluate.page import STYLE, html_table
from ..evaluate.plots import escape

TESTS = {
    "mcnemar-exact": "McNemar's exact test, Newcombe's interval",
    "paired-t": "the paired t-test, Student's t interval",
    "sign": "the sign test, the exact no-spread bound",
}


def signed(value: float | None) -> str:
    return "-" if value is None else f"{value:+.3f}"


def decision_line(state: dict[str, Any]) -> str:
    """The one line a search leads with."""
    found = state.get("decision") or {}
    n = found.get("held_out_questions", 0)
    pick = found.get("candidate")
    span = interval(found.get("ci_low"), found.get("ci_high"))
    if state.get("status") == "undecided":
        return (
            f"not decided: on the held-out part, {pick} or the control gave fewer than 2 answers"
            " (the rest are errors): nothing to decide on; the same command asks the failed"
            " ones again"
        )
    if not found.get("confirmed"):
        led = f"{pick} led the race, not confirmed" if pick else "no candidate had answered yet"
        why, then = {
            "budget reached": ("--max-cost was reached", "a higher --max-cost goes on"),
            "pending": ("batches are still out", "the same command collects them and goes on"),
        }.get(state.get("status", ""), ("the search stopped", "the same command goes on"))
        return f"not decided: {why} before the held-out verdict ({led}); {then}"
    verdict = found.get("verdict")
    if verdict == "better":
        return (
            f"use {pick}: {signed(found.get('diff'))} ({span}) over no role on {n:,}"
            " held-out questions"
        )
    if verdict == "worse":
        return (
            f"{pick} is worse than no role on {n:,} held-out questions:"
            f" {signed(found.get('diff'))} ({span}): use none"
        )
    return (
        f"no role beat no role on {n:,} held-out questions: use none (the race's pick,"
        f" {pick}: {signed(found.get('diff'))} ({span}))"
    )


def _rows(state: dict[str, Any]) -> list[list[str]]:
    """One row per round: who answered what, who went on, who was dropped."""
    rows = []
    for played in (state.get("race") or {}).get("rounds", []):
        start, end = played["questions"]
        standing = played["standing"]
        kept = [s["role"] for s in standing if s["kept"]]
        dropped = [s["role"] for s in standing if not s["kept"]]
        leader = standing[0] if standing else None
        control = played.get("control") or {}
        rows.append(
            [
                str(played["round"]),
                f"{len(standing)}",
                f"{start + 1}-{end}",
                f"{leader['role']} {_mean(leader)}" if leader else "-",
                _mean(control),
                ", ".join(kept) if len(kept) <= 3 else f"{len(kept)}",
                _few(dropped),
            ]
        )
    return rows


def _mean(row: dict[str, Any] | None) -> str:
    mean = (row or {}).get("mean")
    return "-" if mean is None else f"{mean:.3f}"


def _few(names: list[str], most: int = 6) -> str:
    if not names:
        return "-"
    shown = ", ".join(names[:most])
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")


def _estimates(state: dict[str, Any]) -> list[list[str]]:
    rows = []
    for label, key in (("search part (chose it)", "search_estimate"), ("held-out", "held_out")):
        found = state.get(key)
        if not found:
            continue
        rows.append(
            [
                label,
                f"{found.get('n', 0):,}",
                signed(found.get("diff")),
                interval(found.get("ci_low"), found.get("ci_high")),
                p_value(found.get("p")),
                found.get("verdict", "(not a verdict)") if key == "held_out" else "-",
            ]
        )
    return rows


def _cost_line(state: dict[str, Any]) -> str:
    cost = state.get("cost") or {}
    calls, full = cost.get("calls", 0), cost.get("full_sweep_calls", 0)
    share = f" ({calls / full:.0%})" if full else ""
    said = f"calls: {calls:,} of a full sweep's {full:,}{share}"
    if cost.get("usd") == 0:
        said += "; cost $0 (this model is free)"
    elif cost.get("usd") is not None:
        said += f"; cost ${cost['usd']:.4f}"
        if cost.get("full_sweep_usd") is not None:
            said += f" (a full sweep: about ${cost['full_sweep_usd']:.4f})"
    return said


def _about(state: dict[str, Any]) -> str:
    setup = state.get("setup") or {}
    split = setup.get("split") or {}
    search, held = len(split.get("search", [])), len(split.get("held_out", []))
    return (
        f"{len(setup.get('candidates', []))} candidates and the control ({setup.get('control')}),"
        f" {state.get('model')}, scored by {setup.get('score')}; {search:,} search questions,"
        f" {held:,} held out (seed {setup.get('seed')}"
        + (f", strata metadata.{setup['strata']}" if setup.get("strata") else "")
        + ")"
    )


def render(state: dict[str, Any], fmt: str) -> str:
    """The search's report as ``fmt`` (table or text, md, json, html)."""
    if fmt == "json":
        data = {"decision": {**(state.get("decision") or {}), "line": decision_line(state)}}
        data.update({k: v for k, v in state.items() if k != "decision"})
        return json.dumps(finite(data), indent=2, ensure_ascii=False) + "\n"
    if fmt == "html":
        return page(state)
    md = fmt == "md"
    head = ["round", "asked", "questions", "leader", "control", "went on", "dropped"]
    test = TESTS.get((state.get("held_out") or {}).get("test") or "", "")
    parts = [
        ("**" + decision_line(state) + "**") if md else decision_line(state),
        "",
        _about(state),
        "",
        "The race (successive halving):" if not md else "### The race (successive halving)",
        text_table(head, _rows(state), "md" if md else "table"),
    ]
    estimates = _estimates(state)
    if estimates:
        parts += [
            "The pick against the control:" if not md else "### The pick against the control",
            text_table(
                ["part", "questions", "difference", "95% interval", "p", "verdict"],
                estimates,
                "md" if md else "table",
            ),
            f"Held-out verdict by {test}, two-sided alpha 0.05; the search part's figures are"
            " flattered by the choice (the winner's curse) and decide nothing.",
            "",
        ]
    parts.append(_cost_line(state))
    return "\n".join(parts) + "\n"


def step_summary(state: dict[str, Any]) -> str:
    return "### rolebatch search\n\n" + render(state, "md")


# -- the page ------------------------------------------------------------

PAGE_STYLE = """
.race .line { fill: none; stroke: #9ca3af; stroke-width: 1.5; }
.race .line.pick { stroke: #2563eb; stroke-width: 3; }
.race .line.control { stroke: #b45309; stroke-width: 2; stroke-dasharray: 5 4; }
.race .dot { fill: #9ca3af; } .race .dot.pick { fill: #2563eb; }
.race .drop { stroke: #dc2626; stroke-width: 2; }
.decision { font-size: 17px; padding: 10px 14px; border-radius: 6px; margin: 8px 0 18px; }
.decision.better { background: #ecfdf5; border: 1px solid #059669; }
.decision.none { background: #f8fafc; border: 1px solid #6b7280; }
.decision.worse { background: #fef2f2; border: 1px solid #dc2626; }
.decision.open { background: #fffbeb; border: 1px solid #d97706; }
"""
WIDTH, HEIGHT, LEFT, BOTTOM, TOP, RIGHT = 760, 320, 60, 40, 16, 150


def _race_svg(state: dict[str, Any]) -> str:
    """Each candidate's mean round by round, a line to the round it was
    dropped after (marked x), the pick in blue, the control dashed."""
    rounds = (state.get("race") or {}).get("rounds", [])
    if not rounds:
        return "<p class='note'>No round has ended yet.</p>"
    pick = (state.get("decision") or {}).get("candidate")
    paths: dict[str, list[tuple[int, float]]] = {}
    dropped: dict[str, int] = {}
    for played in rounds:
        for s in played["standing"]:
            if s["mean"] is not None:
                paths.setdefault(s["role"], []).append((played["round"], s["mean"]))
            if not s["kept"]:
                dropped[s["role"]] = played["round"]
        control = played.get("control") or {}
        if control.get("mean") is not None:
            paths.setdefault("\0control", []).append((played["round"], control["mean"]))
    values = [v for points in paths.values() for _, v in points] or [0.0, 1.0]
    low, high = min(values), max(values)
    if low >= 0 and high <= 1:
        low, high = 0.0, 1.0  # a share right: the whole scale
    else:
        if high - low < 1e-9:
            low, high = low - 0.5, high + 0.5
        pad = (high - low) * 0.08
        low, high = low - pad, high + pad
    last = max(played["round"] for played in rounds)

    def x(r: int) -> float:
        return LEFT + (r - 1) / max(1, last - 1) * (WIDTH - LEFT - RIGHT) if last > 1 else LEFT + 40

    def y(v: float) -> float:
        return TOP + (high - v) / (high - low) * (HEIGHT - TOP - BOTTOM)

    svg = [
        f"<svg class='race' width='{WIDTH}' height='{HEIGHT}' viewBox='0 0 {WIDTH} {HEIGHT}'"
        " role='img' aria-label='the race, round by round'>"
    ]
    for k in range(5):
        v = low + (high - low) * k / 4
        svg.append(
            f"<line class='grid' x1='{LEFT}' x2='{WIDTH - RIGHT}' y1='{y(v):.1f}' y2='{y(v):.1f}'/>"
            f"<text x='{LEFT - 6}' y='{y(v) + 4:.1f}' text-anchor='end'>{v:.2f}</text>"
        )
    for played in rounds:
        r = played["round"]
        end = played["questions"][1]
        svg.append(
            f"<text x='{x(r):.1f}' y='{HEIGHT - BOTTOM + 16}' text-anchor='middle'>{r}"
            f" ({end}q)</text>"
        )
    svg.append(
        f"<text x='{(LEFT + WIDTH - RIGHT) / 2:.0f}' y='{HEIGHT - 4}' text-anchor='middle'>"
        "round (questions each survivor has answered)</text>"
        f"<text x='12' y='{(TOP + HEIGHT - BOTTOM) / 2:.0f}' text-anchor='middle'"
        f" transform='rotate(-90 12 {(TOP + HEIGHT - BOTTOM) / 2:.0f})'>mean score</text>"
    )
    order = sorted(paths, key=lambda role: (role == pick, role == "\0control"))
    for role in order:
        points = paths[role]
        kind = "control" if role == "\0control" else ("pick" if role == pick else "")
        coords = " ".join(f"{x(r):.1f},{y(v):.1f}" for r, v in points)
        name = state.get("setup", {}).get("control") if kind == "control" else role
        svg.append(
            f"<g data-role='{escape(name)}'><polyline class='line {kind}' points='{coords}'/>"
        )
        for r, v in points:
            svg.append(f"<circle class='dot {kind}' cx='{x(r):.1f}' cy='{y(v):.1f}' r='3'/>")
        if role in dropped:
            r, v = points[-1]
            cx, cy = x(r) + 7, y(v)
            svg.append(f"<path class='drop' d='M{cx - 3:.1f},{cy - 3:.1f}l6,6m0,-6l-6,6'/>")
        if kind:
            r, v = points[-1]
            label = "control" if kind == "control" else f"{role} (picked)"
            svg.append(f"<text x='{x(r) + 14:.1f}' y='{y(v) + 4:.1f}'>{escape(label)}</text>")
        svg.append("</g>")
    svg.append("</svg>")
    return "".join(svg)


def page(state: dict[str, Any]) -> str:
    found = state.get("decision") or {}
    if not found.get("confirmed"):
        kind = "open"
    else:
        kind = {"better": "better", "worse": "worse"}.get(found.get("verdict") or "", "none")
    estimates = _estimates(state)
    head = ["round", "asked", "questions", "leader", "control", "went on", "dropped"]
    title = f"rolebatch search: {(state.get('setup') or {}).get('job', '')}"
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{escape(title)}</title><style>{STYLE}{PAGE_STYLE}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        f"<div class='decision {kind}' data-verdict='{escape(found.get('verdict') or '')}'>"
        f"<b>{escape(decision_line(state))}</b></div>",
        f"<p class='note'>{escape(_about(state))}</p>",
        "<h2>The race</h2>",
        "<p class='legend'>Each candidate's mean score on the search questions it had answered"
        " after each round; a line ends where the candidate was dropped (x).<span class='swatch'>"
        "</span>the pick <span class='swatch dashed'></span>the control</p>",
        _race_svg(state),
        html_table(head, _rows(state)),
    ]
    if estimates:
        parts += [
            "<h2>The pick against the control</h2>",
            html_table(
                ["part", "questions", "difference", "95% interval", "p", "verdict"], estimates
            ),
            "<p class='note'>The held-out verdict is the paired test on questions the race never"
            " saw; the search part's figure is flattered by the choice and decides nothing.</p>",
        ]
    parts += [f"<p class='note'>{escape(_cost_line(state))}</p>", "</body></html>\n"]
    return "".join(parts)
