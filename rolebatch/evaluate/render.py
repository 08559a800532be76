"""A ``Report`` in each of its formats, in one place: a terminal table,
markdown (a CI step summary), CSV, JSON and the self-contained page; and
the gate's lines for ``$GITHUB_STEP_SUMMARY``."""

from __future__ import annotations

import json

from .descriptive import as_data, cells
from .descriptive import render as descriptive
from .gate import lines
from .numbers import finite
from .study import Report
from .tables import as_csv, pairwise_csv, pairwise_text, text


def render(report: Report, fmt: str) -> str:
    """The whole report as ``fmt`` (table, md, csv, json, html); an empty
    report is still JSON as JSON, and still ends with its gate."""
    if fmt == "json":
        data = {
            "by": report.by,
            "headline": report.headline,
            "provenance": report.about,
            "groups": as_data(report.groups),
            "scores": report.scores,
            "pairwise": report.pairwise,
            "gate": report.gate,
        }
        return json.dumps(finite(data), indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    if fmt == "html":
        from .page import page

        title = f"rolebatch report: {', '.join(o.name for o in report.outputs)}"
        body = cells(report.groups, report.by)
        found = (report.scores, body, report.pairwise, report.gate, report.about)
        return page(title, report.by, *found, report.headline) + "\n"
    parts = []
    if report.empty:
        pass  # nothing to show but the gate, if one was asked for
    elif fmt == "csv" and (report.scores is not None or report.pairwise is not None):
        parts.append(
            as_csv(report.scores) if report.scores else pairwise_csv(report.pairwise or {})
        )
    else:
        parts.append(descriptive(report.groups, fmt, report.by))
        if report.scores is not None:
            parts.append(text(report.scores, fmt))
        if report.pairwise is not None:
            parts.append(pairwise_text(report.pairwise, fmt))
    if report.gate is not None and (fmt in ("table", "md") or report.empty):
        parts.append("\n" + "\n".join(lines(report.gate)) + "\n")
    return "".join(parts)


def step_summary(report: Report) -> str:
    """The gate and the verdicts, for a GitHub Actions step summary."""
    assert report.gate is not None
    parts = [
        f"### rolebatch report: the gate {report.gate['outcome']}\n",
        *(f"- {line}" for line in lines(report.gate)),
    ]
    if report.scores is not None:
        parts.append(text(report.scores, "md"))
    if report.pairwise is not None:
        parts.append(pairwise_text(report.pairwise, "md"))
    return "\n".join(parts) + "\n"
