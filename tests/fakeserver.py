"""A loopback server that speaks the OpenAI Chat Completions protocol (and,
on ``/v1/messages``, Anthropic's Messages API: ``tests.fake_anthropic``).

It answers in the shape the request asks for (a tool call, a ``json_object``
or ``json_schema`` response, or a markdown code block) with an object it
synthesises from the JSON Schema found in the request, and it can be told to
misbehave: invalid output, 5xx, 429 with Retry-After, 401, slow answers,
truncated completions.  Every request is recorded so tests can assert what
was sent.

Run on its own for benchmarks: ``python -m tests.fakeserver --port 8765``.
"""

from __future__ import annotations

import argparse
import json
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests import fake_anthropic
from tests.fake_anthropic import MessageBatches
from tests.fake_batches import BatchAPI

_BATCH_ROUTE = re.compile(r"/v1/(files|batches)(/|\?|$)")


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
        return _messages_text(self.body)


@dataclass
class Quota:
    """Per-minute limits enforced in fixed one-second windows, as providers
    quantize theirs: 1,200 requests/min admits 20 in each second.

    ``style`` names the headers: "openai" (x-ratelimit-*-requests/-tokens),
    "anthropic" (anthropic-ratelimit-*, resets as RFC 3339 times, separate
    input and output token limits), "openrouter" (x-ratelimit-limit/-remaining
    for the window, reset in milliseconds since the epoch)."""

    rpm: int | None = None
    tpm: int | None = None
    itpm: int | None = None  # input tokens a minute
    otpm: int | None = None  # output tokens a minute
    style: str = "openai"
    headers: bool = True  # send the limit headers on every answer
    retry_after: bool = True  # send Retry-After on a 429
    window: int = -1
    used_requests: int = 0
    used_tokens: int = 0
    used_input: int = 0
    used_output: int = 0
    accepted: int = 0
    rejected: int = 0
    tokens_accepted: int = 0
    first: float | None = None
    last: float | None = None
    # (time, tokens, admitted) of every request, when asked for (GET /log).
    log: list[tuple[float, int, bool]] | None = None

    def admit(
        self, tokens: int, now: float, prompt: int = 0, completion: int = 0
    ) -> tuple[bool, dict[str, str]]:
        second = int(now)
        if second != self.window:
            self.window = second
            self.used_requests = self.used_tokens = self.used_input = self.used_output = 0
        checks = (
            (self.rpm, self.used_requests, 1),
            (self.tpm, self.used_tokens, tokens),
            (self.itpm, self.used_input, prompt),
            (self.otpm, self.used_output, completion),
        )
        ok = all(limit is None or used + cost <= limit / 60 + 1e-9 for limit, used, cost in checks)
        if ok:
            self.used_requests += 1
            self.used_tokens += tokens
            self.used_input += prompt
            self.used_output += completion
            self.accepted += 1
            self.tokens_accepted += tokens
            self.first = now if self.first is None else self.first
            self.last = now
        else:
            self.rejected += 1
        if self.log is not None:
            self.log.append((now, tokens, ok))
        headers = self._headers(now) if self.headers else {}
        if not ok and self.retry_after:
            if self.style == "anthropic":
                headers["retry-after"] = "1"
            else:
                headers["retry-after-ms"] = str(max(1, int((second + 1 - now) * 1000)))
        return ok, headers

    def _headers(self, now: float) -> dict[str, str]:
        second = int(now)
        budgets = (
            ("requests", self.rpm, self.used_requests),
            ("tokens", self.tpm, self.used_tokens),
            ("input-tokens", self.itpm, self.used_input),
            ("output-tokens", self.otpm, self.used_output),
        )
        headers: dict[str, str] = {}
        for kind, limit, used in budgets:
            if limit is None:
                continue
            # What is left before this window's share of the limit runs out.
            remaining = str(max(0, int(limit / 60 - used)))
            if self.style == "anthropic":
                reset = datetime.fromtimestamp(second + 1, UTC).isoformat()
                name = f"anthropic-ratelimit-{kind}"
                headers.update(
                    {
                        f"{name}-limit": str(limit),
                        f"{name}-remaining": remaining,
                        f"{name}-reset": reset.replace("+00:00", "Z"),
                    }
                )
            elif self.style == "openrouter":
                if kind == "requests":
                    headers["x-ratelimit-limit"] = str(int(limit / 60))
                    headers["x-ratelimit-remaining"] = remaining
                    headers["x-ratelimit-reset"] = str((second + 1) * 1000)
            else:
                headers[f"x-ratelimit-limit-{kind}"] = str(limit)
                headers[f"x-ratelimit-remaining-{kind}"] = remaining
                headers[f"x-ratelimit-reset-{kind}"] = f"{second + 1 - now:.3f}s"
        return headers

    def stats(self) -> dict[str, Any]:
        span = (self.last - self.first) if self.first is not None and self.last else 0.0
        return {
            "accepted": self.accepted,
            "rejected": self.rejected,
            "tokens": self.tokens_accepted,
            "span_s": span,
            "first": self.first,
            "last": self.last,
        }


