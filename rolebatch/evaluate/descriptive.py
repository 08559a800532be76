"""The descriptive table of a report (records, ok share, error kinds,
latency, tokens, cost, and per response field), as shown: aligned text,
markdown, CSV and JSON.  Its figures are ``records.report.rows``."""

from __future__ import annotations

import csv
import io
import json
import re
from typing import Any

from ..records.report import Group, rows
from .numbers import finite, plain, text_table


def _cell(metric: str, value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, int):
        return f"{value:,}"
    if metric == "ok share" or " = " in metric:
        return f"{value:.0%}"
    if metric == "cost usd":
        return f"${value:.4g}"
    return f"{value:,.3g}" if abs(value) < 1000 else f"{value:,.0f}"


def as_data(groups: dict[str, Group]) -> dict[str, dict[str, Any]]:
    """Per group, each metric's value: what ``--format json`` prints, each
    metric named as an identifier ("ok share" is ``ok_share``)."""
    table = [(identifier(metric), [plain(v) for v in values]) for metric, values in rows(groups)]
    return {name: {metric: values[i] for metric, values in table} for i, name in enumerate(groups)}


def identifier(metric: str) -> str:
    """A metric's name as a JSON key: lower case, words joined by _."""
    return re.sub(r"[^0-9a-z]+", "_", metric.lower()).strip("_")


def render(groups: dict[str, Group], fmt: str, by: str) -> str:
    names = list(groups)
    table = [(metric, [plain(v) for v in values]) for metric, values in rows(groups)]
    if fmt == "json":
        data = finite({"by": by, "groups": as_data(groups)})
        return json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["metric", *names])
        for metric, values in table:
            writer.writerow([metric, *("" if v is None else v for v in values)])
        return out.getvalue()
    return text_table(*cells(groups, by), fmt)


def cells(groups: dict[str, Group], by: str) -> tuple[list[Any], list[list[Any]]]:
    """The table as shown: a header (``by`` and the groups) and a row a metric."""
    body = [[metric, *(_cell(metric, v) for v in values)] for metric, values in rows(groups)]
    return [by, *groups], body
