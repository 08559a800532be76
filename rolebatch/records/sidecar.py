"""The sidecar beside an output (``out/job.jsonl.rolebatch.json``): the
configuration fingerprint its lines were written under, a sweep's roles word
for word, and the bookkeeping a resume reads back (``records.output`` writes
it).  Here: where it is, reading it, its versions, and a configuration's
change from it said in words a user knows (resume and merge both refuse one).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import UsageError
from .profiles import as_json
from .roles import Sweep

# The sidecar's format: 2 added the sweep's roles and the "sampled" key; 3
# the "seeds" rule (an older output's seeds came from record ids).
SIDECAR_FORMAT = 3
# Fingerprint keys an older sidecar may lack without having been different.
ADDED_IN = {"sampled": 2, "seeds": 3}


def seeds_of(meta: dict[str, Any]) -> str | None:
    """The seed rule an output's lines were sampled under: its sidecar's, or
    "id" for one written before seeds were said (None: not a seeded provider's)."""
    said = meta["config"].get("seeds")
    if said is not None:
        return str(said)
    return "id" if meta.get("rolebatch", 1) < ADDED_IN["seeds"] else None


# Fingerprint keys an older sidecar may have that no longer tell runs apart:
# the job's path (a job is known by its records: the ids and the digest of
# their lines, checked on every resume and merge, wherever the checkout is).
RETIRED_KEYS = frozenset({"job"})


def sidecar_path(output: Path) -> Path:
    return output.with_name(output.name + ".rolebatch.json")


def read_sidecar(output: Path) -> dict[str, Any] | None:
    """The sidecar of ``output``, parsed (None: there is none)."""
    path = sidecar_path(output)
    try:
        meta = json.loads(path.read_text())
        meta["config"]
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError, OSError):
        raise UsageError(f"{path} is damaged; use --fresh to start over") from None
    return meta


def changes(meta: dict[str, Any], fingerprint: dict[str, Any], sweep: Sweep | None) -> list[str]:
    """How a run's configuration (``fingerprint``, ``sweep``) differs from
    the one an output was written under (its sidecar, ``meta``), in words:
    every key of either, and the sweep's roles."""
    stored, now = meta["config"], fingerprint
    version = meta.get("rolebatch", 1)
    found = []
    for key in [*now, *(key for key in stored if key not in now)]:
        if key not in stored and version < ADDED_IN.get(key, 0):
            continue  # an older sidecar did not record it
        if key in RETIRED_KEYS:
            continue
        if stored.get(key) != now.get(key):
            found.append(describe_change(key, stored.get(key), now.get(key)))
    before = {str(role_id): text for role_id, text in (meta.get("sweep") or {}).get("roles", [])}
    for role_id, text in roles_of(sweep).items():
        if role_id in before and before[role_id] != text:
            if isinstance(text, dict) or isinstance(before[role_id], dict):
                found.append(
                    f"role {role_id!r} is not what it was when its lines were written: its"
                    " profile (or its text) changed; give the changed role a new id"
                )
                continue
            found.append(
                f"role {role_id!r} was {before[role_id]!r} when its lines were written, and"
                f" is {text!r} now (ids of a text roles file are its line numbers: add"
                " new roles at the end, or give ids in a JSONL roles file)"
            )
    return found


def roles_of(sweep: Sweep | None) -> dict[str, Any]:
    """A sweep's roles, id -> text (a profile: its object), as the sidecar
    keeps them ({}: no roles)."""
    if sweep is None:
        return {}
    return {role_id: as_json(role) for role_id, role in sweep.roles if role_id}


def describe_change(key: str, before: Any, now: Any) -> str:
    """One difference of configuration, in words a user knows."""
    if key == "sweep":
        if before:
            return "it holds a sweep's lines (--roles / --samples) and this is a plain run"
        return "it holds a plain run's lines and this is a sweep (--roles / --samples)"
    if key == "sampled":
        if before:
            return (
                "its lines are samples (--samples K, ids ending #0, #1, ...) and this run's are not"
            )
        return "its lines are not samples and this run's are (--samples)"
    if key == "shard":
        was = f"shard {before}'s lines" if before else "the whole job's lines"
        run = f"shard {now}" if now else "the whole job"
        return f"it holds {was} and this run is {run}"

    def shown(value: Any) -> str:
        return "not set" if value is None else repr(value)

    return f"{key} was {shown(before)}, now {shown(now)}"
