"""A judge: a model grading the answers of an earlier run, as a task of its
own (``rolebatch judge``).  Its records are made from the judged output's ok
lines (``evaluate.judging``), one per answer, or per pair and order.

    pointwise   the rubric, the question and the answer; the judge returns
                {"reasoning": "...", "score": N}, reasoning first, N on the
                rubric's scale (1 to 10 unless the rubric says ``Scale: 1-5``)
    pairwise    the rubric, the question, answer A and answer B; the judge
                returns {"reasoning": "...", "winner": "A" | "B" | "tie"}.
                Every pair is asked in both orders (two records): a judge
                prefers the first answer it is shown, and only a verdict both
                orders agree on counts (``evaluate.pairwise``)

Blind by default: the judge sees the question and the answer, not the role
that wrote it (``show_role`` adds it), so a persona's name does not sway the
grade.  The rubric's text (its hash), the scale and the judging's settings
are the task's fingerprint: a judged output is never resumed under another.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, create_model

from ..errors import UsageError
from ..records.job import Record
from ..records.profiles import role_text
from .layout import Layout

PROMPT_VERSION = 1
DEFAULT_SCALE = (1, 10)
_SCALE = re.compile(r"^\s*scale\s*:\s*(-?\d+)\s*(?:-|–|to)\s*(-?\d+)\s*$", re.I | re.M)


@dataclass(frozen=True)
class Rubric:
    text: str
    scale: tuple[int, int] = DEFAULT_SCALE

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()[:16]


def load_rubric(path: Path) -> Rubric:
    """A rubric file (text or markdown); a line ``Scale: 1-5`` sets its scale."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"--rubric {path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"--rubric {path}: cannot read it: {exc}") from None
    if not text.strip():
        raise UsageError(f"--rubric {path}: the rubric is empty")
    found = _SCALE.search(text)
    scale = DEFAULT_SCALE
    if found:
        scale = (int(found.group(1)), int(found.group(2)))
        if scale[0] >= scale[1]:
            raise UsageError(f"--rubric {path}: scale {scale[0]}-{scale[1]}: low before high")
    return Rubric(text.strip(), scale)


@functools.cache
def score_model(low: int, high: int) -> type[BaseModel]:
    return create_model(
        "Grade",
        __doc__="The grade of one answer: the reasoning first, then the score.",
        reasoning=(str, Field(description="why the answer deserves the score, briefly")),
        score=(int, Field(ge=low, le=high, description=f"from {low} to {high}")),
    )


class Verdict(BaseModel):
    """Which of two answers is better: the reasoning first, then the winner."""

    reasoning: str = Field(description="the comparison, briefly")
    winner: Literal["A", "B", "tie"] = Field(description="A, B, or tie")


def answer_text(answer: Any) -> str:
    """An answer as the judge reads it: its only string field, or its JSON."""
    if isinstance(answer, dict):
        strings = [v for v in answer.values() if isinstance(v, str)]
        if len(strings) == 1 and len(answer) == 1:
            return strings[0]
    return json.dumps(answer, ensure_ascii=False)


@dataclass(frozen=True)
class RubricJudge:
    rubric: Rubric
    against: str | None = None  # pairwise: the baseline role every answer is set against
    show_role: bool = False
    name: str = "judge"
    keys: dict[str, bool] = field(default_factory=lambda: {"answers": True, "judged": True})

    @property
    def pairwise(self) -> bool:
        return self.against is not None

    def check(self, key: str, value: Any) -> str | None:
        if key == "answers":
            count = 2 if self.pairwise else 1
            if not isinstance(value, list) or len(value) != count:
                return f"expected a list of {count} answer(s)"
        elif not isinstance(value, dict):
            return "expected an object describing what is judged"
        return None

    def check_record(self, data: dict[str, Any]) -> tuple[str, str] | None:
        return None

    def messages(self, record: Record, layout: Layout) -> list[dict[str, str]]:
        data = record.data or {}
        judged = data["judged"]
        low, high = self.rubric.scale
        if self.pairwise:
            instruction = (
                "You compare two answers to the same question by the rubric below. Judge"
                " the answers alone: not their order, not their length. Give your reasoning"
                " first, then the winner: A, B, or tie."
            )
        else:
            instruction = (
                "You grade an answer to a question by the rubric below. Give your reasoning"
                f" first, then a score from {low} to {high}."
            )
        system = f"{instruction}\n\nRubric:\n{self.rubric.text}"
        parts = [f"Question: {record.query}"]
        if self.show_role:
            roles = judged.get("roles") or [judged.get("role")]
            shown = [role_text(r) or "(no role)" for r in roles]
            if self.pairwise:
                parts.append(f"Answer A was written as: {shown[0]}\nAnswer B as: {shown[1]}")
            else:
                parts.append(f"The answer was written as: {shown[0]}")
        answers = data["answers"]
        if self.pairwise:
            parts.append(f"Answer A:\n{answer_text(answers[0])}")
            parts.append(f"Answer B:\n{answer_text(answers[1])}")
        else:
            parts.append(f"Answer:\n{answer_text(answers[0])}")
        return [
            {"role": "system", "content": system},
            {"role": "user", "content": "\n\n".join(parts)},
        ]

    def response_model(self, record: Record) -> type[BaseModel]:
        return Verdict if self.pairwise else score_model(*self.rubric.scale)

    def line_fields(self, record: Record) -> dict[str, Any]:
        """What was judged, for the report: the answer's id, role and model."""
        judged = dict((record.data or {})["judged"])
        judged.pop("roles", None)
        fields = {
            "judged_id": judged.pop("id", None),
            "role_id": judged.pop("role_id", None),
            "judged_role": judged.pop("role", None),
            "judged_model": judged.pop("model", None),
            "query_id": judged.pop("query_id", None),
        }
        if judged.get("role_metadata"):
            fields["role_metadata"] = judged.pop("role_metadata")
        judged.pop("role_metadata", None)
        fields.update(judged)  # pairwise: pair, order, against
        return {key: value for key, value in fields.items() if value is not None}

    def fingerprint(self) -> dict[str, Any]:
        return {
            "task": self.name,
            "prompt_version": PROMPT_VERSION,
            "rubric_sha256": self.rubric.sha256,
            "scale": list(self.rubric.scale),
            "against": self.against,
            "show_role": self.show_role,
        }
