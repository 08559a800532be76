"""rolebatch estimate: what a run would cost and take, sending nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rolebatch.cli import main
from tests.helpers import SECRET_KEY, poem_records, read_lines, write_job

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("mode", ["tools", "json", "md_json", "json_schema"])
def test_the_estimate_is_within_15_percent_of_what_a_run_uses(
    rolebatch, fake, tmp_path, capsys, monkeypatch, mode
):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET_KEY)
    records = [
        {"id": f"r{i}", "query": f"Write a poem about thing {i}. " + "Make it vivid. " * (i % 5)}
        for i in range(12)
    ]
    job = write_job(tmp_path / "j.jsonl", records)
    args = [str(job), "-o", "o.jsonl", "--mode", mode, "--model", "openai/gpt-4o"]
    assert main(["estimate", *args, "--base-url", fake.base_url, "--json"]) == 0
    forecast = json.loads(capsys.readouterr().out)
    assert fake.requests == [] and not Path("o.jsonl").exists()  # nothing sent or written
    assert forecast["records"] == forecast["to_do"] == 12
    result = rolebatch(*args)
    assert result.code == 0, result.err
    used = sum(line["usage"]["prompt_tokens"] for line in read_lines(Path("o.jsonl")))
    assert abs(forecast["prompt_tokens"] - used) <= 0.15 * used, (forecast, used)


def test_the_estimate_counts_what_is_left_and_learns_from_the_output(
    rolebatch, fake, tmp_path, capsys
):
    job = write_job(tmp_path / "j.jsonl", poem_records(6))
    assert rolebatch(str(job), "-o", "o.jsonl", "--max-tokens", "50").code == 0
    lines = read_lines(Path("o.jsonl"))
    with job.open("a") as handle:
        for i in (6, 7):
            handle.write(json.dumps({"id": f"r{i}", "query": f"Write a poem about thing {i}."}))
            handle.write("\n")
    fake.reset()
    options = ["--max-tokens", "50", "--rpm", "60", "--json", "--base-url", fake.base_url]
    code = main(["estimate", str(job), "-o", "o.jsonl", *options, "--model", "openai/gpt-4o"])
    assert code == 0
    forecast = json.loads(capsys.readouterr().out)
    assert forecast["to_do"] == 2 and forecast["already_done"] == 6
    mean = sum(line["usage"]["completion_tokens"] for line in lines) / 6
    assert forecast["completion_tokens"] == round(mean * 2)
    assert "answers average" in forecast["completion_basis"]
    spent = sum(line["cost_usd"] for line in lines)
    assert forecast["output_cost_so_far_usd"] == pytest.approx(spent)
    # Live and half price through the batch API, at genai-prices' rates.
    assert forecast["batch_cost_usd"] == pytest.approx(forecast["cost_usd"] / 2)
    assert forecast["seconds"] == pytest.approx(2.0)  # two requests at one a second
    assert fake.requests == []


def test_the_estimate_checks_the_job_as_run_does(rolebatch, fake, tmp_path, capsys):
    job = write_job(tmp_path / "j.jsonl", [*poem_records(2), '{"id": "x", "qurey": "typo"}'])
    code = main(["estimate", str(job), "--model", "openai/gpt-4o", "--base-url", fake.base_url])
    assert code == 2
    err = capsys.readouterr().err
    assert f"{job}:3: field 'qurey': unknown key" in err
    assert fake.requests == [] and not Path("out").exists()


def test_the_estimate_without_a_max_tokens_says_it_guesses(tmp_path, capsys):
    # No API key either: nothing is sent.
    job = write_job(tmp_path / "j.jsonl", poem_records(4))
    assert main(["estimate", str(job), "--model", "openai/gpt-4o"]) == 0
    text = capsys.readouterr().out
    assert "4 to do" in text and "a guess of 256 a record" in text
    assert "through the batch API" in text and "time: unknown" in text


def test_help_and_estimate_import_only_what_they_use():
    # openai and instructor build the request an estimate measures (and look
    # the model's shutdown date up); the embedded model, the run's pipeline
    # and its async client are not needed.
    code = (
        "import sys\n"
        "from rolebatch.cli import main\n"
        "before = {'openai', 'instructor', 'genai_prices'} & set(sys.modules)\n"
        "main(['estimate', 'jobs/poems.jsonl', '--model', 'openai/gpt-4o', '-o', '/dev/null/x'])\n"
        "after = {'llama_cpp', 'rolebatch.pipeline', 'rolebatch.via.client'}\n"
        "after &= set(sys.modules)\n"
        "print(sorted(before), sorted(after))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "OPENAI_API_KEY": SECRET_KEY},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[] []"
