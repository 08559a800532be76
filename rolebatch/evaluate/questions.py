"""What a score is about: the question a line answers, and per group the
sum and count of its scores on each question, in flat arrays (12 bytes a
question and group).

    query_key   the record a line answers: its id without the sweep's
                ``@role`` and the samples' ``#k`` (or the line's ``query_id``)
    QuestionScores  a group's scores, question by question
    means_on_both  two groups' means on each question both answered
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any


def query_key(line: dict[str, Any]) -> str:
    """The record a line answers: its ``query_id``, or its id without a
    sample's ``#k`` and a sweep's ``@role``."""
    if isinstance(line.get("query_id"), str | int):
        return str(line["query_id"])
    key = str(line.get("id"))
    head, sep, sample = key.rpartition("#")
    if sep and sample.isdigit():
        key = head
    role = line.get("role_id")
    if role and key.endswith(f"@{role}"):
        key = key[: -len(role) - 1]
    return key


def answer_role(line: dict[str, Any]) -> Any:
    """The role text of the answer a line is about: its own, or for a judged
    line the role of the answer judged (a judge's lines have none of their own)."""
    if "judged_id" in line:
        return line.get("judged_role")
    return line.get("role")


@dataclass
class QuestionScores:
    key: str
    index: int
    n: int = 0
    errors: int = 0  # error lines (scored 0, or left out with --errors skip)
    unscored: int = 0  # ok lines the scorer could not score
    control: bool = False  # a sweep's control: a role id with no role text
    sums: array = field(default_factory=lambda: array("d"))
    counts: array = field(default_factory=lambda: array("i"))
    binary: bool = True  # every score so far 0 or 1
    repeated: bool = False  # a question answered more than once (samples, roles pooled)
    # With two --by keys: the first key's value (the model, say), within
    # which groups are compared; and the second's (the role).
    stratum: str | None = None
    inner: str = ""
    model: str | None = None  # the model of its lines (one, or a UsageError)

    def add(self, question: int, score: float) -> None:
        if question >= len(self.counts):
            grow = question + 1 - len(self.counts)
            self.sums.extend(array("d", bytes(8 * grow)))
            self.counts.extend(array("i", bytes(4 * grow)))
        self.sums[question] += score
        self.counts[question] += 1
        self.repeated = self.repeated or self.counts[question] > 1
        self.n += 1
        if score not in (0.0, 1.0):
            self.binary = False

    def counts_on(self, question: int) -> int:
        return self.counts[question] if question < len(self.counts) else 0

    def mean_on(self, question: int) -> float | None:
        if question >= len(self.counts) or not self.counts[question]:
            return None
        return self.sums[question] / self.counts[question]


def means_on_both(
    g: QuestionScores, base: QuestionScores, questions: Iterable[int]
) -> tuple[array, array]:
    """The two groups' means on each question both answered."""
    xs, ys = array("d"), array("d")
    for q in questions:
        x, y = g.mean_on(q), base.mean_on(q)
        if x is not None and y is not None:
            xs.append(x)
            ys.append(y)
    return xs, ys
