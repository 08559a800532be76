"""The race on the search part: successive halving (Karnin, Koren and
Somekh 2013; Jamieson and Talwalkar 2016), by rank on shared questions.

    round 1    every candidate answers the first n1 search questions, where
               n1 = max(N/5, N/2^(H-1)), N the search part's questions and
               H = ceil(log2 K) the halvings K candidates take to one
    after it   the better half (by mean score on every question all of them
               answered, ties broken by a seeded order) goes on; the others
               are dropped and asked nothing more
    round r+1  the survivors answer questions up to twice as many as before
               (n_r+1 = min(N, 2 n_r)), the new ones only
    the end    one candidate left, or the search part spent: the leader then
               is the race's pick

The control answers every question a round asks, beside the candidates: it
is never dropped (the held-out verdict and the search estimate are
differences from it) and never picked.  The schedule is fixed by K and N
alone, so the race's cost is known before it starts, whatever the answers.
Nothing here buys or reads: ``Race`` is told each round's scores.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import UsageError

SHARE_FIRST = 5  # the first round asks at least 1/5 of the search part


def schedule(candidates: int, questions: int) -> list[tuple[int, int]]:
    """(candidates asked, questions asked of each so far) per round."""
    if candidates < 1:
        raise UsageError("a search needs at least one candidate role besides the control")
    if questions < 1:
        raise UsageError("a search needs at least one question to search on")
    halvings = max(1, math.ceil(math.log2(candidates))) if candidates > 1 else 1
    end = min(
        questions,
        max(math.ceil(questions / SHARE_FIRST), math.ceil(questions / 2 ** (halvings - 1))),
    )
    rounds, alive = [], candidates
    while True:
        rounds.append((alive, end))
        if alive == 1 or end >= questions:
            return rounds
        alive, end = math.ceil(alive / 2), min(questions, 2 * end)


def calls(candidates: int, questions: int) -> int:
    """What the race asks in all, the control's answers included."""
    asked, before = 0, 0
    for alive, end in schedule(candidates, questions):
        asked += (alive + 1) * (end - before)
        before = end
    return asked


@dataclass(frozen=True)
class Round:
    """What a round asks: ``alive`` (and the control) answer the search
    questions from ``start`` (0-based, included) to ``end`` (excluded)."""

    number: int
    alive: tuple[str, ...]
    start: int
    end: int


@dataclass(frozen=True)
class Standing:
    """A candidate after a round: its mean on the round's shared questions
    (None: nothing scored), how many were scored, and whether it goes on."""

    role: str
    mean: float | None
    n: int
    kept: bool


@dataclass
class Race:
    """Successive halving of ``candidates`` on ``questions`` search questions;
    ``seed`` orders ties."""

    candidates: Sequence[str]
    questions: int
    seed: int = 0
    played: list[tuple[Round, list[Standing]]] = field(default_factory=list)
    pick: str | None = None

    def __post_init__(self) -> None:
        self.plan = schedule(len(self.candidates), self.questions)
        order = list(self.candidates)
        random.Random(f"rolebatch race {self.seed}").shuffle(order)
        self._tie = {role: index for index, role in enumerate(order)}
        self._alive = tuple(self.candidates)

    @property
    def over(self) -> bool:
        return self.pick is not None

    def next_round(self) -> Round | None:
        """The round to ask next (None: the race is over)."""
        if self.over:
            return None
        number = len(self.played) + 1
        start = self.plan[number - 2][1] if number > 1 else 0
        return Round(number, self._alive, start, self.plan[number - 1][1])

    def scored(self, scores: Mapping[str, tuple[float, int]]) -> list[Standing]:
        """Take the round's outcome: each alive candidate's (mean, scored n)
        on every question asked so far.  Returns the standing, best first."""
        asked = self.next_round()
        if asked is None:
            raise ValueError("the race is over")

        def rank(role: str) -> tuple[float, int]:
            mean = scores.get(role, (math.nan, 0))[0]
            return (-mean if not math.isnan(mean) else math.inf, self._tie[role])

        order = sorted(asked.alive, key=rank)
        last = asked.number == len(self.plan)
        keep = 1 if last else self.plan[asked.number][0]
        standing = []
        for place, role in enumerate(order):
            mean, n = scores.get(role, (math.nan, 0))
            standing.append(Standing(role, None if math.isnan(mean) else mean, n, place < keep))
        self.played.append((asked, standing))
        self._alive = tuple(role for role in asked.alive if role in order[:keep])
        if last:
            self.pick = order[0]
        return standing

    def dropped_in(self) -> dict[str, int]:
        """The round each candidate was dropped after (the pick: none)."""
        return {
            s.role: asked.number for asked, standing in self.played for s in standing if not s.kept
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "method": "successive halving",
            "schedule": [{"candidates": a, "questions": q} for a, q in self.plan],
            "rounds": [
                {
                    "round": asked.number,
                    "questions": [asked.start, asked.end],
                    "standing": [
                        {"role": s.role, "mean": s.mean, "n": s.n, "kept": s.kept} for s in standing
                    ],
                }
                for asked, standing in self.played
            ],
            "pick": self.pick,
        }
