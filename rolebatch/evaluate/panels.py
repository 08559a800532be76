"""A panel's records, made from a sweep's output (``rolebatch panel``): one
a question, with the question's own keys, the ok answers of every role (the
control's too: it is one answer among the panel's), shuffled per question
with a seed, and which roles they came from.  A question with one ok answer
has no panel to put together: it is left out (not bought), and an output
without any question answered twice is not a sweep, refused.

Two passes in flat memory: the first chains each line's byte offset onto its
question's list (two arrays of 8 bytes a line, a table of question hashes);
the second walks the questions in the order they first appear and reads
their lines back by offset.  The file is replaced only when its bytes change
(``earlier.records_file``).
"""

from __future__ import annotations

import json
import random
from array import array
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..records.ids import HashIndex, id_hash
from ..records.profiles import label
from ..tasks.layout import PERSONAS_FIELDS
from .earlier import ok_lines, records_file
from .questions import query_key

# The record's keys a panel's record keeps (its task's own are added).
COMMON = ("query", "metadata")


@dataclass
class Made:
    questions: int = 0
    answers: int = 0
    single: int = 0  # questions left out: one ok answer is no panel


def make_records(
    output: Path, target: Path, task_keys: tuple[str, ...], synthesizer: str | None, seed: int
) -> Made:
    questions = HashIndex(values=True)  # question -> its number, in the order first seen
    offsets, chained = array("q"), array("q")  # a line's offset; the next line of its question
    order, last = array("q"), array("q")  # per question: its first line, its last so far
    for offset, line in ok_lines(output):
        if line.get("condition"):
            continue  # asked another way (--layout personas): not a panel member
        place = len(offsets)
        offsets.append(offset)
        chained.append(-1)
        number = questions.add(id_hash(query_key(line)), len(order))
        if number is None:
            order.append(place)
            last.append(place)
        else:
            chained[last[number]] = place
            last[number] = place
    if not len(order):
        raise UsageError(f"{output}: no ok answers to put before a panel")
    made = Made()
    with records_file(target) as out, output.open("rb") as source:
        for first in order:
            lines, place = [], first
            while place >= 0:
                source.seek(offsets[place])
                lines.append(json.loads(source.readline()))
                place = chained[place]
            lines = [x for x in lines if query_key(x) == query_key(lines[0])]
            if len(lines) < 2:
                made.single += 1
                continue
            record = _record(lines, task_keys, synthesizer, seed)
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
            made.questions += 1
            made.answers += len(lines)
        if not made.questions:
            raise UsageError(
                f"{output}: no question has more than one ok answer: a panel combines the"
                " answers of a sweep's roles (rolebatch run --roles ROLES)"
            )
    return made


def _record(
    lines: list[dict[str, Any]], task_keys: tuple[str, ...], synthesizer: str | None, seed: int
) -> dict[str, Any]:
    question = query_key(lines[0])
    shuffled = list(lines)
    random.Random(f"{seed}\x00{question}").shuffle(shuffled)
    record: dict[str, Any] = {"id": question}
    for key in (*COMMON, *task_keys):
        if lines[0].get(key) is not None:
            record[key] = lines[0][key]
    if synthesizer:
        record["role"] = synthesizer
    record["answers"] = [
        {k: v for k, v in line["response"].items() if k not in PERSONAS_FIELDS}
        if isinstance(line["response"], dict)
        else line["response"]
        for line in shuffled
    ]
    record["panel"] = {
        "query_id": question,
        "roles": [line.get("role_id") or label(line.get("role")) for line in shuffled],
        "seed": seed,
    }
    return record
