"""Keeping API keys out of everything rolebatch writes or prints."""

from __future__ import annotations

import re

# Keys as providers print them back, even partly masked ("sk-abc***********wxyz").
_KEY_LIKE = re.compile(r"\b(sk|rk|pk|or)-[A-Za-z0-9_\-*.]{4,}")


class Redactor:
    """Replaces the known secrets and anything shaped like an API key."""

    def __init__(self, *secrets: str | None):
        self._secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "[redacted]")
        return _KEY_LIKE.sub("[redacted]", text)
