"""Candidate roles written by a model (``--propose N --proposer MODEL``).

The proposer reads a sample of the search part's queries (never the
held-out part's: nothing learned there may shape the choice) and writes N
distinct roles in the kinds Zheng et al. (arXiv 2311.10054) sort personas
into: occupations in and out of the questions' domain, interpersonal
relationships, and speaker and audience framings.  Its answer is bought by
an ordinary run (``FOLDER/proposal.jsonl``: resumed and cached as any), and
the roles go to ``FOLDER/proposed-roles.jsonl``, the control first, written
and shown before any candidate is asked.  The same command reads them back,
so a search resumed races the same roles.  ``--base-url`` and ``--mode`` go
with ``--model``: a proposer of another provider is reached at its own URL.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from ..config import RunConfig
from ..errors import UsageError
from ..pipeline import run_job
from ..progress import Reporter
from ..records.roles import load_roles, role_row
from .flow import CONTROL_IDS, Folder, of_model, read_job
from .split import split

SCHEMA = "rolebatch.search.propose:Proposal"
SAMPLE = 20  # queries the proposer reads
KINDS = (
    "in-domain occupation",
    "out-of-domain occupation",
    "interpersonal relationship",
    "speaker framing",
    "audience framing",
)
ROLE = "You design experiments on role prompting for language models."


class ProposedRole(BaseModel):
    id: str = Field(description="a short id: lowercase letters, digits and dashes")
    role: str = Field(description="the role as the model would be told it, one sentence")
    kind: str = Field(description="one of: " + ", ".join(KINDS))


class Proposal(BaseModel):
    """Candidate roles for a job."""

    roles: list[ProposedRole]


def prompt(queries: list[str], count: int) -> str:
    listed = "\n".join(f"- {q}" for q in queries)
    return (
        f"Here are {len(queries)} questions from a job a language model will answer:\n"
        f"{listed}\n\nWrite {count} distinct roles to put in the model's prompt, to find out"
        " which (if any) makes it answer these questions better.  Mix the kinds: "
        + ", ".join(KINDS)
        + ".  A speaker framing tells the model who it is ('You are a lawyer.'); an"
        " audience framing tells it whom it speaks to ('You are talking to a lawyer.')."
        " Each role is one sentence in the second person; no two alike."
    )


def _slug(text: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug[:40].strip("-") or "role"


def _roles(answer: dict[str, Any], taken: set[str], texts: set[str], model: str) -> list[dict]:
    """The proposal's roles, distinct from each other and from ``texts``."""
    found = []
    for item in answer.get("roles") or []:
        text = " ".join(str(item.get("role", "")).split())
        if not text or text.casefold() in texts:
            continue
        base = _slug(str(item.get("id") or text))
        role_id, n = base, 2
        while role_id in taken:
            role_id, n = f"{base}-{n}", n + 1
        taken.add(role_id)
        texts.add(text.casefold())
        kind = str(item.get("kind", "")).strip()
        found.append(role_row(role_id, text, {"kind": kind, "proposed_by": model}))
    return found


async def propose(
    config: RunConfig,
    folder: Path,
    count: int,
    model: str,
    reporter: Reporter,
    searching: Any,
) -> tuple[Path, str]:
    """The roles file to race (the proposed roles, with --roles' own before
    them) and what to show of it."""
    place = Folder(folder)
    job = read_job(replace(config, asked=replace(config.asked, roles=None)), searching.strata)
    parts = split(job.questions, searching.holdout, searching.seed, searching.strata)
    queries = [job.lines[q.line]["query"] for q in parts.search[:SAMPLE]]
    record = {"id": "proposal", "query": prompt(queries, count), "role": ROLE}
    place.write(place.questions("proposal"), json.dumps(record, ensure_ascii=False) + "\n")
    asked = of_model(
        config,
        model,
        task="role",
        schema=SCHEMA,
        roles=None,
        samples=1,
        layout="split",
    )
    run = replace(
        config, job=place.questions("proposal"), output=place.answers("proposal"), asked=asked
    )
    await run_job(run, reporter, handle_signals=True)
    line = _answer(place.answers("proposal"))
    given: list[dict[str, Any]] = []
    if config.asked.roles is not None:
        roles, metadata = load_roles(Path(config.asked.roles))
        given += [role_row(i, role, metadata.get(i)) for i, role in roles]
    if not any(row.get("role") == "" for row in given):
        taken_ids = {row["id"] for row in given}
        control = next(c for c in CONTROL_IDS if c not in taken_ids)
        given.insert(0, role_row(control, "", {"kind": "control"}))
    taken = {row["id"] for row in given}
    texts = {row["role"].casefold() for row in given if row.get("role")}
    proposed = _roles(line, taken, texts, model)[:count]
    if not proposed:
        raise UsageError(
            f"{place.answers('proposal')}: {model} proposed no usable role; see its answer"
            " there, or give --roles"
        )
    rows = [*given, *proposed]
    path = place.path / "proposed-roles.jsonl"
    place.write(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    shown = [f"rolebatch: {model} proposed {len(proposed)} roles, kept in {path}:"]
    shown += [f"  {r['id']}: {r['role']} ({r['metadata']['kind'] or 'no kind'})" for r in proposed]
    if len(proposed) < count:
        shown.append(f"  (asked for {count}; the rest were alike or empty)")
    return path, "\n".join(shown)


def _answer(output: Path) -> dict[str, Any]:
    with output.open(encoding="utf-8") as handle:
        for raw in handle:
            line = json.loads(raw)
            if line.get("status") == "ok" and isinstance(line.get("response"), dict):
                return line["response"]
            raise UsageError(
                f"{output}: the proposer's answer is an error ({line.get('error')}):"
                " run the same command to ask again"
            )
    raise UsageError(f"{output}: no answer from the proposer")
