"""Role sweeps (--roles, --samples): every record under every role, the roles
file checked as strictly as a job."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from tests.helpers import ROLES, queries, read_lines, write_job


def test_a_sweep_runs_every_query_under_every_role_in_order(rolebatch, fake, tmp_path):
    job = write_job(tmp_path / "q.jsonl", queries(3))
    roles = write_job(tmp_path / "roles.jsonl", ROLES)
    result = rolebatch(str(job), "--roles", str(roles), "-o", "s.jsonl")
    assert result.code == 0, result.err
    lines = read_lines(Path("s.jsonl"))
    assert [line["id"] for line in lines] == [
        f"q{i}@{r['id']}" for i in range(3) for r in ROLES
    ]  # query-major, role-minor
    assert [line["role_id"] for line in lines] == [r["id"] for r in ROLES] * 3
    assert Counter(line["role"] for line in lines) == {r["role"]: 3 for r in ROLES}
    sent = sorted(r.body["messages"][0]["content"] for r in fake.requests)
    assert sent == sorted(
        f"{r['role']} Write a poem about thing {i}." for i in range(3) for r in ROLES
    )


def test_adding_a_role_runs_only_the_new_pairs(rolebatch, fake, tmp_path):
    job = write_job(tmp_path / "q.jsonl", queries(4))
    roles = write_job(tmp_path / "roles.jsonl", ROLES[:2])
    assert rolebatch(str(job), "--roles", str(roles), "-o", "s.jsonl").code == 0
    fake.reset()
    write_job(roles, ROLES)
    result = rolebatch(str(job), "--roles", str(roles), "-o", "s.jsonl")
    assert result.code == 0, result.err
    assert len(fake.requests) == 4  # the new role's four pairs, nothing else
    assert all("helpful assistant" in r.text for r in fake.requests)
    lines = read_lines(Path("s.jsonl"))
    assert [line["id"] for line in lines] == [f"q{i}@{r['id']}" for i in range(4) for r in ROLES]


def test_samples_ask_each_pair_k_times(rolebatch, fake, tmp_path):
    job = write_job(tmp_path / "q.jsonl", queries(2))
    roles = write_job(tmp_path / "roles.jsonl", ROLES[:2])
    result = rolebatch(
        str(job), "--roles", str(roles), "--samples", "3", "--temperature", "0.9", "-o", "s.jsonl"
    )
    assert result.code == 0, result.err
    ids = [line["id"] for line in read_lines(Path("s.jsonl"))]
    assert ids[:4] == ["q0@poet#0", "q0@poet#1", "q0@poet#2", "q0@kid#0"]
    assert len(ids) == 12 == len(fake.requests)
    assert {r.body["temperature"] for r in fake.requests} == {0.9}


def test_samples_without_roles_keep_the_records_own_role(rolebatch, fake, tmp_path):
    job = write_job(tmp_path / "j.jsonl", [{"id": "a", "query": "Q?", "role": "You are R."}])
    assert rolebatch(str(job), "--samples", "2", "-o", "s.jsonl").code == 0
    lines = read_lines(Path("s.jsonl"))
    assert [line["id"] for line in lines] == ["a#0", "a#1"]
    assert {line["role"] for line in lines} == {"You are R."}


def test_a_text_roles_file_takes_ids_from_line_numbers(rolebatch, fake, tmp_path):
    job = write_job(tmp_path / "q.jsonl", queries(1))
    roles = tmp_path / "roles.txt"
    roles.write_text("You are a poet.\n\nYou are a judge.\n")
    assert rolebatch(str(job), "--roles", str(roles), "-o", "s.jsonl").code == 0
    assert [line["id"] for line in read_lines(Path("s.jsonl"))] == ["q0@1", "q0@3"]


def test_a_record_with_its_own_role_in_a_sweep_is_an_input_error(rolebatch, tmp_path):
    job = write_job(tmp_path / "q.jsonl", [*queries(1), {"id": "x", "query": "Q", "role": "R"}])
    roles = write_job(tmp_path / "roles.jsonl", ROLES)
    result = rolebatch(str(job), "--roles", str(roles))
    assert result.code == 2
    assert f"{job}:2: field 'role'" in result.err
    assert not Path("out").exists()


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (['{"id": "a", "role": "R"}', '{"id": "a", "role": "S"}'], ":2: field 'id': duplicate"),
        (['{"id": "a"}'], ":1: field 'role'"),
        (['{"id": "a", "role": "R", "tone": 1}'], ":1: field 'tone': unknown key"),
        (['{"id": "a@b", "role": "R"}'], ":1: field 'id'"),
        (["not json"], ":1: invalid JSON"),
        ([], "no roles in it"),
    ],
)
def test_the_roles_file_is_checked_strictly(rolebatch, tmp_path, lines, message):
    job = write_job(tmp_path / "q.jsonl", queries(1))
    roles = tmp_path / "roles.jsonl"
    roles.write_text("".join(line + "\n" for line in lines))
    result = rolebatch(str(job), "--roles", str(roles))
    assert result.code == 2
    assert f"{roles}{message}" in result.err or message in result.err


def test_the_same_role_twice_is_refused_in_either_kind_of_file(tmp_path, capsys):
    """A role given twice would be asked twice as two roles: refused with
    the file, the line and the field, whether the file is text or JSONL."""
    from rolebatch.errors import InputError
    from rolebatch.records.roles import load_roles

    text = tmp_path / "roles.txt"
    text.write_text("You are a poet.\nYou are a judge.\nYou are a poet.\n")
    jsonl = tmp_path / "roles.jsonl"
    jsonl.write_text(
        '{"id": "a", "role": "You are a poet."}\n{"id": "b", "role": "You are a poet."}\n'
    )
    for path, line in ((text, 3), (jsonl, 2)):
        with pytest.raises(InputError) as raised:
            load_roles(path)
        (problem,) = raised.value.problems
        assert problem.startswith(f"{path}:{line}: field 'role': the same role as line 1")
