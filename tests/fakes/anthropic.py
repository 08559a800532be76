"""Anthropic's Messages and Message Batches APIs, faked on the loopback server.

    POST /v1/messages                          a message (tools or JSON in text)
    POST /v1/messages/batches                  create {requests: [{custom_id, params}]}
    GET  /v1/messages/batches                  list, newest first (?limit=, ?after_id=)
    GET  /v1/messages/batches/{id}             retrieve: every call moves it on one step
    POST /v1/messages/batches/{id}/cancel      cancel: the next retrieve ends it
    GET  /v1/messages/batches/{id}/results     JSONL, once it has ended

Answers are built as the OpenAI fake builds them (``tests.fakes.chat``), in
the Messages API's shape: a ``tool_use`` block for the tool Claude was told
to use, or text holding the JSON; ``usage`` as ``input_tokens`` (without
cache reads) / ``output_tokens``; ``stop_reason`` ``tool_use``, ``end_turn``
or ``max_tokens``.  Errors have Anthropic's body (``{"type": "error",
"error": {...}}``).  Message batches carry no metadata; a batch's results
come out in reverse order, and ``BatchPlan`` (shared with the OpenAI fake)
says how batches end: ``completed`` (all succeed), ``expired`` (``share``
succeed, the rest ``expired``), and a cancel (``share`` succeed, the rest
``canceled``).
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.fakes.chat import (
    Fault,
    Ledger,
    Recorded,
    first_text,
    messages_text,
    prompt_tokens,
    request_schema,
    synthesize,
    tokens,
)
from tests.fakes.openai_batches import BatchPlan, newest_page

ROUTE = re.compile(r"/v1/messages(/|\?|$)")
BATCH_ROUTE = re.compile(r"/v1/messages/batches(/|\?|$)")

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


def error_body(status: int, message: str | None = None) -> dict[str, Any]:
    kind = ERROR_TYPES.get(status, "api_error")
    return {"type": "error", "error": {"type": kind, "message": message or f"fake {kind}"}}


# The fewest tokens the fake caches before a cache_control mark (as Claude's 1,024).
MIN_CACHEABLE = 1024


def marked_prefix(body: dict[str, Any]) -> str | None:
    """The text a request asks to be cached: tools, system and messages up to
    the last block marked ``cache_control``; None when none is marked."""
    parts = [json.dumps(body["tools"])] if body.get("tools") else []
    found = None
    system = body.get("system")
    blocks: list[Any] = [system] if isinstance(system, str) else list(system or [])
    for message in body.get("messages", []):
        content = message.get("content")
        blocks.extend([content] if isinstance(content, str) else content or [])
    for block in blocks:
        parts.append(block if isinstance(block, str) else block.get("text", ""))
        if isinstance(block, dict) and block.get("cache_control"):
            found = "\n".join(parts)
    return found


def message_for(
    body: dict[str, Any],
    fault: Fault | None,
    cached_tokens: int = 0,
    cache: set[str] | None = None,
) -> dict[str, Any]:
    """The message this server answers ``body`` with (``fault`` shapes it).
    ``cache``: the prefixes cached so far: a marked prefix of at least
    MIN_CACHEABLE tokens is read from it when there, else written to it."""
    schema = request_schema(body) or {"type": "object", "properties": {}}
    value = synthesize(schema, first_text(body)[:60])
    if fault and fault.invalid:
        value = {"unexpected": "this does not match the schema"}
    text = json.dumps(value)
    tools = body.get("tools")
    content: list[dict[str, Any]]
    if fault and fault.truncated:
        content = [{"type": "text", "text": text[: len(text) // 2]}]
        stop = "max_tokens"
    elif fault and fault.refusal:
        content = [{"type": "text", "text": "I can't help with that."}]
        stop = "refusal"
    elif tools:
        content = [
            {"type": "tool_use", "id": "toolu_fake", "name": tools[0]["name"], "input": value}
        ]
        stop = "tool_use"
    else:
        content = [{"type": "text", "text": text}]
        stop = "end_turn"
    prompt = prompt_tokens(body)
    cached = min(cached_tokens, prompt)
    written = 0
    prefix = marked_prefix(body) if cache is not None else None
    if prefix is not None and tokens(prefix) >= MIN_CACHEABLE:
        if prefix in cache:
            cached = min(tokens(prefix), prompt)
        else:
            cache.add(prefix)
            written = min(tokens(prefix), prompt)
    return {
        "id": "msg_fake",
        "type": "message",
        "role": "assistant",
        "model": body.get("model", "claude-fake"),
        "content": content,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": {
            "input_tokens": prompt - cached - written,
            "output_tokens": tokens(text),
            "cache_read_input_tokens": cached,
            "cache_creation_input_tokens": written,
        },
    }


def usage_counts(message: dict[str, Any]) -> tuple[int, int]:
    """(input, output) tokens of a message, cache reads and writes counted as input."""
    usage = message["usage"]
    cache = usage["cache_read_input_tokens"] + usage["cache_creation_input_tokens"]
    return usage["input_tokens"] + cache, usage["output_tokens"]


def _stamp(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


@dataclass
class FakeMessageBatch:
    id: str
    requests: list[dict[str, Any]]
    created_at: float
    end: str
    status: str = "in_progress"  # then "canceling", "ended"
    polls: int = 0
    cancel_asked: bool = False
    ended_at: float | None = None
    results: list[dict[str, Any]] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        counts = {"processing": 0, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
        if self.status != "ended":
            counts["processing"] = len(self.requests)
            return counts
        for line in self.results:
            counts[line["result"]["type"]] += 1
        return counts

    def as_json(self, base: str) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": "message_batch",
            "processing_status": self.status,
            "request_counts": self.counts(),
            "created_at": _stamp(self.created_at),
            "expires_at": _stamp(self.created_at + 86400),
            "ended_at": _stamp(self.ended_at) if self.ended_at else None,
            "cancel_initiated_at": _stamp(self.created_at) if self.cancel_asked else None,
            "archived_at": None,
            "results_url": f"{base}/v1/messages/batches/{self.id}/results"
            if self.status == "ended"
            else None,
        }


@dataclass
class MessageBatches:
    plan: BatchPlan = field(default_factory=BatchPlan)
    batches: dict[str, FakeMessageBatch] = field(default_factory=dict)
    creates: int = 0
    _next: int = 0

    def custom_ids(self) -> list[str]:
        return [r["custom_id"] for b in self.batches.values() for r in b.requests]

    def get(self, path: str, base: str, state: Ledger) -> tuple[int, Any]:
        parts = urlsplit(path)
        route, query = parts.path.rstrip("/"), parse_qs(parts.query)
        if route.endswith("/batches"):
            page, more = newest_page(self.batches, query, "after_id")
            return 200, {
                "data": [b.as_json(base) for b in page],
                "has_more": more,
                "first_id": page[0].id if page else None,
                "last_id": page[-1].id if page else None,
            }
        if match := re.search(r"/batches/([^/]+)/results$", route):
            batch = self.batches.get(match.group(1))
            if batch is None or batch.status != "ended":
                return 404, error_body(404, "no results yet")
            data = "".join(json.dumps(line) + "\n" for line in reversed(batch.results))
            return 200, data.encode()
        if match := re.search(r"/batches/([^/]+)$", route):
            batch = self.batches.get(match.group(1))
            if batch is None:
                return 404, error_body(404, "no such batch")
            self._advance(batch, state)
            return 200, batch.as_json(base)
        return 404, error_body(404, f"no route {path}")

    def post(self, path: str, raw: bytes, base: str) -> tuple[int, Any]:
        route = urlsplit(path).path.rstrip("/")
        if route.endswith("/batches"):
            body = json.loads(raw or b"{}")
            requests = body.get("requests") or []
            for request in requests:
                if not re.fullmatch(r"[a-zA-Z0-9_-]{1,64}", request.get("custom_id", "")):
                    return 400, error_body(400, f"bad custom_id {request.get('custom_id')!r}")
            if not requests or len(requests) > 100_000:
                return 400, error_body(400, "a batch takes 1 to 100,000 requests")
            if self.plan.fail_creates:
                self.plan.fail_creates -= 1
                return 500, error_body(500, "internal error")
            self._next += 1
            batch = FakeMessageBatch(
                f"msgbatch_{self._next:04d}",
                requests,
                time.time(),
                end=self.plan.ends.pop(0) if self.plan.ends else self.plan.end,
            )
            self.batches[batch.id] = batch
            self.creates += 1
            self.plan.created.set()
            if self.plan.create_delay:
                time.sleep(self.plan.create_delay)
            return 200, batch.as_json(base)
        if match := re.search(r"/batches/([^/]+)/cancel$", route):
            batch = self.batches.get(match.group(1))
            if batch is None:
                return 404, error_body(404, "no such batch")
            if batch.status == "in_progress":
                batch.cancel_asked = True
                batch.status = "canceling"
            return 200, batch.as_json(base)
        return 404, error_body(404, f"no route {path}")

    def _advance(self, batch: FakeMessageBatch, state: Ledger) -> None:
        if batch.status == "ended":
            return
        if batch.cancel_asked:
            self._answer(batch, state, self.plan.share, "canceled")
            return
        batch.polls += 1
        if batch.polls < self.plan.polls:
            return
        if batch.end == "expired":
            self._answer(batch, state, self.plan.share, "expired")
        else:
            self._answer(batch, state, 1.0, "expired")

    def _answer(self, batch: FakeMessageBatch, state: Ledger, share: float, rest: str) -> None:
        answered = int(len(batch.requests) * share)
        for number, request in enumerate(batch.requests):
            custom_id = request["custom_id"]
            if number >= answered:
                batch.results.append({"custom_id": custom_id, "result": {"type": rest}})
                continue
            params = request["params"]
            fault = state.take_fault(messages_text(params))
            recorded = Recorded(params, {}, f"batch:{batch.id}")
            if fault is not None and fault.status is not None:
                recorded.status = fault.status
                result = {"type": "errored", "error": error_body(fault.status)}
            else:
                message = message_for(params, fault, state.cached_tokens)
                recorded.usage = message["usage"]
                result = {"type": "succeeded", "message": message}
            batch.results.append({"custom_id": custom_id, "result": result})
            state.record(recorded)
        batch.status = "ended"
        batch.ended_at = time.time()
