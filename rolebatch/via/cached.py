"""Answers already bought, served again: the response cache (``--cache DIR``)
from the buying side.  Live runs, both batch APIs, judges and panels use it
the same way: before a record is bought its key is looked up, and a valid
answer, once in hand, is stored under it (before its line is written, so a
process killed between the two buys nothing again the next time).

A record's key is the digest of everything that decides its answer, and
nothing else (not the output, the record's id, the shard):

    the provider, its base URL, the model and the mode
    the request as instructor is asked to build it (messages, the response
    model's schema, max_tokens, temperature, what the provider's ways add)
    the sample number under --samples (three samples stay three answers)
    the task's version (its fingerprint: schema, prompt version, rubric)
    instructor's version (it spells the request from all of the above)

    what the schema cannot show of the response model: its import path, and
    a digest of the source of the modules it and its bases come from (a
    validator added to a ``--schema module:Class`` changes no JSON schema)

Only a valid answer is stored; errors, refusals and truncations never are,
and a hit is an answer today: it is validated against today's response
model, validators included, before it is served; one that fails is a miss,
bought again, and counted (``rejected``, in the summary).
A record that needed re-asks is stored as its final valid answer under the
first request's key.  A line served from the cache says ``"cached": true``,
costs 0, keeps the original's usage, and ``attempts`` is 0: nothing was sent.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from ..cache.store import ResponseCache
from ..config import RunConfig
from ..cost.prices import Price
from ..providers.registry import Endpoint
from ..quirks.instructor import version as instructor_version
from ..records.job import Record
from ..records.lines import Outcome, Usage, output_line
from ..tasks.task import Task
from .request import instructor_kwargs, line_fields

KEY_VERSION = 1


class CachedAnswers:
    """The run's view of the store: keys of its records, hits as outcomes,
    valid answers stored.  ``price``: what a hit would have cost now."""

    def __init__(
        self,
        store: ResponseCache,
        config: RunConfig,
        endpoint: Endpoint,
        task: Task,
        price: Price | None,
    ):
        self.store = store
        self.config, self.endpoint, self.task, self.price = config, endpoint, task, price
        self._base = json.dumps(
            {
                "key": KEY_VERSION,
                "provider": endpoint.provider.name,
                "base_url": endpoint.base_url,
                "model": endpoint.model,
                "mode": endpoint.mode,
                "task": task.fingerprint(),
                "instructor": instructor_version(),
            },
            sort_keys=True,
        )
        self._schemas: dict[type[BaseModel], str] = {}
        # Hits that today's response model rejected (bought again).
        self.rejected = 0

    def key(self, record: Record) -> bytes:
        return self._keyed(record)[0]

    def _keyed(self, record: Record) -> tuple[bytes, type[BaseModel]]:
        """The record's key, and the response model its answer must pass."""
        kwargs = instructor_kwargs(self.config, self.endpoint, self.task, record)
        model = kwargs.pop("response_model")
        kwargs.pop("max_retries", None)  # how many re-asks: not what the answer is
        schema = self._schemas.get(model)
        if schema is None:
            schema = json.dumps(model.model_json_schema(), sort_keys=True) + model_identity(model)
            self._schemas[model] = schema
        body = json.dumps(kwargs, sort_keys=True, ensure_ascii=False, default=str)
        digest = hashlib.sha256(self._base.encode())
        digest.update(b"\0" + schema.encode() + b"\0" + body.encode())
        digest.update(b"\0" + str(record.sample).encode())
        return digest.digest(), model

    def look_up(
        self, records: Sequence[Record], touch: bool = True
    ) -> tuple[list[tuple[Record, bytes]], list[tuple[Record, Outcome]]]:
        """(misses with their keys, hits as outcomes).  ``touch``: the hits
        count as just used (the estimate only looks).  A stored answer that
        today's response model rejects is a miss (counted in ``rejected``
        when ``touch``).  Blocking."""
        keyed = [self._keyed(record) for record in records]
        found = self.store.get_many([key for key, _ in keyed], touch)
        misses, hits = [], []
        for record, (key, model) in zip(records, keyed, strict=True):
            value = found.get(key)
            outcome = None if value is None else self.outcome(value)
            if outcome is not None and not _passes(model, outcome.response):
                outcome = None
                self.rejected += touch
            if outcome is None:
                misses.append((record, key))
            else:
                hits.append((record, outcome))
        return misses, hits

    def served(
        self, records: Sequence[Record], label: str
    ) -> tuple[list[tuple[Record, bytes]], list[tuple[int, str, Outcome, None]]]:
        """(misses with their keys, hits as the lines they are: job line,
        output line under the model ``label``, outcome, no key to store).
        Live and batch runs write these as they are.  Blocking."""
        misses, hits = self.look_up(records)
        config, endpoint, task = self.config, self.endpoint, self.task
        lines = [
            (r.line, output_line(r, o, label, line_fields(config, endpoint, task, r)), o, None)
            for r, o in hits
        ]
        return misses, lines

    def outcome(self, value: Any) -> Outcome | None:
        """A stored answer as this run's outcome; None for a value that is not
        one of ours (a miss)."""
        if not isinstance(value, dict) or not isinstance(value.get("response"), dict):
            return None
        usage = Usage.of(value.get("usage"))
        saved = None
        if self.price is not None and usage.seen:
            saved = self.price.cost(
                usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens
            )
        return Outcome(
            response=value["response"], usage=usage, cost=Decimal(0), cached=True, saved=saved
        )

    def keep(self, items: Iterable[tuple[bytes | None, Outcome]]) -> int:
        """Store the valid answers among ``items`` that were bought (a hit
        is not stored again).  Blocking; how many were stored."""
        values = [
            (key, _value(outcome, self.endpoint.label))
            for key, outcome in items
            if key is not None and outcome.ok and not outcome.cached
        ]
        return self.store.put_many(values)


