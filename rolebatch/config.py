"""Everything a run needs to know, in one frozen object the CLI builds and tests pass."""

from __future__ import annotations

from dataclasses import dataclass, field
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
Reask = Literal["batch", "live"]


@dataclass(frozen=True)
class RunConfig:
    job: Path
    output: Path | None = None
    model: str = DEFAULT_MODEL
    base_url: str | None = None
    mode: str | None = None
    schema: str | None = None
    # What is asked and what comes back (tasks.TASKS): role, choice, answer;
    # or a judge (rolebatch judge): its rubric, the role a pairwise judge
    # sets every answer against, and whether it is shown the roles.
    task: str = "role"
    rubric: Path | None = None
    against: str | None = None
    show_role: bool = False
    layout: Layout = "system"
    concurrency: int = 8
    max_tokens: int | None = None
    temperature: float | None = None
    timeout: float = 60.0
    max_reasks: int = 2
    max_retries: int = 3
    # 429s are flow control; they get their own budget per request.
    max_rate_limit_retries: int = 20
    # Requests and tokens per minute; None: learn from headers, or back off on 429s.
    rpm: float | None = None
    tpm: float | None = None
    # Input and output tokens per minute, where they are separate budgets (Anthropic).
    itpm: float | None = None
    otpm: float | None = None
    # Seconds before the first HTTP retry; doubles each retry, with jitter.
    backoff_base: float = BACKOFF_BASE
    backoff_max: float = BACKOFF_MAX
    # Consecutive connection errors / 5xx (no success between) that end the run.
    breaker_threshold: int = 20
    # Resume: start over instead; keep earlier error lines instead of retrying them.
    fresh: bool = False
    retry_failed: bool = True
    # Seconds that calls in flight get to finish after SIGINT/SIGTERM.
    grace: float = 5.0
    # "IN/OUT[/CACHED]" dollars per million tokens, over the known price.
    price: str | None = None
    # Dollars the output file may cost in all; None: no cap.
    max_cost: float | None = None
    # How answers are bought: "live", or "batch" (the provider's batch API).
    via: Via = "live"
    # Batch API: wait for the results (else submit, collect what ended, exit 4),
    # requests per batch, the longest pause between polls, and where re-asks go.
    wait: bool = True
    batch_size: int = 50_000
    poll_interval: float = 60.0
    reask: Reask = "batch"
    # A sweep: every record under every role of this file, each pair
    # ``samples`` times (records.roles).
    roles: Path | None = None
    samples: int = 1
    # Run only this shard's records (--shard K/N); None: the whole job.
    shard: Shard | None = None
    # A quota shared by every process through Redis (--quota URL), and its name.
    quota: str | None = field(default=None, repr=False)
    quota_key: str | None = None
    # The response cache's directory (None: no cache) and its size limit in
    # bytes, the least recently used answers evicted past it (``cache.store``).
    cache: Path | None = None
    cache_max_size: int = DEFAULT_MAX_SIZE
    # The key is passed explicitly or read from the provider's variable; never printed.
    api_key: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        # Accept plain strings from library callers.
        object.__setattr__(self, "job", Path(self.job))
        if self.output is not None:
            object.__setattr__(self, "output", Path(self.output))
        if self.rubric is not None:
            object.__setattr__(self, "rubric", Path(self.rubric))
        if self.cache is not None:
            object.__setattr__(self, "cache", Path(self.cache))
        if self.shard is not None and not isinstance(self.shard, Shard):
            object.__setattr__(self, "shard", Shard(*self.shard))

    def output_path(self) -> Path:
        if self.output is not None:
            return self.output
        if self.shard is not None:
            return shard_output(self.job, self.shard)
        return Path("out") / f"{output_stem(self.job)}.jsonl"


def fingerprint(config: RunConfig, endpoint: Endpoint, task: Task) -> dict[str, Any]:
    """What must not change between a run and its resumption: anything that
    changes what a record's answer is, and which records the output holds.
    Not where the job is: it is known by its records (their ids, and the
    digest of their lines), so a moved checkout or another runner resumes."""
    sharded = {} if config.shard is None else {"shard": str(config.shard)}
    if config.roles is not None or config.samples > 1:
        sharded["sweep"] = True  # ids differ from the job's: not to mix with a plain run
    if config.samples > 1:
        sharded["sampled"] = True  # ids end in #k: not to mix with lines that do not
    return {
        **sharded,
        "model": endpoint.label,
        "base_url": endpoint.base_url,
        "mode": endpoint.mode,
        **task.fingerprint(),
        "layout": config.layout,
        "max_tokens": config.max_tokens,
        "temperature": config.temperature,
    }
