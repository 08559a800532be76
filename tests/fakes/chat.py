"""The Chat Completions side of the fake: the faults a test can switch on,
what each request was, and the completion a request is answered with (an
object synthesised from the JSON Schema instructor put into it, in the shape
the mode asks for: a tool call, ``json_object`` / ``json_schema`` content, or
a markdown code block).  ``Ledger`` is what every fake API shares: the faults,
the requests seen, and the lock around them."""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Fault:
    """One switchable misbehaviour.

    ``match`` selects requests whose message text contains it (``None``: all).
    ``times`` is how many matching requests it applies to (``None``: forever).
    """

    match: str | None = None
    times: int | None = None
    status: int | None = None
    retry_after: float | None = None
    retry_after_ms: int | None = None
    delay: float = 0.0
    invalid: bool = False
    truncated: bool = False
    refusal: bool = False
    body: dict[str, Any] | None = None
    drop: bool = False  # hang up without answering
    raw: str | None = None  # answer 200 with this text instead of a completion
    omit: tuple[str, ...] = ()  # completion fields left out, as loose servers do
    answer: dict[str, Any] | None = None  # answer with this object instead of a valid one
    # A raw newline inside the answer's strings (not escaped): JSON only to a
    # lenient parser, as llama.cpp's servers sometimes write it.
    raw_newline: bool = False
    # Answer only once this is set (a test holds an answer back, then lets it go).
    hold: threading.Event | None = None
    hits: int = 0

    def takes(self, text: str) -> bool:
        if self.match is not None and self.match not in text:
            return False
        return self.times is None or self.hits < self.times


@dataclass
class Recorded:
    body: dict[str, Any]
    headers: dict[str, str]
    path: str
    status: int = 200
    usage: dict[str, int] | None = None
    at: float = field(default_factory=time.monotonic)

    @property
    def text(self) -> str:
        return messages_text(self.body)


@dataclass(frozen=True)
class World:
    """Planted accuracy per role, for multiple-choice questions whose right
    option is 1: a request whose text holds a role's text answers option 1
    with that role's probability, else option 2; one holding none of them
    (the control, or a role not planted) with ``control``'s.  Each (role,
    question) draws its own uniform from ``seed`` and the request's first
    text, so answers are independent across roles and questions and the same
    every time the same request is sent."""

    accuracy: dict[str, float] = field(default_factory=dict)
    control: float = 0.6
    seed: int = 0

    def option(self, body: dict[str, Any]) -> int:
        text = asked_text(body)
        roles = [role for role in self.accuracy if role in text]
        chance = self.accuracy[max(roles, key=len)] if roles else self.control
        digest = hashlib.blake2b(f"{self.seed}\n{text}".encode(), digest_size=8).digest()
        return 1 if int.from_bytes(digest, "big") / 2**64 < chance else 2


@dataclass
class Ledger:
    """What every fake API shares: the faults switched on, the requests seen."""

    faults: list[Fault] = field(default_factory=list)
    requests: list[Recorded] = field(default_factory=list)
    # Prompt tokens each answer says were read from the provider's cache.
    cached_tokens: int = 0
    record_requests: bool = True
    world: World | None = None  # planted accuracy per role (choice questions)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take_fault(self, text: str) -> Fault | None:
        """The first fault that takes a request with this text (counted)."""
        with self.lock:
            for candidate in self.faults:
                if candidate.takes(text):
                    candidate.hits += 1
                    return candidate
        return None

    def record(self, recorded: Recorded) -> None:
        with self.lock:
            if self.record_requests:
                self.requests.append(recorded)


def messages_text(body: dict[str, Any]) -> str:
    parts = []
    system = body.get("system")  # Anthropic's Messages: the system prompt apart
    if isinstance(system, str):
        parts.append(system)
    elif isinstance(system, list):
        parts.extend(p.get("text", "") for p in system if isinstance(p, dict))
    for message in body.get("messages", []):
        content = message.get("content")
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            parts.extend(p.get("text", "") for p in content if isinstance(p, dict))
    return "\n".join(parts)


def request_schema(body: dict[str, Any]) -> dict[str, Any] | None:
    """Find the JSON Schema that instructor put into the request, for any mode."""
    tools = body.get("tools")
    if tools:
        if "input_schema" in tools[0]:  # Anthropic's tool
            return tools[0]["input_schema"]
        return tools[0]["function"].get("parameters")
    response_format = body.get("response_format") or {}
    if response_format.get("type") == "json_schema":
        return response_format["json_schema"].get("schema")
    # JSON and MD_JSON modes put the schema into the message text.
    text = messages_text(body)
    for match in re.finditer(r"\{", text):
        try:
            candidate, _ = json.JSONDecoder().raw_decode(text[match.start() :])
        except ValueError:
            continue
        if isinstance(candidate, dict) and "properties" in candidate:
            return candidate
    return None


