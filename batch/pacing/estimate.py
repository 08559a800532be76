"""How many tokens a request will cost, guessed before it is sent."""

from __future__ import annotations

import json
from typing import Any

CHARS_PER_TOKEN = 4.0
DEFAULT_COMPLETION_ESTIMATE = 256


class TokenEstimate:
    """Tokens to reserve for a request before it is sent: its size at about 4
    characters a token (no tokenizer to download), scaled by how real usage has
    compared with such guesses so far, plus the average completion seen."""

    def __init__(self, max_tokens: int | None = None):
        self._max_tokens = max_tokens
        self._completions = 0
        self._completion_tokens = 0
        self._prompt_guessed = 0.0
        self._prompt_counted = 0

    @staticmethod
    def prompt_size(request: dict[str, Any]) -> float:
        sent = json.dumps(request.get("messages"), ensure_ascii=False, default=str)
        schema = request.get("tools") or request.get("response_format")
        size = len(sent) + (len(json.dumps(schema, default=str)) if schema else 0)
        return size / CHARS_PER_TOKEN

    def tokens(self, prompt_size: float) -> float:
        if self._prompt_guessed > 0 and self._prompt_counted > 0:
            scale = min(20.0, max(0.05, self._prompt_counted / self._prompt_guessed))
        else:
            scale = 1.0
        if self._completions:
            expected = self._completion_tokens / self._completions
        else:
            expected = self._max_tokens or DEFAULT_COMPLETION_ESTIMATE
        return prompt_size * scale + expected

    def observe(self, usage: Any, prompt_size: float) -> None:
        """Learn from a response's ``usage``."""
        completion = getattr(usage, "completion_tokens", None)
        if completion is not None:
            self._completions += 1
            self._completion_tokens += completion
        prompt = getattr(usage, "prompt_tokens", None)
        if prompt:
            self._prompt_guessed += prompt_size
            self._prompt_counted += prompt
