"""The report page's plots, as inline SVG (no script, no font): a dot plot
of points on their intervals with a dashed reference line and a dotted
chance line, a bar a group of its questions won, tied and lost, the ticks,
and a plot's legend."""

from __future__ import annotations

import html
import math
from typing import Any

WIDTH = 760
LABEL = 190  # room for the group names on the left
ROW = 26
PAD = 28
AXIS = 16  # room under the ticks for what the axis measures


def escape(value: Any) -> str:
    """Text as HTML, quotes too."""
    return html.escape(str(value), quote=True)


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


def dot_plot(
    rows: list[dict[str, Any]],
    marker: Any,
    zero: float | None,
    caption: str,
    chance: float | None = None,
) -> str:
    """One row a group: a point at ``value`` on its interval; a dashed line
    at ``zero`` (the baseline's mean, no difference, an even win rate) and a
    dotted one at ``chance``."""
    drawn = [r for r in rows if r["value"] is not None]
    if not drawn:
        return ""
    lows = [r["low"] if r["low"] is not None else r["value"] for r in drawn]
    highs = [r["high"] if r["high"] is not None else r["value"] for r in drawn]
    extra = [v for v in (zero, chance) if v is not None]
    low, high, x = _scale(min(lows + extra), max(highs + extra))
    height = PAD + ROW * len(drawn) + 24 + AXIS
    parts = [
        f'<svg role="img" aria-label="{escape(caption)}" width="{WIDTH}" height="{height}"'
        f' viewBox="0 0 {WIDTH} {height}" xmlns="http://www.w3.org/2000/svg">',
        _ticks(low, high, x, height),
    ]
    if zero is not None:
        parts.append(
            f'<line class="zero" x1="{x(zero):.1f}" y1="8" x2="{x(zero):.1f}"'
            f' y2="{height - 22 - AXIS}"/>'
        )
    if chance is not None:
        parts.append(
            f'<line class="chance" x1="{x(chance):.1f}" y1="8" x2="{x(chance):.1f}"'
            f' y2="{height - 22 - AXIS}"/>'
        )
    for i, row in enumerate(drawn):
        y = PAD + ROW * i
        start = row["low"] if row["low"] is not None else row["value"]
        end = row["high"] if row["high"] is not None else row["value"]
        parts.append(
            f'<g class="row {marker(row)}" data-group="{escape(row["key"])}">'
            f'<text x="{LABEL - 10}" y="{y + 4}" text-anchor="end">{escape(row["label"])}</text>'
            f'<line class="interval" x1="{x(start):.1f}" y1="{y}" x2="{x(end):.1f}" y2="{y}"/>'
            f'<circle class="point" cx="{x(row["value"]):.1f}" cy="{y}" r="5"/></g>'
        )
    # The axis says what it measures.
    parts.append(
        f'<text class="axis" x="{(x(low) + x(high)) / 2:.1f}" y="{height - 4}"'
        f' text-anchor="middle">{escape(caption)}</text></svg>'
    )
    return "".join(parts)


def legend(*items: tuple[str, str]) -> str:
    """A plot's legend: (swatch class, what it is)."""
    shown = "".join(f"<span class='swatch {cls}'></span>{escape(what)}" for cls, what in items)
    return f"<p class='legend'>{shown}</p>"


def outcomes(rows: list[dict[str, Any]], against: str) -> str:
    """A bar a group: the shares of its questions won, tied and lost."""
    height = PAD + ROW * len(rows) + 24 + AXIS

    def x(share: float) -> float:
        return LABEL + share * (WIDTH - LABEL - PAD)

    parts = [
        f'<svg role="img" aria-label="questions won, tied and lost" width="{WIDTH}"'
        f' height="{height}" viewBox="0 0 {WIDTH} {height}" xmlns="http://www.w3.org/2000/svg">',
        _ticks(0.0, 1.0, x, height),
    ]
    for i, r in enumerate(rows):
        y = PAD + ROW * i
        total = r["wins"] + r["ties"] + r["losses"]
        parts.append(
            f'<g class="outcomes" data-group="{escape(r["key"])}">'
            f'<text x="{LABEL - 10}" y="{y + 4}" text-anchor="end">{escape(r["key"])}</text>'
        )
        start = 0.0
        for cls, count in (("won", r["wins"]), ("tied", r["ties"]), ("lost", r["losses"])):
            if not total or not count:
                continue
            share = count / total
            parts.append(
                f'<rect class="{cls}" x="{x(start):.1f}" y="{y - 8}"'
                f' width="{x(start + share) - x(start):.1f}" height="16"/>'
            )
            start += share
        parts.append("</g>")
    parts.append(
        f'<text class="axis" x="{(x(0) + x(1)) / 2:.1f}" y="{height - 4}" text-anchor="middle">'
        f"share of questions won, tied and lost against {escape(against)}</text></svg>"
    )
    return "".join(parts)
