"""A judge's records, made from the ok lines of the output it judges
(``rolebatch judge``): the judge is an ordinary run of the judge task over
these records, so resume, cost, limits, batch APIs and shards are a run's.

    pointwise   one record an answer: {"id": <the answer's id>, "query": ...,
                "answers": [<its response>], "judged": {what it answers}}
    pairwise    two records an answer that has a baseline answer to the same
                question (the role --against, and the same sample): ``~ab``
                with the answer first, ``~ba`` with the baseline first
    outputs     pairwise, the baseline answer from another output of the same
                job (--against-output: the model it replaces): the answer to
                the same record, met by id (a sweep's ids carry role and sample)

Every record keeps the judged line's ``metadata``, so a report groups the
judge's lines by it as it groups the answers.

The records are written one line at a time; pairing finds each baseline
answer through a flat table of key hashes and its byte offset, so a judged
output of a million lines is read twice and never held.  The file is
replaced only when its bytes change (``earlier.records_file``), so a judged
output resumes against the same records.
"""

from __future__ import annotations

import json
from array import array
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..records.ids import HashIndex, id_hash
from ..tasks.layout import PERSONAS_FIELDS
from .earlier import ok_lines, records_file
from .questions import query_key


@dataclass
class Made:
    answers: int = 0  # ok lines read
    records: int = 0  # judge records written
    without_baseline: int = 0  # pairwise: answers whose question the baseline did not answer
    models: set[str] | None = None  # the models that wrote the answers


def pair_key(line: dict[str, Any]) -> str:
    """What pairs an answer with the baseline's: its question and sample."""
    key = str(line.get("id"))
    role = line.get("role_id")
    _, sep, sample = key.rpartition("#")
    sample_part = f"#{sample}" if sep and sample.isdigit() else ""
    return query_key(line) + sample_part if role else key


def _answer(line: dict[str, Any]) -> Any:
    """What the judge reads of an answer: the task's fields (a personas
    answer's discussion is how it got there, not the answer)."""
    response = line["response"]
    if isinstance(response, dict):
        return {k: v for k, v in response.items() if k not in PERSONAS_FIELDS}
    return response


def _judged(line: dict[str, Any]) -> dict[str, Any]:
    judged = {
        "id": line.get("id"),
        "query_id": query_key(line),
        "role_id": line.get("role_id"),
        "role": line.get("role"),
        "role_metadata": line.get("role_metadata"),
        "model": line.get("model"),
    }
    # How the answer was asked for, when not by one role: the judge's line
    # says it too, so the report groups it as the answers' own report does.
    for key in ("condition", "panel_roles"):
        if line.get(key):
            judged[key] = line[key]
    return judged


def make_records(
    output: Path, target: Path, against: str | None = None, against_output: Path | None = None
) -> Made:
    """Write the judge's records for ``output`` to ``target``: each answer
    alone, against the role ``against``'s, or against ``against_output``'s
    answer to the same record (``against`` then names it)."""
    made = Made(models=set())
    with records_file(target) as out:
        if against_output is not None:
            assert against is not None
            _outputs(output, against_output, out, against, made)
        elif against is None:
            for _, line in ok_lines(output):
                made.answers += 1
                made.models.add(str(line.get("model")))
                record = {
                    "id": line.get("id"),
                    "query": line.get("query"),
                    "metadata": _metadata(line),
                    "answers": [_answer(line)],
                    "judged": _judged(line),
                }
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
                made.records += 1
        else:
            _pairwise(output, out, against, made)
    return made


def _pairwise(output: Path, out: Any, against: str, made: Made) -> None:
    offsets = array("q")
    baselines = HashIndex(values=True)
    for offset, line in ok_lines(output):
        if line.get("role_id") == against:
            baselines.put(id_hash(pair_key(line)), len(offsets))
            offsets.append(offset)
    if not len(offsets):
        raise UsageError(
            f"--against {against!r}: {output} has no ok answers of that role (a sweep's"
            " role id, e.g. the control)"
        )
    with output.open("rb") as source:
        for _, line in ok_lines(output):
            if line.get("role_id") == against:
                continue
            made.answers += 1
            made.models.add(str(line.get("model")))
            key = pair_key(line)
            found = baselines.get(id_hash(key))
            base = None
            if found is not None:
                source.seek(offsets[found])
                base = json.loads(source.readline())
                if pair_key(base) != key:
                    base = None  # another key with the same hash: confirmed, not taken
            if base is None:
                made.without_baseline += 1
                continue
            _both_orders(line, base, against, out, made)


def _both_orders(
    line: dict[str, Any], base: dict[str, Any], against: str, out: Any, made: Made, **more: Any
) -> None:
    """The two records of a pair: the answer first, then the baseline first."""
    judged = _judged(line)
    for order, answers, roles in (
        ("ab", [_answer(line), _answer(base)], [line.get("role"), base.get("role")]),
        ("ba", [_answer(base), _answer(line)], [base.get("role"), line.get("role")]),
    ):
        record = {
            "id": f"{line.get('id')}~{order}",
            "query": line.get("query"),
            "metadata": _metadata(line),
            "answers": answers,
            "judged": {
                **judged,
                "pair": line.get("id"),
                "order": order,
                "against": against,
                "roles": roles,
                **more,
            },
        }
        out.write(json.dumps(record, ensure_ascii=False) + "\n")
        made.records += 1


def _outputs(output: Path, baseline: Path, out: Any, against: str, made: Made) -> None:
    """Each ok answer of ``output`` against ``baseline``'s ok answer to the
    same record (by id), in flat memory: the baseline's lines are found
    through a table of id hashes and byte offsets."""
    offsets = array("q")
    index = HashIndex(values=True)
    for offset, line in ok_lines(baseline):
        index.put(id_hash(str(line.get("id"))), len(offsets))
        offsets.append(offset)
    if not len(offsets):
        raise UsageError(f"--against-output {baseline}: it has no ok answers to compare with")
    with baseline.open("rb") as source:
        for _, line in ok_lines(output):
            made.answers += 1
            made.models.add(str(line.get("model")))
            key = str(line.get("id"))
            found = index.get(id_hash(key))
            base = None
            if found is not None:
                source.seek(offsets[found])
                base = json.loads(source.readline())
                if str(base.get("id")) != key:
                    base = None  # another id with the same hash
            if base is None:
                made.without_baseline += 1
                continue
            if base.get("query") != line.get("query"):
                raise UsageError(
                    f"--against-output {baseline}: record {key!r} asks another question there"
                    f" than in {output}: the two outputs are not of the same job"
                )
            _both_orders(line, base, against, out, made, against_model=base.get("model"))


def _metadata(line: dict[str, Any]) -> Any:
    metadata = line.get("metadata")
    return metadata if isinstance(metadata, dict) else None
