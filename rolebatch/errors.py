"""rolebatch's exceptions, and the exit code each one means.

    RolebatchError                 base; exit_code says how the CLI ends
    ├── UsageError        (2)      a bad option or configuration; nothing sent
    │   └── InputError    (2)      the job file is invalid; nothing sent
    ├── Pending           (4)      --no-wait: batches are at the provider; run again to collect
    └── AbortError        (3)      the run stopped part-way; output kept, resumable
        ├── AuthError     (3)      401/403 from the endpoint
        ├── EndpointError (3)      the endpoint cannot be reached or keeps failing
        ├── OutputError   (3)      the output cannot be written (disk full, ...)
        ├── BudgetReached (3)      --max-cost would be exceeded by the next request
        └── Interrupted   (3)      SIGINT / SIGTERM

Record-level failures (a 429 that outlasted its retries, output that never
validated) are not exceptions at this level: they become error lines in the
output, and the run goes on.
"""

from __future__ import annotations


class RolebatchError(Exception):
    exit_code = 1


class UsageError(RolebatchError):
    exit_code = 2


class InputError(UsageError):
    """The job file has problems; ``problems`` lists each as ``file:line: ...``."""

    def __init__(self, problems: list[str], more: int = 0):
        self.problems = problems
        self.more = more
        text = "\n".join(problems)
        if more:
            text += f"\n... and {more} more problem(s)"
        super().__init__(text)


class Pending(RolebatchError):
    """Requests are at the provider's batch API; the same command collects them."""

    exit_code = 4


class AbortError(RolebatchError):
    exit_code = 3


class AuthError(AbortError):
    pass


class EndpointError(AbortError):
    pass


class OutputError(AbortError):
    pass


class BudgetReached(AbortError):
    pass


class Interrupted(AbortError):
    pass