def first_text(body: dict[str, Any]) -> str:
    # Re-ask messages come last; answers derive from the record's own prompt.
    for message in body.get("messages", []):
        content = message.get("content")
        if isinstance(content, str) and content:
            return content
    return ""


# How instructor's re-ask turns begin (after the model's own answer).
REASK_OPENINGS = ("Correct your JSON", "Recall the function")


def asked_text(body: dict[str, Any]) -> str:
    """The record's prompt as one text: every system and user message up to
    instructor's re-ask (a profile's example questions and the query after
    them included); the one message of a plain role's system layout alone."""
    said = []
    for message in body.get("messages", []):
        content = message.get("content")
        if not isinstance(content, str) or not content:
            continue
        if message.get("role") == "user" and content.startswith(REASK_OPENINGS):
            break
        if message.get("role") != "assistant":
            said.append(content)
    return "\n".join(said)


def synthesize(schema: dict[str, Any], seed: str, defs: dict[str, Any] | None = None) -> Any:
    """Build a value that validates against ``schema``, derived from ``seed``."""
    defs = defs if defs is not None else schema.get("$defs", {})
    if "$ref" in schema:
        return synthesize(defs[schema["$ref"].rsplit("/", 1)[-1]], seed, defs)
    if "enum" in schema:
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            options = [s for s in schema[key] if s.get("type") != "null"] or schema[key]
            return synthesize(options[0], seed, defs)
    kind = schema.get("type", "object")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        props = schema.get("properties", {})
        return {name: synthesize(sub, f"{seed} {name}", defs) for name, sub in props.items()}
    if kind == "array":
        return [synthesize(schema.get("items", {"type": "string"}), seed, defs)]
    if kind == "string":
        text = f"Answer to: {seed}"
        limit = schema.get("maxLength")
        return text[:limit] if limit else text
    if kind == "integer":
        return int(schema.get("minimum", 1))
    if kind == "number":
        return float(schema.get("minimum", 1.5))
    if kind == "boolean":
        return True
    return None


def tokens(text: str) -> int:
    return max(1, len(text) // 4)


def prompt_tokens(body: dict[str, Any]) -> int:
    """Counted as providers count: the messages' text, a few tokens for each
    message, and the tool or response-format schema the request carries."""
    schema = body.get("tools") or body.get("response_format")
    text = messages_text(body) + (json.dumps(schema) if schema else "")
    return tokens(text) + 4 * len(body.get("messages", []))


def completion_for(
    body: dict[str, Any], fault: Fault | None, cached_tokens: int = 0, world: World | None = None
) -> dict[str, Any]:
    """The chat completion this server answers ``body`` with (``fault`` shapes
    it; ``world`` picks a choice question's option)."""
    schema = request_schema(body) or {"type": "object", "properties": {}}
    seed = first_text(body)[:60]
    value = synthesize(schema, seed)
    if world is not None and isinstance(value, dict) and set(value) == {"option"}:
        value = {"option": world.option(body)}
    if fault and fault.invalid:
        value = {"unexpected": "this does not match the schema"}
    if fault and fault.answer is not None:
        value = fault.answer
    content = json.dumps(value)
    if fault and fault.raw_newline:
        lined = {
            k: f"{v}\nand a second line" if isinstance(v, str) else v for k, v in value.items()
        }
        content = json.dumps(lined).replace("\\n", "\n")
    finish = "length" if fault and fault.truncated else "stop"
    if fault and fault.truncated:
        content = content[: len(content) // 2]
    message: dict[str, Any] = {"role": "assistant", "content": None}
    if fault and fault.refusal:
        message["refusal"] = "I can't help with that."
        finish = "stop"
    elif body.get("tools"):
        name = body["tools"][0]["function"]["name"]
        message["tool_calls"] = [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": name, "arguments": content},
            }
        ]
        finish = "length" if fault and fault.truncated else "tool_calls"
    elif (body.get("response_format") or {}).get("type") in ("json_object", "json_schema"):
        message["content"] = content
    else:
        message["content"] = f"Here it is:\n```json\n{content}\n```"
    prompt = prompt_tokens(body)
    completion = tokens(content)
    usage: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
    if cached_tokens:
        cached = min(cached_tokens, prompt)
        usage["prompt_tokens_details"] = {"cached_tokens": cached}
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model", "fake-model"),
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": usage,
    }
