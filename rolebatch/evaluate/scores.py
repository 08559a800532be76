"""An output's scores, gathered in one pass in flat memory: per group (a role,
a model, a value of a metadata key), per question, the sum and count of its
scores; and from them the study's figures (``stats``).

    per group       scored n, errors, mean, standard error (clustered when a
                    question was asked several times), 95 % interval
    paired          each group against the baseline (the control role when
                    the sweep has one, or --baseline) on the questions both
                    answered: difference, interval, p, Holm's p, verdict, and
                    the smallest difference these pairs could detect
    choosing        the oracle, a group picked at random, a group picked on
                    half the questions (``choosing``)

The test of a comparison follows the study's design (``design``): McNemar's
for one 0/1 score per question in both groups, the paired t-test otherwise.

A question is the record a line answers: its id without the sweep's
``@role`` and the samples' ``#k`` (or the line's ``query_id``), kept as a
64-bit hash in a flat table (``records.ids``).  Memory is a few arrays of 12
bytes per question and group, and per question an index: a million scored
lines stay well inside 120 MB (``make bench``, ``resume``).
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..records.ids import HashIndex, id_hash
from ..records.report import group_of
from . import stats
from .choosing import choosing, interaction
from .questions import QuestionScores, answer_role, means_on_both, query_key
from .scorers import Scorer, natural, scorer

NO_SCORER = (
    "no scorer for these lines: give --score (choice, exact, includes, regex:PATTERN,"
    " number[:TOL], field:NAME, rouge-l:FIELD, python:MODULE:FUNCTION)"
)
# Error lines kept while the first ok line, which tells the task's scorer, is awaited.
MOST_PENDING = 10_000


class Scores:
    """``spec``: the --score given (None: the task's own, from its first ok
    line; with none, nothing is scored unless ``required``)."""

    def __init__(
        self,
        spec: str | None = None,
        errors: str = "zero",
        required: bool = False,
        by: str = "role",
        scale: tuple[float, float] | None = None,
    ):
        if errors not in ("zero", "skip"):
            raise UsageError(f"--errors {errors!r}: expected zero or skip")
        self.by = by
        # The scores' scale, where known (a judge's rubric): no interval leaves it.
        self.scale = scale
        keys = by.split(",")
        # Two keys: the first is the stratum within which groups are compared.
        self.strata = keys[0] if len(keys) == 2 else None
        # Outputs of one model each: a group per output pools no two models.
        self.pools_models = "model" not in keys and "output" not in keys
        # Outputs compared with each other: their lines meet on the record's
        # id (with a sweep's role and a sample's number); the unit is still
        # the question, the mean of its answers in each output, since the
        # answers to one question under ten roles are not ten questions.
        self.by_output = "output" in keys
        self.spec = spec
        self.required = required or spec is not None
        self.active = True  # False: these lines have no scorer, and none was asked for
        self._scorer: Scorer | None = scorer(spec) if spec else None
        self.errors = errors
        self._groups: dict[str, QuestionScores] = {}
        self._questions = HashIndex(values=True)
        self.questions = 0
        self._pending: list[tuple[dict[str, Any], str]] = []

    def add(self, line: dict[str, Any], group: str) -> None:
        if not self.active:
            return
        if self._scorer is None:
            # The task's natural scorer, known from its first ok line; error
            # lines before it wait for it (a few, at the head of the file).
            if line.get("status") != "ok":
                if len(self._pending) >= MOST_PENDING:
                    raise UsageError(NO_SCORER)
                self._pending.append((line, group))
                return
            spec = natural(line)
            if spec is None:
                if self.required:
                    raise UsageError(NO_SCORER)
                self.active = False
                self._pending.clear()
                return
            self.spec, self._scorer = spec, scorer(spec)
            for waiting, where in self._pending:
                self.add(waiting, where)
            self._pending.clear()
        g = self._group(group, line)
        if line.get("status") == "error":
            g.errors += 1
            if self.errors == "skip":
                return
            score: float | None = 0.0  # a role that makes the model fail did worse
        else:
            score = self._scorer(line)
            if score is None:
                g.unscored += 1
                return
        key = id_hash(query_key(line))
        question = self._questions.add(key, self.questions)
        if question is None:
            question = self.questions
            self.questions += 1
        g.add(question, score)

    def _group(self, key: str, line: dict[str, Any]) -> QuestionScores:
        g = self._groups.get(key)
        model = str(line.get("model"))
        if g is None:
            g = self._groups[key] = QuestionScores(key, len(self._groups), model=model)
            g.control = (
                not self.by_output  # an output is no control, whatever its first line
                and bool(line.get("role_id"))
                and not answer_role(line)
                and not line.get("condition")  # the query alone, but asked another way
                and not line.get("panel_roles")  # a panel whose synthesizer has no role
            )
            if self.strata is not None:
                g.stratum = group_of(line, self.strata)
                g.inner = group_of(line, self.by.split(",")[1])
            else:
                g.inner = key
        elif self.pools_models and g.model != model:
            raise UsageError(
                f"group {key!r} holds answers of two models ({g.model} and {model}): --by"
                f" {self.by} would pool them as repeated answers of one group. Compare the"
                f" roles within each model with --by model,{self.by}, or the models with"
                " --by model"
            )
        return g

    # -- the figures -------------------------------------------------------

    def report(
        self, baseline: str | None = None, seed: int = 0, margin: float | None = None
    ) -> dict[str, Any] | None:
        """The figures; None when nothing was scored (no scorer asked for or implied)."""
        if self._scorer is None:
            if self.required or baseline is not None:
                raise UsageError(NO_SCORER)
            return None
        groups = list(self._groups.values())
        strata: dict[str | None, list[QuestionScores]] = {}
        for g in groups:
            strata.setdefault(g.stratum, []).append(g)
        bases = {name: self._baseline(members, baseline) for name, members in strata.items()}
        if baseline is not None and not any(bases.values()):
            known = ", ".join(g.key for g in groups)
            raise UsageError(f"--baseline {baseline!r}: no such group (the groups: {known})")
        rows = []
        for g in groups:
            est = stats.estimate(g.sums, g.counts, g.binary, self._scale(g))
            est.ci_low, est.ci_high = stats.within(est.ci_low, est.ci_high, self.scale)
            rows.append(
                {
                    "key": g.key,
                    "n": g.n,
                    "errors": g.errors,
                    "unscored": g.unscored,
                    **{k: v for k, v in asdict(est).items() if k != "n"},
                    "baseline": g is bases[g.stratum],
                    **({"stratum": g.stratum} if self.strata else {}),
                }
            )
        comparisons = self._compare(strata, bases, margin)
        figures: dict[str, Any] = {
            "scorer": self.spec,
            "binary": bool(groups) and all(g.binary for g in groups),
            # The lowest and highest score there can be, where known.
            "scale": list(scale) if groups and (scale := self._scale(*groups)) else None,
            "models": sorted({str(g.model) for g in groups}),
            "errors_as": "0" if self.errors == "zero" else "left out",
            "questions": self.questions,
            "groups": rows,
            "baseline": None,
            "comparisons": comparisons,
        }
        if self.strata is None:
            chosen = bases[None]
            figures.update(
                baseline=chosen.key if chosen else None,
                **choosing(groups, chosen, self.questions, seed, self.design),
            )
            return figures
        figures.update(
            strata_by=self.strata,
            strata=[
                {
                    "stratum": name,
                    "baseline": base.key if base else None,
                    **choosing(strata[name], base, self.questions, seed, self.design),
                }
                for name, base in bases.items()
            ],
            interaction=interaction(
                strata, bases, {r["key"]: r["mean"] for r in rows}, self.questions
            ),
        )
        return figures

    def _scale(self, *groups: QuestionScores) -> tuple[float, float] | None:
        """The lowest and highest score ``groups`` can have, where known: a
        judge's rubric's, or 0 to 1 for 0/1 scores."""
        if self.scale is not None:
            return self.scale
        return (0.0, 1.0) if all(g.binary for g in groups) else None

    def design(self, g: QuestionScores, base: QuestionScores) -> dict[str, Any]:
        """How a comparison is tested, by the study's design: one 0/1 score
        per question is McNemar's; the reach of a difference, where known."""
        scale = self._scale(g, base)
        return {
            "binary": g.binary and base.binary and not g.repeated and not base.repeated,
            "span": None if scale is None else scale[1] - scale[0],
        }

    def _baseline(self, groups: list[QuestionScores], name: str | None) -> QuestionScores | None:
        """The group of ``groups`` (one stratum's) the others are compared with."""
        if name is not None:
            for g in groups:
                if name in (g.key, g.inner) or Path(name).name in (g.key, g.inner):
                    return g  # a group, or an output named by its path (--by output)
            if self.strata is not None:
                return None  # this stratum has none: its groups are not compared
            known = ", ".join(g.key for g in groups)
            raise UsageError(f"--baseline {name!r}: no such group (the groups: {known})")
        controls = [g for g in groups if g.control]
        return controls[0] if len(controls) == 1 else None

    def _compare(
        self,
        strata: dict[str | None, list[QuestionScores]],
        bases: dict[str | None, QuestionScores | None],
        margin: float | None = None,
    ) -> list[dict[str, Any]]:
        """Each group against its stratum's baseline; Holm's family is every
        comparison made on at least two questions (one without any difference
        has p = 1 and counts too), whatever its stratum."""
        everything = range(self.questions)
        pairs = [
            (g, base, means_on_both(g, base, everything))
            for name, base in bases.items()
            if base is not None
            for g in strata[name]
            if g is not base
        ]
        family = sum(1 for _, _, (xs, _) in pairs if len(xs) >= 2)
        found = [
            (g, base, stats.paired(xs, ys, family, margin, **self.design(g, base)))
            for g, base, (xs, ys) in pairs
        ]
        if self.scale is not None:
            width = self.scale[1] - self.scale[0]
            for _, _, p in found:
                p.ci_low, p.ci_high = stats.within(p.ci_low, p.ci_high, (-width, width))
        adjusted = stats.holm([p.p for _, _, p in found])
        return [
            {
                "key": g.key,
                "baseline": base.key,
                **{k: v for k, v in asdict(p).items() if k != "se"},
                "se": p.se,
                "p_holm": p_holm,
                "family": family if p.p is not None else None,  # None: left out of it
                "verdict": stats.verdict(p.diff, p_holm),
                # A 0/1 comparison whose score interval leaves out 0 while the
                # exact test does not reach 0.05: the verdict follows the test.
                "edge": p.interval == "newcombe"
                and p.p is not None
                and p.p >= stats.ALPHA
                and p.ci_low is not None
                and p.ci_high is not None
                and (p.ci_low > 0 or p.ci_high < 0),
            }
            for (g, base, p), p_holm in zip(found, adjusted, strict=True)
        ]
