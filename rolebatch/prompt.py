"""Turning a record into chat messages."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from .records.job import Record

if TYPE_CHECKING:
    from pydantic import BaseModel

    from .config import RunConfig
    from .providers.registry import Endpoint

Layout = Literal["system", "split"]
LAYOUTS: tuple[Layout, ...] = ("system", "split")
# Bump when the messages built for a record change: a resumed run refuses to
# mix answers to two different prompts in one output.
PROMPT_VERSION = 1


# Anthropic's Messages API needs max_tokens on every request.
ANTHROPIC_MAX_TOKENS = 1024


def build_messages(
    record: Record, layout: Layout, protocol: str = "openai"
) -> list[dict[str, str]]:
    """``system``: the Role Prompting page's exact prompt, one system message
    ``f"{role} {query}"``.  ``split``: the role as the system message and the
    query as a user message.  A record without a role sends its query alone.

    Anthropic's Messages API takes the system prompt as a parameter and needs
    a user message: there ``system`` sends the same text, ``f"{role} {query}"``,
    as the one user message, and ``split`` sends the role as the system
    prompt and the query as the user message."""
    if layout == "split":
        messages = [{"role": "user", "content": record.query}]
        if record.role:
            messages.insert(0, {"role": "system", "content": record.role})
        return messages
    content = f"{record.role} {record.query}" if record.role else record.query
    return [{"role": "user" if protocol == "anthropic" else "system", "content": content}]


def instructor_kwargs(
    config: RunConfig, endpoint: Endpoint, response_model: type[BaseModel], record: Record
) -> dict[str, Any]:
    """What instructor's ``create`` is called with for ``record``: from it,
    instructor builds the request the endpoint receives."""
    protocol = endpoint.provider.protocol
    kwargs: dict[str, Any] = {
        "model": endpoint.model,
        "messages": build_messages(record, config.layout, protocol),
        "response_model": response_model,
        "max_retries": config.max_reasks,
    }
    if config.max_tokens is not None:
        kwargs["max_tokens"] = config.max_tokens
    elif protocol == "anthropic":
        kwargs["max_tokens"] = ANTHROPIC_MAX_TOKENS
    if config.temperature is not None:
        kwargs["temperature"] = config.temperature
    return kwargs
