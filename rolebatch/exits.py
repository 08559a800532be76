"""How a ``rolebatch`` command ends, for cron and CI: the only place exit
codes are defined.  Each code carries the word ``--summary-json`` and the
messages use, and what it means; the docs' table is tested against it.
"""

from __future__ import annotations

from enum import IntEnum


class Exit(IntEnum):
    word: str
    meaning: str

    def __new__(cls, code: int, word: str, meaning: str) -> Exit:
        member = int.__new__(cls, code)
        member._value_ = code
        member.word = word
        member.meaning = meaning
        return member

    OK = 0, "ok", "every record ok; `report`: the gate passed, or none was given"
    FAILED = (
        1,
        "failed",
        "finished, some records failed (see their error lines and the summary);"
        " `report`: a rule of the gate failed",
    )
    REFUSED = (
        2,
        "refused",
        "a usage or input error, a changed configuration, another run holds the output,"
        " or the model's shutdown date is past: nothing was sent, nothing written",
    )
    STOPPED = (
        3,
        "stopped",
        "stopped part-way (the key refused, the endpoint down, the output not writable,"
        " `--max-cost` reached, a batch refused) or interrupted (SIGINT, SIGTERM, the"
        " `--summary-json` status `interrupted`): finished lines are kept and the same"
        " command resumes",
    )
    PENDING = (
        4,
        "pending",
        "`--via batch --no-wait`: requests are at the provider; the same command collects them",
    )
    UNDECIDED = (
        5,
        "undecided",
        "`report`: the gate had nothing to decide on (no lines, no scores, no baseline,"
        " too few pairs, an unreliable judge); never a pass",
    )
    BUG = (
        70,
        "bug",
        "an unexpected error, a bug in rolebatch: one line says where its traceback was"
        " written; finished lines are kept and the same command resumes",
    )


def word_of(code: int) -> str | None:
    """The word of an exit code (None: not one of ours)."""
    try:
        return Exit(code).word
    except ValueError:
        return None


def table() -> str:
    """The exit codes as a markdown table, as the docs show them."""
    rows = ["| code | word | meaning |", "|---|---|---|"]
    rows += [f"| {code.value} | {code.word} | {code.meaning} |" for code in Exit]
    return "\n".join(rows)
