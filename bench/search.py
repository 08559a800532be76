"""``python -m bench search``: the issue's worlds, whole-process.

Each world is a job of 300 multiple-choice questions and 30 candidate roles
with planted accuracy (the fake server's ``--world``: answers drawn
independently per question and role), the control at 0.60, half the
questions held out:

    null      every candidate at 0.60
    one good  one at 0.75, two at 0.45, the rest at 0.60
    two good  one at 0.75, one at 0.74, the rest at 0.60

Every world is one ``rolebatch search`` process against one fake server
(its queries carry the world's number, so each world draws its own
answers; ``--seed`` is the world's number too).  Printed: how often the
decision was "better" (null: a false one), the planted role was found and
confirmed, and the calls against a full sweep's.

Then the alternatives, on worlds drawn in-process the same way and judged
by the same held-out test: successive halving (the product's race), a
confidence race (F-race-like: each round every survivor answers 10 more
questions, and a candidate whose mean trails the leader's by more than
z standard errors is dropped), and the full sweep of the search half,
its best picked ("picked on half").
"""

from __future__ import annotations

import json
import math
import os
import random
import subprocess
import sys
import time
from pathlib import Path

from rolebatch.evaluate import stats
from rolebatch.search.race import Race
from rolebatch.search.split import Question, split

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = 300
CANDIDATES = 30
CONTROL = 0.6
WORLDS = {
    "null": {},
    "one good": {1: 0.75, 2: 0.45, 3: 0.45},
    "two good": {1: 0.75, 2: 0.74},
}


def role_text(world: str, number: int) -> str:
    return f"You are candidate number {number} of the {world} world."


def planted() -> dict[str, float]:
    return {
        role_text(world, number): chance
        for world, chances in WORLDS.items()
        for number, chance in chances.items()
    }


def write_world(folder: Path, world: str, seed: int) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    job, roles = folder / "job.jsonl", folder / "roles.jsonl"
    with job.open("w") as handle:
        for i in range(QUESTIONS):
            handle.write(
                json.dumps(
                    {
                        "id": f"q{i}",
                        "query": f"World {world} {seed}: which is right, question {i}?",
                        "options": ["right", "wrong", "other"],
                        "expected": 1,
                    }
                )
                + "\n"
            )
    with roles.open("w") as handle:
        handle.write(json.dumps({"id": "none", "role": ""}) + "\n")
        for number in range(1, CANDIDATES + 1):
            row = {"id": f"c{number}", "role": role_text(world, number)}
            handle.write(json.dumps(row) + "\n")
    return job, roles


def whole_process(tmp: Path, url: str, world: str, seeds: range) -> dict[str, float]:
    better = found = either = 0
    calls = full = 0
    wall = 0.0
    searched: list[float] = []
    held: list[float] = []
    for seed in seeds:
        folder = tmp / f"{world.replace(' ', '-')}-{seed}"
        job, roles = write_world(folder, world, seed)
        started = time.perf_counter()
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "rolebatch",
                "search",
                str(job),
                "--roles",
                str(roles),
                "--task",
                "choice",
                "--model",
                "compat/fake",
                "--base-url",
                url,
                "--seed",
                str(seed),
                "-o",
                str(folder / "found"),
                "--format",
                "json",
                "--concurrency",
                "32",
                "--progress",
                "none",
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            env={**os.environ, "OPENAI_API_KEY": "sk-bench"},
            check=False,
        )
        wall += time.perf_counter() - started
        if proc.returncode != 0:
            raise SystemExit(f"search of {world} world {seed} failed:\n{proc.stderr}")
        said = json.loads(proc.stdout)
        decision = said["decision"]
        better += decision["verdict"] == "better"
        found += decision["role"] == "c1"
        either += decision["role"] in ("c1", "c2")
        calls += said["cost"]["calls"]
        if said["search_estimate"]["diff"] is not None and said["held_out"].get("diff") is not None:
            searched.append(said["search_estimate"]["diff"])
            held.append(said["held_out"]["diff"])
        full += said["cost"]["full_sweep_calls"]
    n = len(seeds)
    return {
        "worlds": n,
        "better": better / n,
        "found": found / n,
        "either": either / n,
        "share": calls / full if full else math.nan,
        "seconds": wall / n,
        "searched": sum(searched) / len(searched) if searched else math.nan,
        "held": sum(held) / len(held) if held else math.nan,
    }


# -- the alternatives, in-process -------------------------------------------


def draw(rng: random.Random, chances: list[float]) -> list[list[float]]:
    return [[float(rng.random() < p) for _ in range(QUESTIONS)] for p in chances]


