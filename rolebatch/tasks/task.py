"""What a task is: what is asked of the model about a record, and what must
come back.  A run carries one task (``Plan.task``); the pipeline, both ways
of buying answers, the estimate, cost, shards, resume and sweeps use it
without knowing which task it is.

A task says:

    keys            the job file's keys beyond id, query, role and metadata:
                    name -> required or not; the job file stays strict
    check           the problem with one of those keys' values, if any
    check_record    the problem with them together (the key to name, and what)
    messages        the chat messages a record becomes, for a layout
    response_model  the pydantic model its answer must validate against
    line_fields     what of the record its output line repeats
    fingerprint     what of the task an output must not change under
                    (a resumed run with another is refused)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from pydantic import BaseModel

from ..records.job import Record
from .layout import Layout


class Task(Protocol):
    name: str
    keys: Mapping[str, bool]

    def check(self, key: str, value: Any) -> str | None: ...

    def check_record(self, data: dict[str, Any]) -> tuple[str, str] | None: ...

    def messages(self, record: Record, layout: Layout) -> list[dict[str, str]]: ...

    def response_model(self, record: Record) -> type[BaseModel]: ...

    def line_fields(self, record: Record) -> dict[str, Any]: ...

    def fingerprint(self) -> dict[str, Any]: ...