@dataclass
class FakeState:
    faults: list[Fault] = field(default_factory=list)
    requests: list[Recorded] = field(default_factory=list)
    latency: float = 0.0
    # Prompt tokens each answer says were read from the provider's cache.
    cached_tokens: int = 0
    record_requests: bool = True
    quota: Quota = field(default_factory=Quota)
    batches: BatchAPI = field(default_factory=BatchAPI)
    message_batches: MessageBatches = field(default_factory=MessageBatches)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _messages_text(body: dict[str, Any]) -> str:
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


def _request_schema(body: dict[str, Any]) -> dict[str, Any] | None:
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
    text = _messages_text(body)
    for match in re.finditer(r"\{", text):
        try:
            candidate, _ = json.JSONDecoder().raw_decode(text[match.start() :])
        except ValueError:
            continue
        if isinstance(candidate, dict) and "properties" in candidate:
            return candidate
    return None


def _first_text(body: dict[str, Any]) -> str:
    # Re-ask messages come last; answers derive from the record's own prompt.
    for message in body.get("messages", []):
        content = message.get("content")
        if isinstance(content, str) and content:
            return content
    return ""


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


def _tokens(text: str) -> int:
    return max(1, len(text) // 4)


def _prompt_tokens(body: dict[str, Any]) -> int:
    """Counted as providers count: the messages' text, a few tokens for each
    message, and the tool or response-format schema the request carries."""
    schema = body.get("tools") or body.get("response_format")
    text = _messages_text(body) + (json.dumps(schema) if schema else "")
    return _tokens(text) + 4 * len(body.get("messages", []))


def completion_for(
    body: dict[str, Any], fault: Fault | None, cached_tokens: int = 0
) -> dict[str, Any]:
    """The chat completion this server answers ``body`` with (``fault`` shapes it)."""
    schema = _request_schema(body) or {"type": "object", "properties": {}}
    seed = _first_text(body)[:60]
    value = synthesize(schema, seed)
    if fault and fault.invalid:
        value = {"unexpected": "this does not match the schema"}
    if fault and fault.answer is not None:
        value = fault.answer
    content = json.dumps(value)
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
    prompt_tokens = _prompt_tokens(body)
    completion_tokens = _tokens(content)
    usage: dict[str, Any] = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }
    if cached_tokens:
        cached = min(cached_tokens, prompt_tokens)
        usage["prompt_tokens_details"] = {"cached_tokens": cached}
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model", "fake-model"),
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": usage,
    }


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; with Nagle on, each answer waits
    # for a delayed ACK (~40 ms).
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(
        self,
        status: int,
        payload: dict[str, Any] | str | bytes,
        headers: dict[str, str] | None = None,
    ):
        """A JSON answer, or ``payload`` as it is when it is text or bytes."""
        if isinstance(payload, bytes):
            data, kind = payload, "application/octet-stream"
        elif isinstance(payload, str):
            data, kind = payload.encode(), "text/html"
        else:
            data, kind = json.dumps(payload).encode(), "application/json"
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        # Head and body in one write, as production servers send a small answer:
        # two writes would cost the client a second wake-up for every answer.
        self._headers_buffer.extend((b"\r\n", data))
        self.flush_headers()

    @property
    def _root(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def do_GET(self) -> None:
        if fake_anthropic.BATCH_ROUTE.search(self.path):
            with self.server.state.lock:
                batches = self.server.state.message_batches
            self._send(*batches.get(self.path, self._root, self.server.state))
            return
        if self.path.rstrip("/").endswith("/stats"):
            with self.server.state.lock:
                self._send(200, self.server.state.quota.stats())
            return
        if self.path.rstrip("/").endswith("/log"):
            with self.server.state.lock:
                self._send(200, {"log": self.server.state.quota.log or []})
            return
        if _BATCH_ROUTE.search(self.path):
            with self.server.state.lock:
                batches = self.server.state.batches
            self._send(*batches.get(self.path, self.server.state))
            return
        self._send(200, {"object": "list", "data": [{"id": "fake-model", "object": "model"}]})

    def do_POST(self) -> None:
        state = self.server.state
        length = int(self.headers.get("Content-Length", "0"))
        raw = self.rfile.read(length)
        if _BATCH_ROUTE.search(self.path):
            self._send(*state.batches.post(self.path, self.headers, raw, state))
            return
        if fake_anthropic.BATCH_ROUTE.search(self.path):
            with state.lock:
                batches = state.message_batches
            self._send(*batches.post(self.path, raw, self._root))
            return
        try:
            body = json.loads(raw)
        except ValueError:
            self._send(400, {"error": {"message": "invalid JSON body", "type": "invalid_request"}})
            return
        anthropic = self.path.rstrip("/").endswith("/v1/messages")
        if not anthropic and not self.path.rstrip("/").endswith("/v1/chat/completions"):
            self._send(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
            return
        text = _messages_text(body)
        fault = None
        recorded = Recorded(body, {k.lower(): v for k, v in self.headers.items()}, self.path)
        with state.lock:
            if state.record_requests:
                state.requests.append(recorded)
            for candidate in state.faults:
                if candidate.takes(text):
                    candidate.hits += 1
                    fault = candidate
                    break
        delay = state.latency + (fault.delay if fault else 0.0)
        if fault and (fault.status or fault.drop or fault.raw is not None):
            if delay:
                time.sleep(delay)
            if fault.status:
                headers = {}
                if fault.retry_after is not None:
                    headers["Retry-After"] = f"{fault.retry_after:g}"
                if fault.retry_after_ms is not None:
                    headers["retry-after-ms"] = str(fault.retry_after_ms)
                if anthropic:
                    payload = fault.body or fake_anthropic.error_body(fault.status)
                else:
                    payload = fault.body or {
                        "error": {
                            "message": f"fake error {fault.status}",
                            "type": "fake",
                            "code": None,
                        }
                    }
                recorded.status = fault.status
                self._send(fault.status, payload, headers)
            elif fault.drop:
                self.close_connection = True
            else:
                self._send(200, fault.raw or "")
            return
        # Limits are checked on arrival, as providers do (a 429 comes back at
        # once; the answer's tokens count when the request arrives).
        if anthropic:
            completion = fake_anthropic.message_for(body, fault, state.cached_tokens)
            prompt, answer = fake_anthropic.usage_counts(completion)
        else:
            completion = completion_for(body, fault, state.cached_tokens)
            prompt = completion["usage"]["prompt_tokens"]
            answer = completion["usage"]["completion_tokens"]
        with state.lock:
            ok, headers = state.quota.admit(prompt + answer, time.time(), prompt, answer)
        if not ok:
            recorded.status = 429
            if anthropic:
                message = fake_anthropic.error_body(429, "Number of request tokens has exceeded")
            else:
                message = {"error": {"message": "Rate limit reached", "type": "requests"}}
            self._send(429, message, headers)
            return
        if delay:
            time.sleep(delay)
        recorded.usage = completion["usage"]
        for name in fault.omit if fault else ():
            completion.pop(name, None)
        self._send(200, completion, headers)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024

    def __init__(self, address: tuple[str, int], state: FakeState):
        super().__init__(address, _Handler)
        self.state = state

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that timed out and hung up is a normal event here, not news.
        pass


class FakeServer:
    """Owns a running server thread; ``base_url`` ends in ``/v1``."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        self.state = FakeState()
        self._server = _Server((host, port), self.state)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    @property
    def root(self) -> str:
        """The base URL without ``/v1``, as Anthropic's SDK takes it."""
        return self.base_url.removesuffix("/v1")

    @property
    def requests(self) -> list[Recorded]:
        return self.state.requests

    def fault(self, **kwargs: Any) -> Fault:
        fault = Fault(**kwargs)
        with self.state.lock:
            self.state.faults.append(fault)
        return fault

    def reset(self) -> None:
        with self.state.lock:
            self.state.faults.clear()
            self.state.requests.clear()
            self.state.latency = 0.0
            self.state.cached_tokens = 0
            self.state.record_requests = True
            self.state.quota = Quota()
            self.state.batches = BatchAPI()
            self.state.message_batches = MessageBatches()

    def start(self) -> FakeServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--rpm", type=int, help="requests/min, enforced per second")
    parser.add_argument("--tpm", type=int, help="tokens/min, enforced per second")
    parser.add_argument("--no-headers", action="store_true", help="no x-ratelimit-* headers")
    parser.add_argument("--log", action="store_true", help="keep every admission for GET /log")
    args = parser.parse_args()
    server = FakeServer(port=args.port)
    server.state.latency = args.latency
    server.state.quota = Quota(
        rpm=args.rpm, tpm=args.tpm, headers=not args.no_headers, log=[] if args.log else None
    )
    server.state.record_requests = False
    print(server.base_url, flush=True)
    server._server.serve_forever()


if __name__ == "__main__":
    main()
