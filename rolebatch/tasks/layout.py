"""Where a record's role goes in the prompt: the layouts every task shares.

    system   one system message "{role} {text}", as on instructor's Role
             Prompting page
    split    the role as the system message, the text as the user message

A record without a role (or the control of a sweep) sends its text alone.
A provider whose API needs a user message (Anthropic's) gets the system
message of ``system`` as that user message: see ``Provider.system_as_user``.
"""

from __future__ import annotations

from typing import Literal

Layout = Literal["system", "split"]
LAYOUTS: tuple[Layout, ...] = ("system", "split")


def place(role: str | None, text: str, layout: Layout) -> list[dict[str, str]]:
    """The chat messages that put ``role`` and ``text`` together as ``layout`` says."""
    if layout == "split":
        messages = [{"role": "user", "content": text}]
        if role:
            messages.insert(0, {"role": "system", "content": role})
        return messages
    return [{"role": "system", "content": f"{role} {text}" if role else text}]
