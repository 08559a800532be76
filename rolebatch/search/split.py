"""The job's questions split, seeded, into a search part and a held-out part.

Nothing learned on the held-out part is used to choose: the race sees the
search part only, in an order drawn from the seed, and the held-out part
answers only the chosen role and the control.  With ``strata`` (a metadata
key), each stratum is split on its own, so both parts hold every stratum in
the job's proportions (largest remainders, so the held-out part has
round(fraction x questions) in all)."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import UsageError


@dataclass(frozen=True)
class Question:
    """A job record as a question: where it is in the job, its id, the
    stratum it is in (None: no strata)."""

    line: int
    id: str | int
    stratum: str | None = None


@dataclass(frozen=True)
class Split:
    search: tuple[Question, ...]  # in the order the race asks them
    held_out: tuple[Question, ...]  # in job order

    def as_dict(self) -> dict[str, Any]:
        return {"search": [q.id for q in self.search], "held_out": [q.id for q in self.held_out]}


def split(
    questions: Sequence[Question], fraction: float, seed: int, strata: str | None = None
) -> Split:
    """The seeded split of ``questions`` with ``fraction`` of them held out."""
    if not 0 < fraction < 1:
        raise UsageError(f"--holdout {fraction}: expected a fraction between 0 and 1")
    if len(questions) < 2:
        raise UsageError(
            f"a search needs at least 2 questions, one to search on and one to hold out;"
            f" the job has {len(questions)}"
        )
    rng = random.Random(f"rolebatch search {seed}")
    groups: dict[str | None, list[Question]] = {}
    for question in questions:
        groups.setdefault(question.stratum if strata else None, []).append(question)
    wanted = round(fraction * len(questions))
    wanted = min(max(wanted, 1), len(questions) - 1)
    # Each stratum's share of the held-out part, by largest remainder.
    exact = {name: fraction * len(members) for name, members in groups.items()}
    taken = {name: math.floor(share) for name, share in exact.items()}
    left = wanted - sum(taken.values())
    by_remainder = sorted(groups, key=lambda name: (-(exact[name] - taken[name]), str(name)))
    for name in by_remainder[: max(0, left)]:
        taken[name] += 1
    search: list[Question] = []
    held: list[Question] = []
    for name in sorted(groups, key=str):
        members = list(groups[name])
        rng.shuffle(members)
        held.extend(members[: taken[name]])
        search.extend(members[taken[name] :])
    rng.shuffle(search)  # the race's order: any first n of it is a random sample
    held.sort(key=lambda q: q.line)
    if not search:
        raise UsageError(f"--holdout {fraction} leaves no question to search on")
    return Split(tuple(search), tuple(held))
