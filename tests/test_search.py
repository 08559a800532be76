"""``rolebatch search``: the split, the race, the held-out verdict, against
the fake server with planted per-role accuracy (``tests.fakes.chat.World``);
what a search buys (never twice, kill -9 included), its budget, its page,
its estimate and proposed roles; and the method's error rates over seeded
worlds (the full worlds are ``python -m bench search``)."""

from __future__ import annotations

import itertools
import json
import math
import random
import signal
from collections import Counter
from pathlib import Path

import pytest

from rolebatch.cli import main
from rolebatch.evaluate import stats
from rolebatch.search.race import Race, calls, schedule
from rolebatch.search.split import Question, split
from tests.fakes.chat import World
from tests.helpers import (
    SECRET_KEY,
    browser,
    chromium,
    newcombe_ci,
    read_lines,
    spawn,
    wait_for_lines,
    write_job,
)

GOOD = "You are the one role that knows."
BAD = "You are a role that misleads."


def questions(n: int, prefix: str = "q") -> list[dict]:
    """Choice questions whose right option is 1 (as ``World`` plants it)."""
    return [
        {
            "id": f"{prefix}{i}",
            "query": f"Which is right, question {prefix}{i}?",
            "options": ["right", "wrong", "other"],
            "expected": 1,
            "metadata": {"part": "a" if i % 3 else "b"},
        }
        for i in range(n)
    ]


def roles_file(path: Path, count: int, good: bool = True, control: bool = True) -> Path:
    rows = [{"id": "none", "role": ""}] if control else []
    for i in range(count):
        text = f"You are ordinary role number {i}."
        if good and i == 2:
            text = GOOD
        if good and i == 5:
            text = BAD
        rows.append({"id": f"r{i}", "role": text})
    return write_job(path, rows)


@pytest.fixture
def searching(capsys, fake, monkeypatch, tmp_path):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET_KEY)

    def invoke(*args: str, job: str = "quiz.jsonl", roles: str | None = "roles.jsonl"):
        argv = ["search", job, "--task", "choice", "--model", "openai/gpt-4o"]
        argv += ["--base-url", fake.base_url, "--progress", "none", "-o", "found"]
        if roles:
            argv += ["--roles", roles]
        code = main([*argv, *args])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return invoke


ENV = {"OPENAI_API_KEY": SECRET_KEY}


def search_args(fake, *extra: str) -> list[str]:
    """``rolebatch search`` of quiz.jsonl into found/, as a process of its own."""
    args = ["search", "quiz.jsonl", "--roles", "roles.jsonl", "--task", "choice"]
    args += ["--model", "openai/gpt-4o", "--base-url", fake.base_url, "-o", "found"]
    return [*args, "--progress", "none", *extra]


def asked_pairs(fake) -> Counter:
    """(question id, role text) of every request answered, counted."""
    found: Counter = Counter()
    for request in fake.requests:
        if request.status != 200 or request.usage is None:
            continue
        text = request.text
        qid = text.split("question ")[1].split("?")[0]
        role = next((r for r in _role_texts() if r in text), "")
        found[(qid, role)] += 1
    return found


def _role_texts() -> list[str]:
    return [GOOD, BAD, *(f"You are ordinary role number {i}." for i in range(40))]


# -- the parts -------------------------------------------------------------


def test_the_schedule_halves_the_candidates_and_doubles_the_questions():
    for k, n in [(30, 150), (9, 30), (2, 10), (3, 30), (40, 500), (1, 7), (5, 3), (17, 1000)]:
        plan = schedule(k, n)
        assert plan[0][0] == k and plan[-1][1] <= n
        assert plan[-1][0] == 1 or plan[-1][1] == n  # it ends on one, or the part spent
        for (a, q), (b, r) in itertools.pairwise(plan):
            assert b == math.ceil(a / 2) and r == min(n, 2 * q) and r > q
        first = plan[0][1]
        halvings = max(1, math.ceil(math.log2(k))) if k > 1 else 1
        assert first == min(n, max(math.ceil(n / 5), math.ceil(n / 2 ** (halvings - 1))))
        by_hand, before = 0, 0
        for alive, end in plan:
            by_hand += (alive + 1) * (end - before)
            before = end
        assert calls(k, n) == by_hand
    assert schedule(30, 150) == [(30, 30), (15, 60), (8, 120), (4, 150)]


