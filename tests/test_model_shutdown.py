"""Models retire: a run (and estimate) looks its model up once, warns within
90 days of its shutdown date, refuses once it is past, and says nothing when
the provider does not say; rolebatch models lists the dates. Against the
loopback server's GET /v1/models."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from rolebatch.cli import main
from rolebatch.providers.models import WARN_DAYS, notice
from tests.helpers import SECRET_KEY, poem_records, read_lines, write_job

BATCH = ("--via", "batch", "--poll-interval", "0.01")


def in_days(days: int) -> str:
    """A date ``days`` from today (UTC), as the provider writes it."""
    return (dt.datetime.now(dt.UTC).date() + dt.timedelta(days=days)).isoformat()


def retire(fake, days: int | None, model: str = "gpt-4o") -> None:
    fake.state.models[model] = {"shutdown_date": None if days is None else in_days(days)}


def test_a_shutdown_in_30_days_is_said_at_the_start_and_in_every_summary(
    rolebatch, fake, tmp_path, monkeypatch
):
    step = tmp_path / "step.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step))
    retire(fake, 30)
    job = write_job(tmp_path / "j.jsonl", poem_records(3))
    result = rolebatch(str(job), "-o", "o.jsonl", "--summary-json", "s.json")
    assert result.code == 0, result.err
    said = f"openai/gpt-4o shuts down on {in_days(30)} (in 30 days"
    first, *rest = result.err.splitlines()
    assert first.startswith("rolebatch: warning: ") and said in first  # before anything else
    assert any(line.startswith("  warning: ") and said in line for line in rest)  # summary
    summary = json.loads(Path("s.json").read_text())
    assert summary["model_shutdown"] == {
        "model": "openai/gpt-4o",
        "shutdown_date": in_days(30),
        "days_left": 30,
    }
    assert f"| warning | {said}" in step.read_text()
    assert fake.state.model_lookups == ["/v1/models/gpt-4o"]  # once for the run
    assert [line["status"] for line in read_lines(Path("o.jsonl"))] == ["ok"] * 3
    assert SECRET_KEY not in result.err + step.read_text() + Path("s.json").read_text()


def test_a_date_in_the_past_stops_the_run_before_anything_is_bought(rolebatch, fake, tmp_path):
    job = write_job(tmp_path / "j.jsonl", poem_records(3))
    assert rolebatch(str(job), "-o", "o.jsonl").code == 0
    job.write_text(job.read_text() + json.dumps(poem_records(4)[3]) + "\n")  # one more
    before = Path("o.jsonl").read_bytes()
    fake.reset()
    retire(fake, -1)
    result = rolebatch(str(job), "-o", "o.jsonl", "--summary-json", "s.json")
    assert result.code == 2
    assert f"openai/gpt-4o was shut down on {in_days(-1)}" in result.err
    assert "nothing was sent" in result.err
    assert fake.requests == [] and Path("o.jsonl").read_bytes() == before
    assert json.loads(Path("s.json").read_text())["exit_code"] == 2
    # A refusal of a new output writes nothing: no output, no lock, no folder.
    result = rolebatch(str(job), "-o", "new/o.jsonl")
    assert result.code == 2 and not Path("new").exists()


@pytest.mark.parametrize(
    ("days", "warned"),
    [(None, False), (WARN_DAYS + 1, False), (WARN_DAYS, True), (0, True)],
)
def test_only_a_date_within_90_days_is_said(rolebatch, fake, tmp_path, days, warned):
    retire(fake, days)
    job = write_job(tmp_path / "j.jsonl", poem_records(1))
    result = rolebatch(str(job), "-o", "o.jsonl", "--summary-json", "s.json")
    assert result.code == 0
    assert ("warning:" in result.err) is warned
    shutdown = json.loads(Path("s.json").read_text())["model_shutdown"]
    assert (shutdown is not None) is warned
    if days == 0:
        assert "(today," in result.err  # the day itself still runs


@pytest.mark.parametrize("server", ["no endpoint", "unknown model", "no field", "not a date"])
def test_a_provider_that_does_not_say_says_nothing(rolebatch, fake, tmp_path, server):
    if server == "no endpoint":
        fake.state.models = None  # 404 on /v1/models
    elif server == "unknown model":
        del fake.state.models["gpt-4o"]
    elif server == "no field":
        fake.state.models["gpt-4o"] = {}
    else:
        fake.state.models["gpt-4o"] = {"shutdown_date": "soon"}
    job = write_job(tmp_path / "j.jsonl", poem_records(2))
    result = rolebatch(str(job), "-o", "o.jsonl")
    assert result.code == 0 and "warning" not in result.err
    assert len(fake.state.model_lookups) == 1
    assert len(read_lines(Path("o.jsonl"))) == 2


def test_a_provider_without_shutdown_dates_is_not_asked(claude, fake, tmp_path):
    job = write_job(tmp_path / "j.jsonl", poem_records(1))
    assert claude(str(job), "-o", "o.jsonl").code == 0
    assert fake.state.model_lookups == []


def test_estimate_says_it_and_refuses_a_retired_model(fake, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET_KEY)
    job = write_job(tmp_path / "j.jsonl", poem_records(2))
    argv = ["estimate", str(job), "--model", "openai/gpt-4o", "--base-url", fake.base_url]
    retire(fake, 45)
    assert main(argv) == 0
    shown = capsys.readouterr().out
    assert shown.splitlines()[1] == (
        f"  warning: openai/gpt-4o shuts down on {in_days(45)} (in 45 days, says the"
        " provider's model list): move to another model before then (`rolebatch models`"
        " lists them with their dates)"
    )
    assert main([*argv, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["model_shutdown"]["days_left"] == 45
    retire(fake, -10)
    assert main(argv) == 2
    assert f"was shut down on {in_days(-10)}" in capsys.readouterr().err
    assert fake.requests == []


def test_batches_already_bought_are_collected_and_nothing_new_submitted(rolebatch, fake, tmp_path):
    fake.state.batches.plan.polls = 1  # ends at its first retrieve: by the next run
    job = write_job(tmp_path / "j.jsonl", poem_records(3))
    assert rolebatch(str(job), "-o", "o.jsonl", *BATCH, "--no-wait").code == 4
    job.write_text(job.read_text() + json.dumps(poem_records(5)[3]) + "\n")  # one more record
    retire(fake, -1)
    result = rolebatch(str(job), "-o", "o.jsonl", *BATCH)
    assert result.code == 2
    assert "The batches already bought were collected; 1 records are still to do." in result.err
    assert len(fake.state.batches.batches) == 1  # nothing submitted for the new record
    lines = read_lines(Path("o.jsonl"))
    assert sorted(line["id"] for line in lines) == ["r0", "r1", "r2"]
    assert all(line["status"] == "ok" for line in lines)


def test_the_notice_counts_days_from_today():
    today = dt.date(2026, 12, 1)
    assert notice("openai/gpt-4o", None, today) is None
    assert notice("openai/gpt-4o", dt.date(2027, 3, 2), today) is None  # 91 days
    at_90 = notice("openai/gpt-4o", dt.date(2027, 3, 1), today)
    assert at_90 is not None and at_90.days_left == 90 and not at_90.past
    gpt_4o = notice("openai/gpt-4o", dt.date(2027, 1, 14), today)  # OpenAI's date for GPT-4o
    assert gpt_4o is not None and gpt_4o.days_left == 44
    today_itself = notice("openai/gpt-4o", today, today)
    assert today_itself is not None and not today_itself.past
    gone = notice("openai/gpt-4o", dt.date(2026, 11, 30), today)
    assert gone is not None and gone.past and gone.days_left == -1


def test_models_lists_the_dates_soonest_first(fake, capsys, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET_KEY)
    retire(fake, 44)
    retire(fake, 10, "gpt-4o-mini")
    argv = ["models", "--provider", "openai", "--base-url", fake.base_url]
    assert main(argv) == 0
    out = capsys.readouterr()
    rows = [line.split() for line in out.out.splitlines()]
    assert rows[0] == ["model", "shutdown", "days", "left"]
    assert rows[1:] == [
        ["openai/gpt-4o-mini", in_days(10), "10"],
        ["openai/gpt-4o", in_days(44), "44"],
        ["openai/gpt-3.5-turbo", "-", "-"],
    ]
    assert "3 models, 2 with a shutdown date announced" in out.err
    assert main([*argv, "--format", "json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed[0] == {
        "model": "openai/gpt-4o-mini",
        "shutdown_date": in_days(10),
        "days_left": 10,
    }


def test_models_says_what_went_wrong_without_the_key(fake, capsys, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET_KEY)
    fake.state.models = None
    assert main(["models", "--base-url", fake.base_url]) == 3
    err = capsys.readouterr().err
    assert "/models answered 404" in err and SECRET_KEY not in err
    assert main(["models", "--provider", "anthropic"]) == 2
    assert "does not say when its models shut down" in capsys.readouterr().err
    monkeypatch.delenv("OPENAI_API_KEY")
    assert main(["models"]) == 2
    assert "OPENAI_API_KEY is not set" in capsys.readouterr().err
