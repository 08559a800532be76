"""A search as it runs: split, race, confirm, each answer bought by an
ordinary run into a folder of ordinary outputs.

    FOLDER/search.json              what the search is and what it found so far
    FOLDER/candidates.jsonl         the roles raced, the control first
    FOLDER/round-R.questions.jsonl  round R's search questions (a job file)
    FOLDER/round-R.roles.jsonl      who answers them: the control and the survivors
    FOLDER/round-R.jsonl            their answers (a sweep's output, with its sidecar)
    FOLDER/held-out.*               the same for the held-out part: the control and
                                    the race's pick

Every file but the outputs is a pure function of the options, the job and the
answers of the rounds before, written whole; every answer is bought by
``pipeline.run_job`` into an output that resumes, locks and caches as a run's
does.  So a search killed at any moment (kill -9 included) goes on from the
same command: the rounds are made again, word for word, from what the outputs
hold, and each run buys only what its output lacks.  A (question, role) pair
is in one round's output only (a round asks only questions its survivors have
not answered), so nothing is bought twice.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio

from ..config import Judging, RunConfig
from ..errors import AbortError, BudgetReached, InputError, Pending, UsageError
from ..evaluate import stats
from ..evaluate.judging import make_records
from ..evaluate.questions import query_key
from ..evaluate.scorers import scorer
from ..evaluate.study import Asked as Study
from ..evaluate.study import study
from ..pipeline import run_job
from ..plan import plan
from ..progress import Reporter
from ..records.files import cannot_write, replacing
from ..records.job import derived_id
from ..records.profiles import Profile, as_json
from ..records.report import read
from ..records.roles import load_roles, role_row
from .race import Race, calls
from .split import Question, Split, split

FORMAT = 1
STATE = "search.json"
# Fewer ok answers than this from the pick or the control on the held-out
# part, and there is no verdict: the search ends undecided.
MOST_ERRORS_LEFT = 2
CONTROL_IDS = ("none", "no-role", "control")


@dataclass(frozen=True)
class Searching:
    """What a search is asked besides the run's options: the scorer, the
    held-out fraction, the seed, the strata key."""

    score: str
    holdout: float = 0.5
    seed: int = 0
    strata: str | None = None
    rubric: Path | None = None  # answers graded by a judge (score: field:score)
    judge_model: str | None = None  # [default: the model asked]


@dataclass(frozen=True)
class Candidates:
    control: str
    # (id, text or profile) of every candidate, not the control.
    roles: tuple[tuple[str, str | Profile], ...]
    metadata: dict[str, Any]

    @property
    def ids(self) -> list[str]:
        return [role_id for role_id, _ in self.roles]


def candidates_of(path: Path) -> Candidates:
    """The roles file's roles: its control (the role ""), or one added, named
    none, and the candidates."""
    roles, metadata = load_roles(path)
    controls = [role_id for role_id, text in roles if not text]
    if len(controls) > 1:
        raise UsageError(f'{path}: {len(controls)} controls (roles ""): a search takes one')
    raced = tuple((role_id, text) for role_id, text in roles if text)
    if not raced:
        raise UsageError(f"{path}: no role to search besides the control")
    taken = {role_id for role_id, _ in roles}
    control = controls[0] if controls else next(c for c in CONTROL_IDS if c not in taken)
    return Candidates(control, raced, metadata)


@dataclass
class Folder:
    """Where a search keeps its files."""

    path: Path

    def state(self) -> Path:
        return self.path / STATE

    def questions(self, part: str) -> Path:
        return self.path / f"{part}.questions.jsonl"

    def roles(self, part: str) -> Path:
        return self.path / f"{part}.roles.jsonl"

    def answers(self, part: str) -> Path:
        return self.path / f"{part}.jsonl"

    def read_state(self) -> dict[str, Any] | None:
        """The search the folder holds (None: none yet); anything else there
        is refused, not guessed at."""
        try:
            found = json.loads(self.state().read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            found, why = None, str(exc)
        else:
            why = "not a search's state"
        if not isinstance(found, dict) or found.get("rolebatch_search") != FORMAT:
            raise UsageError(
                f"{self.state()}: unreadable ({why}): give another -o, or --fresh to start"
                " the search in this folder over (its answers are kept in its outputs)"
            )
        return found

    def write(self, path: Path, text: str) -> None:
        """``text`` into ``path`` whole, unless it holds it already (a job
        file unchanged keeps its stamp: its output need not check it again)."""
        try:
            if path.read_text() == text:
                return
        except OSError:
            pass
        with replacing(path, cannot=cannot_write) as new:
            new.tmp.write_text(text)

    def save(self, state: dict[str, Any]) -> None:
        self.write(self.state(), json.dumps(state, indent=2, ensure_ascii=False) + "\n")


@dataclass
class Job:
    """The job's questions and their lines, as the rounds' job files take them."""

    questions: list[Question]
    lines: dict[int, dict[str, Any]]  # job line -> its record, with its id

    def file(self, questions: Sequence[Question]) -> str:
        return "".join(json.dumps(self.lines[q.line], ensure_ascii=False) + "\n" for q in questions)


def read_job(config: RunConfig, strata: str | None) -> Job:
    """Every question of the job (checked whole by ``plan`` before)."""
    checked = plan(config, sending=False)
    questions, lines = [], {}
    job = replace(checked.job, sweep=None)  # its records as they are, not per role
    problems = []
    # Split on newlines only, as the job reader does (a JSON string may hold
    # U+2028, which str.splitlines would split on too).
    raw_lines = config.job.read_bytes().split(b"\n")
    for record in job.records():
        raw = raw_lines[record.line - 1].rstrip(b"\r")
        data = json.loads(raw.decode("utf-8-sig" if record.line == 1 else "utf-8"))
        data.setdefault("id", derived_id(record.line))
        lines[record.line] = data
        stratum = None
        if strata is not None:
            value = (record.metadata or {}).get(strata)
            if value is None:
                problems.append(
                    f"{config.job}:{record.line}: field 'metadata.{strata}': missing (--strata"
                    f" metadata.{strata} splits each of its values apart)"
                )
                continue
            stratum = json.dumps(value, ensure_ascii=False)
        questions.append(Question(record.line, record.id, stratum))
    if problems:
        raise InputError(problems[:20], max(0, len(problems) - 20))
    return Job(questions, lines)


def roles_file(candidates: Candidates, asked: Sequence[str]) -> str:
    """A roles file of the control and ``asked``, in the candidates' order."""
    meta = candidates.metadata
    rows = [role_row(candidates.control, "", meta.get(candidates.control))]
    rows += [role_row(i, role, meta.get(i)) for i, role in candidates.roles if i in asked]
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


