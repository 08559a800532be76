"""rolebatch's exceptions: what ends a command (with its exit code), and
what became of one request, in our words whichever SDK sent it.

    RolebatchError                 base; exit_code says how the CLI ends
    ├── UsageError        (2)      a bad option or configuration; nothing sent
    │   └── InputError    (2)      the job file is invalid; nothing sent
    ├── Pending           (4)      --no-wait: batches are at the provider; run again to collect
    └── AbortError        (3)      the run stopped part-way; output kept, resumable
        ├── AuthError     (3)      401/403 from the endpoint
        ├── EndpointError (3)      the endpoint cannot be reached or keeps failing
        ├── OutputError   (3)      the output cannot be written (disk full, ...)
        ├── BudgetReached (3)      --max-cost would be exceeded by the next request
        └── Interrupted   (3)      SIGINT / SIGTERM, or a batch cancelled while waited for

    RequestFailed                  a request that brought no answer; each provider
    │                              translates its SDK's errors into these at its edge
    ├── StatusError                the endpoint answered with an error status
    └── ConnectionFailure          no answer came: the connection failed or dropped
        └── TimedOut               none within --timeout

Record-level failures (a 429 that outlasted its retries, output that never
validated) are not RolebatchErrors: they become error lines in the output,
and the run goes on.  A run that stops part-way (AbortError) or leaves
batches pending (Pending) carries its ``summary``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .exits import Exit


class RolebatchError(Exception):
    exit_code: int = Exit.FAILED
    # The run's Summary (``progress.Summary``), when a run stopped with this.
    summary: Any = None


class UsageError(RolebatchError):
    exit_code = Exit.REFUSED


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

    exit_code = Exit.PENDING


class AbortError(RolebatchError):
    exit_code = Exit.STOPPED


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


class RequestFailed(Exception):
    """A request that brought no answer."""


class StatusError(RequestFailed):
    """The endpoint answered ``status`` with ``message`` (the server's words)."""

    def __init__(
        self,
        status: int,
        message: str,
        headers: Mapping[str, str] | None = None,
        body: Any = None,
    ):
        super().__init__(f"{status} {message}")
        self.status = status
        self.message = message
        self.headers: Mapping[str, str] = headers or {}
        self.body = body


class ConnectionFailure(RequestFailed):
    """No answer came; the message says what happened underneath."""


class TimedOut(ConnectionFailure):
    """No answer within the timeout."""
