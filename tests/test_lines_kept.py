"""Never lose or mislabel a finished line: an output written under one
configuration survives every later command that does not say --fresh.

Each answer is identified by (id, status, response); after any command the
answers written before are still in the output, or set aside in its
``.replaced.jsonl`` (never deleted), or the command was refused and the file
is byte for byte what it was.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from rolebatch.cli import main
from rolebatch.records.shards import shard_of
from tests.helpers import ROLES, poem_records, queries, read_lines, write_job

ROOT = Path(__file__).resolve().parent.parent
TWO = ROLES[:2]  # poet and kid


def answers(path: Path) -> set[tuple]:
    """Every answer a file holds, as (id, status, response)."""
    if not path.exists():
        return set()
    return {
        (line["id"], line["status"], json.dumps(line["response"], sort_keys=True))
        for line in read_lines(path)
    }


def kept(path: Path) -> set[tuple]:
    return answers(path) | answers(path.with_name(path.name + ".replaced.jsonl"))


# -- 1: a run under another configuration is refused --------------------------


@pytest.mark.parametrize(
    ("first", "then", "words"),
    [
        (("--roles", "roles.jsonl"), (), "it holds a sweep's lines"),
        (("--samples", "2"), (), "it holds a sweep's lines"),
        (("--roles", "roles.jsonl", "--samples", "2"), ("--roles", "roles.jsonl"), "samples"),
        ((), ("--roles", "roles.jsonl"), "it holds a plain run's lines and this is a sweep"),
        (("--shard", "0/2"), (), "it holds shard 0/2's lines and this run is the whole job"),
    ],
)
def test_a_run_under_another_configuration_is_refused_and_nothing_changes(
    rolebatch, fake, tmp_path, first, then, words
):
    job = write_job(tmp_path / "one.jsonl", queries(2))
    write_job(Path("roles.jsonl"), TWO)
    assert rolebatch(str(job), "-o", "sw.jsonl", *first).code == 0
    before = Path("sw.jsonl").read_bytes()
    fake.reset()
    result = rolebatch(str(job), "-o", "sw.jsonl", *then)
    assert result.code == 2, result.err
    assert words in result.err and "None" not in result.err
    assert Path("sw.jsonl").read_bytes() == before
    assert fake.requests == []


# -- 4: a role id never changes meaning ---------------------------------------


def test_a_line_inserted_in_a_text_roles_file_is_refused_naming_the_ids(rolebatch, fake, tmp_path):
    job = write_job(tmp_path / "one.jsonl", queries(1))
    roles = Path("roles.txt")
    roles.write_text("You are a renowned poet.\nYou are a seven-year-old child.\n")
    assert rolebatch(str(job), "-o", "sw.jsonl", "--roles", str(roles)).code == 0
    before = Path("sw.jsonl").read_bytes()
    roles.write_text("You are a chef.\n" + roles.read_text())
    fake.reset()
    result = rolebatch(str(job), "-o", "sw.jsonl", "--roles", str(roles))
    assert result.code == 2
    assert "role '1' was 'You are a renowned poet.'" in result.err
    assert "role '2' was 'You are a seven-year-old child.'" in result.err
    assert "add new roles at the end" in result.err
    assert Path("sw.jsonl").read_bytes() == before and fake.requests == []
    # Appended at the end, the new role is new pairs, and the old ones keep their text.
    roles.write_text("You are a renowned poet.\nYou are a seven-year-old child.\nYou are a chef.\n")
    assert rolebatch(str(job), "-o", "sw.jsonl", "--roles", str(roles)).code == 0
    lines = read_lines(Path("sw.jsonl"))
    assert [(line["role_id"], line["role"]) for line in lines] == [
        ("1", "You are a renowned poet."),
        ("2", "You are a seven-year-old child."),
        ("3", "You are a chef."),
    ]
    assert len(fake.requests) == 1


def test_a_jsonl_role_whose_text_changed_is_refused(rolebatch, fake, tmp_path):
    job = write_job(tmp_path / "one.jsonl", queries(1))
    roles = write_job(Path("roles.jsonl"), TWO)
    assert rolebatch(str(job), "-o", "sw.jsonl", "--roles", str(roles)).code == 0
    write_job(roles, [TWO[0], {"id": "kid", "role": "You are a teenager."}])
    result = rolebatch(str(job), "-o", "sw.jsonl", "--roles", str(roles))
    assert result.code == 2 and "role 'kid' was 'You are a seven-year-old child.'" in result.err
    assert "role 'poet'" not in result.err


# -- lines with no place any more are set aside, not deleted ------------------


def test_lines_of_records_or_roles_no_longer_in_the_job_are_set_aside(rolebatch, fake, tmp_path):
    job = write_job(tmp_path / "one.jsonl", queries(3))
    roles = write_job(Path("roles.jsonl"), TWO)
    assert rolebatch(str(job), "-o", "sw.jsonl", "--roles", str(roles)).code == 0
    before = answers(Path("sw.jsonl"))
    write_job(job, queries(2))  # q2 removed
    write_job(roles, TWO[:1])  # kid removed
    result = rolebatch(str(job), "-o", "sw.jsonl", "--roles", str(roles))
    assert result.code == 0, result.err
    assert [line["id"] for line in read_lines(Path("sw.jsonl"))] == ["q0@poet", "q1@poet"]
    set_aside = answers(Path("sw.jsonl.replaced.jsonl"))
    assert {a[0] for a in set_aside} == {"q0@kid", "q1@kid", "q2@poet", "q2@kid"}
    assert kept(Path("sw.jsonl")) == before


def test_an_error_line_run_again_is_set_aside(rolebatch, fake, tmp_path):
    fake.fault(match="thing 1.", status=400, times=1)
    job = write_job(tmp_path / "j.jsonl", poem_records(3))
    assert rolebatch(str(job), "-o", "o.jsonl").code == 1
    assert rolebatch(str(job), "-o", "o.jsonl").code == 0
    (old,) = read_lines(Path("o.jsonl.replaced.jsonl"))
    assert old["id"] == "r1" and old["status"] == "error"


# -- 2: merge --------------------------------------------------------------------


def _shards(rolebatch, job: Path, *extra: str, count: int = 2) -> list[Path]:
    for k in range(count):
        assert rolebatch(str(job), "--shard", f"{k}/{count}", *extra).code == 0
    return [Path(f"out/{job.stem}.shard-{k}-of-{count}.jsonl") for k in range(count)]


def test_merge_refuses_to_replace_a_run_s_output(rolebatch, fake, tmp_path, capsys):
    job = write_job(tmp_path / "poems.jsonl", poem_records(6))
    assert rolebatch(str(job), "--model", "compat/other", "--price", "1/1").code == 0
    live = Path("out/poems.jsonl")  # run's default output: merge's default target too
    before = live.read_bytes()
    _shards(rolebatch, job)
    capsys.readouterr()
    assert main(["merge", str(job)]) == 2
    err = capsys.readouterr().err
    assert "out/poems.jsonl exists" in err and "compat/other" in err and "--replace" in err
    assert live.read_bytes() == before
    assert main(["merge", str(job), "--replace"]) == 0
    assert [line["model"] for line in read_lines(live)] == ["openai/gpt-4o"] * 6


def test_a_merged_output_is_resumed_and_extended_by_run(rolebatch, fake, tmp_path, capsys):
    job = write_job(tmp_path / "poems.jsonl", poem_records(12))
    _shards(rolebatch, job)
    assert main(["merge", str(job), "-o", "m.jsonl"]) == 0
    finished = json.loads(Path("m.jsonl.rolebatch.json").read_text())["finished"]
    total = sum(line["cost_usd"] for line in read_lines(Path("m.jsonl")))
    assert float(finished["cost_usd"]) == pytest.approx(total, rel=1e-9)
    fake.reset()
    again = rolebatch(str(job), "-o", "m.jsonl")
    assert again.code == 0, again.err
    assert "already done" in again.err and fake.requests == []
    # A merge again over its own unchanged output is fine.
    assert main(["merge", str(job), "-o", "m.jsonl"]) == 0
    # The job grows: the merged output is extended by run, only the new records sent.
    write_job(job, poem_records(12) + poem_records(2, prefix="new"))
    extended = rolebatch(str(job), "-o", "m.jsonl")
    assert extended.code == 0, extended.err
    assert len(fake.requests) == 2
    assert [line["id"] for line in read_lines(Path("m.jsonl"))][-2:] == ["new0", "new1"]
    # Extended by a run, it holds lines no merge wrote: merge now refuses it.
    capsys.readouterr()
    assert main(["merge", str(job), "-o", "m.jsonl"]) == 2


def test_a_merge_with_records_missing_is_resumable_and_run_fills_them(
    rolebatch, fake, tmp_path, capsys
):
    job = write_job(tmp_path / "poems.jsonl", poem_records(10))
    shards = _shards(rolebatch, job)
    assert main(["merge", str(job), str(shards[0]), "-o", "m.jsonl"]) == 1
    missing = [f"r{n}" for n in range(10) if shard_of(f"r{n}", 2) == 1]
    fake.reset()
    result = rolebatch(str(job), "-o", "m.jsonl")
    assert result.code == 0, result.err
    assert sorted(r.text.split("thing ")[1].rstrip(".") for r in fake.requests) == sorted(
        m[1:] for m in missing
    )
    assert [line["id"] for line in read_lines(Path("m.jsonl"))] == [f"r{n}" for n in range(10)]


def test_a_sweep_s_shards_merge_as_the_sweep(rolebatch, fake, tmp_path):
    job = write_job(tmp_path / "one.jsonl", queries(4))
    roles = write_job(Path("roles.jsonl"), TWO)
    _shards(rolebatch, job, "--roles", str(roles))
    assert main(["merge", str(job), "-o", "m.jsonl"]) == 0
    lines = read_lines(Path("m.jsonl"))
    assert [line["id"] for line in lines] == [f"q{i}@{r['id']}" for i in range(4) for r in TWO]
    fake.reset()
    again = rolebatch(str(job), "-o", "m.jsonl", "--roles", str(roles))
    assert again.code == 0 and "already done" in again.err and fake.requests == []


def test_shards_of_different_configurations_or_splits_are_refused(
    rolebatch, fake, tmp_path, capsys
):
    job = write_job(tmp_path / "poems.jsonl", poem_records(8))
    zero = _shards(rolebatch, job)[0]
    assert rolebatch(str(job), "--shard", "1/2", "--max-tokens", "50", "-o", "b.jsonl").code == 0
    capsys.readouterr()
    assert main(["merge", str(job), str(zero), "b.jsonl", "-o", "m.jsonl"]) == 2
    err = capsys.readouterr().err
    assert "different configurations" in err and "max_tokens was not set, now 50" in err
    three = _shards(rolebatch, job, count=3)  # another split of the same job
    capsys.readouterr()
    assert main(["merge", str(job), str(zero), *map(str, three[1:]), "-o", "m.jsonl"]) == 2
    assert "different splits" in capsys.readouterr().err
    assert not Path("m.jsonl").exists()


# -- every later command without --fresh keeps every line -------------------------


def test_no_command_without_fresh_loses_a_line(rolebatch, fake, tmp_path, capsys):
    job = write_job(tmp_path / "one.jsonl", queries(3))
    roles = write_job(Path("roles.jsonl"), TWO)
    out = Path("out/one.jsonl")
    assert rolebatch(str(job), "--roles", str(roles)).code == 0
    first = answers(out)
    assert len(first) == 6
    later = [
        lambda: rolebatch(str(job)),
        lambda: rolebatch(str(job), "--samples", "2"),
        lambda: rolebatch(str(job), "--roles", str(roles), "--samples", "2"),
        lambda: rolebatch(str(job), "--roles", str(roles), "--layout", "split"),
        lambda: rolebatch(str(job), "--roles", str(roles), "--model", "compat/x"),
        lambda: rolebatch(str(job), "--roles", str(roles), "--shard", "0/2"),
        lambda: main(["merge", str(job), str(out)]),
        lambda: main(["estimate", str(job), "--model", "openai/gpt-4o"]),
        lambda: main(["report", str(out)]),
        lambda: main(["status", str(out)]),
        lambda: main(["cancel", str(out)]),
        lambda: rolebatch(str(job), "--roles", str(roles)),
        lambda: rolebatch(str(job), "--roles", str(roles), "--via", "batch"),
    ]
    for command in later:
        command()
        capsys.readouterr()
        assert first <= kept(out)


# -- smaller things seen on the same walk --------------------------------------


def test_estimate_takes_completion_lengths_only_from_an_output_of_its_configuration(
    rolebatch, fake, tmp_path, capsys
):
    job = write_job(tmp_path / "j.jsonl", poem_records(4))
    small = ("--model", "compat/small", "--price", "1/1")
    assert rolebatch(str(job), "-o", "o.jsonl", *small).code == 0
    write_job(job, poem_records(6))  # two more to do
    capsys.readouterr()
    where = ("-o", "o.jsonl", "--base-url", fake.base_url)
    assert main(["estimate", str(job), *where, "--model", "openai/gpt-4o"]) == 0
    shown = capsys.readouterr().out
    assert "cannot be resumed" in shown
    assert "the output's" not in shown and "a guess of" in shown
    assert main(["estimate", str(job), *where, *small]) == 0
    assert "the output's 4 answers average" in capsys.readouterr().out


def test_status_and_cancel_say_what_an_output_without_batches_is(rolebatch, fake, tmp_path, capsys):
    job = write_job(tmp_path / "j.jsonl", poem_records(1))
    assert rolebatch(str(job), "-o", "o.jsonl", "--model", "compat/small").code == 0
    capsys.readouterr()
    for command in ("status", "cancel"):
        assert main([command, "o.jsonl"]) == 0
        assert "o.jsonl: no batches: its answers were bought live" in capsys.readouterr().out
        assert main([command, "nowhere.jsonl"]) == 2
        assert "nowhere.jsonl: no such file" in capsys.readouterr().err


def test_report_of_an_empty_output_is_nothing_to_do_and_csv_numbers_are_plain(tmp_path, capsys):
    Path("empty.jsonl").write_text("")
    assert main(["report", "empty.jsonl"]) == 0
    assert "no lines yet" in capsys.readouterr().err
    line = {"id": "a", "line": 1, "status": "ok", "response": {"x": 1}, "error": None}
    rows = [{**line, "id": f"a{n}", "latency_s": value} for n, value in enumerate([1.1, 2.2])]
    rows.append({**line, "id": "a9", "latency_s": 3.3})
    write_job(Path("o.jsonl"), [{**r, "cost_usd": 0.1, "role": "R"} for r in rows])
    assert main(["report", "o.jsonl", "--format", "csv"]) == 0
    text = capsys.readouterr().out
    assert not re.search(r"\d\.\d{12,}", text), text
    assert "0.3" in text  # three lines at $0.1


def test_a_roles_line_without_an_id_says_it_is_required(rolebatch, tmp_path):
    job = write_job(tmp_path / "q.jsonl", queries(1))
    Path("roles.jsonl").write_text('{"role": "You are a poet."}\n')
    result = rolebatch(str(job), "--roles", "roles.jsonl")
    assert result.code == 2 and "roles.jsonl:1: field 'id': required" in result.err


def test_the_readme_settings_example_works_on_the_job_it_is_written_for(tmp_path, capsys):
    readme = (ROOT / "docs/providers.md").read_text()
    example = readme.split("## Settings beside the job")[1].split("```toml\n")[1]
    settings = example.split("```")[0]
    shutil.copytree(ROOT / "jobs", "jobs")
    Path("jobs/topics.toml").write_text(settings)
    assert main(["estimate", "jobs/topics.jsonl"]) == 0
    shown = capsys.readouterr().out
    assert "with openai/gpt-4o" in shown and "records: 15, 15 to do" in shown


def test_a_run_never_writes_onto_its_job_or_roles_even_fresh(rolebatch, fake, tmp_path):
    job = write_job(tmp_path / "j.jsonl", poem_records(2))
    roles = write_job(tmp_path / "roles.jsonl", [{"id": "poet", "role": "You are a poet."}])
    before = job.read_bytes(), roles.read_bytes()
    result = rolebatch(str(job), "-o", str(job), "--fresh")
    assert result.code == 2 and "the output cannot be the job" in result.err
    result = rolebatch(str(job), "-o", str(roles), "--roles", str(roles), "--fresh")
    assert result.code == 2 and "the output cannot be the roles file" in result.err
    assert (job.read_bytes(), roles.read_bytes()) == before and fake.requests == []
