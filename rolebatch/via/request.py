"""The request a record becomes: what instructor's ``create`` is called with,
from the run's task (the messages and the response model), its options
(``--max-tokens``, ``--temperature``, ``--max-reasks``) and its provider's
ways (a default ``max_tokens``, a system prompt that must go as the user
message, the schema in a JSON-mode response format, what asks for the
provider's prompt cache).  Live runs, both batch APIs, the response cache's
keys and the estimate build it here.

The provider's prompt cache (``Provider.prompt_cache``) keeps a prompt's
prefix for minutes and bills its tokens at a fraction the next time.  Every
layout puts the role before the record's own text, so the prefix is the
role's (a profile's: its instruction and example turns).  "key" providers
(OpenAI, Mistral) cache on their own; every request of one role carries one
``prompt_cache_key``, which sends them to the same cache.  Anthropic caches
only up to a ``cache_control`` mark: a role long enough to be cached
(``min_cacheable``) ends a text block of its own with one, the text after it
in another, so the model reads the same text; a profile's mark ends its
last example turn.

Where the provider takes a ``seed`` (``Provider.seed``), every request of a
record carries the same one, derived from what is asked and its sample
(``seed_of``), and its line says it."""

from __future__ import annotations

import functools
import hashlib
import json
from typing import Any

from ..config import RunConfig
from ..pacing.estimate import CHARS_PER_TOKEN
from ..providers.registry import Endpoint
from ..quirks.instructor import wrapped
from ..records.job import Record
from ..records.profiles import Profile, as_json
from ..tasks.layout import with_personas
from ..tasks.task import Task


def instructor_kwargs(
    config: RunConfig, endpoint: Endpoint, task: Task, record: Record
) -> dict[str, Any]:
    """What instructor's ``create`` is called with for ``record``: from it,
    instructor builds the request the endpoint receives."""
    provider = endpoint.provider
    messages = asked = task.messages(record, config.asked.layout)
    if provider.system_as_user and not any(m["role"] == "user" for m in messages):
        messages = [{**m, "role": "user"} if m["role"] == "system" else m for m in messages]
    model = task.response_model(record)
    if config.asked.layout == "personas":
        model = with_personas(model)
    kwargs: dict[str, Any] = {
        "model": endpoint.model,
        "messages": messages,
        "response_model": wrapped(model),
        "max_retries": config.bought.max_reasks,
    }
    if provider.schema_in_json_object and endpoint.mode == "json":
        # Merged over what instructor sends by the transport (openai_http).
        schema = model.model_json_schema()
        kwargs["extra_body"] = {"response_format": {"type": "json_object", "schema": schema}}
    if provider.seed:
        kwargs["seed"] = seed_of(config, task, record, asked)
    if provider.prompt_cache == "key":
        kwargs["prompt_cache_key"] = prompt_cache_key(task.name, config.asked.layout, record.role)
    elif provider.prompt_cache == "breakpoint" and record.role:
        marked = with_breakpoint(messages, record.role, min_cacheable(endpoint.model))
        if marked is not None:
            kwargs["messages"] = marked
    max_tokens = config.asked.max_tokens or provider.default_max_tokens
    if max_tokens is not None:
        kwargs["max_tokens"] = max_tokens
    if config.asked.temperature is not None:
        kwargs["temperature"] = config.asked.temperature
    return kwargs


@functools.lru_cache(maxsize=1024)
def prompt_cache_key(task: str, layout: str, role: str | Profile | None) -> str:
    """One key for every request whose prompt starts the same: the task's,
    in the layout, under the role (a profile: all of it, examples too)."""
    said = role if not isinstance(role, Profile) else json.dumps(as_json(role), sort_keys=True)
    prefix = f"{task}\0{layout}\0{said or ''}"
    return "rolebatch-" + hashlib.sha256(prefix.encode()).hexdigest()[:32]


def min_cacheable(model: str) -> int:
    """The fewest tokens Anthropic caches for ``model`` (its prompt-caching
    page: 2,048 for Haiku models, 1,024 for the others)."""
    return 2048 if "haiku" in model.lower() else 1024


def breakpoint_at(
    messages: list[dict[str, Any]], role: str | Profile, least_tokens: int
) -> tuple[int, int, int] | None:
    """Where a cache mark goes after the role: (message, characters of its
    content up to the mark, characters before the mark in all), the space or
    newline after the role included; for a profile, after its last example
    turn (its whole part of the prompt).  None when the prompt up to there is
    under ``least_tokens`` (at about 4 characters a token), or the role is
    not in it."""
    # A profile's turns follow its instruction: the last ends at 2 x examples.
    last = 2 * len(role.examples) if isinstance(role, Profile) and role.examples else None
    text = role.instruction if isinstance(role, Profile) else role
    before = 0
    for index, message in enumerate(messages):
        content = message["content"]
        if not isinstance(content, str):
            continue
        if last is not None:
            ends = index == last and message["role"] == "assistant"
            at, end = (0, len(content)) if ends else (-1, 0)
            if index >= last and not ends:
                return None  # not the profile's messages (a layout of its own)
        else:
            at = content.find(text)
            end = at + len(text)
        if at < 0:
            before += len(content)
            continue
        while end < len(content) and content[end] in " \n":
            end += 1
        if (before + end) / CHARS_PER_TOKEN < least_tokens:
            return None
        return index, end, before + end
    return None


def with_breakpoint(
    messages: list[dict[str, Any]], role: str | Profile, least_tokens: int
) -> list[dict[str, Any]] | None:
    """``messages`` with the role's text closing a text block marked
    ``cache_control``, and the rest of its message in a block after it; None
    where ``breakpoint_at`` finds no place for one."""
    found = breakpoint_at(messages, role, least_tokens)
    if found is None:
        return None
    index, end, _ = found
    content = messages[index]["content"]
    blocks: list[dict[str, Any]] = [
        {"type": "text", "text": content[:end], "cache_control": {"type": "ephemeral"}}
    ]
    if end < len(content):
        blocks.append({"type": "text", "text": content[end:]})
    return [*messages[:index], {**messages[index], "content": blocks}, *messages[index + 1 :]]


def line_fields(
    config: RunConfig, endpoint: Endpoint, task: Task, record: Record
) -> dict[str, Any]:
    """What a record's output line says beyond the contract's keys: what its
    task repeats, the condition it was asked under when not the usual, and
    the seed it was sampled with, where the provider takes one."""
    fields = task.line_fields(record)
    if config.asked.layout == "personas":
        fields["condition"] = "personas"
    if endpoint.provider.seed:
        fields["seed"] = seed_of(config, task, record)
    return fields


def seed_of(
    config: RunConfig, task: Task, record: Record, messages: list[dict[str, Any]] | None = None
) -> int:
    """The sampling seed of a record, so that its answer does not depend on
    when, or beside which others, it is asked (an interrupted run resumed
    answers as an uninterrupted one): from what is asked, its ``messages``
    and sample number, so that inserting a line, reordering the job or
    renaming ids changes no answer (and hits the cache); or, for an output
    begun by an earlier rolebatch (``config.asked.seeds`` "id"), from its id
    and sample, as its lines were."""
    if config.asked.seeds == "id":
        text = f"{record.id}\0{record.sample}"
    else:
        asked = messages if messages is not None else task.messages(record, config.asked.layout)
        said = json.dumps(asked, sort_keys=True, ensure_ascii=False, default=str)
        text = f"{said}\0{record.sample}"
    digest = hashlib.sha256(text.encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF
