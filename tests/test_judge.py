"""rolebatch judge: a judge grading an earlier run's answers, by a rubric or
head to head in both orders, as an ordinary run (resumable, priced, batch
API), against the loopback server; and what report makes of it."""

from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from rolebatch.cli import main
from rolebatch.evaluate import pairwise
from tests.helpers import SECRET_KEY, queries, read_lines, write_job

ROOT = Path(__file__).resolve().parent.parent
ROLES = [
    {"id": "none", "role": ""},
    {"id": "poet", "role": "You are a renowned poet."},
    {"id": "pirate", "role": "You are a pirate captain."},
]
RUBRIC = "# Poems\nScale: 1-5\n5: vivid and on topic. 1: off topic.\n"


@pytest.fixture
def swept(rolebatch, fake, tmp_path) -> Path:
    """A sweep of 4 questions under the control and two roles, and a rubric."""
    job = write_job(tmp_path / "poems.jsonl", queries(4))
    roles = write_job(tmp_path / "roles.jsonl", ROLES)
    assert rolebatch(str(job), "-o", "sweep.jsonl", "--roles", str(roles)).code == 0
    Path("rubric.md").write_text(RUBRIC)
    fake.reset()
    return Path("sweep.jsonl")


def judge(*args: str, base_url: str) -> int:
    return main(["judge", *args, "--base-url", base_url, "--progress", "none"])


def test_pointwise_grades_every_answer_blind_by_the_rubric(swept, fake, capsys):
    assert judge(str(swept), "--rubric", "rubric.md", "-o", "j.jsonl", base_url=fake.base_url) == 0
    sent = fake.requests
    assert len(sent) == 12
    for request in sent:
        system, user = request.body["messages"][:2]
        assert system["role"] == "system" and "Scale: 1-5" in system["content"]
        assert "score from 1 to 5" in system["content"]
        assert user["content"].startswith("Question: Write a poem about thing")
        # Blind: no role anywhere but inside the answer itself (the fake's answers
        # quote their prompt, role and all).
        shown = system["content"] + user["content"].split("\n\nAnswer:\n")[0]
        assert "poet" not in shown and "pirate" not in shown and "written as" not in shown
        score = request.body["tools"][0]["function"]["parameters"]["properties"]["score"]
        assert (score["minimum"], score["maximum"]) == (1, 5)
    lines = read_lines(Path("j.jsonl"))
    answers = {line["id"]: line for line in read_lines(swept)}
    for line in lines:
        judged = answers[line["judged_id"]]
        assert line["role_id"] == judged["role_id"] and line["judged_model"] == judged["model"]
        assert list(line["response"]) == ["reasoning", "score"]  # reasoning first
    err = capsys.readouterr().err
    assert "the judge is the model that wrote the answers (openai/gpt-4o)" in err
    capsys.readouterr()
    assert main(["report", "j.jsonl", "--score", "field:score", "--format", "json"]) == 0
    scores = json.loads(capsys.readouterr().out)["scores"]
    assert scores["baseline"] == "none"  # the control of the judged sweep
    assert {c["key"] for c in scores["comparisons"]} == {"poet", "pirate"}


def test_show_role_tells_the_judge_who_wrote_it(swept, fake):
    assert (
        judge(
            str(swept),
            "--rubric",
            "rubric.md",
            "--show-role",
            "-o",
            "j.jsonl",
            base_url=fake.base_url,
        )
        == 0
    )
    texts = [r.text for r in fake.requests]
    assert sum("written as: You are a renowned poet." in t for t in texts) == 4
    assert sum("written as: (no role)" in t for t in texts) == 4


def test_pairwise_asks_every_pair_in_both_orders(swept, fake, capsys):
    code = judge(str(swept), "--rubric", "rubric.md", "--against", "none", base_url=fake.base_url)
    assert code == 0
    assert Path("out/sweep.against-none.jsonl").exists()
    orders: Counter = Counter()
    for request in fake.requests:
        user = request.body["messages"][1]["content"]
        first = user.split("Answer A:\n")[1].split("\n\nAnswer B:")[0]
        second = user.split("Answer B:\n")[1]
        assert first != second
        orders[(first, second)] += 1
    assert len(fake.requests) == 16  # 8 answers against the control's, in both orders
    assert all((b, a) in orders for a, b in orders)  # every pair also the other way round
    assert set(orders.values()) == {1}


