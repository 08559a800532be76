"""Settings beside the job (jobs/<stem>.toml, --config): below the command line
and the environment, checked strictly."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import ROLES, queries, write_job


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


def test_a_settings_file_with_a_byte_order_mark_is_read(rolebatch, fake, tmp_path):
    job = write_job(tmp_path / "q.jsonl", queries(1))
    (tmp_path / "q.toml").write_bytes("\ufeffmax-tokens = 44\n".encode())
    assert rolebatch(str(job), "-o", "s.jsonl").code == 0
    assert fake.requests[0].body["max_tokens"] == 44


def test_a_missing_file_named_by_settings_names_the_settings_file(rolebatch, fake, tmp_path):
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    job = write_job(jobs / "q.jsonl", queries(1))
    write_job(jobs / "roles.jsonl", ROLES[:2])
    # Written as if paths were read from the settings file's folder.
    (jobs / "q.toml").write_text('roles = "roles.jsonl"\n')
    result = rolebatch(str(job), "-o", "s.jsonl")
    assert result.code == 2 and fake.requests == []
    assert "jobs/q.toml: key 'roles': roles.jsonl: no such file" in result.err
    assert "write 'jobs/roles.jsonl'" in result.err.replace(str(tmp_path) + "/", "")


def test_judge_and_panel_help_show_their_own_defaults(capsys):
    from rolebatch.cli import main

    for command, words in (("judge", "out/<JUDGED stem>"), ("panel", "out/<SWEEP stem>")):
        assert main([command, "--help"]) == 0
        shown = " ".join(capsys.readouterr().out.split())
        assert words in shown and "default: out/<job stem>.jsonl" not in shown
        assert "default: the model of" in shown and "gemma" not in shown
