"""rolebatch: run role prompts over JSONL files through instructor.

Public API: ``run_job(RunConfig(...))`` (async) and the exception types.
"""

from .config import RunConfig
from .errors import (
    AbortError,
    AuthError,
    BudgetReached,
    EndpointError,
    InputError,
    Interrupted,
    OutputError,
    RolebatchError,
    UsageError,
)
from .progress import Summary
from .records.lines import ERROR_KINDS
from .tasks.schema import Response

__all__ = [
    "ERROR_KINDS",
    "AbortError",
    "AuthError",
    "BudgetReached",
    "EndpointError",
    "InputError",
    "Interrupted",
    "OutputError",
    "Response",
    "RolebatchError",
    "RunConfig",
    "Summary",
    "UsageError",
    "run_job",
]


def __getattr__(name: str) -> object:
    # run_job pulls in openai and instructor; the command line imports this
    # package for its help text too, which should not wait for them.
    if name == "run_job":
        from .pipeline import run_job

        return run_job
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
