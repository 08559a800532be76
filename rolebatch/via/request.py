"""The request a record becomes: what instructor's ``create`` is called with,
from the run's task (the messages and the response model), its options
(``--max-tokens``, ``--temperature``, ``--max-reasks``) and its provider's
ways (a default ``max_tokens``, a system prompt that must go as the user
message, the schema in a JSON-mode response format).  Live runs, both
batch APIs and the estimate build it here."""

from __future__ import annotations

from typing import Any

from ..config import RunConfig
from ..providers.registry import Endpoint
from ..quirks.instructor import wrapped
from ..records.job import Record
from ..tasks.layout import with_personas
from ..tasks.task import Task


def instructor_kwargs(
    config: RunConfig, endpoint: Endpoint, task: Task, record: Record
) -> dict[str, Any]:
    """What instructor's ``create`` is called with for ``record``: from it,
    instructor builds the request the endpoint receives."""
    provider = endpoint.provider
    messages = task.messages(record, config.layout)
    if provider.system_as_user and not any(m["role"] == "user" for m in messages):
        messages = [{**m, "role": "user"} if m["role"] == "system" else m for m in messages]
    model = task.response_model(record)
    if config.layout == "personas":
        model = with_personas(model)
    kwargs: dict[str, Any] = {
        "model": endpoint.model,
        "messages": messages,
        "response_model": wrapped(model),
        "max_retries": config.max_reasks,
    }
    if provider.schema_in_json_object and endpoint.mode == "json":
        # Merged over what instructor sends by the transport (openai_http).
        schema = model.model_json_schema()
        kwargs["extra_body"] = {"response_format": {"type": "json_object", "schema": schema}}
    max_tokens = config.max_tokens or provider.default_max_tokens
    if max_tokens is not None:
        kwargs["max_tokens"] = max_tokens
    if config.temperature is not None:
        kwargs["temperature"] = config.temperature
    return kwargs


def line_fields(config: RunConfig, task: Task, record: Record) -> dict[str, Any]:
    """What a record's output line says beyond the contract's keys: what its
    task repeats, and the condition it was asked under when not the usual."""
    fields = task.line_fields(record)
    if config.layout == "personas":
        fields["condition"] = "personas"
    return fields
