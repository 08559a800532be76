"""What a job would cost and take: ``rolebatch estimate``, sending nothing and
writing nothing (but for one look-up of the model's shutdown date, where the
provider says it: ``providers.models``).

Prompt tokens come from the requests as they would be sent: the record's
messages, and what instructor adds for the mode (the tool definition, the
schema in a system message, ...), at about 4 characters a token; instructor
is asked to build one request (``via.verdict.replay``, which captures the
request instead of sending it) to measure what it adds.  Completion tokens come from the
existing output's answers when there are any, else from ``--max-tokens`` as an
upper bound, else from a guess, and the forecast says which.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from .cache.store import ResponseCache
from .config import RunConfig
from .cost.prices import Price
from .errors import UsageError
from .pacing.estimate import CHARS_PER_TOKEN, DEFAULT_COMPLETION_ESTIMATE, TokenEstimate
from .plan import Plan, plan
from .progress import dollars
from .providers.models import shutdown_notice
from .records.job import Record
from .records.profiles import Profile
from .redaction import Redactor
from .via.cached import CachedAnswers
from .via.request import breakpoint_at, instructor_kwargs, min_cacheable
from .via.verdict import replay

CACHE_CHUNK = 500  # records looked up in the cache at once
# Roles whose prompt-cache prefix the estimate follows (a job of a million
# roles, each its own, is not worth the memory: past it, none is assumed).
MAX_ROLES_FOLLOWED = 10_000
OPENAI_CACHE_MIN = 1024
# A personas answer (--layout personas) against a plain one, before any is measured.
PERSONAS_FACTOR = 4


@dataclass
class Forecast:
    job: Path
    model: str
    mode: str
    output: Path
    records: int
    to_do: int
    done: int = 0
    shard: str | None = None  # "K/N": the records are this shard's
    output_note: str = ""  # what the existing output is, if anything to say
    prompt_tokens: int = 0  # of the records to do
    completion_tokens: int = 0
    completion_basis: str = ""
    live: Price | None = None
    batch: Price | None = None
    cost_live: Decimal | None = None
    cost_batch: Decimal | None = None
    seconds: float | None = None
    time_basis: str = ""
    spent: Decimal = Decimal(0)  # what the existing output cost
    cached: int = 0  # of the records to do, those the response cache answers (--cache)
    # Prompt tokens assumed read from / written to the provider's prompt cache.
    prompt_read: int = 0
    prompt_written: int = 0
    cache: Path | None = None
    notes: list[str] = field(default_factory=list)
    shutdown: Any = None  # the model's coming shutdown (``providers.models.Shutdown``)

    def as_dict(self) -> dict[str, Any]:
        def usd(amount: Decimal | None) -> float | None:
            return None if amount is None else float(round(amount, 10))

        return {
            "job": str(self.job),
            "model": self.model,
            "mode": self.mode,
            "output": str(self.output),
            "records": self.records,
            "shard": self.shard,
            "to_do": self.to_do,
            "already_done": self.done,
            "cached": self.cached,
            "output_note": self.output_note or None,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "completion_basis": self.completion_basis,
            "prompt_cache_read_tokens": self.prompt_read,
            "prompt_cache_written_tokens": self.prompt_written,
            "cost_usd": usd(self.cost_live),
            "batch_cost_usd": usd(self.cost_batch),
            "price": self.live.describe() if self.live else None,
            "output_cost_so_far_usd": usd(self.spent),
            "seconds": None if self.seconds is None else round(self.seconds, 1),
            "time_basis": self.time_basis,
            "model_shutdown": self.shutdown.as_dict() if self.shutdown is not None else None,
            "notes": list(self.notes),
        }

    def text(self) -> str:
        lines = [f"rolebatch estimate: {self.job} with {self.model} (mode {self.mode})"]
        if self.shutdown is not None:
            lines.append(f"  warning: {self.shutdown.warning()}")
        done = f"; {self.done:,} already done in {self.output}" if self.done else ""
        shard = f" (shard {self.shard})" if self.shard else ""
        lines.append(f"  records: {self.records:,}{shard}, {self.to_do:,} to do{done}")
        if self.output_note:
            lines.append(f"  output: {self.output_note}")
        if self.cache is not None:
            lines.append(
                f"  cache: {self.cached:,} of the {self.to_do:,} to do are in {self.cache}"
                " and would not be bought; tokens and cost below are the rest's"
            )
        buying = self.to_do - self.cached
        if not buying:
            return "\n".join([*lines, *(f"  note: {note}" for note in self.notes)])
        each = self.prompt_tokens / buying
        lines.append(
            f"  prompt tokens: {self.prompt_tokens:,} ({each:,.0f} a record, from the requests"
            " as they would be sent)"
        )
        lines.append(f"  completion tokens: {self.completion_tokens:,} ({self.completion_basis})")
        if self.live is None:
            lines.append(f"  cost: unknown for {self.model}: give --price IN/OUT")
        else:
            cost = f"  cost: {dollars(self.cost_live or 0)}"
            if self.cost_batch is not None:
                cost += f" live, {dollars(self.cost_batch)} through the batch API"
            lines.append(cost + f" ({self.live.describe()})")
            if self.spent:
                lines.append(f"  spent on this output so far: {dollars(self.spent)}")
        if self.seconds is None:
            lines.append(f"  time: {self.time_basis}")
        else:
            lines.append(f"  time: {_duration(self.seconds)} ({self.time_basis})")
        lines.extend(f"  note: {note}" for note in self.notes)
        return "\n".join(lines)


def _duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


def forecast(config: RunConfig) -> Forecast:
    checked = plan(config, sending=False)  # no key needed to estimate
    job, output = checked.job, checked.output
    shutdown = shutdown_notice(checked.endpoint)  # a look-up, not a purchase
    if shutdown is not None and shutdown.past:
        raise UsageError(shutdown.refusal())
    result = Forecast(
        job=config.job,
        model=checked.endpoint.label,
        mode=checked.endpoint.mode,
        output=output.path,
        records=job.total,
        to_do=job.total,
        shard=str(config.written.shard) if config.written.shard else None,
        live=checked.prices.live,
        batch=checked.prices.batch,
        shutdown=shutdown,
    )
    survey = None
    if not config.written.fresh:
        survey = output.survey(job, config.written.retry_failed)
        result.spent = survey.spent
        if survey.changes:
            result.output_note = (
                f"{output.path} exists but cannot be resumed ("
                + "; ".join(survey.changes)
                + "): run would refuse it; use --fresh or another -o"
            )
        elif survey.resumed is not None:
            result.done = survey.resumed.done
            result.to_do = job.total - result.done
    elif output.path.exists():
        result.output_note = f"--fresh: {output.path} would be started over"
    _count_tokens(checked, result, survey)
    _price(result)
    _time(config, result)
    return result


def _count_tokens(checked: Plan, result: Forecast, survey: Any) -> None:
    config, job, output, task = checked.config, checked.job, checked.output, checked.task
    if not result.to_do:
        return
    to_do = (
        record
        for record in job.records()
        if not (result.done and output.by_line and output.is_done(record.line))
    )
    if config.bought.cache is not None:
        to_do = _not_cached(checked, result, to_do)
    added: float | None = None
    prompt_chars = 0.0
    roles: set[str | Profile] = set()
    for record in to_do:
        messages = task.messages(record, config.asked.layout)
        size = len(json.dumps(messages, ensure_ascii=False))
        if added is None:
            added = _instructor_adds(checked, record, size)
        prompt_chars += size + added
        prefix = _cacheable_prefix(checked, record, messages, added)
        if prefix and record.role in roles:
            result.prompt_read += prefix
        elif prefix and len(roles) < MAX_ROLES_FOLLOWED:
            roles.add(record.role or "")
            if checked.endpoint.provider.prompt_cache == "breakpoint":
                result.prompt_written += prefix
    result.prompt_tokens = round(prompt_chars / CHARS_PER_TOKEN)
    if result.prompt_read or result.prompt_written:
        rates = "the cache-read rate" + (
            ", and each role's first at the cache-write rate" if result.prompt_written else ""
        )
        result.notes.append(
            f"assumes {checked.endpoint.provider.name}'s prompt cache holds each role's prefix"
            f" for every request after the role's first (they run a role at a time):"
            f" {result.prompt_read:,} prompt tokens at {rates}"
        )
    buying = result.to_do - result.cached
    provider = checked.endpoint.provider
    personas = config.asked.layout == "personas"
    if survey is not None and survey.answers:
        mean = survey.completion_tokens / survey.answers
        result.completion_tokens = round(mean * buying)
        result.completion_basis = (
            f"the output's {survey.answers:,} answers average {mean:,.1f}, re-asks included"
        )
    elif config.asked.max_tokens is not None:
        result.completion_tokens = config.asked.max_tokens * buying
        result.completion_basis = f"at most: --max-tokens {config.asked.max_tokens} a record"
    elif provider.default_max_tokens is not None:
        result.completion_tokens = provider.default_max_tokens * buying
        result.completion_basis = (
            f"at most: the max_tokens of {provider.default_max_tokens} that {provider.name}"
            " requests carry when --max-tokens is not given"
        )
    else:
        guess = DEFAULT_COMPLETION_ESTIMATE * (PERSONAS_FACTOR if personas else 1)
        result.completion_tokens = guess * buying
        result.completion_basis = (
            f"a guess of {guess} a record: give --max-tokens for an upper bound"
        )
    if personas:
        result.notes.append(
            "--layout personas: every answer carries the personas' discussion before it, so"
            " a call costs several times a plain one (the prompt counted above holds the"
            f" instructions and examples; an unmeasured answer is guessed at {PERSONAS_FACTOR}x)."
            " Run a few records first: the estimate then measures their answers."
        )


def _cacheable_prefix(checked: Plan, record: Record, messages: Any, added: float) -> int:
    """Tokens of the record's prompt the provider's prompt cache would keep
    (``via.request``): the role's prefix, what instructor puts before it
    included; 0 when the provider has no such cache or it is too short."""
    provider = checked.endpoint.provider
    if not record.role or provider.prompt_cache is None:
        return 0
    if provider.prompt_cache == "breakpoint":
        found = breakpoint_at(messages, record.role, min_cacheable(checked.endpoint.model))
        return 0 if found is None else round((added + found[2]) / CHARS_PER_TOKEN)
    # OpenAI's: automatic from 1,024 tokens, in steps of 128.
    role = record.role
    tokens = (added + (role.size if isinstance(role, Profile) else len(role))) / CHARS_PER_TOKEN
    return 0 if tokens < OPENAI_CACHE_MIN else int(tokens) // 128 * 128


def _not_cached(checked: Plan, result: Forecast, records: Iterator[Record]) -> Iterator[Record]:
    """``records`` less those the response cache holds, counted in ``result``
    (looked at only: nothing is marked as used, nothing written)."""
    result.cache = checked.config.bought.cache
    store = ResponseCache(
        checked.config.bought.cache, checked.config.bought.cache_max_size, result.notes.append
    )
    if not store.exists():
        yield from records
        return
    answers = CachedAnswers(store.open(), checked.config, checked.endpoint, checked.task, None)

    def missing(chunk: list[Record]) -> list[Record]:
        misses = [record for record, _ in answers.look_up(chunk, touch=False)[0]]
        result.cached += len(chunk) - len(misses)
        return misses

    try:
        chunk: list[Record] = []
        for record in records:
            chunk.append(record)
            if len(chunk) == CACHE_CHUNK:
                yield from missing(chunk)
                chunk = []
        yield from missing(chunk)
    finally:
        store.close()


def _instructor_adds(checked: Plan, record: Any, messages_size: int) -> float:
    """Characters instructor adds to a request for the mode: the first request
    it builds for ``record`` (``verdict.replay`` with no answers yet), less
    the bare messages."""
    kwargs = instructor_kwargs(checked.config, checked.endpoint, checked.task, record)
    first = replay(kwargs, [], checked.endpoint, Redactor(None), max_reasks=0).request
    if not first:
        return 0.0
    return TokenEstimate.prompt_size(first) * CHARS_PER_TOKEN - messages_size


def _price(result: Forecast) -> None:
    buying = result.to_do - result.cached
    if not buying:
        return
    each = [
        result.prompt_tokens / buying,
        result.completion_tokens / buying,
        result.prompt_read / buying,
        result.prompt_written / buying,
    ]
    for price, attribute in ((result.live, "cost_live"), (result.batch, "cost_batch")):
        if price is not None:
            setattr(result, attribute, price.estimate(*each) * buying)


def _time(config: RunConfig, result: Forecast) -> None:
    limits = []
    if config.paced.rpm:
        buying = result.to_do - result.cached
        limits.append((buying / config.paced.rpm * 60, f"--rpm {config.paced.rpm:g}"))
    if config.paced.tpm:
        tokens = result.prompt_tokens + result.completion_tokens
        limits.append((tokens / config.paced.tpm * 60, f"--tpm {config.paced.tpm:g}"))
    if config.paced.itpm:
        limits.append(
            (result.prompt_tokens / config.paced.itpm * 60, f"--itpm {config.paced.itpm:g}")
        )
    if config.paced.otpm:
        limits.append(
            (result.completion_tokens / config.paced.otpm * 60, f"--otpm {config.paced.otpm:g}")
        )
    if not limits:
        result.time_basis = (
            "unknown: the limits are learned from the provider as the run goes; give"
            " --rpm/--tpm/--itpm/--otpm to estimate it"
        )
        return
    result.seconds, binding = max(limits)
    result.time_basis = f"at {binding}, which binds"