def halving(answers: list[list[float]], search: list[int], seed: int) -> tuple[int, int]:
    race = Race([str(c) for c in range(1, len(answers))], len(search), seed)
    asked = 0
    while (played := race.next_round()) is not None:
        asked += (len(played.alive) + 1) * (played.end - played.start)
        shared = search[: played.end]
        race.scored(
            {
                c: (sum(answers[int(c)][q] for q in shared) / len(shared), len(shared))
                for c in played.alive
            }
        )
    return int(race.pick or 1), asked


def confidence_race(
    answers: list[list[float]], search: list[int], seed: int, z: float = 2.2, step: int = 10
) -> tuple[int, int]:
    rng = random.Random(seed)
    alive = list(range(1, len(answers)))
    n = asked = 0
    while True:
        end = min(len(search), n + (2 * step if n == 0 else step))
        asked += (len(alive) + 1) * (end - n)
        n = end
        means = {a: sum(answers[a][q] for q in search[:n]) / n for a in alive}
        order = sorted(alive, key=lambda a: (-means[a], rng.random()))
        if n >= len(search) or len(alive) == 1:
            return order[0], asked
        share = min(max(sum(means.values()) / len(means), 0.05), 0.95)
        se = math.sqrt(2 * share * (1 - share) / n)
        alive = [a for a in order if means[order[0]] - means[a] <= z * se]


def picked_on_half(answers: list[list[float]], search: list[int], seed: int) -> tuple[int, int]:
    rng = random.Random(seed)
    means = {a: sum(answers[a][q] for q in search) for a in range(1, len(answers))}
    pick = min(means, key=lambda a: (-means[a], rng.random()))
    return pick, len(answers) * len(search)


METHODS = {
    "successive halving": halving,
    "confidence race": confidence_race,
    "picked on half": picked_on_half,
}


def simulated(world: str, worlds: int) -> dict[str, dict[str, float]]:
    chances = [CONTROL] * (CANDIDATES + 1)
    for number, chance in WORLDS[world].items():
        chances[number] = chance
    found = {name: [0, 0, 0, 0] for name in METHODS}  # better, found, either, calls
    for seed in range(worlds):
        answers = draw(random.Random(f"{world} {seed}"), chances)
        parts = split([Question(i + 1, i) for i in range(QUESTIONS)], 0.5, seed)
        search = [int(q.id) for q in parts.search]
        held = [int(q.id) for q in parts.held_out]
        for name, method in METHODS.items():
            pick, asked = method(answers, search, seed)
            test = stats.compare([answers[pick][q] for q in held], [answers[0][q] for q in held])
            verdict = stats.verdict(test.diff, test.p)
            tally = found[name]
            tally[0] += verdict == "better"
            tally[1] += verdict == "better" and pick == 1
            tally[2] += verdict == "better" and pick in (1, 2)
            tally[3] += asked + 2 * len(held)
    full = (CANDIDATES + 1) * QUESTIONS * worlds
    return {
        name: {
            "better": t[0] / worlds,
            "found": t[1] / worlds,
            "either": t[2] / worlds,
            "share": t[3] / full,
        }
        for name, t in found.items()
    }


def bench_search(tmp: Path, fake_server) -> None:
    worlds = int(os.environ.get("BENCH_SEARCH_WORLDS", "40"))
    world = json.dumps({"accuracy": planted(), "control": CONTROL, "seed": 11})
    print(f"search: whole process, {worlds} worlds each, 300 questions, 30 candidates")
    with fake_server(0.0, 18791, "--world", world) as url:
        for name in WORLDS:
            got = whole_process(tmp, url, name, range(worlds))
            what = {
                "null": f"false better {got['better']:.3f}",
                "one good": f"found and confirmed {got['found']:.3f}",
                "two good": f"one of the two found and confirmed {got['either']:.3f}",
            }[name]
            print(
                f"  {name:9} {what}; calls {got['share']:.3f} of a full sweep;"
                f" {got['seconds']:.1f} s a search; the pick against the control: search part"
                f" {got['searched']:+.3f}, held out {got['held']:+.3f} (mean)"
            )
    many = int(os.environ.get("BENCH_SEARCH_SIMULATED", "1000"))
    print(f"search: the alternatives, in-process, {many} worlds each (same held-out test)")
    for name in WORLDS:
        for method, got in simulated(name, many).items():
            print(
                f"  {name:9} {method:19} better {got['better']:.3f}  found {got['found']:.3f}"
                f"  either {got['either']:.3f}  calls {got['share']:.3f} of a full sweep"
            )