def test_the_race_keeps_the_better_half_and_picks_the_leader():
    race = Race([f"c{i}" for i in range(6)], 40, seed=3)
    first = race.next_round()
    assert first is not None and (first.start, first.end) == (0, 10) and len(first.alive) == 6
    means = {"c0": (0.1, 10), "c1": (0.9, 10), "c2": (0.5, 10), "c3": (0.7, 10)}
    means |= {"c4": (0.3, 10), "c5": (0.6, 10)}
    standing = race.scored(means)
    assert [s.role for s in standing] == ["c1", "c3", "c5", "c2", "c4", "c0"]
    assert [s.kept for s in standing] == [True] * 3 + [False] * 3
    second = race.next_round()
    assert second is not None and set(second.alive) == {"c1", "c3", "c5"}
    assert (second.start, second.end) == (10, 20)
    race.scored({"c1": (0.6, 20), "c3": (0.8, 20), "c5": (math.nan, 0)})
    third = race.next_round()
    assert (
        third is not None and third.alive == ("c1", "c3") and (third.start, third.end) == (20, 40)
    )
    race.scored({"c1": (0.7, 40), "c3": (0.65, 40)})
    assert race.pick == "c1" and race.next_round() is None
    assert race.dropped_in() == {"c0": 1, "c2": 1, "c4": 1, "c5": 2, "c3": 3}


def test_ties_are_broken_by_the_seed_not_by_the_roles_file_order():
    picks = set()
    for seed in range(12):
        race = Race(["a", "b", "c", "d"], 10, seed)
        race.scored({role: (0.5, 5) for role in "abcd"})
        race.scored({role: (0.5, 10) for role in race.next_round().alive})
        picks.add(race.pick)
    assert len(picks) > 1


def test_the_split_is_seeded_disjoint_whole_and_stratified():
    qs = [Question(i + 1, f"q{i}", "a" if i % 4 else "b") for i in range(101)]
    one = split(qs, 0.5, seed=7, strata="part")
    again = split(qs, 0.5, seed=7, strata="part")
    other = split(qs, 0.5, seed=8, strata="part")
    assert one == again and one != other
    ids = [q.id for q in one.search] + [q.id for q in one.held_out]
    assert sorted(ids) == sorted(q.id for q in qs) and len(set(ids)) == len(ids)
    assert len(one.held_out) == round(0.5 * 101)
    for stratum in ("a", "b"):
        size = sum(q.stratum == stratum for q in qs)
        held = sum(q.stratum == stratum for q in one.held_out)
        assert abs(held - 0.5 * size) <= 1
    assert len(split(qs, 0.2, seed=0).held_out) == 20
    plain = split(qs, 0.5, seed=7)
    assert [q.id for q in plain.search] != [q.id for q in qs if q in plain.search]  # shuffled


# -- end to end against the fake -------------------------------------------


def test_a_search_finds_the_planted_role_and_confirms_it_on_questions_it_never_saw(
    searching, fake, tmp_path
):
    fake.state.world = World({GOOD: 0.97, BAD: 0.1}, control=0.5, seed=1)
    write_job(tmp_path / "quiz.jsonl", questions(80))
    roles_file(tmp_path / "roles.jsonl", 9)
    code, out, err = searching("--format", "json")
    assert code == 0, err
    found = json.loads(out)
    decision = found["decision"]
    assert decision["role"] == "r2" and decision["verdict"] == "better"
    assert decision["line"].startswith("use r2: +")
    state = json.loads((tmp_path / "found" / "search.json").read_text())
    held_ids = set(state["setup"]["split"]["held_out"])
    search_ids = state["setup"]["split"]["search"]
    assert len(held_ids) == 40 and not held_ids & set(search_ids)

    pairs = asked_pairs(fake)
    assert max(pairs.values()) == 1  # nothing asked twice
    # The held-out questions went to the pick and the control only, after the race.
    held_roles = {role for (qid, role) in pairs if qid in held_ids}
    assert held_roles == {GOOD, ""}
    # A dropped candidate was asked nothing after the round it was dropped in.
    ends = {r["round"]: r["questions"][1] for r in state["race"]["rounds"]}
    for role, round_out in _dropped(state).items():
        text = f"You are ordinary role number {role[1:]}." if role not in ("r2", "r5") else None
        text = text or (GOOD if role == "r2" else BAD)
        asked = {qid for (qid, r) in pairs if r == text}
        assert asked == set(search_ids[: ends[round_out]])

    # The held-out verdict is McNemar's exact test and Newcombe's interval,
    # computed here from the held-out lines by hand.
    by = {}
    for line in read_lines(tmp_path / "found" / "held-out.jsonl"):
        qid = line["id"].split("@")[0]
        by.setdefault(qid, {})[line["role_id"]] = float(line["response"]["option"] == 1)
    both = sum(1 for v in by.values() if v["r2"] == v["none"] == 1)
    only = sum(1 for v in by.values() if v["r2"] > v["none"])
    lost = sum(1 for v in by.values() if v["r2"] < v["none"])
    neither = len(by) - both - only - lost
    n = only + lost
    tail = sum(math.comb(n, k) for k in range(0, min(only, lost) + 1)) / 2**n
    held = found["held_out"]
    assert held["n"] == 40 and held["test"] == "mcnemar-exact"
    assert held["p"] == pytest.approx(min(1.0, 2 * tail))
    assert held["diff"] == pytest.approx((only - lost) / 40)
    low, high = newcombe_ci(both, only, lost, neither)
    assert (held["ci_low"], held["ci_high"]) == (pytest.approx(low), pytest.approx(high))
    # The cost against a full sweep: every line bought, counted.
    assert found["cost"]["calls"] == sum(pairs.values()) == found["cost"]["planned_calls"]
    assert found["cost"]["full_sweep_calls"] == 10 * 80
    # report of the folder says the same, decision first.
    assert main(["report", "found"]) == 0