def _passes(model: type[BaseModel], response: Any) -> bool:
    """Whether a stored answer is valid today: the model's fields and
    validators, on the answer as it was stored (JSON's types: a date as its
    text, an enum as its value, which pydantic takes back as they were)."""
    try:
        model.model_validate(response)
    except (ValidationError, ValueError, TypeError):
        return False
    return True


def model_identity(model: type[BaseModel]) -> str:
    """What a response model's JSON schema does not show: its import path,
    and a digest of the source files of the modules it and its bases are
    defined in (rolebatch's and pydantic's own excepted: the task's
    fingerprint and instructor's version speak for those).  A model built
    at run time from a JSON schema, or one of rolebatch's own, has nothing
    to add (""): keys made before this was keyed stay valid for them."""
    parts = []
    for cls in model.__mro__:
        module = sys.modules.get(cls.__module__)
        top = cls.__module__.split(".")[0]
        path = getattr(module, "__file__", None)
        if top in ("rolebatch", "pydantic", "builtins", "instructor") or not path:
            continue
        try:
            parts.append(hashlib.sha256(Path(path).read_bytes()).hexdigest())
        except OSError:
            parts.append(f"unreadable {path}")
    if not parts:
        return ""
    return "\0".join([f"\0{model.__module__}:{model.__qualname__}", *dict.fromkeys(parts)])


def _value(outcome: Outcome, model: str) -> dict[str, Any]:
    return {
        "response": outcome.response,
        "usage": outcome.usage.as_dict(),
        "cost_usd": None if outcome.cost is None else float(outcome.cost),
        "model": model,
    }


def open_cache(
    config: RunConfig,
    endpoint: Endpoint,
    task: Task,
    price: Price | None,
    warn: Callable[[str], None],
) -> CachedAnswers | None:
    """The run's cache, opened (None without --cache).  Blocking."""
    if config.bought.cache is None:
        return None
    store = ResponseCache(config.bought.cache, config.bought.cache_max_size, warn).open()
    return CachedAnswers(store, config, endpoint, task, price)
