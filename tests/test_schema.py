from __future__ import annotations

import json
import re

import pytest
from pydantic import ValidationError

from rolebatch.errors import UsageError
from rolebatch.tasks.schema import Response, load_schema
from tests.helpers import poem_records, write_job


def write(tmp_path, schema) -> str:
    path = tmp_path / "schema.json"
    path.write_text(json.dumps(schema))
    return str(path)


def test_default_is_the_seed_response():
    assert load_schema(None) is Response
    assert list(Response.model_fields) == ["poem"]


def test_json_schema_builds_a_validating_model(tmp_path):
    schema = {
        "title": "Critique",
        "type": "object",
        "properties": {
            "score": {"type": "integer", "minimum": 0, "maximum": 10},
            "verdict": {"enum": ["keep", "cut"]},
            "author": {"$ref": "#/$defs/Author"},
            "notes": {"type": ["string", "null"]},
            "lines": {"type": "array", "items": {"type": "string"}, "maxItems": 2},
        },
        "required": ["score", "verdict", "author"],
        "$defs": {
            "Author": {
                "type": "object",
                "properties": {"name": {"type": "string"}},
                "required": ["name"],
            }
        },
    }
    model = load_schema(write(tmp_path, schema))
    assert model.__name__ == "Critique"
    ok = model.model_validate({"score": 3, "verdict": "cut", "author": {"name": "Ann"}})
    assert ok.model_dump() == {
        "score": 3,
        "verdict": "cut",
        "author": {"name": "Ann"},
        "notes": None,
        "lines": None,
    }
    for bad in (
        {"score": 11, "verdict": "cut", "author": {"name": "A"}},
        {"score": 1, "verdict": "maybe", "author": {"name": "A"}},
        {"score": 1, "verdict": "cut", "author": {}},
        {"score": 1, "verdict": "cut", "author": {"name": "A"}, "lines": ["a", "b", "c"]},
        {"verdict": "cut", "author": {"name": "A"}},
    ):
        with pytest.raises(ValidationError):
            model.model_validate(bad)


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        ({"type": "array"}, "top level must be an object"),
        ({"type": "object", "properties": {}}, "at least one property"),
        ({"type": "object", "properties": {"a": {"$ref": "#/$defs/X"}}}, "unresolved $ref"),
        ({"type": "object", "properties": {"a": {"type": "matrix"}}}, "unsupported type"),
    ],
)
def test_bad_json_schema_is_a_usage_error(tmp_path, schema, message):
    with pytest.raises(UsageError, match=re.escape(message)):
        load_schema(write(tmp_path, schema))


def test_unreadable_schema_files(tmp_path):
    with pytest.raises(UsageError, match="no such file"):
        load_schema(str(tmp_path / "missing.json"))
    (tmp_path / "broken.json").write_text("{nope")
    with pytest.raises(UsageError, match="not a readable JSON file"):
        load_schema(str(tmp_path / "broken.json"))


def test_module_class_errors(tmp_path, monkeypatch):
    (tmp_path / "shapes.py").write_text("NOT_A_MODEL = 3\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(UsageError, match="cannot import 'nowhere_xyz'"):
        load_schema("nowhere_xyz:Thing")
    with pytest.raises(UsageError, match="has no 'Missing'"):
        load_schema("shapes:Missing")
    with pytest.raises(UsageError, match="not a pydantic BaseModel"):
        load_schema("shapes:NOT_A_MODEL")
    with pytest.raises(UsageError, match="expected module:Class"):
        load_schema("just-a-word")


ASYNC_MODEL = """
from instructor.v2.validation.async_validators import async_field_validator
from pydantic import BaseModel


class Checked(BaseModel):
    poem: str

    @async_field_validator("poem")
    async def looked_up(cls, value):
        return value
"""


def test_model_with_async_validators_is_refused_before_anything_is_sent(
    rolebatch, fake, tmp_path, monkeypatch
):
    # instructor's patched create refuses such a model on every call; we say so
    # once, up front, instead of failing every record.
    (tmp_path / "checked.py").write_text(ASYNC_MODEL)
    monkeypatch.syspath_prepend(str(tmp_path))
    job = write_job(tmp_path / "j.jsonl", poem_records(2))
    for _ in range(2):  # refused every time, not only the first
        result = rolebatch(str(job), "--schema", "checked:Checked", "-o", "o.jsonl")
        assert result.code == 2
        assert "--schema checked:Checked" in result.err
        assert "async validators are not supported" in result.err
    assert fake.requests == []
    assert not (tmp_path / "o.jsonl").exists()