def _dropped(state: dict) -> dict[str, int]:
    return {
        s["role"]: r["round"]
        for r in state["race"]["rounds"]
        for s in r["standing"]
        if not s["kept"]
    }


def test_the_same_command_again_buys_nothing_and_says_the_same(searching, fake, tmp_path):
    fake.state.world = World({GOOD: 0.9}, control=0.5, seed=2)
    write_job(tmp_path / "quiz.jsonl", questions(40))
    roles_file(tmp_path / "roles.jsonl", 5)
    code, first, _ = searching()
    asked = len(fake.requests)
    code_again, again, _ = searching()
    assert (code, code_again) == (0, 0)
    assert len(fake.requests) == asked and again == first


def test_a_role_worse_than_none_is_said_and_fails_the_ci_job(searching, fake, tmp_path):
    worse = {f"You are ordinary role number {i}.": 0.2 for i in range(4)}
    fake.state.world = World(worse, control=0.95, seed=3)  # each role far worse than none
    write_job(tmp_path / "quiz.jsonl", questions(40))
    roles_file(tmp_path / "roles.jsonl", 4, good=False)
    code, out, err = searching("--fail-if-none", "--format", "md")
    assert code == 1
    assert out.splitlines()[0].startswith("**r") and " is worse than no role on 20 held-out" in out
    assert "use none" in out.splitlines()[0]
    assert "--fail-if-none" in err
    code, out, _ = searching("--format", "json")  # without the flag: a decision, exit 0
    assert code == 0 and json.loads(out)["decision"]["role"] is None
    assert json.loads(out)["decision"]["verdict"] == "worse"


def test_a_search_killed_mid_round_goes_on_without_buying_a_written_answer_again(fake, tmp_path):
    """kill -9 while round 2 is being bought (one request at a time, so at
    most the one in flight is lost); the same command then finishes, and
    every answer that was in an output before the kill was bought once."""
    fake.state.world = World({GOOD: 0.9}, control=0.5, seed=4)
    fake.state.latency = 0.01
    write_job(tmp_path / "quiz.jsonl", questions(48))
    roles_file(tmp_path / "roles.jsonl", 6)
    args = search_args(fake, "--concurrency", "1")
    proc = spawn(*args, env=ENV, cwd=tmp_path)
    round_two = tmp_path / "found" / "round-2.jsonl"
    wait_for_lines(round_two, proc, 3)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    written = {
        (line["id"].split("@")[0], line["role_id"])
        for path in (tmp_path / "found").glob("round-*.jsonl")
        if not path.name.endswith((".questions.jsonl", ".roles.jsonl"))
        for line in read_lines(path)
    }
    assert len(written) >= 3
    fake.state.latency = 0.0
    again = spawn(*args, env=ENV, cwd=tmp_path)
    _, err = again.communicate(timeout=120)
    assert again.returncode == 0, err
    pairs = asked_pairs(fake)
    twice = [pair for pair, count in pairs.items() if count > 1]
    assert len(twice) <= 1  # at most the one request in flight at the kill
    roles = {line["id"]: line["role"] for line in read_lines(tmp_path / "roles.jsonl")}
    for qid, role_id in written:
        assert pairs[(qid, roles[role_id])] == 1
    # The same search uninterrupted, in another folder, finds the same.
    fake.requests.clear()
    fresh = spawn(*[a if a != "found" else "other" for a in args], env=ENV, cwd=tmp_path)
    fresh.communicate(timeout=120)
    mine = json.loads((tmp_path / "found" / "search.json").read_text())
    theirs = json.loads((tmp_path / "other" / "search.json").read_text())
    assert mine["race"] == theirs["race"] and mine["decision"] == theirs["decision"]


