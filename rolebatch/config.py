"""Everything a run needs to know, in one frozen object the CLI builds and tests pass:
the job, the output, and four typed parts (what is asked, how it is bought,
how it is paced, what the output holds), each frozen too."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from .cache.store import DEFAULT_MAX_SIZE
from .pacing.backoff import BACKOFF_BASE, BACKOFF_MAX
from .records.shards import Shard, output_stem, shard_output
from .tasks.layout import Layout

if TYPE_CHECKING:
    from .providers.registry import Endpoint
    from .tasks.task import Task

DEFAULT_MODEL = "local/gemma-3-270m"
# How answers are bought, and where a batch run's re-asks go.
Via = Literal["live", "batch"]
# How a record's sampling seed is made: from what is asked (its messages and
# sample number), or, for an output begun by an earlier rolebatch, from its id.
Seeds = Literal["content", "id"]
Reask = Literal["batch", "live"]


@dataclass(frozen=True)
class Judging:
    """A judge's own (``rolebatch judge``): its rubric, the role a pairwise
    judge sets every answer against, and whether it is shown the roles."""

    rubric: Path | None = None
    against: str | None = None
    show_role: bool = False

    def __post_init__(self) -> None:
        if self.rubric is not None:
            object.__setattr__(self, "rubric", Path(self.rubric))


@dataclass(frozen=True)
class Asked:
    """What is asked, and of which model: everything that changes what an
    answer is (``fingerprint`` reads it)."""

    model: str = DEFAULT_MODEL
    base_url: str | None = None
    mode: str | None = None
    schema: str | None = None
    # What is asked and what comes back (tasks.TASKS): role, choice, answer,
    # judge, or panel:<the panel's task>.
    task: str = "role"
    judge: Judging = field(default_factory=Judging)
    layout: Layout = "system"
    max_tokens: int | None = None
    temperature: float | None = None
    # A sweep: every record under every role of this file, each pair
    # ``samples`` times (records.roles).
    roles: Path | None = None
    samples: int = 1
    # Not an option: an output begun under the id rule keeps it (plan reads
    # its sidecar), every other is seeded by content.
    seeds: Seeds = "content"


@dataclass(frozen=True)
class Batching:
    """``--via batch`` only: wait for the results (else submit, collect what
    ended, exit 4), requests per batch, the longest pause between polls, and
    where re-asks go."""

    wait: bool = True
    batch_size: int = 50_000
    poll_interval: float = 60.0
    reask: Reask = "batch"


@dataclass(frozen=True)
class Bought:
    """How answers are bought: which way, how often a record is tried again,
    what may be spent, the cache, the key."""

    via: Via = "live"
    batch: Batching = field(default_factory=Batching)
    timeout: float = 60.0
    max_reasks: int = 2
    max_retries: int = 3
    # 429s are flow control; they get their own budget per request.
    max_rate_limit_retries: int = 20
    # Seconds before the first HTTP retry; doubles each retry, with jitter.
    backoff_base: float = BACKOFF_BASE
    backoff_max: float = BACKOFF_MAX
    # Consecutive connection errors / 5xx (no success between) that end the run.
    breaker_threshold: int = 20
    # Seconds that calls in flight get to finish after SIGINT/SIGTERM.
    grace: float = 5.0
    # "IN/OUT[/CACHED]" dollars per million tokens, over the known price.
    price: str | None = None
    # Dollars the output file may cost in all; None: no cap.
    max_cost: float | None = None
    # The response cache's directory (None: no cache) and its size limit in
    # bytes, the least recently used answers evicted past it (``cache.store``).
    cache: Path | None = None
    cache_max_size: int = DEFAULT_MAX_SIZE
    # The key is passed explicitly or read from the provider's variable; never printed.
    api_key: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.cache is not None:
            object.__setattr__(self, "cache", Path(self.cache))


@dataclass(frozen=True)
class Paced:
    """How fast: requests at once, the limits per minute (None: learned from
    the provider's headers, or found by backing off on 429s), and a quota
    shared with other processes through Redis (--quota URL) and its name."""

    concurrency: int = 8
    rpm: float | None = None
    tpm: float | None = None
    # Input and output tokens per minute, where they are separate budgets (Anthropic).
    itpm: float | None = None
    otpm: float | None = None
    quota: str | None = field(default=None, repr=False)
    quota_key: str | None = None


@dataclass(frozen=True)
class Written:
    """Which of the job's records this output holds, and what becomes of what
    it holds already: start over instead of resuming; run earlier error
    lines again or keep them; only this shard's records (--shard K/N)."""

    fresh: bool = False
    retry_failed: bool = True
    shard: Shard | None = None

    def __post_init__(self) -> None:
        if self.shard is not None and not isinstance(self.shard, Shard):
            object.__setattr__(self, "shard", Shard(*self.shard))


PARTS = {"asked": Asked, "bought": Bought, "paced": Paced, "written": Written}
# Options that belong to a part within a part.
WITHIN = {"judge": ("asked", Judging), "batch": ("bought", Batching)}


@dataclass(frozen=True)
class RunConfig:
    """A run: the job it reads, the output it writes, and four parts."""

    job: Path
    output: Path | None = None
    asked: Asked = field(default_factory=Asked)
    bought: Bought = field(default_factory=Bought)
    paced: Paced = field(default_factory=Paced)
    written: Written = field(default_factory=Written)

    def __post_init__(self) -> None:
        # Accept plain strings from library callers.
        object.__setattr__(self, "job", Path(self.job))
        if self.output is not None:
            object.__setattr__(self, "output", Path(self.output))

    @classmethod
    def of(cls, job: Path | str, output: Path | str | None = None, **options: Any) -> RunConfig:
        """A run from options named as the command line and settings files
        name them (``model``, ``rpm``, ``via``, ``poll_interval``, ...).  A
        name no part has is a TypeError, as a wrong keyword is."""
        parts: dict[str, dict[str, Any]] = {name: {} for name in [*PARTS, *WITHIN]}
        for name, value in options.items():
            owner = _OWNER.get(name)
            if owner is None:
                raise TypeError(f"RunConfig has no option {name!r}")
            parts[owner][name] = value
        for inner, (outer, kind) in WITHIN.items():
            parts[outer][inner] = kind(**parts.pop(inner))
        built = {name: kind(**parts[name]) for name, kind in PARTS.items()}
        return cls(job, output, **built)  # type: ignore[arg-type]  # __post_init__ makes Paths

    def asking(self, **changes: Any) -> RunConfig:
        """This run asking something else (a judge's task, a panel's schema)."""
        return replace(self, asked=replace(self.asked, **changes))

    def output_path(self) -> Path:
        if self.output is not None:
            return self.output
        if self.written.shard is not None:
            return shard_output(self.job, self.written.shard)
        return Path("out") / f"{output_stem(self.job)}.jsonl"


_OWNER = {
    name: owner
    for owner, kind in [*PARTS.items(), *((inner, kind) for inner, (_, kind) in WITHIN.items())]
    for name in (f.name for f in fields(kind))
    if name not in WITHIN
}


def fingerprint(config: RunConfig, endpoint: Endpoint, task: Task) -> dict[str, Any]:
    """What must not change between a run and its resumption: anything that
    changes what a record's answer is, and which records the output holds.
    Not where the job is: it is known by its records (their ids, and the
    digest of their lines), so a moved checkout or another runner resumes."""
    sharded = {} if config.written.shard is None else {"shard": str(config.written.shard)}
    if config.asked.roles is not None or config.asked.samples > 1:
        sharded["sweep"] = True  # ids differ from the job's: not to mix with a plain run
    if config.asked.samples > 1:
        sharded["sampled"] = True  # ids end in #k: not to mix with lines that do not
    return {
        **sharded,
        "model": endpoint.label,
        "base_url": endpoint.base_url,
        "mode": endpoint.mode,
        **task.fingerprint(),
        "layout": config.asked.layout,
        **({"seeds": config.asked.seeds} if endpoint.provider.seed else {}),
        "max_tokens": config.asked.max_tokens,
        "temperature": config.asked.temperature,
    }
