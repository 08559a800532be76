"""A report of outputs as a straight line: the lines read and grouped (one
pass, every observer fed the same line), the figures computed, the gate
decided; the result is one ``Report`` that every format renders
(``render``).  Nothing here writes or prints."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..records.report import Group, read
from ..records.sidecar import read_sidecar
from .gate import Rules, decide
from .pairwise import Pairwise
from .provenance import Provenance
from .scores import Scores
from .tables import headline


@dataclass(frozen=True)
class Asked:
    """What a report was asked for (``rolebatch report``'s options)."""

    by: str = "role"
    score: str | None = None
    baseline: str | None = None
    errors: str = "zero"
    seed: int = 0
    rules: Rules = field(default_factory=Rules)


@dataclass(frozen=True)
class Report:
    """Everything a report says, read by the table, the markdown, the CSV, the
    JSON, the page and the step summary alike."""

    outputs: list[Path]
    by: str
    groups: dict[str, Group]  # the descriptive figures, per group
    scores: dict[str, Any] | None  # the study: scores, comparisons, choosing
    pairwise: dict[str, Any] | None  # a judge's head-to-head
    about: dict[str, Any]  # provenance
    headline: list[str]
    gate: dict[str, Any] | None

    @property
    def empty(self) -> bool:
        return not self.groups


def study(outputs: list[Path], asked: Asked) -> Report:
    """Read ``outputs`` once and say what they show."""
    scale = _scale(outputs, asked.score)
    scores = Scores(
        asked.score, asked.errors, required=asked.score is not None, by=asked.by, scale=scale
    )
    heads, seen = Pairwise(), Provenance()

    def observe(line: dict[str, Any], group: str) -> None:
        scores.add(line, group)
        heads.add(line, group)
        seen.add(line)

    groups = read(outputs, asked.by, observe=observe)
    figures = scores.report(asked.baseline, asked.seed, asked.rules.margin) if groups else None
    pairwise = heads.report()
    missing = None
    if not groups:
        missing = f"no lines in {', '.join(map(str, outputs))}: nothing to report"
    elif asked.rules.given() and figures is None and pairwise is None:
        if any(g.ok for g in groups.values()):
            raise UsageError("a gate needs scores (--score) or a judge's head-to-head")
        read_lines = sum(g.records for g in groups.values())
        missing = f"every line is an error ({read_lines:,} lines): nothing was scored"
    questions = figures["questions"] if figures else None
    return Report(
        outputs=outputs,
        by=asked.by,
        groups=groups,
        scores=figures,
        pairwise=pairwise,
        about=seen.as_dict(outputs, questions, len(groups), asked.by),
        headline=headline(figures, pairwise),
        gate=decide(asked.rules, figures, pairwise, missing),
    )


def _scale(outputs: list[Path], score: str | None) -> tuple[float, float] | None:
    """The scale of a judge's scores (its rubric's), when every output is a
    judge's on one scale and the score read is the judge's own."""
    if score != "field:score":
        return None
    scales = set()
    for output in outputs:
        meta = read_sidecar(output) if output.is_file() else None
        scale = ((meta or {}).get("config") or {}).get("scale")
        if not isinstance(scale, list) or len(scale) != 2:
            return None
        scales.add((float(scale[0]), float(scale[1])))
    return scales.pop() if len(scales) == 1 else None
