"""How many tokens a request will cost, guessed before it is sent."""

from __future__ import annotations

import json
from typing import Any

from ..records.lines import token_counts

CHARS_PER_TOKEN = 4.0
DEFAULT_COMPLETION_ESTIMATE = 256


# How fast the estimate follows what answers really cost: recent answers
# weigh most, so a job whose records grow or shrink is tracked within a few.
SMOOTHING = 0.2


class TokenEstimate:
    """Tokens to reserve for a request before it is sent: its size at about 4
    characters a token (no tokenizer to download), scaled by how real usage has
    compared with such guesses lately, plus the completion length seen lately."""

    def __init__(self, max_tokens: int | None = None):
        self._max_tokens = max_tokens
        self._completion: float | None = None
        self._scale: float | None = None

    @staticmethod
    def prompt_size(request: dict[str, Any]) -> float:
        sent = json.dumps(request.get("messages"), ensure_ascii=False, default=str)
        system = request.get("system")  # Anthropic's Messages: the system prompt apart
        if system:
            sent += json.dumps(system, ensure_ascii=False, default=str)
        schema = request.get("tools") or request.get("response_format")
        size = len(sent) + (len(json.dumps(schema, default=str)) if schema else 0)
        return size / CHARS_PER_TOKEN

    def split(self, prompt_size: float) -> tuple[float, float]:
        """(prompt, completion) tokens to reserve for a request of ``prompt_size``."""
        scale = 1.0 if self._scale is None else self._scale
        if self._completion is not None:
            expected = self._completion
        else:
            expected = self._max_tokens or DEFAULT_COMPLETION_ESTIMATE
        return prompt_size * scale, expected

    def tokens(self, prompt_size: float) -> float:
        prompt, completion = self.split(prompt_size)
        return prompt + completion

    def observe(self, usage: Any, prompt_size: float) -> None:
        """Learn from a response's ``usage``."""
        counts = token_counts(usage)
        if counts is None:
            return
        prompt, completion = counts[:2]
        self._completion = _follow(self._completion, completion)
        if prompt and prompt_size > 0:
            ratio = min(20.0, max(0.05, prompt / prompt_size))
            self._scale = _follow(self._scale, ratio)


def _follow(average: float | None, value: float) -> float:
    return value if average is None else average + SMOOTHING * (value - average)
