"""Tasks: what is asked of the model about a record, and what comes back.

    task     the contract every task keeps (``Task``)
    layout   where a record's role goes in the prompt: the layouts tasks share
    role     the seed's task: the role prompt, answered as ``Response`` or --schema
    choice   a multiple-choice question: ``{"option": N}``
    answer   a short free answer: ``{"answer": "..."}``
    judge    a judge grading an earlier run's answers: by a rubric, or head to head
    panel    a synthesizer answering from a panel of roles' answers (``panel:<task>``)
    schema   response models from --schema: a pydantic class or a JSON Schema

``open_task`` gives the task a run carries.  Adding a task is a module here
and a line in ``open_task``; nothing else in the package asks which task it is.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import UsageError

if TYPE_CHECKING:
    from .task import Task

# --task's choices; the first is the default.  (A judge is run by `rolebatch
# judge`, which makes its records.)
TASKS = ("role", "choice", "answer")


def open_task(
    name: str = "role",
    schema: str | None = None,
    *,
    rubric: Path | None = None,
    against: str | None = None,
    show_role: bool = False,
) -> Task:
    """The task of a run, checked: UsageError before anything is sent.
    (Imported here, not at the top: the command line reads ``TASKS`` and the
    layouts at start-up and must not wait for instructor.)"""
    if name == "role":
        from ..quirks.instructor import check_response_model
        from .role import RolePrompt
        from .schema import load_schema

        model = load_schema(schema)
        label = schema or "Response"
        check_response_model(model, label)
        return RolePrompt(model, label)
    if schema:
        raise UsageError(f"--schema is for --task role; --task {name} has its own answer")
    if name == "choice":
        from .choice import MultipleChoice

        return MultipleChoice()
    if name == "answer":
        from .answer import ShortAnswer

        return ShortAnswer()
    if name.startswith("panel:"):
        from .panel import Panel

        return Panel(open_task(name.removeprefix("panel:"), schema))
    if name == "judge":
        from .judge import RubricJudge, load_rubric

        if rubric is None:
            raise UsageError("a judge needs --rubric FILE")
        return RubricJudge(load_rubric(Path(rubric)), against, show_role)
    raise UsageError(f"--task {name!r}: expected one of {', '.join(TASKS)}")
