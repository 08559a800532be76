"""rolebatch: run role prompts over JSONL files through instructor.

Public API: ``run_job(RunConfig(...))`` (async) and the exception types.
"""

from .config import RunConfig
from .errors import (
    AbortError,
    AuthError,
    EndpointError,
    InputError,
    Interrupted,
    OutputError,
    RolebatchError,
    UsageError,
)
from .outcome import ERROR_KINDS
from .pipeline import run_job
from .progress import Summary
from .schema import Response

__all__ = [
    "ERROR_KINDS",
    "AbortError",
    "AuthError",
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
