"""A panel: several roles answered a question apart (a sweep); one more call,
the synthesizer, reads every answer and gives the task's own answer
(``rolebatch panel``).  Its records are made from the sweep's output
(``evaluate.panels``), one per question, with the question's own keys (a
choice's options and expected answer) and the panel's answers.

The answers are labelled neutrally (``Answer 1``, ``Answer 2``, ...), in an
order shuffled per question with a seed, so neither a role's name nor its
place in the roles file sways the synthesizer; the synthesizer's own role is
the record's role, placed as --layout says.  The answer is validated as the
task's (``{"option": N}`` for a choice), so scorers and judges read it as they
read any role's, and its line says ``role_id`` ``panel`` and which roles it
combined.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from ..records.job import Record
from .layout import Layout, place
from .task import Task

PROMPT_VERSION = 1


@dataclass(frozen=True)
class Panel:
    inner: Task  # the task the panel answered: its prompt text and answer
    name: str = "panel"

    @property
    def keys(self) -> dict[str, bool]:
        return {**self.inner.keys, "answers": True, "panel": True}

    def check(self, key: str, value: Any) -> str | None:
        if key == "answers":
            if not isinstance(value, list) or not value:
                return "expected the panel's answers, a non-empty list"
            return None
        if key == "panel":
            return None if isinstance(value, dict) else "expected an object"
        return self.inner.check(key, value)

    def check_record(self, data: dict[str, Any]) -> tuple[str, str] | None:
        own = {k: v for k, v in data.items() if k in self.inner.keys}
        return self.inner.check_record(own)

    def _question(self, record: Record) -> str:
        """The task's own text for the record, without any role."""
        (message,) = self.inner.messages(record._replace(role=None), "system")
        return message["content"]

    def messages(self, record: Record, layout: Layout) -> list[dict[str, str]]:
        answers = (record.data or {})["answers"]
        listed = "\n".join(
            f"Answer {n}: {json.dumps(answer, ensure_ascii=False)}"
            for n, answer in enumerate(answers, start=1)
        )
        text = (
            f"{self._question(record)}\n\n"
            f"A panel answered this apart; their answers:\n{listed}\n\n"
            "Weigh the answers: keep what is right, leave out what is wrong, and give the"
            " best answer to the task yourself."
        )
        return place(record.role, text, layout)

    def response_model(self, record: Record) -> type[BaseModel]:
        return self.inner.response_model(record)

    def line_fields(self, record: Record) -> dict[str, Any]:
        panel = (record.data or {})["panel"]
        own = {k: v for k, v in (record.data or {}).items() if k in self.inner.keys}
        return {
            **self.inner.line_fields(record._replace(data=own)),
            "role_id": "panel",
            "query_id": panel.get("query_id"),
            "panel_roles": panel.get("roles"),
        }

    def fingerprint(self) -> dict[str, Any]:
        inner = self.inner.fingerprint()
        task = inner.get("task", "role")  # the role task's fingerprint predates tasks
        return {**inner, "task": f"panel:{task}", "panel": PROMPT_VERSION}
