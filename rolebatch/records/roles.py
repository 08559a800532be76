"""Sweeps: every query record under every role of a roles file, each pair
asked ``samples`` times.

    --roles ROLES    JSONL of {"id": "poet", "role": "You are ...", "metadata":
                     {...}} ("role": "" is the control: the query alone), or
                     of profiles ({"id": "holmes", "name": ..., "description":
                     ..., "catchphrases": [...], "examples": [...]}: see
                     ``records.profiles``), or a text file with one role a
                     line (ids: the line numbers)
    --samples K      each (record, role) pair K times

A sweep's records are ``<record id>@<role id>`` (and ``#0``..``#K-1`` with
samples), in query-major, role-minor order.  Each has a place of its own in
the sweep, ``line`` = (job line - 1) x roles x samples + its pair's index + 1,
which is what an output line's ``line`` says for a sweep.  Ids, not places,
carry a run over to the next: adding a role to ROLES moves the places, and a
resumed run finds the pairs it has by id and runs only the new ones.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError
from .profiles import Profile, Vet, as_json, parse_profile

FORBIDDEN = ("@", "#")  # they separate the parts of a sweep's ids


@dataclass(frozen=True)
class Sweep:
    # (id, role): its text or profile; None: the record's own role.
    roles: tuple[tuple[str, str | Profile | None], ...]
    samples: int = 1
    # Role id -> the metadata the roles file gives it (category, domain, ...).
    metadata: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def width(self) -> int:
        """Places per job line."""
        return len(self.roles) * self.samples

    @property
    def key(self) -> str:
        """What identifies this sweep's records (for the job-check stamp)."""
        roles = [(role_id, as_json(role)) for role_id, role in self.roles]
        data = json.dumps([roles, self.samples], ensure_ascii=False)
        return hashlib.sha256(data.encode()).hexdigest()[:16]

    def expand(
        self, line: int, record_id: Any
    ) -> Iterator[tuple[int, str, str | Profile | None, str, int]]:
        """(place, id, role text, role id, sample) of every ask of the record on
        ``line`` (text "": the control, the query alone; None: the record's own role)."""
        place = (line - 1) * self.width
        for role_id, text in self.roles:
            for sample in range(self.samples):
                place += 1
                name = str(record_id)
                if role_id:
                    name += f"@{role_id}"
                if self.samples > 1:
                    name += f"#{sample}"
                yield place, name, text, role_id, sample


def role_row(role_id: str, role: str | Profile | None, metadata: Any = None) -> dict[str, Any]:
    """A roles file's line for a role: ``{"id", "role"}``, or a profile's keys
    beside its id; its metadata after."""
    row: dict[str, Any] = {"id": role_id}
    if isinstance(role, Profile):
        row.update(role.as_dict())
    else:
        row["role"] = role or ""
    if metadata:
        row["metadata"] = metadata
    return row


def samples_only(samples: int) -> Sweep:
    return Sweep((("", None),), samples)


def load_sweep(path: Path, samples: int, vet: Vet | None = None) -> Sweep:
    """The sweep over the roles of ``path`` (checked as strictly as a job
    file), each pair ``samples`` times; ``vet``: what is wrong with a
    profile for this run (too long for the model's context, say)."""
    roles, metadata = load_roles(path, vet)
    return Sweep(roles, samples, metadata)


def load_roles(
    path: Path, vet: Vet | None = None
) -> tuple[tuple[tuple[str, str | Profile | None], ...], dict[str, Any]]:
    """The roles of ``path``, checked as strictly as a job file, and the
    metadata of those that have some; ``vet``: what is wrong with a profile
    for this run."""
    if not path.is_file():
        raise InputError([f"{path}: no such roles file"])
    problems: list[str] = []
    roles: list[tuple[str, str | Profile | None]] = []
    metadata: dict[str, Any] = {}
    first: dict[str, int] = {}
    said: dict[str | Profile | None, int] = {}  # each role, and the line it is first on
    jsonl = path.suffix.lower() in (".jsonl", ".json", ".ndjson")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError([f"{path}: not valid UTF-8 (byte {exc.start + 1})"]) from None
    except OSError as exc:
        raise InputError([f"{path}: cannot read: {exc.strerror}"]) from None
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        where = f"{path}:{number}"
        if jsonl:
            try:
                item = json.loads(raw)
            except json.JSONDecodeError as exc:
                problems.append(f"{where}: invalid JSON: {exc.msg} (column {exc.colno})")
                continue
            if not isinstance(item, dict):
                problems.append(f"{where}: expected a JSON object with id and role")
                continue
            role_id = item.get("id")
            if "id" not in item:
                problems.append(f"{where}: field 'id': required")
                continue
            if isinstance(role_id, bool) or not isinstance(role_id, str | int):
                problems.append(f"{where}: field 'id': expected a string or integer")
                continue
            role_id = str(role_id)
            role: str | Profile | None
            if "role" not in item and any(key in item for key in ("name", "description")):
                profile = parse_profile(item, allowed=("id", "metadata"))
                if not isinstance(profile, Profile):
                    problems.append(f"{where}: field {profile[0]!r}: {profile[1]}")
                    continue
                wrong = None if vet is None else vet(profile)
                if wrong is not None:
                    problems.append(f"{where}: profile {role_id!r}: {wrong}")
                    continue
                role = profile
            else:
                unknown = [key for key in item if key not in ("id", "role", "metadata")]
                if unknown:
                    problems.append(
                        f"{where}: field {unknown[0]!r}: unknown key (allowed: id, role,"
                        " metadata; or a profile's name, description, catchphrases, examples)"
                    )
                    continue
                if "role" not in item:
                    problems.append(
                        f"{where}: field 'role': required (or a profile's name and description)"
                    )
                    continue
                role = item["role"]
                if not isinstance(role, str) or (role and not role.strip()):
                    problems.append(
                        f"{where}: field 'role': expected a string (\"\" for the control:"
                        " the query alone)"
                    )
                    continue
            extra = item.get("metadata")
            if extra is not None and not isinstance(extra, dict):
                problems.append(f"{where}: field 'metadata': expected an object")
                continue
            if extra:
                metadata[role_id] = extra
        else:
            role_id, role = str(number), raw.strip()
        if not role_id.strip() or any(mark in role_id for mark in FORBIDDEN):
            problems.append(f"{where}: field 'id': {role_id!r}: empty, or has @ or #")
            continue
        if role_id in first:
            problems.append(
                f"{where}: field 'id': duplicate role id {role_id!r} (first on line"
                f" {first[role_id]})"
            )
            continue
        if role and role in said:
            problems.append(
                f"{where}: field 'role': the same role as line {said[role]}: it would be asked"
                " twice, as two roles (for repeated answers, use --samples)"
            )
            continue
        first[role_id] = number
        said.setdefault(role, number)
        roles.append((role_id, role))
    if problems:
        raise InputError(problems[:20], max(0, len(problems) - 20))
    if not roles:
        raise InputError([f"{path}: no roles in it"])
    return tuple(roles), metadata