class Scores:
    """Each role's score per question, read from the outputs (an error line
    scores 0, as ``report`` counts it by default; a line the scorer cannot
    score is left out)."""

    def __init__(self, spec: str):
        self.score = scorer(spec)
        self.by_role: dict[str, dict[str, float]] = {}

    def read(self, outputs: Sequence[Path]) -> None:
        self.by_role = {}

        def observe(line: dict[str, Any], group: str) -> None:
            value = 0.0 if line.get("status") != "ok" else self.score(line)
            if value is None or not math.isfinite(value):
                return
            self.by_role.setdefault(group, {})[query_key(line)] = value

        present = [path for path in outputs if path.is_file()]
        if present:
            read(present, "role", observe=observe)

    def mean(self, role: str, questions: Sequence[Question]) -> tuple[float, int]:
        mine = self.by_role.get(role, {})
        found = [mine[str(q.id)] for q in questions if str(q.id) in mine]
        return (sum(found) / len(found) if found else math.nan), len(found)

    def paired(self, role: str, control: str, questions: Sequence[Question]) -> stats.Paired:
        mine, theirs = self.by_role.get(role, {}), self.by_role.get(control, {})
        keys = [str(q.id) for q in questions if str(q.id) in mine and str(q.id) in theirs]
        return stats.compare([mine[k] for k in keys], [theirs[k] for k in keys])


