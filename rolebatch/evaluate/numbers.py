"""How the report writes its figures, in one place: the tables, the
headline, the gate's lines and the page all use these."""

from __future__ import annotations


def number(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def interval(low: float | None, high: float | None) -> str:
    return "-" if low is None or high is None else f"{low:.3f} to {high:.3f}"


def p_value(value: float | None) -> str:
    """A p-value: three decimals, and "<0.001" below them (never "0.000")."""
    if value is None:
        return "-"
    return "<0.001" if value < 0.001 else f"{value:.3f}"
