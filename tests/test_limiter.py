"""The limiter and backoff, on a clock the tests move: no wall-clock sleeps."""

from __future__ import annotations

import email.utils
import time

import anyio
import anyio.lowlevel
import pytest

from batch.pacing.backoff import backoff_delay, retry_after
from batch.pacing.limiter import HEADROOM, Bucket, Limiter, parse_reset

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend():
    return "asyncio"


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0
        self.slept: list[float] = []

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.t += seconds
        await anyio.lowlevel.checkpoint()


def test_bucket_refills_continuously_up_to_its_burst():
    bucket = Bucket(rate=10, capacity=10, now=0)
    bucket.take(10, 0)
    assert bucket.wait(1, 0) == pytest.approx(0.1)
    assert bucket.wait(5, 0.25) == pytest.approx(0.25)
    assert bucket.wait(1, 0.1) == 0
    bucket._refill(100)  # a long idle spell
    assert bucket.level == 10


def test_bucket_debt_and_oversized_costs():
    bucket = Bucket(rate=10, capacity=10, now=0)
    bucket.take(15, 0)
    assert bucket.level == -5
    assert bucket.wait(1, 0) == pytest.approx(0.6)
    # A cost above the capacity waits for a full bucket, not forever.
    assert bucket.wait(50, 0) == pytest.approx(1.5)


async def test_rpm_paces_at_the_limit_and_bursts_one_second_after_idling():
    clock = FakeClock()
    limiter = Limiter(rpm=600, clock=clock)
    rate = 600 / 60 * HEADROOM
    start = clock.now()
    for _ in range(100):
        permit = await limiter.acquire(1)
        limiter.release(permit, None, ok=True)
    # A fresh run starts with one request's worth, then goes at the rate.
    assert clock.now() - start == pytest.approx(99 / rate)
    assert max(clock.slept) == pytest.approx(1 / rate)
    # After a pause, about one second's worth may go at once, no more.
    clock.t += 60
    burst_start = clock.now()
    for _ in range(int(rate)):
        limiter.release(await limiter.acquire(1), None, ok=True)
    assert clock.now() == burst_start
    limiter.release(await limiter.acquire(1), None, ok=True)
    assert clock.now() > burst_start


async def test_tokens_are_reserved_then_reconciled_with_real_usage():
    clock = FakeClock()
    limiter = Limiter(tpm=6000, clock=clock)  # ~97 tokens/s, capacity ~97
    assert limiter.tokens is not None
    clock.t += 10  # long enough to fill the bucket; the clock stays put from here
    full = limiter.tokens.capacity
    permit = await limiter.acquire(80)
    assert limiter.tokens.level == pytest.approx(full - 80)
    limiter.release(permit, 30, ok=True)  # the estimate was 50 too high
    assert limiter.tokens.level == pytest.approx(full - 30)
    permit = await limiter.acquire(20)
    limiter.release(permit, 70, ok=True)  # 50 too low: charged after the fact
    assert limiter.tokens.level == pytest.approx(full - 30 - 70)
    limiter.release(permit, 999, ok=True)  # settling twice changes nothing
    assert limiter.tokens.level == pytest.approx(full - 100)


async def test_429_holds_all_dispatch_for_exactly_retry_after():
    clock = FakeClock()
    limiter = Limiter(rpm=6000, clock=clock)
    limiter.on_rate_limited(2.5, fallback=0.1)
    assert limiter.delay(1, clock.now()) == pytest.approx(2.5)
    before = clock.now()
    permit = await limiter.acquire(1)
    assert clock.now() - before == pytest.approx(2.5)
    limiter.release(permit, None, ok=False)
    # No Retry-After: the fallback backoff is used instead.
    limiter.on_rate_limited(None, fallback=0.4)
    assert limiter.delay(1, clock.now()) == pytest.approx(0.4)


async def test_limits_and_remaining_budget_are_learned_from_headers():
    clock = FakeClock()
    limiter = Limiter(clock=clock)
    assert limiter.requests is None and limiter.tokens is None
    limiter.on_headers({"x-ratelimit-limit-requests": "1200", "x-ratelimit-limit-tokens": "60000"})
    assert limiter.requests is not None and limiter.tokens is not None
    assert limiter.requests.rate == pytest.approx(20 * HEADROOM)
    assert limiter.tokens.rate == pytest.approx(1000 * HEADROOM)
    clock.t += 10  # our budgets fill up
    assert limiter.delay(1, clock.now()) == 0
    limiter.on_headers(
        {
            "x-ratelimit-limit-requests": "1200",
            "x-ratelimit-remaining-requests": "15",
            "x-ratelimit-reset-requests": "400ms",
        }
    )
    assert limiter.requests.level == 15  # the server's remaining budget caps ours
    limiter.on_headers({"x-ratelimit-remaining-tokens": "0", "x-ratelimit-reset-tokens": "1.5s"})
    assert limiter.tokens.level == 0
    assert limiter.delay(1, clock.now()) == pytest.approx(1.5)  # spent: wait for the reset