def of_model(config: RunConfig, model: str | None, **asking: Any) -> Any:
    """What another run of a search asks (a judge, a proposer), of ``model``:
    --base-url and --mode go with --model only, so a model of another
    provider is reached at its own provider's URL, with its own key."""
    model = model or config.asked.model
    same = model == config.asked.model
    return replace(
        config.asked,
        model=model,
        base_url=config.asked.base_url if same else None,
        mode=config.asked.mode if same else None,
        **asking,
    )


def judge_asked(config: RunConfig, searching: Searching) -> Any:
    """What the judge of a search is asked: the rubric, by --judge-model (or
    the model asked)."""
    return of_model(
        config,
        searching.judge_model,
        task="judge",
        judge=Judging(rubric=searching.rubric),
        schema=None,
        layout="system",
        roles=None,
        samples=1,
    )


def setup_of(
    config: RunConfig, searching: Searching, candidates: Candidates, job: Job, parts: Split
) -> dict[str, Any]:
    """What must not change while a search goes on: a change is a new search."""
    return {
        "job": str(config.job),
        "questions": len(job.questions),
        "score": searching.score,
        "rubric": None if searching.rubric is None else str(searching.rubric),
        "judge_model": searching.judge_model,
        "holdout": searching.holdout,
        "seed": searching.seed,
        "strata": searching.strata,
        "control": candidates.control,
        "candidates": [{"id": i, "role": as_json(t)} for i, t in candidates.roles],
        "split": parts.as_dict(),
    }


def check_same(folder: Folder, setup: dict[str, Any], fresh: bool) -> bool:
    """Refuse a folder that holds another search; True when it holds none
    yet (or --fresh starts it over): its setup is then to be written."""
    if fresh:
        return True
    before = folder.read_state()
    if before is None:
        return True
    was = before.get("setup") or {}
    changed = [key for key in setup if was.get(key) != setup[key]]
    if changed:
        what = ", ".join("the split" if key == "split" else key for key in changed)
        raise UsageError(
            f"{folder.path} holds a search with another {what}: give another -o for this"
            " one, or --fresh to start that one over"
        )
    return False


def full_sweep_calls(candidates: Candidates, questions: int, judged: bool = False) -> int:
    """Every candidate and the control on every question (``judged``: and a
    judge's grade of each answer, a call too)."""
    return (len(candidates.roles) + 1) * questions * (2 if judged else 1)


def expected_calls(candidates: Candidates, parts: Split, judged: bool = False) -> int:
    """What the search asks: the race's fixed schedule and the confirmation
    (``judged``: and a judge's grade of each answer)."""
    asked = calls(len(candidates.roles), len(parts.search)) + 2 * len(parts.held_out)
    return asked * (2 if judged else 1)


def answers_in(outputs: Sequence[Path]) -> int:
    """The lines (answers and error lines: calls made) of the outputs there are."""
    count = 0
    for path in dict.fromkeys(outputs):
        if path.is_file():
            with path.open("rb") as handle:
                count += sum(1 for raw in handle if raw.strip())
    return count


