"""What an output says, per group of lines: the numbers behind ``rolebatch report``.

One pass over the file, line by line.  Per group it keeps counts and sums,
and the values percentiles need in flat arrays (8 bytes a latency, 4 a
string length): a million lines stay in tens of megabytes, not gigabytes of
parsed objects.  A string field whose values are few (at most ``CATEGORIES``
distinct in a group, none longer than ``LABEL_LENGTH``) is reported as a
distribution, like booleans, and not by its length: that is how enums show.
Reading and grouping only: the figures' rendering is ``evaluate.descriptive``.
"""

from __future__ import annotations

import math
from array import array
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import UsageError
from .ids import HashIndex, id_hash
from .lines import read_output
from .profiles import label

CATEGORIES = 8
LABEL_LENGTH = 32  # longer strings are text, not labels


@dataclass
class FieldStats:
    strings: array = field(default_factory=lambda: array("I"))  # lengths
    values: Counter = field(default_factory=Counter)  # distinct strings, until too many
    many: bool = False  # more distinct strings than CATEGORIES
    numbers: array = field(default_factory=lambda: array("d"))
    booleans: Counter = field(default_factory=Counter)
    items: array = field(default_factory=lambda: array("I"))  # a list's length

    def add(self, value: Any) -> None:
        if isinstance(value, bool):
            self.booleans[str(value).lower()] += 1
        elif isinstance(value, int | float):
            self.numbers.append(float(value))
        elif isinstance(value, str):
            self.strings.append(len(value))
            if not self.many:
                self.values[value] += 1
                if len(self.values) > CATEGORIES or len(value) > LABEL_LENGTH:
                    self.many = True
                    self.values.clear()
        elif isinstance(value, list):
            self.items.append(len(value))


@dataclass
class Group:
    records: int = 0
    ok: int = 0
    errors: Counter = field(default_factory=Counter)
    latencies: array = field(default_factory=lambda: array("d"))
    prompt_tokens: int = 0
    completion_tokens: int = 0
    with_usage: int = 0
    cost: float = 0.0
    priced: int = 0
    fields: dict[str, FieldStats] = field(default_factory=dict)

    def add(self, line: dict[str, Any]) -> None:
        self.records += 1
        if line.get("status") == "ok":
            self.ok += 1
        else:
            self.errors[(line.get("error") or {}).get("kind") or "unknown"] += 1
        latency = line.get("latency_s")
        if isinstance(latency, int | float):
            self.latencies.append(float(latency))
        usage = line.get("usage")
        if isinstance(usage, dict):
            self.with_usage += 1
            self.prompt_tokens += int(usage.get("prompt_tokens") or 0)
            self.completion_tokens += int(usage.get("completion_tokens") or 0)
        cost = line.get("cost_usd")
        if isinstance(cost, int | float):
            self.cost += cost
            self.priced += 1
        response = line.get("response")
        if isinstance(response, dict):
            for name, value in response.items():
                if name == "option" and "options" in line and not isinstance(value, bool):
                    value = str(value)  # which option, not a quantity: shown by its share
                self.fields.setdefault(name, FieldStats()).add(value)


def percentile(values: array | list[float], share: float) -> float | None:
    """The ``share`` percentile, interpolated between the nearest ranks (None: no values)."""
    if not len(values):
        return None
    ordered = sorted(values)
    rank = share * (len(ordered) - 1)
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def _mean(values: array) -> float | None:
    return sum(values) / len(values) if len(values) else None


def _spread(values: array) -> float | None:
    """The standard deviation (population)."""
    if not len(values):
        return None
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))


# Between the two keys' values of a group under --by KEY,KEY.
JOIN = " · "
# Where a line read for a report keeps the name of the output it came from
# (for --by output); no output line has such a key.
OUTPUT_KEY = "\x00output"


# What --by takes besides metadata.KEY and role.KEY.
GROUPINGS = ("role", "model", "judged_model", "output")


def group_of(line: dict[str, Any], by: str) -> str:
    """The group of ``line`` under ``by``: one key, or two (``model,role``)."""
    if "," in by:
        return JOIN.join(group_of(line, key) for key in by.split(","))
    if by == "role":
        if line.get("role_id"):
            key = str(line["role_id"])
        else:
            key = label(line.get("role")) or "(no role)"  # a profile: its name
        # A role asked another way (--layout personas) is a group of its own.
        return f"{key}+{line['condition']}" if line.get("condition") else key
    if by == "model":
        return str(line.get("model"))
    if by == "judged_model":  # a judge's line: the model that wrote what it judged
        return str(line.get("judged_model"))
    if by == "output":
        return str(line.get(OUTPUT_KEY))
    where, _, key = by.partition(".")
    # metadata.KEY: the record's; role.KEY: what the roles file says of its role.
    metadata = line.get("metadata" if where == "metadata" else "role_metadata")
    value = metadata.get(key) if isinstance(metadata, dict) else None
    return "(none)" if value is None else str(value)