def test_the_budget_stops_the_race_with_its_leader_not_confirmed_and_more_goes_on(
    searching, fake, tmp_path
):
    fake.state.world = World({GOOD: 0.9}, control=0.5, seed=5)
    write_job(tmp_path / "quiz.jsonl", questions(40))
    roles_file(tmp_path / "roles.jsonl", 6)
    code, out, err = searching("--price", "1000/1000", "--max-cost", "2", "--format", "json")
    assert code == 3, err
    found = json.loads(out)
    assert found["status"] == "budget reached"
    assert found["decision"]["confirmed"] is False and found["decision"]["verdict"] is None
    assert found["decision"]["line"].startswith("not decided:")
    assert found["cost"]["usd"] <= 2
    before = len(fake.requests)
    assert before < found["cost"]["planned_calls"]
    code, out, err = searching("--price", "1000/1000", "--max-cost", "100", "--format", "json")
    assert code == 0, err
    assert json.loads(out)["decision"]["confirmed"] is True
    assert max(asked_pairs(fake).values()) == 1


def test_a_changed_search_in_the_same_folder_is_refused(searching, fake, tmp_path):
    fake.state.world = World({GOOD: 0.9}, control=0.5, seed=6)
    write_job(tmp_path / "quiz.jsonl", questions(20))
    roles_file(tmp_path / "roles.jsonl", 3)
    assert searching()[0] == 0
    code, _, err = searching("--seed", "9")
    assert code == 2 and "another seed, the split" in err and "--fresh" in err


def test_the_estimate_is_what_the_search_then_asks(searching, fake, tmp_path):
    fake.state.world = World({GOOD: 0.9}, control=0.5, seed=7)
    write_job(tmp_path / "quiz.jsonl", questions(60))
    roles_file(tmp_path / "roles.jsonl", 9)
    code, out, _ = searching("--estimate", "--format", "json", "--price", "1/2")
    assert code == 0
    told = json.loads(out)
    assert not fake.requests and not (tmp_path / "found" / "search.json").exists()
    assert told["worst_case"]["calls"] == calls(9, 30) + 60
    assert told["full_sweep"]["calls"] == 10 * 60
    assert [r["calls"] for r in told["rounds"]] == [10 * 6, 6 * 6, 4 * 12, 3 * 6]
    assert searching()[0] == 0
    assert len(asked_pairs(fake)) == told["worst_case"]["calls"]
    code, out, _ = searching("--estimate", "--format", "json", "--price", "1/2")
    assert json.loads(out)["already_in_folder"] == told["worst_case"]["calls"]


def test_proposed_roles_are_kept_before_any_is_asked_and_read_only_the_search_part(
    searching, fake, tmp_path
):
    fake.state.world = World({GOOD: 0.9}, control=0.5, seed=8)
    write_job(tmp_path / "quiz.jsonl", questions(30))
    proposal = {
        "roles": [
            {"id": "Teacher", "role": "You are a patient teacher.", "kind": "in-domain occupation"},
            {"id": "teacher", "role": "You are talking to a teacher.", "kind": "audience framing"},
            {"id": "dup", "role": "You are  a patient teacher.", "kind": "in-domain occupation"},
            {"id": "knows", "role": GOOD, "kind": "speaker framing"},
        ]
    }
    fake.fault(match="You design experiments", answer=proposal)
    code, _, err = searching("--propose", "3", "--estimate", roles=None)
    assert code == 2 and "propose first" in err and not fake.requests
    code, _, err = searching("--propose", "3", "--propose-only", roles=None)
    assert code == 0, err
    rows = read_lines(tmp_path / "found" / "proposed-roles.jsonl")
    assert [r["id"] for r in rows] == ["none", "teacher", "teacher-2", "knows"]
    assert rows[0]["role"] == "" and "patient teacher" in err
    (ask,) = fake.requests
    held = json.loads((tmp_path / "found" / "proposal.questions.jsonl").read_text())
    assert held["id"] == "proposal"
    state_split = split(
        [Question(i + 1, f"q{i}") for i in range(30)], 0.5, seed=0
    )  # the same split the search makes
    for q in state_split.held_out:
        assert f"question {q.id}?" not in ask.text
    assert any(f"question {q.id}?" in ask.text for q in state_split.search)
    code, out, _ = searching("--propose", "3", "--estimate", "--format", "json", roles=None)
    assert code == 0 and json.loads(out)["candidates"] == 3
    code, out, err = searching("--propose", "3", roles=None)  # the proposal is read back
    assert code == 0, err
    assert sum("You design experiments" in r.text for r in fake.requests) == 1
    assert "use knows" in out.splitlines()[0]


# -- the method's error rates, over seeded worlds ---------------------------


def _world(rng: random.Random, chances: list[float], n: int) -> list[list[float]]:
    return [[float(rng.random() < p) for _ in range(n)] for p in chances]


