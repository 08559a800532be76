"""Shards of one job: which records a shard runs, and what its output is called.

A record belongs to shard ``blake2b(id) mod N``: stable (the same on every
host and in every process, unlike Python's salted ``hash``), even, and
independent of where the record is in the file, so a job file that grows
keeps every old record on its shard.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple

from ..errors import UsageError

# Kubernetes Indexed Jobs give each pod its index here.
INDEX_ENV = "JOB_COMPLETION_INDEX"


class Shard(NamedTuple):
    index: int  # K, 0-based
    count: int  # N

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def holds(self, record_id: str | int) -> bool:
        return shard_of(record_id, self.count) == self.index


def shard_of(record_id: str | int, count: int) -> int:
    key = json.dumps(record_id, ensure_ascii=False).encode()
    digest = hashlib.blake2b(key, digest_size=8).digest()
    return int.from_bytes(digest, "big") % count


def parse_shard(spec: str | None, count: int | None, env: Mapping[str, str]) -> Shard | None:
    """``--shard K/N`` or ``--shard K --shard-count N``; with ``--shard-count N``
    alone, K comes from $JOB_COMPLETION_INDEX.  None: the whole job."""
    if spec is None and count is None:
        return None
    index_text: str | None
    if spec is not None:
        index_text, slash, count_text = spec.partition("/")
        if slash:
            if not count_text.strip().isdigit():
                raise UsageError(f"--shard {spec!r}: expected K/N, e.g. 0/4")
            given = int(count_text)
            if count is not None and count != given:
                raise UsageError(f"--shard {spec} and --shard-count {count} disagree")
            count = given
    else:
        index_text = env.get(INDEX_ENV)
        if index_text is None:
            raise UsageError(
                f"--shard-count {count} needs the shard's index: --shard K/{count}, or"
                f" ${INDEX_ENV} (set by Kubernetes Indexed Jobs)"
            )
    if count is None:
        raise UsageError(f"--shard {spec}: how many shards? Give --shard K/N or --shard-count N")
    if not index_text or not index_text.strip().isdigit():
        source = f"${INDEX_ENV}" if spec is None else "--shard"
        raise UsageError(f"{source} {index_text!r}: expected a shard index (0, 1, ...)")
    index = int(index_text)
    if count < 1:
        raise UsageError(f"--shard-count {count}: must be at least 1")
    if index >= count:
        raise UsageError(
            f"shard index {index} is out of range for {count} shards (0 to {count - 1})"
        )
    return Shard(index, count)


def output_stem(job: Path) -> str:
    """The name a job's outputs take: its stem, less the ``.records`` of the
    records a judge or a panel makes (``out/x.panel.records.jsonl`` is the
    job of ``out/x.panel.jsonl``), so an output never lands on its job."""
    stem = job.stem
    return stem.removesuffix(".records") if stem.endswith(".records") else stem


def shard_output(job: Path, shard: Shard) -> Path:
    return Path("out") / f"{output_stem(job)}.shard-{shard.index}-of-{shard.count}.jsonl"


def default_shard_outputs(job: Path) -> list[Path]:
    """The shard outputs of ``job`` under their default names, by index."""
    pattern = re.compile(re.escape(output_stem(job)) + r"\.shard-(\d+)-of-(\d+)\.jsonl$")
    found = []
    directory = Path("out")
    if directory.is_dir():
        for path in directory.iterdir():
            match = pattern.match(path.name)
            if match:
                found.append((int(match.group(2)), int(match.group(1)), path))
    counts = {count for count, _, _ in found}
    if len(counts) > 1:
        raise UsageError(
            f"out/ holds shard outputs of {job.name} for different shard counts"
            f" ({', '.join(str(c) for c in sorted(counts))}): name the ones to merge"
        )
    return [path for _, _, path in sorted(found)]
