"""Role sweeps (--roles, --samples), `rolebatch report`, and settings beside the job."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from pathlib import Path

import pytest

from rolebatch.cli import main
from rolebatch.records.report import percentile
from tests.conftest import read_lines, write_job

ROLES = [
    {"id": "poet", "role": "You are a renowned poet."},
    {"id": "kid", "role": "You are a seven-year-old child."},
    {"id": "plain", "role": "You are a helpful assistant."},
]


def queries(n: int) -> list[dict]:
    return [{"id": f"q{i}", "query": f"Write a poem about thing {i}."} for i in range(n)]


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


# -- report ---------------------------------------------------------------------


def _line(n: int, role: str, status: str = "ok", **extra) -> dict:
    line = {
        "id": f"r{n}@{role}",
        "line": n,
        "status": status,
        "response": {
            "poem": "x" * n,
            "score": n,
            "good": n % 2 == 0,
            "mood": "sad" if n < 3 else "glad",
        }
        if status == "ok"
        else None,
        "error": None if status == "ok" else {"kind": "validation", "message": "m"},
        "role": f"You are {role}.",
        "role_id": role,
        "query": "q",
        "model": "openai/gpt-4o",
        "attempts": 1,
        "usage": {"prompt_tokens": 10 * n, "completion_tokens": n, "total_tokens": 11 * n},
        "latency_s": float(n),
        "metadata": {"batch": "b1" if n < 3 else "b2"},
        "cost_usd": 0.001 * n,
    }
    line.update(extra)
    return line


def test_percentiles_interpolate_between_ranks():
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert percentile([5.0], 0.95) == 5.0
    assert percentile(list(map(float, range(1, 101))), 0.95) == pytest.approx(95.05)
    assert percentile([], 0.5) is None


def test_report_per_role_in_json(tmp_path, capsys):
    out = write_job(
        tmp_path / "o.jsonl",
        [_line(n, "poet") for n in (1, 2, 3, 4)] + [_line(5, "kid"), _line(6, "kid", "error")],
    )
    assert main(["report", str(out), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    poet, kid = data["groups"]["poet"], data["groups"]["kid"]
    assert poet["records"] == 4 and poet["ok share"] == 1.0
    assert kid["records"] == 2 and kid["ok share"] == 0.5 and kid["errors: validation"] == 1
    assert poet["latency p50 s"] == 2.5 and poet["latency p95 s"] == pytest.approx(3.85)
    assert poet["prompt tokens mean"] == 25 and poet["completion tokens mean"] == 2.5
    assert poet["cost usd"] == pytest.approx(0.010)
    assert poet["poem: length mean"] == 2.5 and poet["poem: length p50"] == 2.5
    assert poet["score: mean"] == 2.5 and poet["score: spread"] == pytest.approx(1.118, abs=1e-3)
    assert poet["good = true"] == 0.5
    assert poet["mood = sad"] == 0.5 and poet["mood = glad"] == 0.5


def test_report_by_metadata_key_in_csv_and_markdown(tmp_path, capsys):
    out = write_job(tmp_path / "o.jsonl", [_line(n, "poet") for n in (1, 2, 3, 4, 5)])
    assert main(["report", str(out), "--by", "metadata.batch", "--format", "csv"]) == 0
    table = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert table[0] == ["metric", "b1", "b2"]
    assert dict((row[0], row[1:]) for row in table)["records"] == ["2", "3"]
    assert main(["report", str(out), "--by", "model", "--format", "md"]) == 0
    md = capsys.readouterr().out
    assert md.startswith("| model | openai/gpt-4o |\n|---|---:|\n| records | 5 |")


def test_report_table_is_aligned_and_bad_input_is_exit_2(tmp_path, capsys):
    out = write_job(tmp_path / "o.jsonl", [_line(1, "poet"), _line(2, "kid")])
    assert main(["report", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["role", "poet", "kid"]
    assert len({len(line) for line in lines[:3]}) == 1  # aligned columns
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": 1}\n')
    assert main(["report", str(bad)]) == 2
    assert "bad.jsonl:1: not a rolebatch output line" in capsys.readouterr().err
    assert main(["report", str(out), "--by", "colour"]) == 2


# -- settings beside the job --------------------------------------------------------


def test_settings_beside_the_job_are_read_and_the_command_line_wins(
    rolebatch, fake, tmp_path, monkeypatch
):
    job = write_job(tmp_path / "q.jsonl", queries(2))
    roles = write_job(tmp_path / "roles.jsonl", ROLES[:2])
    (tmp_path / "q.toml").write_text(
        f'roles = "{roles}"\nmax-tokens = 77\ntemperature = 0.2\nmax_reasks = 0\n'
    )
    assert rolebatch(str(job), "-o", "s.jsonl", "--temperature", "0.5").code == 0
    bodies = [r.body for r in fake.requests]
    assert len(bodies) == 4  # the file's roles: a sweep
    assert {b["max_tokens"] for b in bodies} == {77}  # from the file
    assert {b["temperature"] for b in bodies} == {0.5}  # the command line over the file
    fake.reset()
    monkeypatch.setenv("ROLEBATCH_CONCURRENCY", "1")
    (tmp_path / "q.toml").write_text("concurrency = 4\nmax-tokens = 55\n")
    assert rolebatch(str(job), "-o", "t.jsonl").code == 0
    assert {r.body["max_tokens"] for r in fake.requests} == {55}


def test_an_explicit_config_file(rolebatch, fake, tmp_path):
    job = write_job(tmp_path / "q.jsonl", queries(1))
    settings = tmp_path / "elsewhere.toml"
    settings.write_text('max-tokens = 33\nlayout = "split"\n')
    assert rolebatch(str(job), "-o", "s.jsonl", "--config", str(settings)).code == 0
    (sent,) = fake.requests
    assert sent.body["max_tokens"] == 33


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('modle = "openai/gpt-4o"\n', "unknown key 'modle'"),
        ('rpm = "fast"\n', "key 'rpm'"),
        ("concurrency = 2.5\n", "key 'concurrency'"),
        ('layout = "diagonal"\n', "key 'layout'"),
        ("fresh = 1\n", "key 'fresh': expected true or false"),
        ("rpm = [1, 2]\n", "key 'rpm': expected a single value"),
        ("this is not toml\n", "not valid TOML"),
    ],
)
def test_bad_settings_are_exit_2_naming_the_file_and_the_key(rolebatch, tmp_path, text, message):
    job = write_job(tmp_path / "q.jsonl", queries(1))
    (tmp_path / "q.toml").write_text(text)
    result = rolebatch(str(job))
    assert result.code == 2
    assert "q.toml" in result.err and message in result.err
    assert not Path("out").exists()
