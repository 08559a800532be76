"""The job file is checked whole before anything is sent; problems name file:line and field."""

from __future__ import annotations

import json

import pytest

from rolebatch.errors import InputError
from rolebatch.records.job import derived_id, open_job
from tests.helpers import poem_records, write_job

GOOD = {"id": "a", "query": "Write a poem.", "role": "You are a poet."}


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("{not json", "invalid JSON"),
        ('["a", "b"]', "expected a JSON object, got an array"),
        ('"just a string"', "expected a JSON object, got a string"),
        ('{"id": "x", "role": "You are a poet."}', "field 'query': missing"),
        ('{"id": "x", "query": "   "}', "field 'query': empty"),
        ('{"id": "x", "query": 42}', "field 'query': expected a string, got a number"),
        ('{"id": "x", "query": "q", "role": ["poet"]}', "field 'role': expected a string"),
        ('{"id": "x", "qurey": "q", "query": "q"}', "field 'qurey': unknown key"),
        ('{"id": true, "query": "q"}', "field 'id': expected a string or integer"),
        ('{"id": "x", "query": "q", "metadata": "m"}', "field 'metadata': expected an object"),
    ],
)
def test_bad_line_is_named_by_file_line_and_field(tmp_path, line, expected):
    job = write_job(tmp_path / "job.jsonl", [GOOD, line])
    with pytest.raises(InputError) as info:
        open_job(job)
    (problem,) = info.value.problems
    assert problem.startswith(f"{job}:2: {expected}")


def test_duplicate_ids_name_both_lines(tmp_path):
    job = write_job(tmp_path / "job.jsonl", [GOOD, {**GOOD, "query": "other"}, GOOD])
    with pytest.raises(InputError) as info:
        open_job(job)
    assert info.value.problems == [
        f"{job}:2: field 'id': duplicate id 'a' (first on line 1)",
        f"{job}:3: field 'id': duplicate id 'a' (first on line 1)",
    ]


def test_every_problem_is_listed_up_to_a_limit(tmp_path):
    job = write_job(tmp_path / "job.jsonl", ["{bad"] * 25)
    with pytest.raises(InputError) as info:
        open_job(job)
    assert len(info.value.problems) == 20
    assert info.value.more == 5
    assert "and 5 more problem(s)" in str(info.value)


def test_invalid_utf8_is_an_input_error(tmp_path):
    job = tmp_path / "job.jsonl"
    job.write_bytes(json.dumps(GOOD).encode() + b'\n{"query": "caf\xe9"}\n')
    with pytest.raises(InputError, match=r"job.jsonl:2: not valid UTF-8"):
        open_job(job)


def test_huge_line_is_refused(tmp_path):
    job = write_job(tmp_path / "job.jsonl", [{"query": "x" * 2_000_000}])
    with pytest.raises(InputError, match=r"job.jsonl:1: line is 2,000,013 bytes"):
        open_job(job)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        open_job(tmp_path / "nope.jsonl")
    with pytest.raises(InputError, match="is a directory"):
        open_job(tmp_path)


def test_blank_lines_bom_and_crlf_are_fine_and_ids_derive_from_lines(tmp_path):
    job = tmp_path / "job.jsonl"
    body = "\ufeff" + json.dumps({"query": "first"}) + "\r\n\r\n   \n"
    body += json.dumps({"query": "second", "role": "You are a poet."}) + "\r\n"
    job.write_text(body, encoding="utf-8")
    opened = open_job(job)
    assert opened.total == 2
    records = list(opened.records())
    assert [(r.line, r.id, r.query, r.role) for r in records] == [
        (1, derived_id(1), "first", None),
        (4, derived_id(4), "second", "You are a poet."),
    ]


def test_integer_ids_are_kept(tmp_path):
    job = write_job(tmp_path / "job.jsonl", [{"id": 7, "query": "q"}, {"id": "7", "query": "q"}])
    assert [r.id for r in open_job(job).records()] == [7, "7"]


def test_cli_input_error_exits_2_and_sends_nothing(rolebatch, fake, tmp_path):
    records = poem_records(3)
    job = write_job(tmp_path / "job.jsonl", [*records, '{"id": "z", "qurey": "typo"}'])
    out = tmp_path / "out.jsonl"
    result = rolebatch(str(job), "-o", str(out))
    assert result.code == 2
    assert f"{job}:4: field 'qurey': unknown key" in result.err
    assert fake.requests == []
    assert not out.exists()


def test_cli_input_error_leaves_existing_output_untouched(rolebatch, fake, tmp_path):
    out = tmp_path / "out.jsonl"
    out.write_text("precious\n")
    job = write_job(tmp_path / "job.jsonl", ["[1]"])
    assert rolebatch(str(job), "-o", str(out)).code == 2
    assert out.read_text() == "precious\n"
    assert fake.requests == []
