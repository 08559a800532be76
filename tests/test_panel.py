"""rolebatch panel: a synthesizer reading every role's answer to a question
of a sweep and giving the task's own; its inputs (labelled neutrally, shuffled
with a seed), its lines, resume, cost, a kill, the batch API, and the report
comparing it with the roles. Against the loopback server."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rolebatch.cli import main
from tests.helpers import SECRET_KEY, capital_questions, queries, read_lines, write_job

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = capital_questions(6)
ROLES = [
    {"id": "none", "role": ""},
    {"id": "geo", "role": "You are a geographer."},
    {"id": "kid", "role": "You are a seven-year-old child."},
]
# What each role answers (the control: the fake's minimum, 1).
PICKS = {"none": 1, "geo": 2, "kid": 3}
EDITOR = "You are an editor who weighs every answer."


@pytest.fixture
def swept(rolebatch, fake, tmp_path) -> Path:
    """Six choice questions under the control and two roles, each role's
    answer its own option."""
    job = write_job(tmp_path / "quiz.jsonl", QUESTIONS)
    roles = write_job(tmp_path / "roles.jsonl", ROLES)
    fake.fault(match="geographer", answer={"option": PICKS["geo"]})
    fake.fault(match="seven-year-old", answer={"option": PICKS["kid"]})
    code = rolebatch(str(job), "--task", "choice", "--roles", str(roles), "-o", "sweep.jsonl").code
    assert code == 0
    fake.reset()
    return Path("sweep.jsonl")


def panel(*args: str, base_url: str) -> int:
    return main(["panel", *args, "--base-url", base_url, "--progress", "none"])


def shown(request) -> list[dict]:
    """The answers a synthesizer's request lists, in the order it lists them."""
    text = request.body["messages"][0]["content"]
    found = re.findall(r"^Answer (\d+): (.*)$", text, re.M)
    assert [int(n) for n, _ in found] == list(range(1, len(found) + 1))
    return [json.loads(answer) for _, answer in found]


def test_the_synthesizer_reads_every_answer_labelled_and_shuffled(swept, fake):
    code = panel(str(swept), "--synthesizer", EDITOR, "-o", "final.jsonl", base_url=fake.base_url)
    assert code == 0
    assert len(fake.requests) == len(QUESTIONS)
    lines = {line["query_id"]: line for line in read_lines(Path("final.jsonl"))}
    orders = []
    for request in fake.requests:
        text = request.body["messages"][0]["content"]
        number = re.search(r"country (\d+)", text).group(1)
        line = lines[f"c{number}"]
        assert text.startswith(
            f"{EDITOR} What is the capital of country {number}? Options: 1. Rome, 2. Paris,"
            " 3. Oslo. Answer with the number of the right option.\n\nA panel answered"
        )
        # Neutral labels: no role's words, no role's id.
        for role in ROLES[1:]:
            assert role["role"] not in text
        assert not re.search(r"\b(geo|kid|none)\b", text)
        # Answer n is the answer of the n-th role the line names.
        answers = shown(request)
        assert answers == [{"option": PICKS[role]} for role in line["panel_roles"]]
        orders.append(tuple(line["panel_roles"]))
        # The synthesizer answers as the task does.
        option = request.body["tools"][0]["function"]["parameters"]["properties"]["option"]
        assert (option["minimum"], option["maximum"]) == (1, 3)
    assert all(sorted(order) == sorted(PICKS) for order in orders)
    assert len(set(orders)) > 1  # shuffled per question, not one order for all
    for line in lines.values():
        assert line["role_id"] == "panel" and line["role"] == EDITOR
        assert line["expected"] == "Paris" and line["options"] == QUESTIONS[0]["options"]
        assert line["response"] == {"option": 1}
    records = read_lines(Path("final.records.jsonl"))  # beside the output
    assert [r["panel"]["seed"] for r in records] == [0] * len(QUESTIONS)


def test_the_same_seed_gives_the_same_order_and_another_another(swept, fake):
    orders = {}
    for seed in ("0", "0", "7"):
        out = f"final-{seed}.jsonl"
        code = panel(
            str(swept), "--synthesizer", "", "--seed", seed, "-o", out, base_url=fake.base_url
        )
        assert code == 0
        got = {line["query_id"]: line["panel_roles"] for line in read_lines(Path(out))}
        assert orders.setdefault(seed, got) == got
    assert orders["0"] != orders["7"]
    # A synthesizer of no role sends the task's text and the answers alone.
    assert all(r.body["messages"][0]["content"].startswith("What is") for r in fake.requests)


