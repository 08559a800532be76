"""Role profiles, RoleLLM's way of giving a role (arXiv 2310.00746, RoleGPT):
who the character is and how they speak, in the system instruction, and a
few example dialogues in their voice, as earlier turns of the conversation.

    {"name": "Sherlock Holmes", "description": "...",
     "catchphrases": ["..."], "examples": [{"user": "...", "assistant": "..."}]}

``name`` and ``description`` are required; ``catchphrases`` and ``examples``
may be left out (or empty).  A roles file's entry gives these keys beside its
``id`` and ``metadata``; a job record gives them as the object of its
``role``.  Everything is checked as strictly as the rest of a job: unknown
keys, empty or malformed turns, and (``too_long``) a profile over what the
model's context leaves after the answer.  How a profile becomes messages, per
layout, is ``tasks.layout``'s; this module holds what a profile is.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

KEYS = ("name", "description", "catchphrases", "examples")
TURN_KEYS = ("user", "assistant")
# What is wrong with a profile for a run (None: nothing): the reader of a
# job or roles file asks, and names the file and line.
Vet = Callable[["Profile"], "str | None"]


@dataclass(frozen=True)
class Profile:
    """A role given as a character: hashable, so that it keys a sweep's
    roles, a prompt cache and a set as a plain role's text does."""

    name: str
    description: str
    catchphrases: tuple[str, ...] = ()
    examples: tuple[tuple[str, str], ...] = ()  # (user, assistant) turns

    @property
    def instruction(self) -> str:
        """The system instruction: who the character is, what they say, and
        to answer as them (the wording is this project's own)."""
        text = f"You are {self.name}. {self.description}"
        if self.catchphrases:
            said = "; ".join(f'"{phrase}"' for phrase in self.catchphrases)
            text += f"\nThings {self.name} often says: {said}."
        return text + f"\nAnswer as {self.name} would, in {self.name}'s own voice."

    def turns(self) -> list[dict[str, str]]:
        """The example dialogues as earlier turns: a user message, then the
        character's answer, for each."""
        messages = []
        for user, assistant in self.examples:
            messages.append({"role": "user", "content": user})
            messages.append({"role": "assistant", "content": assistant})
        return messages

    def as_dict(self) -> dict[str, Any]:
        """The profile as a roles file gives it (an output line's ``role``)."""
        data: dict[str, Any] = {"name": self.name, "description": self.description}
        if self.catchphrases:
            data["catchphrases"] = list(self.catchphrases)
        if self.examples:
            data["examples"] = [{"user": u, "assistant": a} for u, a in self.examples]
        return data

    @functools.cached_property
    def size(self) -> int:
        """Characters the profile adds to a prompt: its instruction and turns
        (a sweep's profile is one object for all its records: measured once)."""
        return len(json.dumps([{"content": self.instruction}, *self.turns()], ensure_ascii=False))

    def too_long(self, room: int | None, chars_per_token: float) -> str | None:
        """What is wrong when the profile alone (at ``chars_per_token``) is
        over the ``room`` a model's context leaves after the answer."""
        tokens = round(self.size / chars_per_token)
        if room is None or tokens <= room:
            return None
        return (
            f"the profile is about {tokens:,} tokens (at {chars_per_token:g} characters a"
            f" token), over the {room:,} the model's context leaves after the answer:"
            " shorten its description or examples"
        )


def as_json(role: str | Profile | None) -> Any:
    """A role as an output line and a sidecar write it: a profile as its object."""
    return role.as_dict() if isinstance(role, Profile) else role


def label(role: Any) -> str | None:
    """What a role is called in a report: a plain role's text, a profile's
    name (from a ``Profile`` or its object on a line)."""
    if isinstance(role, Profile):
        return role.name
    if isinstance(role, dict) and isinstance(role.get("name"), str):
        return role["name"]
    return role if isinstance(role, str) else None


def role_text(role: Any) -> str | None:
    """A role as words, for a judge told how an answer was asked: a plain
    role's text, a profile's instruction (from a ``Profile`` or its object)."""
    role = from_json(role)
    if isinstance(role, Profile):
        return role.instruction
    return role if isinstance(role, str) else None


def parse_profile(data: dict[str, Any], allowed: tuple[str, ...] = ()) -> tuple[str, str] | Profile:
    """``data``'s profile, or (the field to name, what is wrong with it);
    ``allowed``: the keys beside the profile's (a roles file's id, metadata)."""
    for key in data:
        if key not in KEYS and key not in allowed:
            keys = ", ".join((*allowed, *KEYS))
            return key, f"unknown key in a profile (allowed: {keys})"
    texts = {}
    for key in ("name", "description"):
        value = data.get(key)
        if key not in data:
            return key, "required in a profile"
        if not isinstance(value, str) or not value.strip():
            return key, "expected a non-empty string"
        texts[key] = value.strip()
    if "\n" in texts["name"]:
        return "name", "expected one line"
    phrases = data.get("catchphrases")
    phrases = [] if phrases is None else phrases
    if not isinstance(phrases, list):
        return "catchphrases", "expected an array of strings"
    for index, phrase in enumerate(phrases):
        if not isinstance(phrase, str) or not phrase.strip():
            return f"catchphrases[{index}]", "expected a non-empty string"
    examples = data.get("examples")
    examples = [] if examples is None else examples
    if not isinstance(examples, list):
        return "examples", 'expected an array of {"user": ..., "assistant": ...}'
    turns = []
    for index, example in enumerate(examples):
        where = f"examples[{index}]"
        if not isinstance(example, dict):
            return where, 'expected an object {"user": ..., "assistant": ...}'
        unknown = next((key for key in example if key not in TURN_KEYS), None)
        if unknown is not None:
            return f"{where}.{unknown}", "unknown key in a turn (allowed: user, assistant)"
        for key in TURN_KEYS:
            value = example.get(key)
            if key not in example:
                return f"{where}.{key}", "required in a turn"
            if not isinstance(value, str) or not value.strip():
                return f"{where}.{key}", "expected a non-empty string"
        turns.append((example["user"].strip(), example["assistant"].strip()))
    return Profile(
        texts["name"],
        texts["description"],
        tuple(phrase.strip() for phrase in phrases),
        tuple(turns),
    )


def from_json(value: Any) -> Any:
    """A role as a sidecar or a line keeps it, back to what a run compares:
    a profile's object to its ``Profile`` (a plain role's text as it is)."""
    if isinstance(value, dict):
        parsed = parse_profile(value)
        return parsed if isinstance(parsed, Profile) else value
    return value
