"""How the report writes its figures, in one place: the tables, the
headline, the gate's lines and the page all use these.

    number, interval, p_value   a figure, an interval, a p-value as text
    plain, finite               a float as its shortest faithful text; JSON's nulls
    text_table                  rows under a header, for a terminal or markdown
"""

from __future__ import annotations

import math
from typing import Any


def number(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def interval(low: float | None, high: float | None) -> str:
    return "-" if low is None or high is None else f"{low:.3f} to {high:.3f}"


def p_value(value: float | None) -> str:
    """A p-value: three decimals, and "<0.001" below them (never "0.000")."""
    if value is None:
        return "-"
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def finite(data: Any) -> Any:
    """``data`` with every NaN or infinity made null: JSON has no such numbers."""
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {k: finite(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [finite(v) for v in data]
    return data


def plain(value: Any) -> Any:
    """A float as its shortest faithful text would show it: 5.8989, not
    5.898899999999999 (the noise of summing binary fractions)."""
    return float(f"{value:.12g}") if isinstance(value, float) else value


def text_table(header: list[Any], body: list[list[Any]], fmt: str) -> str:
    """Rows under a header: aligned for a terminal (``table``: the first
    column left, the rest right), or as markdown (``md``)."""
    if fmt == "md":
        lines = ["| " + " | ".join(_md(c) for c in header) + " |"]
        lines.append("|---" + "|---:" * (len(header) - 1) + "|")
        lines += ["| " + " | ".join(_md(c) for c in cells) + " |" for cells in body]
        return "\n".join(lines) + "\n"
    widths = [max(len(str(r[i])) for r in [header, *body]) for i in range(len(header))]
    lines = []
    for n, cells in enumerate([header, *body]):
        first = str(cells[0]).ljust(widths[0])
        rest = [str(c).rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True)]
        lines.append("  ".join([first, *rest]).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines) + "\n"


def _md(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")
