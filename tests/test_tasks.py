"""Tasks as data: a multiple-choice question, a short answer, records that
carry their expected answer, the control role, and roles with metadata.
Against the loopback server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import poem_records, read_lines, write_job

QUESTION = {
    "id": "france",
    "query": "What is the capital of France?",
    "options": ["Rome", "Paris", "Oslo"],
    "expected": "Paris",
}


def test_a_choice_puts_the_numbered_options_after_the_query(rolebatch, fake, tmp_path):
    job = write_job(tmp_path / "q.jsonl", [{**QUESTION, "role": "You are a geographer."}])
    result = rolebatch(str(job), "-o", "o.jsonl", "--task", "choice", "--layout", "split")
    assert result.code == 0, result.err
    (sent,) = fake.requests
    system, user = sent.body["messages"][:2]
    assert system == {"role": "system", "content": "You are a geographer."}
    assert user["content"] == (
        "What is the capital of France? Options: 1. Rome, 2. Paris, 3. Oslo."
        " Answer with the number of the right option."
    )
    option = sent.body["tools"][0]["function"]["parameters"]["properties"]["option"]
    assert (option["minimum"], option["maximum"]) == (1, 3)
    (line,) = read_lines(Path("o.jsonl"))
    assert line["response"] == {"option": 1}  # the fake answers the minimum
    assert line["options"] == QUESTION["options"] and line["expected"] == "Paris"


def test_an_option_out_of_range_is_a_validation_error_and_a_reask(rolebatch, fake, tmp_path):
    fake.fault(answer={"option": 7}, times=1)
    job = write_job(tmp_path / "q.jsonl", [QUESTION])
    assert rolebatch(str(job), "-o", "o.jsonl", "--task", "choice").code == 0
    _, reask = fake.requests
    assert "less than or equal to 3" in json.dumps(reask.body["messages"][1:])
    (line,) = read_lines(Path("o.jsonl"))
    assert line["attempts"] == 2 and line["response"] == {"option": 1}


@pytest.mark.parametrize(
    ("record", "problem"),
    [
        ({"query": "q", "options": ["a"], "expected": 1}, "field 'options': expected a list of 2"),
        (
            {"query": "q", "options": ["a", ""], "expected": 1},
            "field 'options': every option must be",
        ),
        ({"query": "q", "options": ["a", "b"], "expected": 3}, "field 'expected': 3 is neither"),
        (
            {"query": "q", "options": ["a", "b"], "expected": "c"},
            "field 'expected': 'c' is neither",
        ),
        ({"query": "q", "options": ["a", "b"]}, "field 'expected': missing"),
        ({"query": "q", "expected": 1}, "field 'options': missing"),
        (
            {"query": "q", "options": ["a", "b"], "expected": 1, "answer": 1},
            "field 'answer': unknown",
        ),
    ],
)
def test_a_choice_job_is_checked_strictly(rolebatch, fake, tmp_path, record, problem):
    job = write_job(tmp_path / "q.jsonl", [record])
    result = rolebatch(str(job), "--task", "choice")
    assert result.code == 2
    assert f"q.jsonl:1: {problem}" in result.err
    assert fake.requests == [] and not Path("out").exists()


def test_a_short_answer_with_accepted_answers(rolebatch, fake, tmp_path, capsys):
    from rolebatch.cli import main

    records = [
        {"id": "moon", "query": "Who walked on the moon first?", "expected": ["Armstrong"]},
        {"id": "fake", "query": "Answer to: Who", "expected": "answer to: who walked on the moon?"},
    ]
    job = write_job(tmp_path / "q.jsonl", records)
    assert rolebatch(str(job), "-o", "o.jsonl", "--task", "answer").code == 0
    assert "Answer in a few words." in fake.requests[0].text
    lines = read_lines(Path("o.jsonl"))
    assert [line["expected"] for line in lines] == [r["expected"] for r in records]
    capsys.readouterr()
    assert main(["report", "o.jsonl", "--format", "json"]) == 0
    (group,) = json.loads(capsys.readouterr().out)["scores"]["groups"]
    assert group["n"] == 2  # exact, the answer task's own scorer
    bad = write_job(tmp_path / "bad.jsonl", [{"query": "q", "expected": []}])
    result = rolebatch(str(bad), "--task", "answer")
    assert result.code == 2 and "field 'expected': expected a non-empty string" in result.err


def test_schema_is_for_the_role_task_only(rolebatch, tmp_path):
    job = write_job(tmp_path / "q.jsonl", [QUESTION])
    result = rolebatch(str(job), "--task", "choice", "--schema", "x.json")
    assert result.code == 2 and "--schema is for --task role" in result.err


def test_the_control_role_sends_the_query_alone(rolebatch, fake, tmp_path):
    job = write_job(tmp_path / "q.jsonl", [{"id": "c", "query": "Write a poem about tea."}])
    roles = write_job(
        tmp_path / "roles.jsonl",
        [
            {"id": "none", "role": "", "metadata": {"kind": "control"}},
            {"id": "poet", "role": "You are a poet.", "metadata": {"kind": "expert"}},
        ],
    )
    assert rolebatch(str(job), "-o", "o.jsonl", "--roles", str(roles)).code == 0
    control, poet = fake.requests
    assert control.body["messages"][0]["content"] == "Write a poem about tea."
    assert poet.body["messages"][0]["content"] == "You are a poet. Write a poem about tea."
    lines = read_lines(Path("o.jsonl"))
    assert [(line["role_id"], line["role"]) for line in lines] == [
        ("none", None),
        ("poet", "You are a poet."),
    ]
    assert [line["role_metadata"] for line in lines] == [{"kind": "control"}, {"kind": "expert"}]


def test_the_seed_task_copies_expected_to_its_line(rolebatch, fake, tmp_path):
    record = {**poem_records(1)[0], "expected": {"rhymes": True}}
    job = write_job(tmp_path / "q.jsonl", [record])
    assert rolebatch(str(job), "-o", "o.jsonl").code == 0
    (line,) = read_lines(Path("o.jsonl"))
    assert line["expected"] == {"rhymes": True}


def test_a_run_of_another_task_is_refused_on_an_output(rolebatch, fake, tmp_path):
    job = write_job(tmp_path / "q.jsonl", [QUESTION])
    assert rolebatch(str(job), "-o", "o.jsonl", "--task", "choice").code == 0
    result = rolebatch(str(job), "-o", "o.jsonl", "--task", "answer")
    assert result.code == 2 and "task was 'choice', now 'answer'" in result.err


def test_the_shards_of_a_choice_job_merge(rolebatch, fake, tmp_path, capsys):
    from rolebatch.cli import main

    questions = [{**QUESTION, "id": f"q{n}"} for n in range(6)]
    job = write_job(tmp_path / "quiz.jsonl", questions)
    for k in (0, 1):
        assert rolebatch(str(job), "--task", "choice", "--shard", f"{k}/2").code == 0
    capsys.readouterr()
    assert main(["merge", str(job), "-o", "m.jsonl"]) == 0
    assert [line["id"] for line in read_lines(Path("m.jsonl"))] == [f"q{n}" for n in range(6)]
