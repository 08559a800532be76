"""rolebatch: run role prompts over JSONL files through instructor.

Public API: ``run_job(RunConfig(...))`` (async), the configuration's parts
(``Asked``, ``Bought``, ``Paced``, ``Written``), and the exception types.

The package, from the top down (a module imports only from below it):

    cli         the ``rolebatch`` command: commands gathered, errors to exit codes
    __main__    ``python -m rolebatch``
    commands/   one module per command
    search/     which role helps: a race of runs, confirmed on held-out questions
    evaluate/   does the role help: scorers, statistics, the report's study
    pipeline    the flow of a run: plan, open, buy, finish, report
    forecast    what a run would cost and take (``rolebatch estimate``)
    via/        how answers are bought: live, or through a batch API
    plan        a run checked and priced before anything is sent or written
    config      RunConfig, and the fingerprint an output is written under
    progress    counting what a run did, the progress display and the summary
    cost/       what answers cost: prices and --max-cost
    tasks/      what is asked about a record, and what must come back
    providers/  where requests go: the providers, their transports and batch APIs
    records/    the record files: job, output state, result lines, shards, report
    cache/      answers already bought, kept on disk (--cache)
    pacing/     how fast requests may go: limits, headers, the shared quota
    quirks/     workarounds for the libraries we build on
    errors      rolebatch's exceptions, and the exit code each one means
    exits       the exit codes, each with its word and meaning: the only place
                they are defined
    bugs        an unexpected error's traceback kept in a file, said in one line
    redaction   API keys kept out of every message (not `secrets`: the standard
                library has one)
"""

from .config import Asked, Batching, Bought, Judging, Paced, RunConfig, Written
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
    "Asked",
    "AuthError",
    "Batching",
    "Bought",
    "BudgetReached",
    "EndpointError",
    "InputError",
    "Interrupted",
    "Judging",
    "OutputError",
    "Paced",
    "Response",
    "RolebatchError",
    "RunConfig",
    "Summary",
    "UsageError",
    "Written",
    "run_job",
]


def __getattr__(name: str) -> object:
    # run_job pulls in openai and instructor; the command line imports this
    # package for its help text too, which should not wait for them.
    if name == "run_job":
        from .pipeline import run_job

        return run_job
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