async def test_a_given_limit_below_the_servers_wins():
    clock = FakeClock()
    limiter = Limiter(rpm=60, clock=clock)
    limiter.on_headers({"x-ratelimit-limit-requests": "1200"})
    assert limiter.requests is not None
    assert limiter.requests.rate == pytest.approx(1 * HEADROOM)


async def test_without_limits_the_window_starts_open_halves_once_per_burst_and_grows_back():
    clock = FakeClock()
    limiter = Limiter(max_in_flight=8, clock=clock)
    assert limiter.window == 8
    burst = [await limiter.acquire(1) for _ in range(8)]
    assert not limiter.has_room()
    # The whole burst comes back 429: one cut, not eight.
    for permit in burst:
        limiter.release(permit, 0, ok=False)
        limiter.on_rate_limited(0.0, fallback=0.0, permit=permit)
    assert limiter.window == 4
    # A request sent after that cut and refused again cuts again.
    later = await limiter.acquire(1)
    limiter.release(later, 0, ok=False)
    limiter.on_rate_limited(0.0, fallback=0.0, permit=later)
    assert limiter.window == 2
    # Additive increase: about +1 per window's worth of successes.
    for _ in range(2):
        limiter.release(await limiter.acquire(1), None, ok=True)
    assert limiter.window == pytest.approx(3, abs=0.2)
    for _ in range(30):
        limiter.release(await limiter.acquire(1), None, ok=True)
    assert 6 < limiter.window <= 8


async def test_a_full_window_waits_for_a_slot():
    clock = FakeClock()
    limiter = Limiter(max_in_flight=1, clock=clock)
    first = await limiter.acquire(1)
    got: list[str] = []

    async def second() -> None:
        permit = await limiter.acquire(1)
        got.append("second")
        limiter.release(permit, None, ok=True)

    async with anyio.create_task_group() as tg:
        tg.start_soon(second)
        await anyio.wait_all_tasks_blocked()
        assert got == []
        limiter.release(first, None, ok=True)
    assert got == ["second"]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1s", 1.0),
        ("20ms", 0.02),
        ("6m0s", 360.0),
        ("1h2m3.5s", 3723.5),
        ("0.25", 0.25),
        ("", None),
        ("soon", None),
    ],
)
def test_parse_reset(text, seconds):
    assert parse_reset(text) == (pytest.approx(seconds) if seconds is not None else None)


def test_backoff_is_exponential_jittered_and_capped():
    assert backoff_delay(0, 0.5, 30, rand=lambda: 0.0) == pytest.approx(0.25)
    assert backoff_delay(0, 0.5, 30, rand=lambda: 1.0) == pytest.approx(0.5)
    assert backoff_delay(3, 0.5, 30, rand=lambda: 1.0) == pytest.approx(4.0)
    assert backoff_delay(20, 0.5, 30, rand=lambda: 1.0) == pytest.approx(30.0)


def test_retry_after_headers():
    assert retry_after({"retry-after-ms": "1500", "retry-after": "9"}) == pytest.approx(1.5)
    assert retry_after({"retry-after": "2"}) == pytest.approx(2.0)
    future = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 < retry_after({"retry-after": future}) <= 30
    assert retry_after({}) is None
    assert retry_after(None) is None


def test_token_estimate_learns_from_real_usage():
    from types import SimpleNamespace

    from batch.pacing.estimate import DEFAULT_COMPLETION_ESTIMATE, TokenEstimate

    estimate = TokenEstimate()
    size = TokenEstimate.prompt_size({"messages": [{"role": "user", "content": "x" * 380}]})
    assert size == pytest.approx(len('[{"role": "user", "content": "' + "x" * 380 + '"}]') / 4)
    assert estimate.tokens(size) == pytest.approx(size + DEFAULT_COMPLETION_ESTIMATE)
    # The server counted half our guess for the prompt, and 30 completion tokens.
    estimate.observe(SimpleNamespace(prompt_tokens=size / 2, completion_tokens=30), size)
    assert estimate.tokens(size) == pytest.approx(size / 2 + 30)
    assert TokenEstimate(max_tokens=64).tokens(0) == 64
