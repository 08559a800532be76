"""Tasks: what is asked of the model about a record, and what comes back.

    task     the contract every task keeps (``Task``)
    layout   where a record's role goes in the prompt: the layouts tasks share
    role     the seed's task: the role prompt, answered as ``Response`` or --schema
    schema   response models from --schema: a pydantic class or a JSON Schema

``open_task`` gives the task a run carries.  Adding a task is a module here
and a line in ``open_task``; nothing else in the package asks which task it is.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .task import Task


def open_task(schema: str | None) -> Task:
    """The task of a run, checked: UsageError before anything is sent.
    (Imported here, not at the top: the command line reads ``layout`` at
    start-up and must not wait for instructor.)"""
    from ..quirks.instructor import check_response_model
    from .role import RolePrompt
    from .schema import load_schema

    model = load_schema(schema)
    name = schema or "Response"
    check_response_model(model, name)
    return RolePrompt(model, name)
