"""RunConfig in four typed parts, and built from the command line's names."""

from dataclasses import fields
from pathlib import Path

import pytest

from rolebatch import Asked, Batching, Bought, Judging, Paced, RunConfig, Written
from rolebatch.commands.options import _PARAMS
from rolebatch.config import PARTS, WITHIN
from rolebatch.records.shards import Shard


def test_options_go_to_their_parts():
    config = RunConfig.of(
        "j.jsonl",
        "o.jsonl",
        model="openai/gpt-4o",
        temperature=0.2,
        rubric="rubric.md",
        via="batch",
        poll_interval=5.0,
        max_cost=1.5,
        rpm=500,
        quota_key="team",
        fresh=True,
        shard=(1, 4),
    )
    assert config == RunConfig(
        job=Path("j.jsonl"),
        output=Path("o.jsonl"),
        asked=Asked(
            model="openai/gpt-4o", temperature=0.2, judge=Judging(rubric=Path("rubric.md"))
        ),
        bought=Bought(via="batch", batch=Batching(poll_interval=5.0), max_cost=1.5),
        paced=Paced(rpm=500, quota_key="team"),
        written=Written(fresh=True, shard=Shard(1, 4)),
    )
    assert config.output_path() == Path("o.jsonl")
    assert RunConfig.of("j.jsonl", shard=(1, 4)).output_path() == Path("out/j.shard-1-of-4.jsonl")


def test_a_name_no_part_has_is_refused_like_a_wrong_keyword():
    with pytest.raises(TypeError, match="'modle'"):
        RunConfig.of("j.jsonl", modle="openai/gpt-4o")
    with pytest.raises(TypeError, match="'judge'"):
        RunConfig.of("j.jsonl", judge=Judging())  # a part, not an option


def test_every_option_has_one_part():
    seen: dict[str, str] = {}
    kinds = [*PARTS.items(), *((inner, kind) for inner, (_, kind) in WITHIN.items())]
    for owner, kind in kinds:
        for field in fields(kind):
            if field.name in WITHIN:
                continue
            assert field.name not in seen, f"{field.name} is in {seen.get(field.name)} and {owner}"
            seen[field.name] = owner
            RunConfig.of("j.jsonl", **{field.name: getattr(kind(), field.name)})
    # Every option the commands share (less those run_config reads itself) has one.
    shared = {param.name for param in _PARAMS} - {
        "job",
        "output",
        "config",
        "shard_count",
        "no_cache",
    }
    assert shared <= set(seen), shared - set(seen)


def test_a_judge_asks_something_else_and_nothing_more_changes():
    run = RunConfig.of("j.jsonl", model="openai/gpt-4o", rpm=100)
    judged = run.asking(task="judge", judge=Judging(against="plain"))
    assert judged.asked.task == "judge" and judged.asked.judge.against == "plain"
    assert judged.asked.model == "openai/gpt-4o"
    assert (judged.bought, judged.paced, judged.written) == (run.bought, run.paced, run.written)
