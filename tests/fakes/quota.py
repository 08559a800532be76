"""Per-minute limits as providers enforce them: counted in one-second windows,
with OpenAI's, Anthropic's or OpenRouter's rate-limit headers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any


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
