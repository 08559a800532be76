"""A short free answer: ``{"answer": "..."}``, with ``expected`` the right
answer or a list of accepted ones (``exact`` scores it by default)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, Field

from ..records.job import Record
from .layout import Layout, place

PROMPT_VERSION = 1


class Answer(BaseModel):
    """A short answer, in a few words."""

    answer: str = Field(description="the answer alone, in a few words")


@dataclass(frozen=True)
class ShortAnswer:
    name: str = "answer"
    keys: dict[str, bool] = field(default_factory=lambda: {"expected": True})

    def check(self, key: str, value: Any) -> str | None:
        if isinstance(value, str) and value.strip():
            return None
        if isinstance(value, list) and value and all(isinstance(v, str) and v for v in value):
            return None
        return "expected a non-empty string, or a list of accepted strings"

    def check_record(self, data: dict[str, Any]) -> tuple[str, str] | None:
        return None

    def messages(self, record: Record, layout: Layout) -> list[dict[str, str]]:
        return place(record.role, f"{record.query} Answer in a few words.", layout)

    def response_model(self, record: Record) -> type[BaseModel]:
        return Answer

    def line_fields(self, record: Record) -> dict[str, Any]:
        return {"expected": (record.data or {})["expected"]}

    def fingerprint(self) -> dict[str, Any]:
        return {"task": self.name, "prompt_version": PROMPT_VERSION}
