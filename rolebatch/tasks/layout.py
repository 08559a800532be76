"""Where a record's role goes in the prompt: the layouts every task shares.

    system    one system message "{role} {text}", as on instructor's Role
              Prompting page
    split     the role as the system message, the text as the user message
    personas  several roles in one call ("Solo Performance Prompting", arXiv
              2307.05300): the model names the personas the task needs (the
              record's role leads them), lets them work on it in turns and
              critique each other, then answers; the answer is the task's own
              object with ``personas`` and ``discussion`` before its fields

A record without a role (or the control of a sweep) sends its text alone.
A provider whose API needs a user message (Anthropic's) gets the system
message of ``system`` as that user message: see ``Provider.system_as_user``.

A role given as a profile (``records.profiles``) is its instruction as the
system message, then each example dialogue as a user message and the
character's answer, then the text as the user message, in ``system`` and
``split`` alike (the text must come after the example turns, so it cannot
join the system message; a profile without examples is sent the same way,
so that the examples are all that tells the two apart).  ``personas`` takes
the profile's instruction as its lead persona; it has no place for example
turns (its reply is the personas' own discussion), and a profile with
examples is refused there before anything is sent (``refuses``).
"""

from __future__ import annotations

import functools
from typing import Literal

from pydantic import BaseModel, Field, create_model

from ..records.profiles import Profile

Layout = Literal["system", "split", "personas"]
LAYOUTS: tuple[Layout, ...] = ("system", "split", "personas")
# What the personas layout adds before a task's own fields.
PERSONAS_FIELDS = ("personas", "discussion")

# The structure is the paper's (participants, turns, critique, a final
# answer); the words and the two demonstrations are this project's own.
PERSONAS = """\
Work on the task below as a small team of personas, in one reply.
First name the personas whose knowledge the task needs (two to four; a lead
persona, if one is given, is one of them). Then let them work on the task in
turns: each adds what it knows, the others question and correct it, until
they agree. Then give the final answer to the task, and nothing else in it.

Example 1
Task: Which weighs more, a kilogram of feathers or a kilogram of iron?
Personas: Physicist; Teacher
Physicist: A kilogram is a mass; both are one kilogram.
Teacher: Careful: the feathers take far more room, which is what fools people.
Physicist: Room, not weight. In air the feathers are even buoyed a little more.
Teacher: Then for the question as asked: the same.
Final answer: They weigh the same.

Example 2
Lead persona: You are a gardener.
Task: Write a two-line poem about the first frost.
Personas: Gardener (lead); Poet; Editor
Gardener: Frost blackens the dahlias overnight; the soil goes hard at the edges.
Poet: Keep the dahlias, and end on the quiet of the garden.
Editor: Two lines only; drop "overnight", the dawn says it.
Final answer: The dahlias bow in black at dawn; / the frost has walked the garden, gone.
"""


def place(role: str | Profile | None, text: str, layout: Layout) -> list[dict[str, str]]:
    """The chat messages that put ``role`` and ``text`` together as ``layout`` says."""
    if layout == "personas":
        lead = ""
        if role:
            lead = f"Lead persona: {role.instruction if isinstance(role, Profile) else role}\n"
        return [
            {"role": "system", "content": PERSONAS},
            {"role": "user", "content": f"{lead}Task: {text}"},
        ]
    if isinstance(role, Profile):
        return [
            {"role": "system", "content": role.instruction},
            *role.turns(),
            {"role": "user", "content": text},
        ]
    if layout == "split":
        messages = [{"role": "user", "content": text}]
        if role:
            messages.insert(0, {"role": "system", "content": role})
        return messages
    return [{"role": "system", "content": f"{role} {text}" if role else text}]


def refuses(role: str | Profile | None, layout: Layout) -> str | None:
    """Why ``layout`` cannot ask under ``role`` (None: it can)."""
    if layout == "personas" and isinstance(role, Profile) and role.examples:
        return (
            f"profile {role.name!r} has example dialogues, and --layout personas has no"
            " place for them (its reply is the personas' discussion): use --layout system"
            " or split, or a profile without examples"
        )
    return None


@functools.cache
def with_personas(model: type[BaseModel]) -> type[BaseModel]:
    """``model``'s fields after ``personas`` and ``discussion``: the answer
    of the personas layout, whose own fields scorers and judges read as for
    any run.  (The model's validators do not carry over; its fields, with
    their constraints, do.)"""
    fields = {
        "personas": (list[str], Field(description="the personas working on the task")),
        "discussion": (str, Field(description="their turns, briefly")),
        **{name: (info.annotation, info) for name, info in model.model_fields.items()},
    }
    return create_model(
        f"{model.__name__}WithPersonas",
        __config__=model.model_config,
        __doc__=model.__doc__,
        **fields,
    )