async def search(
    config: RunConfig,
    searching: Searching,
    folder: Path,
    reporter: Reporter | None = None,
    *,
    handle_signals: bool = False,
) -> dict[str, Any]:
    """Run the search to its decision; returns what ``search.json`` holds.
    Raises what a run raises (UsageError before anything is bought; an
    AbortError or Pending with the state so far in ``.state``)."""
    reporter = reporter or Reporter()
    if config.asked.roles is None:
        raise UsageError("a search needs candidate roles: --roles ROLES (or --propose N)")
    if config.asked.samples != 1:
        raise UsageError("a search asks each question once per role: --samples is not for it")
    if config.written.shard is not None:
        raise UsageError("a search runs its rounds one after another: --shard is not for it")
    candidates = candidates_of(Path(config.asked.roles))
    job = await anyio.to_thread.run_sync(read_job, config, searching.strata)
    parts = split(job.questions, searching.holdout, searching.seed, searching.strata)
    place = Folder(folder)
    setup = setup_of(config, searching, candidates, job, parts)
    unwritten = check_same(place, setup, config.written.fresh)
    place.write(place.path / "candidates.jsonl", roles_file(candidates, candidates.ids))
    state: dict[str, Any] = {
        "rolebatch_search": FORMAT,
        "setup": setup,
        "model": config.asked.model,
        "roles": {i: as_json(t) for i, t in candidates.roles},
        "metadata": candidates.metadata,
        "status": "racing",
    }
    if unwritten:
        # The setup is on disk before anything is bought: a search killed in
        # its first round and run again with another seed is refused, not
        # resumed into the first one's outputs.
        place.save(state)
    scores = Scores(searching.score)
    control: list[dict[str, Any]] = []  # the control's mean after each round
    race = Race(candidates.ids, len(parts.search), searching.seed)
    spent = Decimal(0)
    priced = True
    made: list[Path] = []  # every output bought into, answers and grades
    scored: list[Path] = []  # the outputs scores are read from
    judged = searching.rubric is not None

    async def run(job_file: Path, output: Path, asked: Any) -> None:
        """One ordinary run, within what is left of --max-cost."""
        nonlocal spent, priced
        limit = config.bought.max_cost
        one = replace(
            config,
            job=job_file,
            output=output,
            asked=asked,
            bought=replace(
                config.bought,
                max_cost=None if limit is None else max(0.0, limit - float(spent)),
            ),
        )
        made.append(output)
        try:
            summary = await run_job(one, reporter, handle_signals=handle_signals)
        except (AbortError, Pending) as exc:
            scores.read(scored)
            state.update(_cost(candidates, parts, made, spent, exc.summary, priced, judged))
            _stopped(state, race, control, scores, parts, candidates, exc)
            place.save(state)
            exc.state = state  # type: ignore[attr-defined]
            raise
        tally = summary.tally
        if tally.cost is None:
            priced = False
        else:
            spent += (tally.cost_before or Decimal(0)) + tally.cost

    async def buy(part: str, questions: Sequence[Question], asked: Sequence[str]) -> None:
        """The answers of ``asked`` (and the control) to ``questions``; with
        a rubric, then the judge's grades of them."""
        place.write(place.questions(part), job.file(questions))
        place.write(place.roles(part), roles_file(candidates, asked))
        answers = place.answers(part)
        await run(place.questions(part), answers, replace(config.asked, roles=place.roles(part)))
        if not judged:
            scored.append(answers)
            return
        records = place.path / f"{part}.judged.records.jsonl"
        await anyio.to_thread.run_sync(make_records, answers, records)
        grades = place.path / f"{part}.judged.jsonl"
        scored.append(grades)
        await run(records, grades, judge_asked(config, searching))

    while (asked := race.next_round()) is not None:
        reporter.note(
            f"round {asked.number}: {len(asked.alive)} candidate"
            f"{'s' if len(asked.alive) != 1 else ''} and the control on search questions"
            f" {asked.start + 1} to {asked.end} of {len(parts.search)}"
        )
        await buy(f"round-{asked.number}", parts.search[asked.start : asked.end], asked.alive)
        scores.read(scored)
        shared = parts.search[: asked.end]
        race.scored({role: scores.mean(role, shared) for role in asked.alive})
        mean, n = scores.mean(candidates.control, shared)
        control.append(
            {"role": candidates.control, "mean": None if math.isnan(mean) else mean, "n": n}
        )
        state["race"] = _race(race, control)
        state.update(_cost(candidates, parts, made, spent, None, priced, judged))
        place.save(state)
    pick = race.pick
    assert pick is not None
    reporter.note(
        f"the race picked {pick}: confirming it on {len(parts.held_out)} held-out questions"
    )
    state["status"] = "confirming"
    await buy("held-out", parts.held_out, [pick])
    verdict = _held_out(scored[-1], searching.score, candidates.control, pick)
    state["search_estimate"] = _estimate(scores.paired(pick, candidates.control, parts.search))
    state["held_out"] = verdict
    state["decision"] = decision(pick, verdict, len(parts.held_out))
    state["status"] = "decided" if verdict["verdict"] is not None else "undecided"
    state.update(_cost(candidates, parts, made, spent, None, priced, judged))
    place.save(state)
    return state


