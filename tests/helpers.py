"""What tests write and read: job files, result lines, and the keys they use;
a real ``rolebatch run`` process and what it has written so far; and
Student's t, Wilson's, Newcombe's and CR1 computed without the package's code,
for the statistics' tests; and a real browser (chromium) for the pages.
(Fixtures are in ``conftest.py``; the fake server is ``tests.fakes``.)"""

from __future__ import annotations

import functools
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

SECRET_KEY = "sk-test-0123456789abcdefSECRET"
ANTHROPIC_KEY = "sk-ant-api03-test-SECRET-0123456789"
CLAUDE = "anthropic/claude-3-haiku-20240307"  # $0.25 / $1.25 per million tokens


def write_job(path: Path, records: list[dict[str, Any] | str]) -> Path:
    """Records as dicts (dumped as JSON) or raw strings (written as they are)."""
    with path.open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(record if isinstance(record, str) else json.dumps(record))
            handle.write("\n")
    return path


def poem_records(n: int, prefix: str = "r") -> list[dict[str, Any]]:
    return [
        {
            "id": f"{prefix}{i}",
            "query": f"Write a poem about thing {i}.",
            "role": "You are a renowned poet.",
        }
        for i in range(n)
    ]


# Contrasting roles for sweeps.
ROLES = [
    {"id": "poet", "role": "You are a renowned poet."},
    {"id": "kid", "role": "You are a seven-year-old child."},
    {"id": "plain", "role": "You are a helpful assistant."},
]


def queries(n: int) -> list[dict[str, Any]]:
    """Records with a query and no role of their own, as a sweep takes them."""
    return [{"id": f"q{i}", "query": f"Write a poem about thing {i}."} for i in range(n)]


def capital_questions(n: int) -> list[dict[str, Any]]:
    """Multiple-choice records (``--task choice``) whose right option is 2."""
    return [
        {
            "id": f"c{i}",
            "query": f"What is the capital of country {i}?",
            "options": ["Rome", "Paris", "Oslo"],
            "expected": "Paris",
        }
        for i in range(n)
    ]


def read_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def job_lines(custom_ids: Iterable[str]) -> Counter:
    """How many times each job line was put in a batch: the ``L<line>`` of
    every custom_id rolebatch gave a request."""
    return Counter(int(value.split("-")[0][1:]) for value in custom_ids)


def student_t_two_sided(t: float, df: int, steps: int = 20000) -> float:
    """2 P(T > |t|) on ``df`` degrees of freedom, from the density integrated
    by Simpson's rule on [0, |t|]: an independent check on scipy's."""
    const = math.gamma((df + 1) / 2) / (math.sqrt(df * math.pi) * math.gamma(df / 2))

    def density(x: float) -> float:
        return const * (1 + x * x / df) ** (-(df + 1) / 2)

    h = abs(t) / steps
    area = density(0) + density(abs(t))
    area += sum((4 if i % 2 else 2) * density(i * h) for i in range(1, steps))
    return 2 * (0.5 - area * h / 3)


@functools.cache
def student_t_quantile(level: float, df: int) -> float:
    """The t with P(T <= t) = ``level`` (above one half), found by bisection
    on the integrated density."""
    low, high = 0.0, 100.0
    for _ in range(60):
        mid = (low + high) / 2
        if 1 - student_t_two_sided(mid, df, steps=4000) / 2 < level:
            low = mid
        else:
            high = mid
    return (low + high) / 2


# The small-sample intervals of 0/1 scores, by their closed forms (DESIGN.md,
# after Altman et al., Statistics with Confidence, 2nd ed., ch. 6), written
# here apart from the package's code.
def wilson_ci(x: float, n: float, z: float = 1.959963984540054) -> tuple[float, float]:
    p = x / n
    a = 2 * n * p + z * z
    b = z * math.sqrt(z * z + 4 * n * p * (1 - p))
    c = 2 * (n + z * z)
    return (a - b) / c, (a + b) / c


def newcombe_ci(
    a: int, b: int, c: int, d: int, z: float = 1.959963984540054
) -> tuple[float, float]:
    """Paired proportions, Newcombe (1998) method 10: a both right, b only
    the first right, c only the second, d neither."""
    n = a + b + c + d
    p1, p2 = (a + b) / n, (a + c) / n
    l1, u1 = wilson_ci(a + b, n, z)
    l2, u2 = wilson_ci(a + c, n, z)
    denominator = (a + b) * (c + d) * (a + c) * (b + d)
    # phi continuity-corrected: ad - bc less n/2 when above it, 0 between 0 and n/2.
    b_ = a * d - b * c
    if b_ > n / 2:
        numerator = b_ - n / 2
    elif b_ < 0:
        numerator = b_
    else:
        numerator = 0.0
    phi = 0.0 if denominator == 0 else numerator / math.sqrt(denominator)
    dl, du = p1 - l1, u1 - p1
    el, eu = p2 - l2, u2 - p2
    diff = p1 - p2
    return (
        diff - math.sqrt(dl**2 - 2 * phi * dl * eu + eu**2),
        diff + math.sqrt(du**2 - 2 * phi * du * el + el**2),
    )


