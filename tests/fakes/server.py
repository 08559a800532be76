"""A loopback server that speaks the OpenAI Chat Completions protocol (and,
on ``/v1/messages``, Anthropic's Messages API: ``tests.fakes.anthropic``;
on ``/v1/files`` and ``/v1/batches``, OpenAI's Batch API:
``tests.fakes.openai_batches``), with limits enforced as providers do
(``tests.fakes.quota``) and faults a test switches on (``tests.fakes.chat``).
Every request is recorded so tests can assert what was sent.

Run on its own for benchmarks: ``python -m tests.fakes.server --port 8765``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.fakes import anthropic
from tests.fakes.anthropic import MessageBatches
from tests.fakes.chat import Fault, Ledger, Recorded, World, completion_for, messages_text
from tests.fakes.openai_batches import BatchAPI
from tests.fakes.quota import Quota

_BATCH_ROUTE = re.compile(r"/v1/(files|batches)(/|\?|$)")
_MODELS_ROUTE = re.compile(r"/v1/models(?:/(?P<id>[^?]+))?/?(?:\?|$)")
# The models GET /v1/models lists, and what each says beyond its id (OpenAI's
# carry "shutdown_date": "YYYY-MM-DD", or null when none is announced).
MODELS: dict[str, dict[str, Any]] = {
    "gpt-4o": {"shutdown_date": None},
    "gpt-4o-mini": {"shutdown_date": None},
    "gpt-3.5-turbo": {},  # an older entry, without the field
}


class Slots:
    """A server that works on ``count`` answers at a time and queues the rest,
    as llama.cpp's and llama-cpp-python's servers do; it counts how many
    requests were at it at once (working or waiting)."""

    def __init__(self, count: int, report: bool = False):
        self.count = count
        self.report = report  # say so on GET /props, as llama.cpp's server does
        self._working = threading.Semaphore(count)
        self._lock = threading.Lock()
        self.at_once = 0
        self.most_at_once = 0

    def __enter__(self) -> Slots:
        with self._lock:
            self.at_once += 1
            self.most_at_once = max(self.most_at_once, self.at_once)
        self._working.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self._working.release()
        with self._lock:
            self.at_once -= 1


@dataclass
class FakeState(Ledger):
    """Everything the server knows: the ledger, its limits, its batch APIs."""

    latency: float = 0.0
    slots: Slots | None = None  # None: every request answered at once
    quota: Quota = field(default_factory=Quota)
    batches: BatchAPI = field(default_factory=BatchAPI)
    message_batches: MessageBatches = field(default_factory=MessageBatches)
    models: dict[str, dict[str, Any]] | None = field(default_factory=lambda: dict(MODELS))
    # GET /v1/models and /v1/models/{id} asked (None above: a server without them).
    model_lookups: list[str] = field(default_factory=list)
    # Prompt prefixes the Messages API has cached (``anthropic.marked_prefix``).
    prompt_prefixes: set[str] = field(default_factory=set)


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
        if anthropic.BATCH_ROUTE.search(self.path):
            with self.server.state.lock:
                batches = self.server.state.message_batches
            self._send(*batches.get(self.path, self._root, self.server.state))
            return
        if self.path.rstrip("/").endswith("/stats"):
            with self.server.state.lock:
                stats = self.server.state.quota.stats()
                if self.server.state.slots is not None:
                    stats["most_at_once"] = self.server.state.slots.most_at_once
                self._send(200, stats)
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
        models = _MODELS_ROUTE.search(self.path)
        if models:
            self._send(*self._models(models.group("id")))
            return
        if self.path.rstrip("/").endswith("/props"):
            slots = self.server.state.slots
            if slots is None or not slots.report:
                self._send(404, {"error": {"message": "no /props here", "type": "not_found"}})
            else:
                self._send(200, {"total_slots": slots.count, "default_generation_settings": {}})
            return
        self._send(200, {"object": "list", "data": [{"id": "fake-model", "object": "model"}]})

    def _models(self, model: str | None) -> tuple[int, dict[str, Any]]:
        state = self.server.state
        with state.lock:
            state.model_lookups.append(self.path)
            known = None if state.models is None else dict(state.models)
        if known is None:
            return 404, {"error": {"message": f"no route {self.path}", "type": "not_found"}}

        def entry(name: str) -> dict[str, Any]:
            return {"id": name, "object": "model", "owned_by": "fake", **known[name]}

        if model is None:
            return 200, {"object": "list", "data": [entry(name) for name in known]}
        if model not in known:
            message = f"The model '{model}' does not exist"
            return 404, {"error": {"message": message, "type": "invalid_request_error"}}
        return 200, entry(model)

    def do_POST(self) -> None:
        state = self.server.state
        length = int(self.headers.get("Content-Length", "0"))
        raw = self.rfile.read(length)
        if _BATCH_ROUTE.search(self.path):
            self._send(*state.batches.post(self.path, self.headers, raw, state))
            return
        if anthropic.BATCH_ROUTE.search(self.path):
            with state.lock:
                batches = state.message_batches
            self._send(*batches.post(self.path, raw, self._root))
            return
        try:
            body = json.loads(raw)
        except ValueError:
            self._send(400, {"error": {"message": "invalid JSON body", "type": "invalid_request"}})
            return
        messages_api = self.path.rstrip("/").endswith("/v1/messages")
        if not messages_api and not self.path.rstrip("/").endswith("/v1/chat/completions"):
            self._send(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
            return
        recorded = Recorded(body, {k.lower(): v for k, v in self.headers.items()}, self.path)
        state.record(recorded)
        fault = state.take_fault(messages_text(body))
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
                if messages_api:
                    payload = fault.body or anthropic.error_body(fault.status)
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
        if messages_api:
            with state.lock:
                completion = anthropic.message_for(
                    body, fault, state.cached_tokens, state.prompt_prefixes
                )
            prompt, answer = anthropic.usage_counts(completion)
        else:
            completion = completion_for(body, fault, state.cached_tokens, state.world)
            prompt = completion["usage"]["prompt_tokens"]
            answer = completion["usage"]["completion_tokens"]
        with state.lock:
            ok, headers = state.quota.admit(prompt + answer, time.time(), prompt, answer)
        if not ok:
            recorded.status = 429
            if messages_api:
                message = anthropic.error_body(429, "Number of request tokens has exceeded")
            else:
                message = {"error": {"message": "Rate limit reached", "type": "requests"}}
            self._send(429, message, headers)
            return
        with state.slots or contextlib.nullcontext():
            if delay:
                time.sleep(delay)
            if fault and fault.hold is not None:
                fault.hold.wait(timeout=120)
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
            self.state.slots = None
            self.state.cached_tokens = 0
            self.state.record_requests = True
            self.state.quota = Quota()
            self.state.batches = BatchAPI()
            self.state.message_batches = MessageBatches()
            self.state.models = dict(MODELS)
            self.state.model_lookups = []
            self.state.prompt_prefixes = set()
            self.state.world = None

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
    parser.add_argument(
        "--world",
        metavar="JSON",
        help='planted accuracy: {"accuracy": {ROLE TEXT: P}, "control": P, "seed": S}',
    )
    parser.add_argument(
        "--slots", type=int, help="work on this many answers at once, queue the rest"
    )
    args = parser.parse_args()
    server = FakeServer(port=args.port)
    server.state.latency = args.latency
    server.state.quota = Quota(
        rpm=args.rpm, tpm=args.tpm, headers=not args.no_headers, log=[] if args.log else None
    )
    server.state.record_requests = False
    if args.world:
        server.state.world = World(**json.loads(args.world))
    if args.slots:
        server.state.slots = Slots(args.slots)
    print(server.base_url, flush=True)
    server._server.serve_forever()


if __name__ == "__main__":
    main()