def _race(race: Race, control: list[dict[str, Any]]) -> dict[str, Any]:
    """The race as ``search.json`` holds it: each round with the control's mean."""
    found = race.as_dict()
    for played, mine in zip(found["rounds"], control, strict=False):
        played["control"] = mine
    return found


def _held_out(output: Path, spec: str, control: str, pick: str) -> dict[str, Any]:
    """The paired test ``report`` makes of the pick against the control on
    the held-out answers (one comparison: Holm's family of one)."""
    found = study([output], Study(by="role", score=spec, baseline=control))
    comparisons = (found.scores or {}).get("comparisons") or []
    mine = next((c for c in comparisons if c["key"] == pick), None)
    answered = min((found.groups[g].ok if g in found.groups else 0) for g in (pick, control))
    if mine is None or answered < MOST_ERRORS_LEFT or mine["verdict"] == "too few pairs":
        # No evidence is no verdict: errors score 0 for both sides, and
        # "no detectable difference" on them would be a decision made on nothing.
        return {"n": 0 if mine is None else mine["n_pairs"], "answered": answered, "verdict": None}
    return {
        "answered": answered,
        "n": mine["n_pairs"],
        "diff": mine["diff"],
        "ci_low": mine["ci_low"],
        "ci_high": mine["ci_high"],
        "p": mine["p"],
        "test": mine["test"],
        "interval": mine["interval"],
        "verdict": mine["verdict"],
    }


def _estimate(found: stats.Paired) -> dict[str, Any]:
    return {
        "n": found.n_pairs,
        "diff": found.diff,
        "ci_low": found.ci_low,
        "ci_high": found.ci_high,
        "p": found.p,
        "test": found.test,
    }


def decision(pick: str | None, held: dict[str, Any] | None, n: int) -> dict[str, Any]:
    """The search's answer: a role to use (confirmed better), or none; with no
    held-out verdict (none yet, or no evidence), nothing is confirmed."""
    verdict = (held or {}).get("verdict")
    return {
        "role": pick if verdict == "better" else None,
        "verdict": verdict,
        "candidate": pick,
        "confirmed": verdict is not None,
        "held_out_questions": n,
        "diff": (held or {}).get("diff"),
        "ci_low": (held or {}).get("ci_low"),
        "ci_high": (held or {}).get("ci_high"),
        "p": (held or {}).get("p"),
    }


def _stopped(
    state: dict[str, Any],
    race: Race,
    control: list[dict[str, Any]],
    scores: Scores,
    parts: Split,
    candidates: Candidates,
    exc: BaseException,
) -> None:
    """The state of a search stopped part-way: the leader so far, not confirmed."""
    asked = race.next_round()
    alive = asked.alive if asked is not None else tuple(candidates.ids)
    shared = parts.search[: asked.end] if asked is not None else parts.search
    means = {role: scores.mean(role, shared) for role in alive}
    scored = [role for role in alive if means[role][1]]
    leader = race.pick or (max(scored, key=lambda role: means[role][0]) if scored else None)
    state["race"] = _race(race, control)
    state["status"] = (
        "pending"
        if isinstance(exc, Pending)
        else ("budget reached" if isinstance(exc, BudgetReached) else "stopped")
    )
    state["decision"] = decision(leader, None, 0)


def _cost(
    candidates: Candidates,
    parts: Split,
    outputs: Sequence[Path],
    spent: Decimal,
    summary: Any,
    priced: bool,
    judged: bool = False,
) -> dict[str, Any]:
    """Calls and cost so far, against a full sweep of every candidate and
    the control over every question."""
    made = answers_in(outputs)
    if summary is not None and summary.tally.cost is not None:
        spent += (summary.tally.cost_before or Decimal(0)) + summary.tally.cost
    full = full_sweep_calls(candidates, len(parts.search) + len(parts.held_out), judged)
    usd = float(spent) if priced else None
    return {
        "cost": {
            "calls": made,
            "planned_calls": expected_calls(candidates, parts, judged),
            "full_sweep_calls": full,
            "share_of_full_sweep": made / full if full else None,
            "usd": usd,
            "full_sweep_usd": None if usd is None or not made else usd / made * full,
        }
    }