def _search(answers: list[list[float]], seed: int, questions: int) -> tuple[int, str, Race]:
    """The search's steps on answers drawn here: split, race, the held-out test."""
    parts = split([Question(i + 1, i) for i in range(questions)], 0.5, seed)
    race = Race([str(c) for c in range(1, len(answers))], len(parts.search), seed)
    while (asked := race.next_round()) is not None:
        shared = [q.id for q in parts.search[: asked.end]]
        race.scored(
            {
                c: (sum(answers[int(c)][q] for q in shared) / len(shared), len(shared))
                for c in asked.alive
            }
        )
    pick = int(race.pick)
    held = [q.id for q in parts.held_out]
    found = stats.compare([answers[pick][q] for q in held], [answers[0][q] for q in held])
    return pick, stats.verdict(found.diff, found.p), race


def test_in_a_null_world_better_is_said_at_most_alpha_of_the_time():
    """30 candidates all as good as the control: a false "better" in at most
    alpha = 0.05 of the worlds, within its binomial interval (two-sided test:
    about 0.025 expected)."""
    worlds, better = 200, 0
    for seed in range(worlds):
        rng = random.Random(seed)
        answers = _world(rng, [0.6] * 31, 120)
        better += _search(answers, seed, 120)[1] == "better"
    # Past this count, a rate of 0.05 is refuted at 1 % (binomial upper tail).
    most = next(
        k
        for k in range(worlds + 1)
        if sum(
            math.comb(worlds, j) * 0.05**j * 0.95 ** (worlds - j) for j in range(k + 1, worlds + 1)
        )
        < 0.01
    )
    assert better <= most, (better, most)


def test_one_good_role_is_found_and_confirmed_for_under_30_percent_of_a_sweep():
    """One of 30 at 0.75, two at 0.45, the rest at 0.60 as the control, on
    300 questions half held out: found and confirmed in about 0.70 of the
    worlds (the held-out half's own power, exact McNemar, is about 0.76: the
    most any pick could give), for 0.26 of a full sweep's calls; the two bad
    roles are dropped after the first round.  (bench search: the full runs.)"""
    chances = [0.6, 0.75, 0.45, 0.45, *[0.6] * 27]
    worlds, found, bad_asked = 200, 0, []
    for seed in range(worlds):
        answers = _world(random.Random(1000 + seed), chances, 300)
        pick, verdict, race = _search(answers, seed, 300)
        found += pick == 1 and verdict == "better"
        ends = {played.number: played.end for played, _ in race.played}
        bad_asked += [ends[race.dropped_in()[bad]] for bad in ("2", "3")]
    share = (calls(30, 150) + 300) / (31 * 300)
    assert share <= 0.30
    # 0.70 less 2.5 binomial standard errors of 200 worlds: a race that lost
    # the good role twice as often as this one fails here.
    assert found / worlds >= 0.70 - 2.5 * math.sqrt(0.7 * 0.3 / worlds), found
    # The two bad roles: asked the first round's 30 questions, rarely more.
    assert sum(bad_asked) / len(bad_asked) < 35


def test_two_good_roles_close_together_either_is_a_good_pick():
    chances = [0.6, 0.75, 0.74, *[0.6] * 28]
    worlds, either, first = 100, 0, 0
    for seed in range(worlds):
        pick, verdict, _ = _search(_world(random.Random(2000 + seed), chances, 300), seed, 300)
        either += pick in (1, 2) and verdict == "better"
        first += pick == 1
    assert either / worlds >= 0.6
    assert 0.2 <= first / worlds <= 0.8  # a best role, not the best: the noise decides


def test_the_search_part_flatters_the_pick_and_the_held_out_part_does_not():
    """The winner's curse, measured: in null worlds the pick's difference
    from the control on the search part is well above 0, on the held-out
    part about 0."""
    searched, held = [], []
    for seed in range(100):
        answers = _world(random.Random(3000 + seed), [0.6] * 31, 120)
        pick = _search(answers, seed, 120)[0]
        parts = split([Question(i + 1, i) for i in range(120)], 0.5, seed)
        for part, into in ((parts.search, searched), (parts.held_out, held)):
            ids = [q.id for q in part]
            into.append(sum(answers[pick][q] - answers[0][q] for q in ids) / len(ids))
    assert sum(searched) / len(searched) > 0.08
    assert abs(sum(held) / len(held)) < 0.03


# -- how it ends, and what it refuses ---------------------------------------


