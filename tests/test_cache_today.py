"""A hit is an answer today (#40): a stored answer is validated against
today's response model before it is served, and the key covers what a JSON
schema cannot show (a ``--schema module:Class``'s import path and source)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.helpers import SECRET_KEY, poem_records, read_lines, spawn, write_job

SCHEMA = """
import os
from pydantic import BaseModel, field_validator


class Poem(BaseModel):
    poem: str
{validator}
"""
REJECTS_OLD = """
    @field_validator("poem")
    @classmethod
    def _not_old(cls, value: str) -> str:
        if {condition} and "old" in value:
            raise ValueError("no old verses")
        return value
"""


@pytest.fixture
def schema_module(tmp_path, monkeypatch):
    """A user's response model in a module of its own, importable here and
    in a subprocess; ``write(validator)`` rewrites it in place."""
    folder = tmp_path / "user"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))

    def write(validator: str = "") -> None:
        (folder / "poems_schema.py").write_text(SCHEMA.format(validator=validator))

    write()
    yield folder, write
    sys.modules.pop("poems_schema", None)


def test_a_hit_today_s_model_rejects_is_bought_again(rolebatch, fake, schema_module, tmp_path,
                                                     monkeypatch):  # fmt: skip
    _, write = schema_module
    # The validator reads the environment when it runs: the source, and so
    # the key, stay the same while today's model rejects yesterday's answers.
    write(REJECTS_OLD.format(condition='os.environ.get("NO_OLD")'))
    job = write_job(tmp_path / "j.jsonl", poem_records(6))
    args = ("--schema", "poems_schema:Poem", "--cache", "cache")
    fake.fault(answer={"poem": "old verses"})
    assert rolebatch(str(job), "-o", "a.jsonl", *args).code == 0
    fake.reset()
    monkeypatch.setenv("NO_OLD", "1")
    result = rolebatch(str(job), "-o", "b.jsonl", *args, "--summary-json", "s.json")
    assert result.code == 0, result.err
    assert len(fake.requests) == 6  # every stale answer bought again
    assert all("old" not in line["response"]["poem"] for line in read_lines(Path("b.jsonl")))
    assert "6 stored answers failed today's response model" in result.err
    cache = json.loads(Path("s.json").read_text())["cache"]
    assert (cache["answers"], cache["rejected"]) == (0, 6)
    # The new answers, valid today, are stored: a third output buys nothing.
    fake.reset()
    assert rolebatch(str(job), "-o", "c.jsonl", *args).code == 0
    assert fake.requests == []


def test_a_schema_module_edited_in_place_is_a_new_key(fake, schema_module, tmp_path):
    """The issue's case: a validator added to the module, the JSON schema
    the same.  Each run is a process of its own, as a user's are."""
    folder, write = schema_module
    job = write_job(tmp_path / "j.jsonl", poem_records(6))

    def run(out: str) -> str:
        proc = spawn(
            "run", str(job), "-o", out, "--model", "openai/gpt-4o", "--base-url", fake.base_url,
            "--schema", "poems_schema:Poem", "--cache", "cache", "--progress", "none",
            env={"OPENAI_API_KEY": SECRET_KEY, "PYTHONPATH": f"{folder}:{Path.cwd()}"
                 f":{Path(__file__).resolve().parents[1]}"},
        )  # fmt: skip
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        return err

    fake.fault(answer={"poem": "old verses"})
    run("a.jsonl")
    assert len(fake.requests) == 6
    fake.reset()
    write(REJECTS_OLD.format(condition="True"))
    run("b.jsonl")
    assert len(fake.requests) == 6  # a new key: nothing served from before the edit
    assert all("old" not in line["response"]["poem"] for line in read_lines(Path("b.jsonl")))


def test_rolebatch_s_own_models_keep_their_keys():
    """Keys of the built-in tasks and of JSON-schema files are as before:
    upgrading rolebatch does not throw away a cache."""
    from rolebatch.tasks.schema import model_from_schema
    from rolebatch.via.cached import model_identity

    built = model_from_schema({"type": "object", "properties": {"poem": {"type": "string"}}})
    assert model_identity(built) == ""
    from rolebatch.tasks.schema import Response

    assert model_identity(Response) == ""