def test_a_panel_resumes_without_buying_a_question_twice(swept, fake, capsys):
    args = (str(swept), "--synthesizer", EDITOR, "-o", "final.jsonl")
    fake.fault(status=500, match="country 3", times=1)  # one question fails
    assert panel(*args, "--max-retries", "0", base_url=fake.base_url) == 1
    capsys.readouterr()
    before = len(fake.requests)
    assert panel(*args, base_url=fake.base_url) == 0
    again = fake.requests[before:]
    assert len(again) == 1 and "country 3" in again[0].text  # the failed one only
    fake.reset()
    assert panel(*args, base_url=fake.base_url) == 0
    assert fake.requests == [] and "already done" in capsys.readouterr().err
    assert sorted(line["query_id"] for line in read_lines(Path("final.jsonl"))) == [
        q["id"] for q in QUESTIONS
    ]


def test_a_panel_is_priced_and_reported_beside_the_roles(swept, fake, tmp_path, capsys):
    code = panel(
        str(swept), "--synthesizer", EDITOR, "-o", "final.jsonl", "--summary-json", "s.json",
        base_url=fake.base_url,
    )  # fmt: skip
    assert code == 0
    lines = read_lines(Path("final.jsonl"))
    for line in lines:
        usage = line["usage"]
        price = (usage["prompt_tokens"] * 2.5 + usage["completion_tokens"] * 10) / 1e6
        assert line["cost_usd"] == pytest.approx(price, rel=1e-9)  # gpt-4o, the sweep's model
    summary = json.loads(Path("s.json").read_text())
    assert summary["cost_usd"] == pytest.approx(sum(line["cost_usd"] for line in lines))
    assert "a panel of 18 answers to 6 questions of sweep.jsonl" in capsys.readouterr().err
    # The synthesizer picks geo's answer, the right one, wherever it was shown.
    fake.fault(answer={"option": 2})
    assert panel(str(swept), "--synthesizer", "", "-o", "right.jsonl", base_url=fake.base_url) == 0
    capsys.readouterr()
    assert main(["report", str(swept), "right.jsonl", "--format", "json"]) == 0
    scores = json.loads(capsys.readouterr().out)["scores"]
    assert scores["baseline"] == "none"  # the sweep's control, not the role-less synthesizer
    means = {g["key"]: g["mean"] for g in scores["groups"]}
    assert means == {"none": 0.0, "geo": 1.0, "kid": 0.0, "panel": 1.0}
    rows = {c["key"]: c for c in scores["comparisons"]}
    assert (rows["panel"]["n_pairs"], rows["panel"]["diff"]) == (6, 1.0)


def test_a_panel_through_the_batch_api_at_half_price(swept, fake):
    code = panel(
        str(swept), "--synthesizer", EDITOR, "-o", "final.jsonl", "--via", "batch",
        "--poll-interval", "0.01", base_url=fake.base_url,
    )  # fmt: skip
    assert code == 0
    assert len(fake.state.batches.batches) == 1
    lines = read_lines(Path("final.jsonl"))
    assert len(lines) == len(QUESTIONS)
    for line in lines:
        usage = line["usage"]
        half = (usage["prompt_tokens"] * 1.25 + usage["completion_tokens"] * 5) / 1e6
        assert line["cost_usd"] == pytest.approx(half, rel=1e-9)
        assert line["batch_id"] and line["role_id"] == "panel"


def test_a_panel_killed_mid_run_resumes_without_buying_a_question_twice(swept, fake):
    fake.state.latency = 0.2
    env = {**os.environ, "OPENAI_API_KEY": SECRET_KEY, "PYTHONPATH": str(ROOT)}
    args = ["panel", str(swept), "--synthesizer", EDITOR, "-o", "final.jsonl"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "rolebatch", *args, "--concurrency", "2", "--base-url",
         fake.base_url],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not Path("final.jsonl").exists() or len(Path("final.jsonl").read_text().splitlines()) < 2:
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    written = {line["query_id"] for line in read_lines(Path("final.jsonl"))}
    assert 2 <= len(written) < len(QUESTIONS)
    before = len(fake.requests)
    fake.state.latency = 0.0
    assert panel(*args[1:], base_url=fake.base_url) == 0
    asked = {re.search(r"country (\d+)", r.text).group(1) for r in fake.requests[before:]}
    assert not {f"c{n}" for n in asked} & written
    lines = read_lines(Path("final.jsonl"))
    assert sorted(line["query_id"] for line in lines) == [q["id"] for q in QUESTIONS]


