"""--layout personas: several personas in one call (Solo Performance
Prompting), for any task; its prompt, its wrapped answer, the condition on its
lines, what report, judge and estimate make of it. Against the loopback server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rolebatch.cli import main
from rolebatch.tasks.layout import PERSONAS
from tests.helpers import SECRET_KEY, capital_questions, read_lines, write_job

QUESTIONS = capital_questions(5)
ROLES = [
    {"id": "none", "role": ""},
    {"id": "geo", "role": "You are a geographer."},
]
# What the fake answers a personas request with: the right option (2).
DISCUSSED = {"personas": ["Geographer", "Editor"], "discussion": "We agree.", "option": 2}


def test_the_prompt_names_the_lead_and_the_answer_wraps_the_task_s(rolebatch, fake, tmp_path):
    job = write_job(tmp_path / "q.jsonl", [{**QUESTIONS[0], "role": "You are a geographer."}])
    result = rolebatch(
        str(job), "-o", "o.jsonl", "--task", "choice", "--layout", "personas"
    )  # fmt: skip
    assert result.code == 0, result.err
    (sent,) = fake.requests
    system, user = sent.body["messages"][:2]
    assert system == {"role": "system", "content": PERSONAS}
    for part in ("personas", "in\nturns", "question and correct", "final answer", "Example 2"):
        assert part in system["content"]
    assert user["content"] == (
        "Lead persona: You are a geographer.\n"
        "Task: What is the capital of country 0? Options: 1. Rome, 2. Paris, 3. Oslo."
        " Answer with the number of the right option."
    )
    schema = sent.body["tools"][0]["function"]["parameters"]
    assert list(schema["properties"]) == ["personas", "discussion", "option"]
    assert set(schema["required"]) == {"personas", "discussion", "option"}
    option = schema["properties"]["option"]
    assert (option["minimum"], option["maximum"]) == (1, 3)  # the task's constraint kept
    (line,) = read_lines(Path("o.jsonl"))
    assert list(line["response"]) == ["personas", "discussion", "option"]
    assert line["condition"] == "personas" and line["expected"] == "Paris"


def test_an_answer_out_of_the_task_s_range_is_still_reasked(rolebatch, fake, tmp_path):
    fake.fault(answer={**DISCUSSED, "option": 9}, times=1)
    job = write_job(tmp_path / "q.jsonl", [QUESTIONS[0]])
    assert (
        rolebatch(str(job), "-o", "o.jsonl", "--task", "choice", "--layout", "personas").code == 0
    )
    (line,) = read_lines(Path("o.jsonl"))
    assert line["attempts"] == 2
    assert "less than or equal to 3" in json.dumps(fake.requests[1].body["messages"])


def test_the_control_has_no_lead_and_a_plain_layout_no_condition(rolebatch, fake, tmp_path):
    job = write_job(tmp_path / "q.jsonl", QUESTIONS[:1])
    roles = write_job(tmp_path / "roles.jsonl", ROLES)
    args = (str(job), "--task", "choice", "--roles", str(roles))
    assert rolebatch(*args, "-o", "p.jsonl", "--layout", "personas").code == 0
    control, geo = (r.body["messages"][1]["content"] for r in fake.requests)
    assert control.startswith("Task: What is the capital")
    assert geo.startswith("Lead persona: You are a geographer.\nTask: What is the capital")
    assert {line["condition"] for line in read_lines(Path("p.jsonl"))} == {"personas"}
    fake.reset()
    assert rolebatch(*args, "-o", "plain.jsonl").code == 0
    assert all(PERSONAS not in r.text for r in fake.requests)
    assert all("condition" not in line for line in read_lines(Path("plain.jsonl")))


def test_report_compares_the_personas_condition_with_the_plain_roles(
    rolebatch, fake, tmp_path, capsys
):
    job = write_job(tmp_path / "q.jsonl", QUESTIONS)
    roles = write_job(tmp_path / "roles.jsonl", ROLES)
    args = (str(job), "--task", "choice", "--roles", str(roles))
    assert rolebatch(*args, "-o", "plain.jsonl").code == 0  # the fake answers 1: wrong
    fake.fault(match="Final answer", answer=DISCUSSED)  # personas answers 2: right
    assert rolebatch(*args, "-o", "personas.jsonl", "--layout", "personas").code == 0
    assert main(["report", "plain.jsonl", "personas.jsonl", "--format", "json"]) == 0
    scores = json.loads(capsys.readouterr().out)["scores"]
    assert scores["baseline"] == "none"
    means = {g["key"]: (g["n"], g["mean"]) for g in scores["groups"]}
    assert means == {
        "none": (5, 0.0),
        "geo": (5, 0.0),
        "none+personas": (5, 1.0),
        "geo+personas": (5, 1.0),
    }
    rows = {c["key"]: c for c in scores["comparisons"]}
    differences = {key: (c["n_pairs"], c["diff"]) for key, c in rows.items()}
    assert differences == {"geo": (5, 0.0), "none+personas": (5, 1.0), "geo+personas": (5, 1.0)}
    # Five questions the control missed and personas got: McNemar's exact p, 2 / 2**5.
    assert rows["none+personas"]["p"] == pytest.approx(2 / 2**5)


def test_the_judge_reads_the_task_s_fields_not_the_discussion(rolebatch, fake, tmp_path):
    job = write_job(tmp_path / "q.jsonl", [{"id": "p", "query": "Write a poem about tea."}])
    assert rolebatch(str(job), "-o", "o.jsonl", "--layout", "personas").code == 0
    (line,) = read_lines(Path("o.jsonl"))
    assert set(line["response"]) >= {"personas", "discussion", "poem"}
    Path("rubric.md").write_text("Scale: 1-5\n")
    fake.reset()
    code = main(
        ["judge", "o.jsonl", "--rubric", "rubric.md", "-o", "j.jsonl", "--progress", "none",
         "--base-url", fake.base_url]
    )  # fmt: skip
    assert code == 0
    (judged,) = fake.requests
    shown = judged.body["messages"][1]["content"].split("Answer:\n")[1]
    assert shown == line["response"]["poem"]  # the task's one field, as for a plain run
    assert line["response"]["discussion"] not in judged.text
    (grade,) = read_lines(Path("j.jsonl"))
    assert grade["condition"] == "personas"  # the judge's line is grouped as the answer's


def test_batch_lines_carry_the_condition(rolebatch, fake, tmp_path):
    job = write_job(tmp_path / "q.jsonl", QUESTIONS[:2])
    result = rolebatch(
        str(job), "-o", "o.jsonl", "--task", "choice", "--layout", "personas", "--via", "batch",
        "--poll-interval", "0.01",
    )  # fmt: skip
    assert result.code == 0, result.err
    lines = read_lines(Path("o.jsonl"))
    assert [line["condition"] for line in lines] == ["personas", "personas"]
    assert all(list(line["response"])[:2] == ["personas", "discussion"] for line in lines)


def test_the_estimate_says_a_personas_call_costs_several_plain_ones(
    fake, tmp_path, capsys, monkeypatch
):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET_KEY)
    job = write_job(tmp_path / "q.jsonl", QUESTIONS)
    shown = {}
    for layout in ("system", "personas"):
        argv = ["estimate", str(job), "--task", "choice", "--layout", layout]
        assert main([*argv, "--model", "openai/gpt-4o", "--base-url", fake.base_url]) == 0
        shown[layout] = capsys.readouterr().out
    assert fake.requests == []

    def tokens(text: str, kind: str) -> int:
        line = next(x for x in text.splitlines() if x.strip().startswith(f"{kind} tokens:"))
        return int(line.split(":")[1].split("(")[0].replace(",", ""))

    plain, personas = shown["system"], shown["personas"]
    assert tokens(personas, "completion") == 4 * tokens(plain, "completion")
    # The instructions and examples are counted in every request's prompt.
    assert tokens(personas, "prompt") - tokens(plain, "prompt") >= 5 * len(PERSONAS) / 4 * 0.8
    assert "--layout personas" in personas and "several times a plain one" in personas
    assert "personas" not in plain


def test_an_output_of_one_layout_is_not_resumed_with_another(rolebatch, fake, tmp_path):
    job = write_job(tmp_path / "q.jsonl", QUESTIONS[:1])
    assert rolebatch(str(job), "-o", "o.jsonl", "--task", "choice").code == 0
    result = rolebatch(str(job), "-o", "o.jsonl", "--task", "choice", "--layout", "personas")
    assert result.code == 2 and "layout" in result.err
