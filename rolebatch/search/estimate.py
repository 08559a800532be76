"""What a search would ask and cost, sending nothing: the race's schedule
round by round, the confirmation, and a full sweep of the same candidates
over every question, priced at the full sweep's forecast per call.

Successive halving's schedule is fixed by the number of candidates and of
search questions, so the worst case (every round run to its end, which is
how the race always runs) and the expected case ask the same calls; what
can make a search cheaper than its estimate is only what the folder or the
cache already holds."""

from __future__ import annotations

import json
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

from ..config import RunConfig
from ..errors import UsageError
from ..forecast import forecast
from ..progress import dollars
from ..records.sidecar import sidecar_path
from .flow import (
    Folder,
    answers_in,
    candidates_of,
    expected_calls,
    full_sweep_calls,
    read_job,
)
from .race import schedule
from .split import split


def estimate(config: RunConfig, searching: Any, folder: Path, as_json: bool) -> str:
    if config.asked.roles is None:
        raise UsageError("a search needs candidate roles: --roles ROLES (or --propose N)")
    candidates = candidates_of(Path(config.asked.roles))
    job = read_job(config, searching.strata)
    parts = split(job.questions, searching.holdout, searching.seed, searching.strata)
    plan = schedule(len(candidates.roles), len(parts.search))
    rounds, before = [], 0
    for number, (alive, end) in enumerate(plan, start=1):
        rounds.append(
            {
                "round": number,
                "candidates": alive,
                "questions": end - before,
                "calls": (alive + 1) * (end - before),
            }
        )
        before = end
    judged = searching.rubric is not None
    graded = 2 if judged else 1  # a judge's call per answer
    confirm = 2 * len(parts.held_out) * graded
    search_calls = expected_calls(candidates, parts, judged)
    full = full_sweep_calls(candidates, len(job.questions), judged)
    for row in rounds:
        row["calls"] *= graded
    sweep = forecast(replace(config, output=Folder(folder).path / "full-sweep.estimate.jsonl"))
    per_call = None
    if sweep.cost_live is not None and sweep.to_do:
        per_call = sweep.cost_live / sweep.to_do

    def usd(calls: int) -> float | None:
        return None if per_call is None else float(round(per_call * calls, 6))

    held = _held(Folder(folder))
    found = {
        "method": "successive halving",
        "candidates": len(candidates.roles),
        "control": candidates.control,
        "questions": len(job.questions),
        "search_questions": len(parts.search),
        "held_out_questions": len(parts.held_out),
        "rounds": rounds,
        "confirmation_calls": confirm,
        "worst_case": {"calls": search_calls, "usd": usd(search_calls)},
        "expected_case": {"calls": search_calls, "usd": usd(search_calls)},
        "already_in_folder": held,
        "full_sweep": {"calls": full, "usd": usd(full)},
        "share_of_full_sweep": search_calls / full if full else None,
        "price": sweep.live.describe() if sweep.live else None,
        "graded_by_a_judge": judged,
    }
    return json.dumps(found, indent=2) if as_json else _text(found, per_call)


def _held(folder: Folder) -> int:
    """Answers the folder's outputs already hold (not bought again): its
    files with a run's sidecar beside them, not the jobs and roles it made."""
    if not folder.path.is_dir():
        return 0
    outputs = [p for p in sorted(folder.path.glob("*.jsonl")) if sidecar_path(p).is_file()]
    return answers_in(outputs)


def _text(found: dict[str, Any], per_call: Decimal | None) -> str:
    def cost(entry: dict[str, Any]) -> str:
        return "" if entry["usd"] is None else f", about {dollars(Decimal(str(entry['usd'])))}"

    lines = [
        f"rolebatch search estimate: {found['candidates']} candidates and the control over"
        f" {found['questions']:,} questions ({found['search_questions']:,} to search on,"
        f" {found['held_out_questions']:,} held out)"
    ]
    for row in found["rounds"]:
        lines.append(
            f"  round {row['round']}: {row['candidates']} candidates and the control x"
            f" {row['questions']:,} new questions: {row['calls']:,} calls"
        )
    lines.append(
        f"  held-out: the pick and the control x {found['held_out_questions']:,}:"
        f" {found['confirmation_calls']:,} calls"
    )
    worst = found["worst_case"]
    lines.append(f"  worst case: {worst['calls']:,} calls{cost(worst)}")
    lines.append(
        f"  expected case: {found['expected_case']['calls']:,} calls, the same: successive"
        " halving's schedule is fixed by the candidates and the questions, whatever the"
        " answers"
    )
    if found["already_in_folder"]:
        lines.append(f"  already bought in the folder: {found['already_in_folder']:,} answers")
    full = found["full_sweep"]
    share = found["share_of_full_sweep"]
    lines.append(
        f"  a full sweep of every candidate and the control over every question:"
        f" {full['calls']:,} calls{cost(full)}; the search is {share:.0%} of it"
    )
    if found["graded_by_a_judge"]:
        lines.append(
            "  with --rubric every answer is graded by a call too: the calls above count both,"
            " each priced as an answer"
        )
    if per_call is None:
        lines.append("  cost: unknown for this model: give --price IN/OUT")
    return "\n".join(lines)