def test_every_ending_leaves_the_same_summary_json(searching, fake, tmp_path, monkeypatch):
    fake.state.world = World({GOOD: 0.9}, control=0.5, seed=9)
    write_job(tmp_path / "quiz.jsonl", questions(30))
    roles_file(tmp_path / "roles.jsonl", 4)
    summary = tmp_path / "summary.json"
    steps = tmp_path / "steps.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(steps))
    endings = [
        (("--holdout", "0.5", "--strata", "subject"), 2, "refused"),
        (("--price", "1000/1000", "--max-cost", "1"), 3, "stopped"),
        ((), 0, "ok"),
        (("--fail-if-none", "--seed", "0"), 0, "ok"),
    ]
    keys = None
    for extra, code, status in endings:
        got, _, err = searching(*extra, "--summary-json", str(summary))
        assert got == code, err
        data = json.loads(summary.read_text())
        assert data["status"] == status and data["exit_code"] == code
        assert keys is None or set(data) == keys
        keys = set(data)
        assert not list(tmp_path.rglob("*.tmp"))
    assert data["decision"]["role"] == "r2" and data["cost"]["calls"] > 0
    assert steps.read_text().count("### rolebatch search") == 3  # stopped, ok, ok
    assert "**use r2:" in steps.read_text()


def test_bad_input_is_refused_naming_the_file_and_line_before_anything_is_bought(
    searching, fake, tmp_path
):
    records = questions(10)
    records[3]["role"] = "You are a role of its own."
    write_job(tmp_path / "quiz.jsonl", records)
    roles_file(tmp_path / "roles.jsonl", 3)
    code, _, err = searching()
    assert code == 2 and "quiz.jsonl:4: field 'role'" in err
    write_job(tmp_path / "quiz.jsonl", questions(10))
    code, _, err = searching("--strata", "metadata.subject")
    assert code == 2 and "quiz.jsonl:1: field 'metadata.subject': missing" in err
    write_job(tmp_path / "two.jsonl", [{"id": "a", "role": ""}, {"id": "b", "role": ""}])
    code, _, err = searching(roles="two.jsonl")
    assert code == 2 and "2 controls" in err
    code, _, err = searching(job="quiz.jsonl", roles=None)
    assert code == 2 and "--roles" in err
    code, _, err = searching("--task", "role")
    assert code == 2 and "needs --score" in err
    assert not fake.requests and not (tmp_path / "found" / "search.json").exists()


def test_strata_split_each_stratum_in_the_job_s_proportions(searching, fake, tmp_path):
    fake.state.world = World({GOOD: 0.9}, control=0.5, seed=10)
    write_job(tmp_path / "quiz.jsonl", questions(60))  # part b: every third
    roles_file(tmp_path / "roles.jsonl", 3)
    code, _, err = searching("--strata", "metadata.part", "--holdout", "0.25")
    assert code == 0, err
    split_ids = json.loads((tmp_path / "found" / "search.json").read_text())["setup"]["split"]
    held = split_ids["held_out"]
    assert len(held) == 15
    assert sum(int(q[1:]) % 3 == 0 for q in held) == 5  # 20 of part b, a quarter held out


def test_a_search_through_the_batch_api_and_then_from_the_cache_buys_each_answer_once(
    searching, fake, tmp_path
):
    fake.state.world = World({GOOD: 0.95}, control=0.4, seed=12)
    write_job(tmp_path / "quiz.jsonl", questions(24))
    roles_file(tmp_path / "roles.jsonl", 3)
    code, out, err = searching("--via", "batch", "--poll-interval", "0.01", "--cache", "cache")
    assert code == 0, err
    ids = fake.state.batches.custom_ids()
    assert len(ids) == len(set(ids)) > 0
    first = out.splitlines()[0]
    code, again, err = searching("--cache", "cache", "-o", "elsewhere")
    assert code == 0, err
    assert not [r for r in fake.requests if "/chat/completions" in r.path]  # all from the cache
    assert again.splitlines()[0] == first


def test_the_page_draws_the_race_and_the_verdict_in_a_real_browser(searching, fake, tmp_path):
    fake.state.world = World({GOOD: 0.97, BAD: 0.1}, control=0.5, seed=13)
    write_job(tmp_path / "quiz.jsonl", questions(60))
    roles_file(tmp_path / "roles.jsonl", 9)
    assert searching()[0] == 0
    page = tmp_path / "search.html"
    assert main(["report", "found", "--format", "html", "-o", str(page)]) == 0
    state = json.loads((tmp_path / "found" / "search.json").read_text())
    measured = tmp_path / "measured.html"
    ask = (
        "<script>document.body.dataset.overflowing = [...document.querySelectorAll('.scroll')]"
        ".filter(e => e.scrollWidth > e.clientWidth).length;"
        "document.body.dataset.drawn = [...document.querySelectorAll('svg.race polyline')]"
        ".filter(e => e.getBBox().width > 0 || e.points.length == 1).length;</script>"
    )
    measured.write_text(page.read_text().replace("</body>", ask + "</body>"))
    args = ["--dump-dom", "--window-size=1200,900", measured.as_uri()]
    dom = chromium(browser(), tmp_path / "profile", *args).stdout
    assert 'data-overflowing="0"' in dom
    lines = len(state["setup"]["candidates"]) + 1  # every candidate and the control
    assert f'data-drawn="{lines}"' in dom
    assert dom.count('class="drop"') == len(_dropped(state))
    assert 'data-verdict="better"' in dom and "use r2: +" in dom
    assert dom.count('data-role="r2"') == 1


