"""Head-to-head judgements (``rolebatch judge --against``), per role: a pair
is an answer and the baseline's answer to the same question (and sample),
judged in both orders.  The answer wins only when both orders say so, loses
only when both say the baseline, and it is a tie otherwise (or when either
said tie).

    per role     wins, ties, losses per question: a question's samples are
                 one unit, not several (--samples K answers one question K
                 times, and K wins of one question are one question won): its
                 net (wins less losses over its pairs) makes it won, lost or
                 tied; the win rate (questions won of those decided) with its
                 95 % interval (Wilson's); a sign test of questions won against
                 lost, Holm's adjustment across the roles compared on at least
                 two questions (as for scores); a verdict
    consistency  the share of pairs whose two orders agreed: a judge that
                 prefers a position over an answer agrees with itself rarely,
                 and below ``RELIABLE`` it is reported as unreliable

One pass, in flat memory: a pair's first verdict waits in a table of key
hashes until its other order comes; a role's questions are a table of
question hashes and an array of their nets.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field
from typing import Any

from ..records.ids import HashIndex, id_hash
from . import stats
from .questions import query_key

RELIABLE = 0.6  # position consistency below this: the judge is not to be trusted
# A verdict, seen from the answer judged: it won, tied or lost.
WON, TIED, LOST = 1, 2, 3


@dataclass
class _Role:
    key: str
    wins: int = 0  # pairs won (both orders), over every sample
    ties: int = 0
    losses: int = 0
    agreed: int = 0  # pairs whose two orders agreed
    pairs: int = 0  # pairs with both orders judged
    questions: HashIndex = field(default_factory=lambda: HashIndex(values=True))
    nets: array = field(default_factory=lambda: array("i"))  # per question: wins - losses

    def settle(self, question: int, outcome: int) -> None:
        """One pair's outcome (+1 won, 0 tied, -1 lost) on ``question``."""
        place = self.questions.add(question, len(self.nets))
        if place is None:
            place = len(self.nets)
            self.nets.append(0)
        self.nets[place] += outcome

    def by_question(self) -> tuple[int, int, int]:
        """Questions won, tied and lost, by their net."""
        won = sum(1 for n in self.nets if n > 0)
        lost = sum(1 for n in self.nets if n < 0)
        return won, len(self.nets) - won - lost, lost


def verdict_of(line: dict[str, Any]) -> int | None:
    """What one order's verdict says of the answer judged (None: no verdict)."""
    response = line.get("response")
    winner = response.get("winner") if isinstance(response, dict) else None
    if line.get("status") != "ok" or winner not in ("A", "B", "tie"):
        return None
    if winner == "tie":
        return TIED
    first = line.get("order") == "ab"  # the answer judged was shown first
    return WON if (winner == "A") == first else LOST


def _question(line: dict[str, Any]) -> str:
    """The question a judged pair is about: the judged answer's, without its
    sample and role (its line's ``query_id``, or read off the pair's id)."""
    if isinstance(line.get("query_id"), str | int):
        return str(line["query_id"])
    return query_key({"id": line.get("pair"), "role_id": line.get("role_id")})


class Pairwise:
    def __init__(self) -> None:
        self._roles: dict[str, _Role] = {}
        self._waiting = HashIndex(values=True)  # pair -> its first verdict, until the second
        self.baseline: str | None = None
        self.active = False
        self.incomplete = 0  # pairs with one order judged so far
        self.no_verdict = 0  # pairs with an order that failed (an error line)

    def add(self, line: dict[str, Any], group: str) -> None:
        if line.get("order") not in ("ab", "ba") or "pair" not in line:
            return
        self.active = True
        self.baseline = line.get("against", self.baseline)
        role = self._roles.setdefault(group, _Role(group))
        verdict = verdict_of(line)
        key = id_hash(f"{line['pair']}\x00{group}")
        first = self._waiting.get(key)
        if first is None:
            self._waiting.put(key, verdict or 0)
            self.incomplete += 1
            return
        if first < 0:
            return  # both orders seen already: a third line for the pair is left out
        self._waiting.put(key, -1)
        self.incomplete -= 1
        if not first or verdict is None:
            self.no_verdict += 1
            return
        role.pairs += 1
        role.agreed += first == verdict
        question = id_hash(_question(line))
        if first == verdict == WON:
            role.wins += 1
            role.settle(question, 1)
        elif first == verdict == LOST:
            role.losses += 1
            role.settle(question, -1)
        else:
            role.ties += 1
            role.settle(question, 0)

    def report(self) -> dict[str, Any] | None:
        if not self.active:
            return None
        roles = list(self._roles.values())
        counted = [r.by_question() for r in roles]
        # Compared on fewer than two questions: no test, and not in Holm's family.
        ps = [
            stats.sign_test(won, lost) if len(r.nets) >= 2 else None
            for r, (won, _, lost) in zip(roles, counted, strict=True)
        ]
        adjusted = stats.holm(ps)
        rows = []
        for r, (won, tied, lost), p, p_holm in zip(roles, counted, ps, adjusted, strict=True):
            decided = won + lost
            low, high = stats.wilson(won, decided)
            rate = won / decided if decided else None
            diff = None if rate is None else rate - 0.5
            rows.append(
                {
                    "key": r.key,
                    "pairs": r.pairs,
                    "questions": len(r.nets),
                    "wins": won,
                    "ties": tied,
                    "losses": lost,
                    "pair_wins": r.wins,
                    "pair_ties": r.ties,
                    "pair_losses": r.losses,
                    "win_rate": rate,
                    "ci_low": low,
                    "ci_high": high,
                    "p": p,
                    "p_holm": p_holm,
                    "verdict": stats.verdict(diff, p_holm if decided else None),
                    "consistency": r.agreed / r.pairs if r.pairs else None,
                }
            )
        pairs = sum(r.pairs for r in roles)
        consistency = sum(r.agreed for r in roles) / pairs if pairs else None
        return {
            "baseline": self.baseline,
            "pairs": pairs,
            "consistency": consistency,
            "unreliable": consistency is not None and consistency < RELIABLE,
            "incomplete": self.incomplete,
            "no_verdict": self.no_verdict,
            "rows": rows,
        }
