"""OpenAI's Files and Batch APIs, faked on the loopback server.

    POST /v1/files                 multipart upload (purpose=batch)
    GET  /v1/files                 list (?purpose=batch)
    GET  /v1/files/{id}/content    the bytes
    POST /v1/batches               create {input_file_id, endpoint, completion_window, metadata}
    GET  /v1/batches               list, newest first (?limit=, ?after=)
    GET  /v1/batches/{id}          retrieve: every call moves the batch on one step
    POST /v1/batches/{id}/cancel   cancel: the next retrieve finds it cancelled

A batch goes validating → in_progress → finalizing → its end over
``BatchPlan.polls`` retrieves, so tests run in milliseconds.  When it ends its
requests are answered as the live endpoint would answer them (the same faults
apply: a ``status`` fault becomes a line in the error file, ``invalid`` an
answer that does not validate), and the results come out in reverse order.
An expired or cancelled batch answers only ``share`` of its requests and, as
OpenAI documents, writes each request it never ran into its error file
(``response`` null, error code ``batch_expired`` / ``batch_cancelled``); a
failed one answers none.  Every request a batch answered is recorded like a live one, with
``path`` "batch:<id>".
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.fakes.chat import Ledger, Recorded, completion_for, messages_text


@dataclass
class BatchPlan:
    """How the next batches behave."""

    polls: int = 3  # retrieves before a batch ends
    end: str = "completed"  # or "expired", "failed"
    ends: list[str] = field(default_factory=list)  # the next batches' ends, one each, first
    share: float = 0.5  # of requests answered when a batch expires or is cancelled
    errors: list[dict[str, Any]] = field(
        default_factory=lambda: [{"code": "invalid_request", "message": "bad line 1"}]
    )
    refuse_creates: int = 0  # the next N creates: 400 token_limit_exceeded
    queue_limit: int | None = None  # most requests in batches not ended; more: refused
    queue_failures: int = 0  # the next N batches end failed with token_limit_exceeded
    create_delay: float = 0.0  # create answers this late; the batch exists at once
    fail_creates: int = 0  # the next N creates: 500, and no batch is made (Anthropic's fake)
    created: threading.Event = field(default_factory=threading.Event)  # a create was made


@dataclass
class FakeBatch:
    id: str
    input_file_id: str
    metadata: dict[str, str]
    created_at: int
    end: str
    status: str = "validating"
    polls: int = 0
    cancel_asked: bool = False
    output_file_id: str | None = None
    error_file_id: str | None = None
    errors: list[dict[str, Any]] | None = None
    counts: dict[str, int] = field(
        default_factory=lambda: {"total": 0, "completed": 0, "failed": 0}
    )

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "batch",
            "endpoint": "/v1/chat/completions",
            "completion_window": "24h",
            "input_file_id": self.input_file_id,
            "status": self.status,
            "created_at": self.created_at,
            "metadata": self.metadata,
            "output_file_id": self.output_file_id,
            "error_file_id": self.error_file_id,
            "errors": {"object": "list", "data": self.errors} if self.errors else None,
            "request_counts": self.counts,
        }


@dataclass
class BatchAPI:
    plan: BatchPlan = field(default_factory=BatchPlan)
    files: dict[str, tuple[str, bytes]] = field(default_factory=dict)  # id -> (name, bytes)
    batches: dict[str, FakeBatch] = field(default_factory=dict)
    uploads: int = 0
    _next: int = 0

    def _id(self, prefix: str) -> str:
        self._next += 1
        return f"{prefix}_{self._next:04d}"

    def requests_of(self, batch_id: str) -> list[dict[str, Any]]:
        _, data = self.files[self.batches[batch_id].input_file_id]
        return [json.loads(line) for line in data.splitlines() if line.strip()]

    def custom_ids(self) -> list[str]:
        """Every custom_id of every batch created, in order."""
        return [r["custom_id"] for b in self.batches for r in self.requests_of(b)]

    # -- HTTP ---------------------------------------------------------------

    def get(self, path: str, state: Ledger) -> tuple[int, Any]:
        parts = urlsplit(path)
        route, query = parts.path.rstrip("/"), parse_qs(parts.query)
        if route.endswith("/files"):
            purpose = query.get("purpose", [None])[0]
            data = [
                {"id": fid, "object": "file", "filename": name, "purpose": "batch"}
                for fid, (name, _) in self.files.items()
                if purpose in (None, "batch")
            ]
            return 200, {"object": "list", "data": data, "has_more": False}
        if match := re.search(r"/files/([^/]+)/content$", route):
            found = self.files.get(match.group(1))
            return (200, found[1]) if found else (404, _error("no such file"))
        if route.endswith("/batches"):
            page, more = newest_page(self.batches, query, "after")
            return 200, {
                "object": "list",
                "data": [b.as_json() for b in page],
                "has_more": more,
                "first_id": page[0].id if page else None,
                "last_id": page[-1].id if page else None,
            }
        if match := re.search(r"/batches/([^/]+)$", route):
            batch = self.batches.get(match.group(1))
            if batch is None:
                return 404, _error("no such batch")
            self._advance(batch, state)
            return 200, batch.as_json()
        return 404, _error(f"no route {path}")

    def post(self, path: str, headers: Any, raw: bytes, state: Ledger) -> tuple[int, Any]:
        route = urlsplit(path).path.rstrip("/")
        if route.endswith("/files"):
            fields = _multipart(headers.get("Content-Type", ""), raw)
            name, data = fields.get("file", ("upload.jsonl", b""))
            fid = self._id("file")
            self.files[fid] = (name, data)
            self.uploads += 1
            return 200, {
                "id": fid,
                "object": "file",
                "bytes": len(data),
                "created_at": int(time.time()),
                "filename": name,
                "purpose": "batch",
                "status": "processed",
            }
        if route.endswith("/batches"):
            body = json.loads(raw or b"{}")
            if self.plan.refuse_creates:
                self.plan.refuse_creates -= 1
                message = "Enqueued token limit reached for gpt-4o in organization org-fake."
                return 400, _error(message, "token_limit_exceeded")
            if body.get("input_file_id") not in self.files:
                return 400, _error("input_file_id is not a file")
            if self.plan.queue_limit is not None:
                queued = sum(
                    b.counts["total"]
                    for b in self.batches.values()
                    if b.status not in ("completed", "expired", "failed", "cancelled")
                )
                adding = len(self.requests_of_file(body["input_file_id"]))
                if queued + adding > self.plan.queue_limit:
                    message = "Enqueued token limit reached for gpt-4o in organization org-fake."
                    return 400, _error(message, "token_limit_exceeded")
            batch = FakeBatch(
                self._id("batch"),
                body["input_file_id"],
                body.get("metadata") or {},
                int(time.time()),
                end=self.plan.ends.pop(0) if self.plan.ends else self.plan.end,
            )
            batch.counts["total"] = len(self.requests_of_file(batch.input_file_id))
            if self.plan.queue_failures:
                self.plan.queue_failures -= 1
                batch.end = "queue"
            self.batches[batch.id] = batch
            self.plan.created.set()
            if self.plan.create_delay:
                time.sleep(self.plan.create_delay)
            return 200, batch.as_json()
        if match := re.search(r"/batches/([^/]+)/cancel$", route):
            batch = self.batches.get(match.group(1))
            if batch is None:
                return 404, _error("no such batch")
            if batch.status in ("validating", "in_progress", "finalizing"):
                batch.cancel_asked = True
                batch.status = "cancelling"
            return 200, batch.as_json()
        return 404, _error(f"no route {path}")

    def requests_of_file(self, file_id: str) -> list[dict[str, Any]]:
        _, data = self.files[file_id]
        return [json.loads(line) for line in data.splitlines() if line.strip()]

    # -- the batch's life ---------------------------------------------------

    def _advance(self, batch: FakeBatch, state: Ledger) -> None:
        if batch.status in ("completed", "expired", "failed", "cancelled"):
            return
        if batch.cancel_asked:
            self._answer(batch, state, self.plan.share, "batch_cancelled")
            batch.status = "cancelled"
            return
        batch.polls += 1
        if batch.polls < self.plan.polls:
            batch.status = ("validating", "in_progress", "finalizing")[
                min(2, batch.polls * 3 // self.plan.polls)
            ]
            return
        if batch.end == "queue":
            batch.status = "failed"
            batch.errors = [
                {
                    "code": "token_limit_exceeded",
                    "message": "Enqueued token limit reached for gpt-4o in organization org-fake.",
                }
            ]
        elif batch.end == "failed":
            batch.status = "failed"
            batch.errors = self.plan.errors
        elif batch.end == "expired":
            self._answer(batch, state, self.plan.share, "batch_expired")
            batch.status = "expired"
        else:
            self._answer(batch, state, 1.0)
            batch.status = "completed"

    def _answer(
        self, batch: FakeBatch, state: Ledger, share: float, unrun: str | None = None
    ) -> None:
        """Answer the first ``share`` of the batch's requests; the rest, never
        run, are error lines with the code ``unrun``."""
        requests = self.requests_of_file(batch.input_file_id)
        answered = requests[: int(len(requests) * share)]
        outputs, errors = [], []
        messages = {
            "batch_expired": "This request could not be executed before the completion"
            " window expired.",
            "batch_cancelled": "This request was not executed because the batch was cancelled.",
        }
        for number, request in enumerate(requests[len(answered) :], start=len(answered)):
            assert unrun is not None
            errors.append(
                {
                    "id": f"batch_req_{number}",
                    "custom_id": request["custom_id"],
                    "response": None,
                    "error": {"code": unrun, "message": messages[unrun]},
                }
            )
        for number, request in enumerate(answered):
            body = request["body"]
            fault = state.take_fault(messages_text(body))
            recorded = Recorded(body, {}, f"batch:{batch.id}")
            line: dict[str, Any] = {"id": f"batch_req_{number}", "custom_id": request["custom_id"]}
            if fault is not None and fault.status is not None:
                recorded.status = fault.status
                if fault.status == 0:
                    line["response"] = {"status_code": 0, "request_id": "", "body": {}}
                    line["error"] = {"code": "server_error", "message": "the request failed"}
                else:
                    line["response"] = {
                        "status_code": fault.status,
                        "request_id": f"req_{number}",
                        "body": _error(f"fake error {fault.status}"),
                    }
                    line["error"] = None
                errors.append(line)
            else:
                completion = completion_for(body, fault, state.cached_tokens, state.world)
                recorded.usage = completion["usage"]
                line["response"] = {
                    "status_code": 200,
                    "request_id": f"req_{number}",
                    "body": completion,
                }
                line["error"] = None
                outputs.append(line)
            state.record(recorded)
        # Results come back in no particular order; here, the reverse.
        if outputs:
            batch.output_file_id = self._id("file")
            data = "".join(json.dumps(line) + "\n" for line in reversed(outputs)).encode()
            self.files[batch.output_file_id] = (f"{batch.id}_output.jsonl", data)
        if errors:
            batch.error_file_id = self._id("file")
            data = "".join(json.dumps(line) + "\n" for line in reversed(errors)).encode()
            self.files[batch.error_file_id] = (f"{batch.id}_errors.jsonl", data)
        batch.counts = {"total": len(requests), "completed": len(outputs), "failed": len(errors)}


def newest_page(batches: dict[str, Any], query: dict[str, list[str]], after_key: str):
    """A page of a list of batches, newest first: (the page, whether more follow)."""
    newest = sorted(batches.values(), key=lambda b: b.id, reverse=True)
    after = query.get(after_key, [None])[0]
    if after is not None:
        ids = [b.id for b in newest]
        newest = newest[ids.index(after) + 1 :] if after in ids else []
    limit = int(query.get("limit", ["20"])[0])
    return newest[:limit], len(newest) > limit


def _error(message: str, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": "invalid_request_error", "code": code}}


def _multipart(content_type: str, raw: bytes) -> dict[str, Any]:
    """The fields of a multipart/form-data body: name -> value, or (filename, bytes)."""
    boundary = content_type.partition("boundary=")[2].strip('"')
    fields: dict[str, Any] = {}
    for part in raw.split(b"--" + boundary.encode()):
        head, sep, content = part.partition(b"\r\n\r\n")
        if not sep:
            continue
        disposition = head.decode(errors="replace")
        name = re.search(r'name="([^"]*)"', disposition)
        if name is None:
            continue
        content = content.removesuffix(b"\r\n")
        filename = re.search(r'filename="([^"]*)"', disposition)
        fields[name.group(1)] = (filename.group(1), content) if filename else content.decode()
    return fields