def read(
    paths: Path | list[Path], by: str, observe: Callable[[dict[str, Any], str], None] | None = None
) -> dict[str, Group]:
    """Every line of ``paths`` in its group; ``observe`` sees each line too,
    with its group (the scores of ``evaluate``), in the same one pass."""
    keys = by.split(",")
    if len(keys) > 2 or any(
        key not in GROUPINGS and not key.startswith(("metadata.", "role.")) for key in keys
    ):
        raise UsageError(
            f"--by {by!r}: expected role, model, judged_model, output, metadata.KEY or role.KEY,"
            " or two of them"
            " (model,role: each model's roles against that model's baseline)"
        )
    paths = [paths] if isinstance(paths, Path) else list(paths)
    resolved = [path.resolve() for path in paths]
    for k, path in enumerate(resolved):
        if path in resolved[:k]:
            raise UsageError(f"{paths[k]}: given twice: its lines would count twice")
    # A line met twice counts twice: in one output (its lines twice, by cat),
    # or in two, unless the outputs are the groups (then each output's own).
    seen = HashIndex(values=True)
    per_output = "output" in keys
    groups: dict[str, Group] = {}
    for index, path in enumerate(paths):
        _read(path, by, groups, observe, (seen, index, paths, per_output))
    return groups


def identity(line: dict[str, Any]) -> str:
    """What a line answers: its record (a sweep's id carries the role and the
    sample), the model, the condition it was asked under (personas), and for
    a judge's line the model it judged."""
    parts = (
        line.get("id"),
        line.get("role_id"),
        line.get("model"),
        line.get("condition"),
        line.get("judged_model"),
    )
    return "\x00".join(str(part) for part in parts)


def _read(
    path: Path,
    by: str,
    groups: dict[str, Group],
    observe: Callable[[dict[str, Any], str], None] | None,
    seen: tuple[HashIndex, int, list[Path], bool] | None = None,
) -> None:
    name = path.name
    for number, _, line in read_output(path):
        if seen is not None:
            index, at, paths, per_output = seen
            key = identity(line) + (f"\x00{at}" if per_output else "")
            first = index.add(id_hash(key), at)
            if first == at:
                raise UsageError(
                    f"{path}:{number}: the line of {line.get('id')!r} ({line.get('model')}) is"
                    " in this output twice: one answer would count twice (its lines copied in"
                    " again, say); keep each line once"
                )
            if first is not None:
                raise UsageError(
                    f"{path}: the line of {line.get('id')!r} ({line.get('model')}) is in"
                    f" {paths[first]} too: one answer would count twice (a copy of an"
                    " output, or a resumed copy of it); give each output once, or"
                    " --by output to compare them"
                )
        line[OUTPUT_KEY] = name
        key = group_of(line, by)
        groups.setdefault(key, Group()).add(line)
        if observe is not None:
            observe(line, key)


def rows(groups: dict[str, Group]) -> list[tuple[str, list[Any]]]:
    """(metric, value per group) rows, metrics down and groups across."""
    names = list(groups)
    table: list[tuple[str, list[Any]]] = []

    def row(metric: str, values: list[Any]) -> None:
        table.append((metric, values))

    g = [groups[name] for name in names]
    row("records", [x.records for x in g])
    row("ok share", [x.ok / x.records if x.records else None for x in g])
    kinds = sorted({kind for x in g for kind in x.errors})
    for kind in kinds:
        row(f"errors: {kind}", [x.errors.get(kind, 0) for x in g])
    row("latency p50 s", [percentile(x.latencies, 0.5) for x in g])
    row("latency p95 s", [percentile(x.latencies, 0.95) for x in g])
    row("prompt tokens mean", [x.prompt_tokens / x.with_usage if x.with_usage else None for x in g])
    row(
        "completion tokens mean",
        [x.completion_tokens / x.with_usage if x.with_usage else None for x in g],
    )
    row("cost usd", [x.cost if x.priced else None for x in g])
    fields = sorted({name for x in g for name in x.fields})
    for name in fields:
        stats = [x.fields.get(name, FieldStats()) for x in g]
        if any(len(s.strings) for s in stats):
            if any(s.many for s in stats):  # text: how long it runs
                row(f"{name}: length mean", [_mean(s.strings) for s in stats])
                row(f"{name}: length p50", [percentile(s.strings, 0.5) for s in stats])
            else:  # labels (an enum, a judge's "A" or "B"): how often each
                values = sorted({v for s in stats for v in s.values})
                for value in values:
                    row(f"{name} = {value}", [_share(s.values, value) for s in stats])
        if any(len(s.numbers) for s in stats):
            row(f"{name}: mean", [_mean(s.numbers) for s in stats])
            row(f"{name}: spread", [_spread(s.numbers) for s in stats])
        if any(len(s.items) for s in stats):
            row(f"{name}: items mean", [_mean(s.items) for s in stats])
        if any(s.booleans for s in stats):
            for value in ("true", "false"):
                row(f"{name} = {value}", [_share(s.booleans, value) for s in stats])
    return table


def _share(counter: Counter, value: str) -> float | None:
    total = sum(counter.values())
    return counter[value] / total if total else None
