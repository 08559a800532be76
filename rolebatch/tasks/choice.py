"""A multiple-choice question: the record's ``options`` (2 to 26) go into the
prompt after its query, numbered, and the answer is ``{"option": N}`` with N
one of their numbers (any other number is a validation error, re-asked like
any other).  ``expected`` is the right option's number, or its text.

The prompt follows "Is 'A Helpful Assistant' the Best Role?" (arXiv
2311.10054): ``{question} Options: 1. ..., 2. ..., 3. ...``, then the
instruction to answer with the option's number; the role goes where the
layout puts it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, Field, create_model

from ..records.job import Record
from .layout import Layout, place

PROMPT_VERSION = 1
MOST_OPTIONS = 26


def option_number(options: list[str], expected: Any) -> int | None:
    """The 1-based number ``expected`` names: itself, or the option with its text."""
    if isinstance(expected, bool):
        return None
    if isinstance(expected, int):
        return expected if 1 <= expected <= len(options) else None
    if isinstance(expected, str):
        for number, text in enumerate(options, start=1):
            if text.strip() == expected.strip():
                return number
    return None


@functools.cache
def choice_model(options: int) -> type[BaseModel]:
    """``{"option": N}`` with N from 1 to ``options``: one class per count."""
    return create_model(
        "Choice",
        __doc__="The number of the option chosen.",
        option=(int, Field(ge=1, le=options, description=f"1 to {options}")),
    )


@dataclass(frozen=True)
class MultipleChoice:
    name: str = "choice"
    keys: dict[str, bool] = field(default_factory=lambda: {"options": True, "expected": True})

    def check(self, key: str, value: Any) -> str | None:
        if key == "options":
            if not isinstance(value, list) or not 2 <= len(value) <= MOST_OPTIONS:
                return f"expected a list of 2 to {MOST_OPTIONS} strings"
            if not all(isinstance(o, str) and o.strip() for o in value):
                return "every option must be a non-empty string"
            return None
        # "expected": checked against the options in ``check_record``.
        if isinstance(value, bool) or not isinstance(value, int | str):
            return "expected the right option's number (from 1) or its text"
        return None

    def check_record(self, data: dict[str, Any]) -> tuple[str, str] | None:
        if option_number(data["options"], data["expected"]) is None:
            return "expected", (
                f"{data['expected']!r} is neither an option's number (1 to"
                f" {len(data['options'])}) nor the text of one"
            )
        return None

    def messages(self, record: Record, layout: Layout) -> list[dict[str, str]]:
        options = (record.data or {})["options"]
        listed = ", ".join(f"{number}. {text}" for number, text in enumerate(options, 1))
        text = f"{record.query} Options: {listed}. Answer with the number of the right option."
        return place(record.role, text, layout)

    def response_model(self, record: Record) -> type[BaseModel]:
        return choice_model(len((record.data or {})["options"]))

    def line_fields(self, record: Record) -> dict[str, Any]:
        data = record.data or {}
        return {"options": data["options"], "expected": data["expected"]}

    def fingerprint(self) -> dict[str, Any]:
        return {"task": self.name, "prompt_version": PROMPT_VERSION}
