"""What a report is of, for the page's head and ``--format json``: the
models, when the newest line was written, the sweep's roles and the
temperatures the outputs were run with (their sidecars), the questions, groups and calls,
the chance level of a choice task, and the version of rolebatch that wrote
the report.  Gathered in the report's one pass, a line at a time."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..records.sidecar import read_sidecar


@dataclass
class Provenance:
    models: set[str] = field(default_factory=set)
    calls: int = 0  # lines read: one answer (or error) each
    requests: int = 0  # attempts, re-asks and retries included
    # A choice task's chance level: the mean of 1/options over its lines.
    _chance_sum: float = 0.0
    _chance_n: int = 0

    def add(self, line: dict[str, Any]) -> None:
        self.calls += 1
        self.models.add(str(line.get("model")))
        attempts = line.get("attempts")
        if isinstance(attempts, int):
            self.requests += attempts
        options = line.get("options")
        if isinstance(options, list) and options:
            self._chance_sum += 1 / len(options)
            self._chance_n += 1

    @property
    def chance(self) -> float | None:
        """The score of answering at random, when every line is a choice."""
        if not self._chance_n or self._chance_n != self.calls:
            return None
        return self._chance_sum / self._chance_n

    def as_dict(
        self, outputs: list[Path], questions: int | None, groups: int, by: str
    ) -> dict[str, Any]:
        metas = [read_sidecar(o) or {} for o in outputs if o.is_file()]
        configs = [meta.get("config") or {} for meta in metas]
        roles: list[str] = []
        for meta in metas:  # a sweep's roles, in their file's order
            for role_id, _ in (meta.get("sweep") or {}).get("roles") or []:
                if str(role_id) not in roles:
                    roles.append(str(role_id))
        newest = max((o.stat().st_mtime for o in outputs if o.is_file()), default=None)
        return {
            "models": sorted(self.models),
            "newest_line_written": None
            if newest is None
            else time.strftime("%Y-%m-%d %H:%M", time.localtime(newest)),
            "roles": roles,
            "temperatures": sorted(
                {c.get("temperature") for c in configs if "temperature" in c},
                key=lambda t: (t is None, t or 0),
            ),
            "questions": questions,
            "groups": groups,
            "by": by,
            "calls": self.calls,
            "requests": self.requests,
            "chance": self.chance,
            "rolebatch": _version(),
        }


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("rolebatch")
    except PackageNotFoundError:
        return "unknown"