def test_the_rounds_take_the_job_s_records_as_they_are(searching, fake, tmp_path):
    """A byte-order mark, CRLF ends, a line separator inside a string and a
    record without an id all reach the rounds' job files whole."""
    fake.state.world = World({GOOD: 0.9}, control=0.5, seed=14)
    records = questions(12)
    records[4]["query"] = "Which is right, question q4?\u2028(a second line)"
    del records[7]["id"]
    text = "\r\n".join(json.dumps(r, ensure_ascii=False) for r in records) + "\r\n"
    (tmp_path / "quiz.jsonl").write_bytes(b"\xef\xbb\xbf" + text.encode())
    roles_file(tmp_path / "roles.jsonl", 3)
    code, _, err = searching()
    assert code == 0, err
    asked = [
        json.loads(line)
        for path in sorted((tmp_path / "found").glob("*.questions.jsonl"))
        for line in path.read_text(encoding="utf-8").split("\n")
        if line
    ]
    by_id = {r["id"]: r for r in asked}
    assert set(by_id) == {f"q{i}" for i in range(12) if i != 7} | {"line-8"}
    assert by_id["q4"]["query"].endswith("\u2028(a second line)")


def test_open_ended_answers_are_raced_and_confirmed_on_a_judge_s_grades(searching, fake, tmp_path):
    """--rubric: each round's answers are graded by a judge run, and the
    grade is the score; the held-out verdict is report's test of the grades
    (here no spread: the sign test and its exact bound)."""
    write_job(
        tmp_path / "poems.jsonl", [{"id": f"p{i}", "query": f"A poem on {i}."} for i in range(40)]
    )
    roles_file(tmp_path / "roles.jsonl", 5)
    (tmp_path / "rubric.md").write_text("Grade the poem.\nScale: 1-5\n")
    # The fake's answer repeats the start of its prompt, role first: the
    # judge sees the planted role's answers and grades them 5, the rest 1.
    fake.fault(match=f"Answer to: {GOOD[:20]}", answer={"reasoning": "apt", "score": 5})
    args = ("--task", "role", "--rubric", "rubric.md")
    code, out, err = searching(*args, "--format", "json", job="poems.jsonl")
    assert code == 0, err
    found = json.loads(out)
    assert found["decision"]["role"] == "r2" and found["decision"]["verdict"] == "better"
    assert found["held_out"]["test"] == "sign" and found["held_out"]["n"] == 20
    assert found["held_out"]["diff"] == pytest.approx(4.0)
    graded = read_lines(tmp_path / "found" / "held-out.judged.jsonl")
    assert len(graded) == 40 and {line["status"] for line in graded} == {"ok"}
    # Every answer was graded once, and every grade is counted as a call.
    judge_calls = [r for r in fake.requests if "Scale" in r.text or "rubric" in r.text.lower()]
    assert found["cost"]["calls"] == len(fake.requests) == found["cost"]["planned_calls"]
    assert len(judge_calls) == len(fake.requests) / 2
    code, out, _ = searching(*args, "--estimate", "--format", "json", job="poems.jsonl")
    told = json.loads(out)
    assert code == 0 and told["worst_case"]["calls"] == len(fake.requests)
    assert told["already_in_folder"] == len(fake.requests)  # answers and grades, not records
    code, _, err = searching(*args, "--score", "choice", job="poems.jsonl")
    assert code == 2 and "no --score too" in err


def test_a_search_killed_in_its_first_round_is_not_resumed_as_another(fake, tmp_path):
    """The setup is written before the first answer is bought: killed in
    round 1, the same folder with another seed is refused, buying nothing."""
    fake.state.world = World({GOOD: 0.9}, control=0.5, seed=15)
    fake.state.latency = 0.01
    write_job(tmp_path / "quiz.jsonl", questions(48))
    roles_file(tmp_path / "roles.jsonl", 6)
    args = search_args(fake, "--concurrency", "1")
    proc = spawn(*args, env=ENV, cwd=tmp_path)
    wait_for_lines(tmp_path / "found" / "round-1.jsonl", proc, 2)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    asked = len(fake.requests)
    other = spawn(*args, "--seed", "5", env=ENV, cwd=tmp_path)
    _, err = other.communicate(timeout=120)
    assert other.returncode == 2 and "another seed" in err
    assert len(fake.requests) == asked