def test_a_judge_that_always_prefers_the_first_answer_gives_ties_and_no_consistency(
    swept, fake, capsys
):
    # The fake answers the first value of an enum: "A", whatever it was shown.
    assert (
        judge(str(swept), "--rubric", "rubric.md", "--against", "none", base_url=fake.base_url) == 0
    )
    capsys.readouterr()
    assert main(["report", "out/sweep.against-none.jsonl", "--format", "json"]) == 0
    heads = json.loads(capsys.readouterr().out)["pairwise"]
    assert heads["consistency"] == 0.0 and heads["unreliable"] is True
    assert [(r["key"], r["wins"], r["ties"], r["losses"]) for r in heads["rows"]] == [
        ("poet", 0, 4, 0),
        ("pirate", 0, 4, 0),
    ]
    assert main(["report", "out/sweep.against-none.jsonl"]) == 0
    assert "an unreliable judge" in capsys.readouterr().out


def _line(pair: str, role: str, order: str, winner: str | None) -> dict:
    return {
        "id": f"{pair}~{order}",
        "status": "ok" if winner else "error",
        "response": {"reasoning": "r", "winner": winner} if winner else None,
        "role_id": role,
        "pair": pair,
        "order": order,
        "against": "none",
        "judged_id": pair,
    }


def test_pairwise_figures_against_a_computation_of_their_own(tmp_path, capsys):
    # Per pair the two orders' winners: (ab, ba).  In ``ab`` the answer is A.
    plan = {
        "poet": [("A", "B")] * 9 + [("B", "A")] * 2 + [("A", "A")] * 3 + [("tie", "B")] * 1,
        "pirate": [("B", "A")] * 6 + [("A", "B")] * 1 + [("B", "B")] * 4,
    }
    lines = []
    for role, pairs in plan.items():
        for n, (ab, ba) in enumerate(pairs):
            lines += [_line(f"q{n}@{role}", role, "ab", ab), _line(f"q{n}@{role}", role, "ba", ba)]
    lines.append(_line("q99@poet", "poet", "ab", "A"))  # its other order never came
    path = write_job(tmp_path / "heads.jsonl", lines)
    assert main(["report", str(path), "--format", "json"]) == 0
    heads = json.loads(capsys.readouterr().out)["pairwise"]
    rows = {r["key"]: r for r in heads["rows"]}
    expected = {"poet": (9, 4, 2), "pirate": (1, 4, 6)}  # wins, ties, losses
    ps = {}
    for role, (wins, ties, losses) in expected.items():
        row = rows[role]
        assert (row["wins"], row["ties"], row["losses"]) == (wins, ties, losses)
        n = wins + losses
        assert row["win_rate"] == pytest.approx(wins / n)
        tail = sum(math.comb(n, i) for i in range(min(wins, losses) + 1)) / 2**n
        ps[role] = min(1.0, 2 * tail)
        assert row["p"] == pytest.approx(ps[role])
    low, high = sorted(ps.values())
    assert rows[min(ps, key=ps.get)]["p_holm"] == pytest.approx(min(1.0, 2 * low))
    assert rows[max(ps, key=ps.get)]["p_holm"] == pytest.approx(max(min(1.0, 2 * low), high))
    agreed = 9 + 2 + 1 + 6  # both orders named the same answer: 9 and 2, 1 and 6
    assert heads["consistency"] == pytest.approx(agreed / 26)
    assert heads["incomplete"] == 1
    assert main(["report", str(path), "--format", "html"]) == 0
    page = capsys.readouterr().out
    head = page.split("Head to head against none")[1]
    bars, rates = (part.split("</svg>")[0] for part in head.split("<svg")[1:3])
    assert sorted(re.findall(r'data-group="([^"]+)"', bars)) == ["pirate", "poet"]
    assert bars.count('class="won"') == 2 and bars.count('class="lost"') == 2
    assert sorted(re.findall(r'data-group="([^"]+)"', rates)) == ["pirate", "poet"]
    assert rates.count('class="interval"') == 2


def test_one_order_s_verdict_is_read_from_the_answer_s_side():
    assert pairwise.verdict_of(_line("p", "r", "ab", "A")) == pairwise.WON
    assert pairwise.verdict_of(_line("p", "r", "ba", "A")) == pairwise.LOST
    assert pairwise.verdict_of(_line("p", "r", "ba", "tie")) == pairwise.TIED
    assert pairwise.verdict_of(_line("p", "r", "ab", None)) is None


def test_the_judge_model_is_its_own_and_a_score_out_of_the_scale_is_reasked(swept, fake, capsys):
    fake.fault(answer={"reasoning": "fine", "score": 9}, times=1)
    code = judge(
        str(swept), "--rubric", "rubric.md", "--model", "openai/gpt-4o-mini", "-o", "j.jsonl",
        base_url=fake.base_url,
    )  # fmt: skip
    assert code == 0
    assert {r.body["model"] for r in fake.requests} == {"gpt-4o-mini"}
    assert "judge is the model that wrote" not in capsys.readouterr().err
    lines = read_lines(Path("j.jsonl"))
    assert sorted(line["attempts"] for line in lines) == [1] * 11 + [2]
    assert {line["model"] for line in lines} == {"openai/gpt-4o-mini"}


