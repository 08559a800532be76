"""A run checked and priced before anything is sent or written.

``run`` goes on from a Plan to buy the answers; ``estimate`` reports what
buying them would cost and take.  Nothing here opens a connection.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .config import RunConfig, fingerprint
from .cost.prices import Prices, context_tokens, lookup
from .errors import UsageError
from .pacing.estimate import CHARS_PER_TOKEN
from .providers.registry import Endpoint, resolve
from .records.job import JobFile, open_job
from .records.output import OutputFile
from .records.profiles import Profile, Vet
from .records.roles import load_sweep, samples_only
from .records.sidecar import read_sidecar, seeds_of
from .tasks import open_task
from .tasks.layout import refuses
from .tasks.task import Task


@dataclass
class Plan:
    """A run checked and priced, before anything is sent or written: what
    ``run`` goes on to do, and what ``estimate`` reports."""

    config: RunConfig
    task: Task
    endpoint: Endpoint
    prices: Prices
    output: OutputFile
    job: JobFile


def plan(config: RunConfig, *, sending: bool = True) -> Plan:
    """Check everything that can be checked without sending or writing: the
    options, the schema, the model and its price, and the whole job file
    (the API key too, unless nothing will be ``sending``).
    Raises UsageError/InputError."""
    if config.paced.concurrency < 1:
        raise UsageError("--concurrency must be at least 1")
    task = open_task(
        config.asked.task,
        config.asked.schema,
        rubric=config.asked.judge.rubric,
        against=config.asked.judge.against,
        show_role=config.asked.judge.show_role,
    )
    endpoint = resolve(
        config.asked.model,
        config.asked.base_url,
        config.asked.mode,
        config.bought.api_key,
        need_key=sending,
    )
    prices = lookup(endpoint, config.bought.price)
    if config.bought.via == "batch":
        if not endpoint.provider.batch_api:
            raise UsageError(
                "--via batch needs a provider with a batch API (openai, anthropic);"
                f" {endpoint.label} has none: run it live (--via live)"
            )
        if config.bought.max_cost is not None:
            raise UsageError(
                "--max-cost works with --via live only: a batch is bought whole; see"
                " `rolebatch estimate` for what it would cost"
            )
    if config.bought.max_cost is not None and prices.live is None:
        raise UsageError(
            f"--max-cost needs a price, and the price of {endpoint.label} is not known:"
            " give --price IN/OUT (US dollars per million input / output tokens)"
        )
    if config.paced.quota and (config.bought.via == "live" or config.bought.batch.reask == "live"):
        from .pacing.shared import check_reachable, normalize_url

        normalize_url(config.paced.quota)
        if sending:
            check_reachable(config.paced.quota)
    path = config.output_path()
    for named, other in (("job", config.job), ("roles file", config.asked.roles)):
        if other is not None and path.resolve() == Path(other).resolve():
            raise UsageError(f"{path}: the output cannot be the {named}")
    if endpoint.provider.seed and not config.written.fresh and path.is_file():
        # An output begun under the id rule goes on under it: never two
        # rules in one output (--fresh, or another -o, starts the content rule).
        meta = read_sidecar(path)
        if meta is not None and seeds_of(meta) == "id":
            config = config.asking(seeds="id")
    output = OutputFile(path, fingerprint(config, endpoint, task))
    sweep = None
    vet = profile_vet(config, endpoint)
    if config.asked.roles is not None:
        sweep = load_sweep(Path(config.asked.roles), config.asked.samples, vet)
    elif config.asked.samples > 1:
        sweep = samples_only(config.asked.samples)
    job = (
        None
        if config.written.fresh
        else output.checked_job(config.job, config.written.shard, sweep, task)
    ) or open_job(config.job, shard=config.written.shard, sweep=sweep, rules=task, vet=vet)
    output.remember_job(job)
    return Plan(config, task, endpoint, prices, output, job)


def profile_vet(config: RunConfig, endpoint: Endpoint) -> Vet:
    """What is wrong with a role's profile for this run: a layout with no
    place for its examples, or the profile alone over what the model's
    context leaves after the answer (the answer's ``max_tokens``; the
    context as the provider or the price data knows it)."""
    context = context_tokens(endpoint)
    answer = config.asked.max_tokens or endpoint.provider.default_max_tokens or 0
    room = None if context is None else max(0, context - answer)

    def vet(profile: Profile) -> str | None:
        return refuses(profile, config.asked.layout) or profile.too_long(room, CHARS_PER_TOKEN)

    return vet