def test_garbage_over_the_search_s_state_is_refused_and_fresh_starts_over(
    searching, fake, tmp_path
):
    fake.state.world = World({GOOD: 0.9}, control=0.5, seed=16)
    write_job(tmp_path / "quiz.jsonl", questions(20))
    roles_file(tmp_path / "roles.jsonl", 3)
    code, first, _ = searching()
    assert code == 0
    state = tmp_path / "found" / "search.json"
    for garbage in (b"\x00\xff{", b"[1, 2]", b'{"setup": {}}'):
        state.write_bytes(garbage)
        asked = len(fake.requests)
        code, _, err = searching()
        assert code == 2 and "search.json: unreadable" in err and "--fresh" in err
        assert len(fake.requests) == asked and state.read_bytes() == garbage
    code, again, err = searching("--fresh")
    assert code == 0, err
    assert again == first  # the same answers bought again: the planted world is fixed
    assert (
        json.loads(state.read_text())["decision"]
        == json.loads((tmp_path / "found" / "search.json").read_text())["decision"]
    )


def test_two_searches_on_one_folder_at_once_the_second_stops_buying_nothing(fake, tmp_path):
    """A second search of the same folder while the first buys: it meets the
    round's lock and stops at once (exit 2); the first finishes untouched."""
    import threading

    fake.state.world = World({GOOD: 0.9}, control=0.5, seed=17)
    write_job(tmp_path / "quiz.jsonl", questions(24))
    roles_file(tmp_path / "roles.jsonl", 3)
    hold = threading.Event()
    fake.fault(match="question", times=1, hold=hold)  # the first answer waits
    args = search_args(fake)
    first = spawn(*args, env=ENV, cwd=tmp_path)
    lock = tmp_path / "found" / "round-1.jsonl.lock"
    while not lock.exists() and first.poll() is None:
        threading.Event().wait(0.01)
    while len(fake.requests) < 1 and first.poll() is None:
        threading.Event().wait(0.01)
    second = spawn(*args, env=ENV, cwd=tmp_path)
    _, err = second.communicate(timeout=120)
    asked = len(fake.requests)
    hold.set()
    _, first_err = first.communicate(timeout=120)
    assert second.returncode == 2 and "another rolebatch run is writing" in err
    assert first.returncode == 0, first_err
    assert asked <= 4 * 6  # the second bought nothing: at most the first's round 1
    pairs = asked_pairs(fake)
    assert max(pairs.values()) == 1


def test_batches_still_out_end_a_search_pending_and_the_same_command_collects_them(
    searching, fake, tmp_path
):
    """--via batch --no-wait (cron): a round's batch still out ends the
    search with exit 4, its state saying so; once the provider has ended
    it, the same command collects it and goes on, buying nothing twice."""
    fake.state.world = World({GOOD: 0.95}, control=0.4, seed=18)
    write_job(tmp_path / "quiz.jsonl", questions(24))
    roles_file(tmp_path / "roles.jsonl", 3)
    fake.state.batches.plan.polls = 10**9  # in progress, for now
    batch = ("--via", "batch", "--no-wait", "--poll-interval", "0.01", "--format", "json")
    code, out, err = searching(*batch)
    assert code == 4, err
    said = json.loads(out)
    assert said["status"] == "pending" and said["decision"]["confirmed"] is False
    assert said["decision"]["line"].startswith("not decided: batches are still out")
    fake.state.batches.plan.polls = 0
    for _ in range(4):  # a round a call: each batch is collected, the next submitted
        code, out, err = searching(*batch)
        if code == 0:
            break
        assert code == 4, err
    found = json.loads(out)
    assert code == 0 and found["decision"]["role"] == "r2"
    # Every request went in one batch once: as many as the search planned.
    assert len(fake.state.batches.custom_ids()) == found["cost"]["planned_calls"]


def test_no_evidence_is_no_decision_undecided_exit_5(searching, fake, tmp_path):
    """Every answer fails validation: errors score 0 on both sides, and a
    "no detectable difference" on them would be a decision made on nothing.
    The search ends undecided (exit 5), says why, and the same command asks
    again; once the model answers, it decides."""
    fake.state.world = World({GOOD: 0.95}, control=0.4, seed=19)
    write_job(tmp_path / "quiz.jsonl", questions(20))
    roles_file(tmp_path / "roles.jsonl", 3)
    fault = fake.fault(invalid=True)
    summary = tmp_path / "summary.json"
    code, out, err = searching(
        "--max-reasks", "0", "--summary-json", str(summary), "--fail-if-none"
    )
    assert code == 5, err
    assert out.startswith("not decided: on the held-out part, ") and "nothing to decide on" in out
    data = json.loads(summary.read_text())
    assert data["status"] == "undecided" and data["decision"]["role"] is None
    assert data["decision"]["verdict"] is None and data["decision"]["confirmed"] is False
    fake.state.faults.remove(fault)
    code, out, err = searching("--format", "json")
    assert code == 0, err
    assert json.loads(out)["decision"]["confirmed"] is True