def test_a_judged_output_resumes_and_another_rubric_is_refused(swept, fake, capsys):
    args = (str(swept), "--rubric", "rubric.md", "-o", "j.jsonl")
    assert judge(*args, base_url=fake.base_url) == 0
    fake.reset()
    assert judge(*args, base_url=fake.base_url) == 0
    assert fake.requests == [] and "already done" in capsys.readouterr().err
    Path("rubric.md").write_text(RUBRIC + "Be strict.\n")
    assert judge(*args, base_url=fake.base_url) == 2
    assert "rubric_sha256 was" in capsys.readouterr().err


def test_a_judge_killed_mid_run_resumes_without_buying_a_judgement_twice(swept, fake):
    fake.state.latency = 0.2
    env = {**os.environ, "OPENAI_API_KEY": SECRET_KEY, "PYTHONPATH": str(ROOT)}
    args = ["judge", str(swept), "--rubric", "rubric.md", "-o", "j.jsonl", "--concurrency", "2"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "rolebatch", *args, "--base-url", fake.base_url],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while not Path("j.jsonl").exists() or len(Path("j.jsonl").read_text().splitlines()) < 4:
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    written = {line["id"] for line in read_lines(Path("j.jsonl"))}
    assert 4 <= len(written) < 12
    before = len(fake.requests)
    fake.state.latency = 0.0
    assert judge(str(swept), "--rubric", "rubric.md", "-o", "j.jsonl", base_url=fake.base_url) == 0
    # Each answer's text says which answer a request judged.
    answer_of = {line["response"]["poem"]: line["id"] for line in read_lines(swept)}
    asked = {
        answer_of[r.body["messages"][1]["content"].split("Answer:\n")[1]]
        for r in fake.requests[before:]
    }
    assert not asked & written  # nothing judged before the kill was bought again
    assert sorted(line["id"] for line in read_lines(Path("j.jsonl"))) == sorted(answer_of.values())


def test_batch_judges_at_half_price(swept, fake, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET_KEY)
    code = judge(
        str(swept), "--rubric", "rubric.md", "-o", "j.jsonl", "--via", "batch", "--poll-interval",
        "0.01", base_url=fake.base_url,
    )  # fmt: skip
    assert code == 0
    assert len(fake.state.batches.batches) == 1
    for line in read_lines(Path("j.jsonl")):
        usage = line["usage"]
        half = (usage["prompt_tokens"] * 1.25 + usage["completion_tokens"] * 5) / 1e6
        assert line["cost_usd"] == pytest.approx(half, rel=1e-9)  # gpt-4o at the batch rate
        assert line["batch_id"]


def test_what_is_not_an_output_or_has_no_such_role_is_refused(swept, fake, capsys):
    Path("plain.jsonl").write_text('{"query": "q"}\n')
    assert judge("plain.jsonl", "--rubric", "rubric.md", base_url=fake.base_url) == 2
    assert "not an output of rolebatch run" in capsys.readouterr().err
    assert (
        judge(str(swept), "--rubric", "rubric.md", "--against", "chef", base_url=fake.base_url) == 2
    )
    assert "--against 'chef'" in capsys.readouterr().err
    assert list(Path("out").glob("*.tmp")) == []  # the records half written are gone
    assert judge(str(swept), "--rubric", "nowhere.md", base_url=fake.base_url) == 2
    assert fake.requests == []


def test_an_estimate_of_the_judging_sends_and_writes_nothing(swept, fake, capsys):
    code = judge(str(swept), "--rubric", "rubric.md", "--estimate", base_url=fake.base_url)
    assert code == 0
    shown = capsys.readouterr().out
    assert "records: 12, 12 to do" in shown and "through the batch API" in shown
    assert shown.startswith("rolebatch estimate: sweep.jsonl with openai/gpt-4o")
    assert fake.requests == []
    assert not Path("out").exists()  # not even the judge's records
    # Judged: the estimate reads the output a run writes, and finds it done.
    assert judge(str(swept), "--rubric", "rubric.md", base_url=fake.base_url) == 0
    capsys.readouterr()
    assert judge(str(swept), "--rubric", "rubric.md", "--estimate", base_url=fake.base_url) == 0
    shown = capsys.readouterr().out
    assert "0 to do; 12 already done in out/sweep.judged.jsonl" in shown
