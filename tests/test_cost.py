"""What answers cost: prices per line, the budget, the estimate, reports for CI."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest

from rolebatch.cli import main
from tests.conftest import SECRET_KEY, poem_records, read_lines, write_job

ROOT = Path(__file__).resolve().parent.parent
# gpt-4o in genai-prices: $2.50 / $10 per million input / output tokens, $1.25 cached.
GPT4O_IN, GPT4O_OUT, GPT4O_CACHED = Decimal("2.5"), Decimal(10), Decimal("1.25")


def priced(usage: dict, price_in: Decimal, price_out: Decimal, cached_price: Decimal) -> float:
    cached = usage.get("cached_tokens", 0)
    total = (
        (usage["prompt_tokens"] - cached) * price_in
        + cached * cached_price
        + usage["completion_tokens"] * price_out
    )
    return float(total / 1_000_000)


def asked(fake) -> Counter:
    """How many requests reached the server for each record ("thing N." -> rN)."""
    found: Counter = Counter()
    for request in fake.requests:
        text = request.text
        start = text.find("thing ") + len("thing ")
        found["r" + text[start : text.index(".", start)]] += 1
    return found


def test_each_line_costs_its_usage_at_the_models_price_reasks_included(rolebatch, fake, tmp_path):
    fake.fault(match="thing 2.", invalid=True, times=1)  # one re-ask
    job = write_job(tmp_path / "j.jsonl", poem_records(4))
    result = rolebatch(str(job), "-o", "o.jsonl")
    assert result.code == 0, result.err
    lines = read_lines(Path("o.jsonl"))
    assert lines[2]["attempts"] == 2
    for line in lines:
        expected = priced(line["usage"], GPT4O_IN, GPT4O_OUT, GPT4O_CACHED)
        assert line["cost_usd"] == pytest.approx(expected, rel=1e-9, abs=1e-15)
        assert list(line)[-1] == "cost_usd"
    total = sum(line["cost_usd"] for line in lines)
    per_ok = total / 4
    assert f"cost: ${Decimal(repr(total)):.{3 - Decimal(repr(total)).adjusted()}f}" in result.err
    assert "per ok record" in result.err and f"{per_ok:.3g}"[:4] in result.err


def test_cached_prompt_tokens_are_priced_at_the_cached_rate(rolebatch, fake, tmp_path):
    fake.state.cached_tokens = 40
    job = write_job(tmp_path / "j.jsonl", poem_records(2))
    assert rolebatch(str(job), "-o", "o.jsonl").code == 0
    for line in read_lines(Path("o.jsonl")):
        assert line["usage"]["cached_tokens"] == 40
        expected = priced(line["usage"], GPT4O_IN, GPT4O_OUT, GPT4O_CACHED)
        uncached = priced({**line["usage"], "cached_tokens": 0}, GPT4O_IN, GPT4O_OUT, GPT4O_IN)
        assert line["cost_usd"] == pytest.approx(expected, rel=1e-9)
        assert line["cost_usd"] < uncached


def test_price_option_prices_a_server_nobody_knows(rolebatch, fake, tmp_path):
    job = write_job(tmp_path / "j.jsonl", poem_records(3))
    result = rolebatch(str(job), "-o", "o.jsonl", "--model", "compat/mine", "--price", "1/2")
    assert result.code == 0, result.err
    for line in read_lines(Path("o.jsonl")):
        expected = priced(line["usage"], Decimal(1), Decimal(2), Decimal(1))
        assert line["cost_usd"] == pytest.approx(expected, rel=1e-9)


def test_an_unknown_price_is_said_once_and_lines_say_null(rolebatch, fake, tmp_path):
    job = write_job(tmp_path / "j.jsonl", poem_records(3))
    result = rolebatch(str(job), "-o", "o.jsonl", "--model", "compat/mine")
    assert result.code == 0, result.err
    assert [line["cost_usd"] for line in read_lines(Path("o.jsonl"))] == [None] * 3
    assert result.err.count("cost unknown for compat/mine: give --price") == 1


def test_max_cost_with_an_unknown_price_is_refused_before_anything(rolebatch, fake, tmp_path):
    job = write_job(tmp_path / "j.jsonl", poem_records(3))
    result = rolebatch(str(job), "-o", "o.jsonl", "--model", "compat/mine", "--max-cost", "1")
    assert result.code == 2
    assert "--max-cost needs a price" in result.err and "--price" in result.err
    assert fake.requests == [] and not Path("o.jsonl").exists()


def test_a_bad_price_is_a_usage_error(rolebatch, fake, tmp_path):
    job = write_job(tmp_path / "j.jsonl", poem_records(1))
    result = rolebatch(str(job), "--price", "cheap")
    assert result.code == 2 and "--price 'cheap'" in result.err
    assert fake.requests == []


def test_the_budget_stops_near_the_cap_and_a_higher_one_finishes_the_job(rolebatch, fake, tmp_path):
    fake.state.latency = 0.02
    job = write_job(tmp_path / "j.jsonl", poem_records(40))
    concurrency = 4
    cap = 0.004  # about ten records' worth
    first = rolebatch(
        str(job), "-o", "o.jsonl", "--concurrency", str(concurrency), "--max-cost", str(cap)
    )
    assert first.code == 3, first.err
    assert "budget reached: $" in first.err and f"of ${cap:.4f}" in first.err
    assert "records not started; raise --max-cost and run the same command" in first.err
    lines = read_lines(Path("o.jsonl"))
    assert 0 < len(lines) < 40
    assert {line["status"] for line in lines} == {"ok"}  # stopped records have no line
    spent = sum(line["cost_usd"] for line in lines)
    most = max(line["cost_usd"] for line in lines)
    # Nothing starts past the cap; what was in flight may finish.
    assert spent <= cap + concurrency * most
    assert spent > cap - 2 * concurrency * most  # and it did not stop far short of it
    assert f"{40 - len(lines):,} records not started" in first.err
    # The same command with room to spare finishes it, buying each record once.
    second = rolebatch(str(job), "-o", "o.jsonl", "--concurrency", "4", "--max-cost", "1")
    assert second.code == 0, second.err
    assert [line["id"] for line in read_lines(Path("o.jsonl"))] == [f"r{i}" for i in range(40)]
    assert set(asked(fake).values()) == {1} and len(asked(fake)) == 40


def test_the_budget_counts_what_the_output_already_cost(rolebatch, fake, tmp_path):
    job = write_job(tmp_path / "j.jsonl", poem_records(6))
    assert rolebatch(str(job), "-o", "o.jsonl").code == 0
    spent = sum(line["cost_usd"] for line in read_lines(Path("o.jsonl")))
    with job.open("a") as handle:  # one more record, and a cap the output already exceeds
        handle.write(json.dumps({"id": "r6", "query": "Write a poem about thing 6."}) + "\n")
    fake.reset()
    result = rolebatch(str(job), "-o", "o.jsonl", "--max-cost", f"{spent * 0.99:.10f}")
    assert result.code == 3 and "budget reached" in result.err
    assert fake.requests == []
    assert "1 records not started" in result.err


def test_summary_json_and_the_ci_step_summary(rolebatch, fake, tmp_path, monkeypatch):
    step = tmp_path / "step.md"
    step.write_text("earlier steps\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step))
    fake.fault(match="thing 1.", status=400)
    job = write_job(tmp_path / "j.jsonl", poem_records(3))
    result = rolebatch(str(job), "-o", "o.jsonl", "--summary-json", "sum/s.json")
    assert result.code == 1
    summary = json.loads(Path("sum/s.json").read_text())
    lines = read_lines(Path("o.jsonl"))
    assert summary["exit_code"] == 1 and summary["output"] == "o.jsonl"
    assert summary["records"]["ok"] == 2 and summary["records"]["failed"] == 1
    assert summary["errors"] == {"bad_request": 1}
    assert summary["cost_usd"] == pytest.approx(sum(line["cost_usd"] for line in lines))
    used = [line["usage"] for line in lines if line["usage"]]
    assert summary["tokens"]["total"] == sum(usage["total_tokens"] for usage in used)
    assert summary["wall_s"] > 0
    markdown = step.read_text()
    assert markdown.startswith("earlier steps\n")
    assert "### rolebatch: finished with failed records" in markdown
    assert "| errors | bad_request 1 |" in markdown


def test_summary_json_says_why_nothing_ran(rolebatch, fake, tmp_path):
    job = write_job(tmp_path / "j.jsonl", ['{"qurey": "typo"}'])
    result = rolebatch(str(job), "--summary-json", "s.json")
    assert result.code == 2
    summary = json.loads(Path("s.json").read_text())
    assert summary["exit_code"] == 2 and "qurey" in summary["error"]


def test_progress_lines_show_dollars(rolebatch, fake, tmp_path):
    fake.state.latency = 0.05
    job = write_job(tmp_path / "j.jsonl", poem_records(12))
    result = rolebatch(str(job), "--concurrency", "2", "--progress-interval", "0.1")
    assert result.code == 0
    progress = [line for line in result.err.splitlines() if line.startswith("progress:")]
    assert progress and all(" cost=$" in line for line in progress)


# -- estimate ------------------------------------------------------------


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
    # openai and instructor build the request an estimate measures; the HTTP
    # transport, the embedded model and the run's pipeline are not needed.
    code = (
        "import sys\n"
        "from rolebatch.cli import main\n"
        "before = {'openai', 'instructor', 'genai_prices'} & set(sys.modules)\n"
        "main(['estimate', 'jobs/poems.jsonl', '--model', 'openai/gpt-4o', '-o', '/dev/null/x'])\n"
        "after = {'httpcore2', 'llama_cpp', 'rolebatch.pipeline', 'rolebatch.client'}\n"
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