def cr1_se(clusters: list[list[float]]) -> float:
    """The clustered standard error of the mean of every score, with the
    small-sample factor G / (G - 1) for G clusters."""
    scores = [s for c in clusters for s in c]
    mean = sum(scores) / len(scores)
    g = len(clusters)
    total = sum(sum(s - mean for s in c) ** 2 for c in clusters)
    return math.sqrt(g / (g - 1) * total) / len(scores)


# A real ``rolebatch run`` process against the fake, and reading what it wrote
# while it runs (tests of signals, kills and full disks).
ROOT = Path(__file__).resolve().parent.parent


def spawn(*args: str, env: dict[str, str] | None = None, **popen: Any) -> subprocess.Popen:
    """``python -m rolebatch ARGS`` as a process of its own, this checkout's
    package first; its output piped as text unless ``popen`` says otherwise."""
    environment = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "PYTHONDONTWRITEBYTECODE": "1",
        **(env or {}),
    }
    options: dict[str, Any] = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
    return subprocess.Popen(
        [sys.executable, "-m", "rolebatch", *args], env=environment, **{**options, **popen}
    )


def start(fake, job: Path, out: Path, *extra: str, limit_bytes: int | None = None):
    def cap_file_size() -> None:  # a disk that fills up after limit_bytes
        if limit_bytes is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    return spawn(
        "run",
        str(job),
        "-o",
        str(out),
        "--model",
        "openai/gpt-4o",
        "--base-url",
        fake.base_url,
        "--progress",
        "lines",
        *extra,
        env={"OPENAI_API_KEY": SECRET_KEY},
        preexec_fn=cap_file_size,
    )


def whole_lines(out: Path) -> list[dict]:
    """Every complete line of the file (a torn last one is not counted)."""
    if not out.exists():
        return []
    data = out.read_bytes()
    return [json.loads(line) for line in data.split(b"\n")[:-1]]


def wait_for_lines(out: Path, proc: subprocess.Popen, count: int, limit: float = 60) -> None:
    deadline = time.monotonic() + limit
    while len(whole_lines(out)) < count and proc.poll() is None:
        assert time.monotonic() < deadline, "the run made no progress"
        time.sleep(0.02)


def scored_line(
    question: int,
    role: str,
    score: float,
    sample: int | None = None,
    control: str = "none",
    **extra: Any,
) -> dict[str, Any]:
    """An ok output line of a sweep whose response's 'right' field is the
    score (``report --score field:right``); ``control`` is the role id with
    no role text (the baseline)."""
    suffix = "" if sample is None else f"#{sample}"
    return {
        "id": f"q{question}@{role}{suffix}",
        "line": question + 1,
        "status": "ok",
        "response": {"right": score},
        "error": None,
        "role": None if role == control else f"You are a {role}.",
        "role_id": role,
        "query": f"Question {question}?",
        "model": "openai/gpt-4o",
        "attempts": 1,
        "usage": None,
        "latency_s": 0.1,
        "metadata": None,
        **extra,
        "cost_usd": None,
    }


def wait_for_batch(out: Path, proc: subprocess.Popen, limit: float = 60) -> None:
    """Until the run has journaled a batch as created (the provider has it),
    or it ended."""
    from rolebatch.via.journal import Journal

    deadline = time.monotonic() + limit
    while proc.poll() is None:
        if any(e.step == "created" for e in Journal.load(out).entries.values()):
            return
        assert time.monotonic() < deadline, "the run journaled no batch"
        time.sleep(0.02)


# A real browser for the pages.


def browser() -> str:
    """Debian's chromium, for the pages' tests (skipped without it, unless
    $ROLEBATCH_REQUIRE_BROWSER says it must be there)."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        message = "no chromium to render the page: apt-get install -y chromium (.ci/run does)"
        if os.environ.get("ROLEBATCH_REQUIRE_BROWSER"):
            pytest.fail(message)
        pytest.skip(message)
    return found


def chromium(browser: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    quiet = [
        "--headless",
        "--no-sandbox",  # as root
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
    ]
    return subprocess.run(
        [browser, *quiet, *args], capture_output=True, text=True, timeout=120, check=True
    )