def test_what_a_panel_cannot_be_made_of_is_refused(swept, fake, capsys):
    Path("plain.jsonl").write_text('{"query": "q"}\n')
    assert panel("plain.jsonl", "--synthesizer", "", base_url=fake.base_url) == 2
    assert "not an output of rolebatch run" in capsys.readouterr().err
    Path("rubric.md").write_text("Scale: 1-5\n")
    assert main(["judge", str(swept), "--rubric", "rubric.md", "-o", "j.jsonl",
                 "--base-url", fake.base_url, "--progress", "none"]) == 0  # fmt: skip
    capsys.readouterr()
    assert panel("j.jsonl", "--synthesizer", "", base_url=fake.base_url) == 2
    assert "not a judge" in capsys.readouterr().err
    # A plain run (one answer a question) is not a sweep: no panel is bought.
    job = write_job(Path("plain-job.jsonl"), QUESTIONS)
    assert main(["run", str(job), "--task", "choice", "-o", "one.jsonl",
                 "--base-url", fake.base_url, "--progress", "none"]) == 0  # fmt: skip
    capsys.readouterr()
    requests = len(fake.requests)
    assert panel("one.jsonl", "--synthesizer", "", base_url=fake.base_url) == 2
    assert "no question has more than one ok answer" in capsys.readouterr().err
    assert len(fake.requests) == requests and not Path("out/one.panel.jsonl").exists()
    assert list(Path("out").glob("*.tmp")) == []
    assert panel(str(swept), "--synthesizer", "", "--estimate", base_url=fake.base_url) == 0
    out = capsys.readouterr().out
    assert "records: 6, 6 to do" in out and len(fake.requests) == requests


def test_a_panel_s_shards_merge_and_a_poem_sweep_has_its_panel(rolebatch, fake, tmp_path, capsys):
    job = write_job(tmp_path / "topics.jsonl", queries(4))
    roles = write_job(tmp_path / "roles.jsonl", ROLES[:2])
    assert rolebatch(str(job), "--roles", str(roles), "-o", "poems.jsonl").code == 0
    fake.reset()
    for shard in ("0/2", "1/2"):
        code = panel(
            "poems.jsonl", "--synthesizer", EDITOR, "--shard", shard, base_url=fake.base_url
        )
        assert code == 0
    assert len(fake.requests) == 4
    schema = fake.requests[0].body["tools"][0]["function"]["parameters"]
    assert "poem" in schema["properties"]  # the sweep's own answer
    capsys.readouterr()
    assert main(["merge", "out/poems.panel.records.jsonl"]) == 0
    assert "4 ok, 0 failed, 0 missing, 0 doubled" in capsys.readouterr().err
    lines = read_lines(Path("out/poems.panel.jsonl"))
    assert [line["query_id"] for line in lines] == ["q0", "q1", "q2", "q3"]
    assert all(sorted(line["panel_roles"]) == ["geo", "none"] for line in lines)
    # The merged output is the panel's own: the same command finds it done.
    assert panel("poems.jsonl", "--synthesizer", EDITOR, base_url=fake.base_url) == 0
    assert len(fake.requests) == 4 and "already done" in capsys.readouterr().err


def test_a_panel_takes_its_options_from_a_settings_file(swept, fake):
    Path("panel.toml").write_text(f'synthesizer = "{EDITOR}"\nseed = 3\nconcurrency = 1\n')
    assert panel(str(swept), "--config", "panel.toml", "-o", "f.jsonl", base_url=fake.base_url) == 0
    assert all(r.body["messages"][0]["content"].startswith(EDITOR) for r in fake.requests)
    assert {r["panel"]["seed"] for r in read_lines(Path("f.records.jsonl"))} == {3}


def test_a_question_with_one_ok_answer_has_no_panel(rolebatch, fake, tmp_path, capsys):
    job = write_job(tmp_path / "quiz.jsonl", QUESTIONS[:3])
    roles = write_job(tmp_path / "roles.jsonl", ROLES[:2])
    fake.fault(match="geographer. What is the capital of country 1?", refusal=True)
    code = rolebatch(str(job), "--task", "choice", "--roles", str(roles), "-o", "sw.jsonl").code
    assert code == 1  # the geographer's refusal is an error line
    fake.reset()
    capsys.readouterr()
    assert panel("sw.jsonl", "--synthesizer", EDITOR, base_url=fake.base_url) == 0
    assert "questions left out (one ok answer is no panel): 1" in capsys.readouterr().err
    lines = read_lines(Path("out/sw.panel.jsonl"))
    assert [line["query_id"] for line in lines] == ["c0", "c2"] and len(fake.requests) == 2
