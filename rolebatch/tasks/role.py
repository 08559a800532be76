"""The seed's task: the record's role in the prompt with its query, and the
answer validated against ``Response`` (one field, ``poem``) or ``--schema``.
A record may carry ``expected`` (any JSON), repeated on its output line for
a scorer (``rolebatch report --score``).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from ..records.job import Record
from .layout import Layout, place

# Bump when the messages built for a record change: a resumed run refuses to
# mix answers to two different prompts in one output.
PROMPT_VERSION = 1


@dataclass(frozen=True)
class RolePrompt:
    model: type[BaseModel]
    schema_name: str = "Response"  # as --schema gave it
    name: str = "role"
    keys: dict[str, bool] = field(default_factory=lambda: {"expected": False})

    def check(self, key: str, value: Any) -> str | None:
        return None  # "expected" may be anything a scorer reads

    def check_record(self, data: dict[str, Any]) -> tuple[str, str] | None:
        return None

    def messages(self, record: Record, layout: Layout) -> list[dict[str, str]]:
        return place(record.role, record.query, layout)

    def response_model(self, record: Record) -> type[BaseModel]:
        return self.model

    def line_fields(self, record: Record) -> dict[str, Any]:
        data = record.data or {}
        return {"expected": data["expected"]} if "expected" in data else {}

    def fingerprint(self) -> dict[str, Any]:
        schema = json.dumps(self.model.model_json_schema(), sort_keys=True)
        return {
            "schema": self.schema_name,
            "schema_sha256": hashlib.sha256(schema.encode()).hexdigest()[:16],
            "prompt_version": PROMPT_VERSION,
        }
