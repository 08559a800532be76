"""The limiter and backoff, on a clock the tests move: no wall-clock sleeps."""

from __future__ import annotations

import email.utils
import math
import time

import anyio
import anyio.lowlevel
import pytest

from rolebatch.pacing.backoff import backoff_delay, retry_after
from rolebatch.pacing.bucket import Bucket
from rolebatch.pacing.headers import parse_reset, read_limits
from rolebatch.pacing.limiter import HEADROOM, PROBE_PATIENCE, Limiter, Tokens

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

    async def sleep(self, seconds: float, wake: anyio.Event | None = None) -> None:
        if seconds == math.inf:  # only a change can end this wait
            assert wake is not None
            await wake.wait()
            return
        self.slept.append(seconds)
        self.t += seconds
        await anyio.lowlevel.checkpoint()


ONE = Tokens(1, 0)  # one request of one token


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


def bucket(limiter: Limiter, name: str) -> Bucket | None:
    """The local bucket of one of the limiter's budgets (None: no limit known)."""
    return limiter.budgets[name].bucket


async def test_rpm_paces_at_the_limit_and_bursts_one_second_after_idling():
    clock = FakeClock()
    limiter = Limiter(rpm=600, clock=clock, probe=False)
    rate = 600 / 60 * HEADROOM
    start = clock.now()
    for _ in range(100):
        permit = await limiter.acquire(ONE)
        limiter.release(permit, None, ok=True)
    # A fresh run starts with one request's worth, then goes at the rate.
    assert clock.now() - start == pytest.approx(99 / rate)
    assert max(clock.slept) == pytest.approx(1 / rate)
    # After a pause, about one second's worth may go at once, no more.
    clock.t += 60
    burst_start = clock.now()
    for _ in range(int(rate)):
        limiter.release(await limiter.acquire(ONE), None, ok=True)
    assert clock.now() == burst_start
    limiter.release(await limiter.acquire(ONE), None, ok=True)
    assert clock.now() > burst_start


async def test_tokens_are_reserved_then_reconciled_with_real_usage():
    clock = FakeClock()
    limiter = Limiter(tpm=6000, clock=clock, probe=False)  # ~97 tokens/s, capacity ~97
    assert bucket(limiter, "tokens") is not None
    clock.t += 10  # long enough to fill the bucket; the clock stays put from here
    full = bucket(limiter, "tokens").capacity
    permit = await limiter.acquire(Tokens(60, 20))
    assert bucket(limiter, "tokens").level == pytest.approx(full - 80)
    limiter.release(permit, Tokens(20, 10), ok=True)  # the estimate was 50 too high
    assert bucket(limiter, "tokens").level == pytest.approx(full - 30)
    permit = await limiter.acquire(Tokens(20, 0))
    limiter.release(permit, Tokens(20, 50), ok=True)  # 50 too low: charged after the fact
    assert bucket(limiter, "tokens").level == pytest.approx(full - 30 - 70)
    limiter.release(permit, Tokens(999, 0), ok=True)  # settling twice changes nothing
    assert bucket(limiter, "tokens").level == pytest.approx(full - 100)


async def test_the_first_request_goes_at_once_whatever_its_guess_and_the_debt_paces_the_next():
    clock = FakeClock()
    limiter = Limiter(tpm=6000, clock=clock, probe=False)  # 97 tokens/s, starts with 1
    start = clock.now()
    first = await limiter.acquire(Tokens(40, 256))  # before any answer: a rough guess
    assert clock.now() == start
    limiter.release(first, Tokens(40, 20), ok=True)  # it used 60 of the 296
    await limiter.acquire(Tokens(40, 20))
    # The debt of 59 (60 used, 1 held) and the next 60 refill at 97/s.
    assert clock.now() - start == pytest.approx((59 + 60) / (100 * HEADROOM))


async def test_429_holds_all_dispatch_for_exactly_retry_after():
    clock = FakeClock()
    limiter = Limiter(rpm=6000, clock=clock, probe=False)
    limiter.on_rate_limited(2.5, fallback=0.1)
    assert limiter.delay(ONE, clock.now()) == pytest.approx(2.5)
    before = clock.now()
    permit = await limiter.acquire(ONE)
    assert clock.now() - before == pytest.approx(2.5)
    limiter.release(permit, None, ok=False)
    # No Retry-After: the fallback backoff is used instead.
    limiter.on_rate_limited(None, fallback=0.4)
    assert limiter.delay(ONE, clock.now()) == pytest.approx(0.4)


async def test_a_limit_the_server_states_is_paced_at_exactly_that():
    clock = FakeClock()
    limiter = Limiter(clock=clock, probe=False)
    assert bucket(limiter, "requests") is None and bucket(limiter, "tokens") is None
    permit = await limiter.acquire(ONE)
    headers = {"x-ratelimit-limit-requests": "1200", "x-ratelimit-limit-tokens": "60000"}
    limiter.release(permit, ONE, ok=True, headers=headers)
    assert bucket(limiter, "requests") is not None and bucket(limiter, "tokens") is not None
    # No headroom once the server has confirmed its limit.
    assert bucket(limiter, "requests").rate == pytest.approx(20)
    assert bucket(limiter, "tokens").rate == pytest.approx(1000)


async def test_what_the_server_has_left_goes_at_once_and_no_more_until_its_reset():
    clock = FakeClock()
    limiter = Limiter(rpm=1200, clock=clock, probe=False)
    start = clock.now()
    first = await limiter.acquire(ONE)
    left = {
        "x-ratelimit-limit-requests": "1200",
        "x-ratelimit-remaining-requests": "19",
        "x-ratelimit-reset-requests": "500ms",
    }
    limiter.release(first, ONE, ok=True, headers=left)
    # The server has 19 left in this window: all 19 go now, not one every 50 ms.
    burst = [await limiter.acquire(ONE) for _ in range(19)]
    assert clock.now() == start
    # The next one waits for the server's window to renew, not for our refill.
    twentieth = await limiter.acquire(ONE)
    assert clock.now() - start == pytest.approx(0.5)
    # An answer to the second of the burst counts what went out after it: 17
    # left then, 18 sent since: the server is spent until its next reset.
    renewed = {**left, "x-ratelimit-remaining-requests": "17", "x-ratelimit-reset-requests": "1s"}
    limiter.release(burst[1], ONE, ok=True, headers=renewed)
    assert limiter.budgets["requests"].window.left == -1
    assert limiter.delay(ONE, clock.now()) == pytest.approx(1.0)
    # An answer to an older request, arriving later, does not overrule it.
    older = {**left, "x-ratelimit-remaining-requests": "18"}
    limiter.release(burst[0], ONE, ok=True, headers=older)
    assert limiter.delay(ONE, clock.now()) == pytest.approx(1.0)
    limiter.release(twentieth, ONE, ok=True)


def _window(remaining: int, reset: str = "1s") -> dict[str, str]:
    return {
        "x-ratelimit-limit-requests": "1200",
        "x-ratelimit-remaining-requests": str(remaining),
        "x-ratelimit-reset-requests": reset,
    }


def _openrouter(remaining: int, reset_in: float) -> dict[str, str]:
    """OpenRouter's headers: what is left of a window whose reset is an
    epoch time in milliseconds, ``reset_in`` seconds from now (the wall clock)."""
    return {
        "x-ratelimit-limit": "10",
        "x-ratelimit-remaining": str(remaining),
        "x-ratelimit-reset": str(round((time.time() + reset_in) * 1000)),
    }


async def _a_window_sent() -> tuple[FakeClock, Limiter, list]:
    """A limiter told by its first answer that the window (10 requests) has 9
    left for 0.5 s, and the 9 permits it then sent at once."""
    clock = FakeClock()
    limiter = Limiter(clock=clock, probe=False, max_in_flight=32)
    first = await limiter.acquire(ONE)
    limiter.release(first, ONE, ok=True, headers=_openrouter(9, 0.5))
    return clock, limiter, [await limiter.acquire(ONE) for _ in range(9)]


async def test_late_answers_about_a_window_that_is_over_do_not_renew_the_next():
    # Seen as a flaky whole-process test: answers of the old window's requests
    # read just after we counted the window renewed set its reset to now, and
    # a second window's worth went out at once: 429s.
    clock, limiter, old = await _a_window_sent()
    renewed = clock.now() + 0.5
    new = [await limiter.acquire(ONE) for _ in range(10)]  # a full window, after its reset
    assert clock.now() == pytest.approx(renewed, abs=0.01)
    # The old window's answers arrive now: its reset past (it reads as 0), or
    # a hair ahead (our clock and the server's differ by that much).
    for permit in old[:5]:
        limiter.release(permit, ONE, ok=True, headers=_openrouter(0, -0.05))
    for permit in old[5:]:
        limiter.release(permit, ONE, ok=True, headers=_openrouter(0, 0.01))
    # The window open now is spent: wait for its answers, not a second burst.
    assert limiter.delay(ONE, clock.now()) == math.inf
    # The first answer from it says when it resets.
    limiter.release(new[0], ONE, ok=True, headers=_openrouter(0, 1.0))
    assert limiter.delay(ONE, clock.now()) == pytest.approx(1.0, abs=0.05)
    clock.t += 1.01  # (the header is in whole milliseconds of the wall clock)
    assert limiter.delay(ONE, clock.now()) == 0  # renewed then, as it said


@pytest.mark.parametrize("timed", [True, False], ids=["reset as a time", "reset as a duration"])
async def test_a_reset_given_as_a_time_places_a_late_answers_window_exactly(timed):
    # Read 0.4 s after its request went out, an answer says its window ends
    # 0.7 s on: 0.6 s after ours.  As a time (OpenRouter, Anthropic) that is
    # where it ends: a window we had not seen open, 9 left less the 8 sent
    # since.  As a duration it ends anywhere from 0.2 to 0.6 s after ours:
    # perhaps ours, which stays spent until its reset.
    clock, limiter, window = await _a_window_sent()
    clock.t += 0.4
    if timed:
        headers = _openrouter(9, 0.7)
    else:
        headers = {"x-ratelimit-remaining-requests": "9", "x-ratelimit-reset-requests": "0.7s"}
    limiter.release(window[0], ONE, ok=True, headers=headers)
    if timed:
        assert limiter.budgets["requests"].window.left == pytest.approx(1, abs=0.01)
        assert limiter.delay(ONE, clock.now()) == 0
    else:
        assert limiter.budgets["requests"].window.left == 0
        assert limiter.delay(ONE, clock.now()) == pytest.approx(0.1, abs=0.01)


async def test_answers_slower_than_the_window_renew_it_a_window_s_worth_at_a_time():
    # Each answer comes after its window is over (its reset reads as 0): the
    # first of a window's answers says the window is over, and a new window's
    # worth goes; the rest of those answers are about the same window.
    clock, limiter, window = await _a_window_sent()
    for _ in range(3):
        clock.t += 1.5  # the answers take longer than the window
        limiter.release(window[0], ONE, ok=True, headers=_openrouter(0, -1.0))
        assert limiter.delay(ONE, clock.now()) == 0
        sent = [await limiter.acquire(ONE) for _ in range(10)]
        assert limiter.delay(ONE, clock.now()) == math.inf  # spent: one window's worth
        for permit in window[1:]:
            limiter.release(permit, ONE, ok=True, headers=_openrouter(0, -1.0))
        assert limiter.delay(ONE, clock.now()) == math.inf  # no more from old news
        window = sent


async def test_at_a_share_of_the_limit_a_renewed_window_is_the_share():
    # Two shards whose shared quota went away pace at half the limit each; a
    # window that renews is half theirs too, or both send a whole window's
    # worth at its start (one 429 a window in a loaded test run).
    clock = FakeClock()
    limiter = Limiter(clock=clock, probe=False, max_in_flight=64)
    first = await limiter.acquire(ONE)
    limiter.release(first, ONE, ok=True, headers=_window(19, "500ms"))  # 20 a window
    limiter.set_share(2)
    clock.t += 0.5
    second = await limiter.acquire(ONE)  # the window renews, and one goes into it
    assert limiter.budgets["requests"].window.left == 9
    limiter.release(second, ONE, ok=True, headers=_window(19, "500ms"))  # it ends in 0.5 s
    assert limiter.budgets["requests"].window.left == 9
    limiter.set_share(1)  # the quota is back: the whole window at the next renewal
    clock.t += 0.5
    # Asking does not renew; the next request does.
    assert limiter.delay(ONE, clock.now()) == 0
    assert limiter.budgets["requests"].window.left == 9
    await limiter.acquire(ONE)
    assert limiter.budgets["requests"].window.left == 19


async def test_answers_arriving_out_of_order_do_not_shrink_our_own_count():
    clock = FakeClock()
    limiter = Limiter(clock=clock, probe=False)
    first = await limiter.acquire(ONE)
    limiter.release(first, ONE, ok=True, headers=_window(19))
    burst = [await limiter.acquire(ONE) for _ in range(11)]
    assert limiter.budgets["requests"].window.left == 8
    # The 2nd sent reached the server 7th: 13 left then, and 9 were sent
    # after it.  13 - 9 would say 4; we know only 11 went into this window.
    limiter.release(burst[1], ONE, ok=True, headers=_window(13))
    assert limiter.budgets["requests"].window.left == 8


async def test_another_client_on_the_same_quota_shows_in_the_servers_count():
    clock = FakeClock()
    limiter = Limiter(clock=clock, probe=False)
    first = await limiter.acquire(ONE)
    limiter.release(first, ONE, ok=True, headers=_window(19))
    mine = [await limiter.acquire(ONE) for _ in range(3)]
    # The server has used 16 of 20; we sent 4 in all: someone else took 12.
    limiter.release(mine[2], ONE, ok=True, headers=_window(4))
    assert limiter.budgets["requests"].window.left == 4
    assert limiter.delay(ONE, clock.now()) == 0
    for _ in range(4):
        await limiter.acquire(ONE)
    assert limiter.delay(ONE, clock.now()) == pytest.approx(1.0)  # until the reset


async def test_a_spent_token_budget_holds_until_its_reset():
    clock = FakeClock()
    limiter = Limiter(tpm=6000, clock=clock, probe=False)
    permit = await limiter.acquire(ONE)
    spent = {"x-ratelimit-remaining-tokens": "0", "x-ratelimit-reset-tokens": "1.5s"}
    limiter.release(permit, ONE, ok=True, headers=spent)
    assert limiter.delay(ONE, clock.now()) == pytest.approx(1.5)


async def test_a_given_limit_below_the_servers_wins():
    clock = FakeClock()
    limiter = Limiter(rpm=60, clock=clock, probe=False)
    assert bucket(limiter, "requests") is not None
    assert bucket(limiter, "requests").rate == pytest.approx(1 * HEADROOM)
    permit = await limiter.acquire(ONE)
    limiter.release(permit, ONE, ok=True, headers={"x-ratelimit-limit-requests": "1200"})
    # The server has more than we will ask for: our own limit, exactly.
    assert bucket(limiter, "requests").rate == pytest.approx(1)


def virtual_time():
    """Run the test on trio with a mock clock that jumps ahead whenever every
    task is blocked: the limiter's own Clock, on virtual time."""
    from trio.testing import MockClock

    return pytest.mark.parametrize(
        "anyio_backend", [pytest.param(("trio", {"clock": MockClock(autojump_threshold=0)}))]
    )


@virtual_time()
async def test_the_first_request_goes_alone_until_it_is_answered():
    limiter = Limiter(max_in_flight=8)
    start = anyio.current_time()
    probe = await limiter.acquire(ONE)
    sent: list[float] = []

    async def worker() -> None:
        await limiter.acquire(ONE)
        sent.append(anyio.current_time() - start)

    async with anyio.create_task_group() as tg:
        for _ in range(5):
            tg.start_soon(worker)
        await anyio.sleep(0.3)
        assert sent == []
        limiter.release(probe, ONE, ok=True)
    # Answered after 0.3 s: every other worker goes then, at once.
    assert sent == [pytest.approx(0.3)] * 5


@virtual_time()
async def test_a_first_answer_that_is_slow_is_not_waited_for_long():
    limiter = Limiter(max_in_flight=8)
    start = anyio.current_time()
    await limiter.acquire(ONE)  # never answered
    await limiter.acquire(ONE)
    assert anyio.current_time() - start == pytest.approx(PROBE_PATIENCE)


@virtual_time()
async def test_a_waiter_goes_as_soon_as_a_settled_estimate_hands_tokens_back():
    limiter = Limiter(tpm=6000, probe=False)  # 97 tokens/s, at most 97 held
    await anyio.sleep(10)  # the budget fills up
    start = anyio.current_time()
    big = await limiter.acquire(Tokens(90, 0))
    went: list[float] = []

    async def waiter() -> None:
        await limiter.acquire(Tokens(50, 0))  # 43 short: 0.44 s of refill
        went.append(anyio.current_time() - start)

    async with anyio.create_task_group() as tg:
        tg.start_soon(waiter)
        await anyio.sleep(0.1)
        limiter.release(big, Tokens(10, 0), ok=True)  # 80 of the 90 come back
    assert went == [pytest.approx(0.1)]


@virtual_time()
async def test_an_estimate_that_improves_while_waiting_is_the_one_reserved():
    limiter = Limiter(tpm=6000, probe=False)  # 97 tokens/s, at most 97 held
    await anyio.sleep(10)
    start = anyio.current_time()
    guess = [Tokens(300, 0)]  # before any answer: a rough, high guess
    first = await limiter.acquire(Tokens(90, 0))
    reserved: list[tuple[float, float]] = []

    async def waiter() -> None:
        permit = await limiter.acquire(lambda: guess[0])
        reserved.append((permit.cost.prompt, anyio.current_time() - start))

    async with anyio.create_task_group() as tg:
        tg.start_soon(waiter)
        await anyio.sleep(0.1)
        guess[0] = Tokens(30, 0)  # the first answer taught us what requests cost
        limiter.release(first, Tokens(90, 0), ok=True)
    # 30 reserved, as soon as 30 had refilled (7 left + 97/s), not a full
    # bucket's worth (~0.93 s) for the old guess.
    assert reserved == [(30, pytest.approx(0.1 + (30 - 7 - 9.7) / 97))]


async def test_without_limits_the_window_starts_open_halves_once_per_burst_and_grows_back():
    clock = FakeClock()
    limiter = Limiter(max_in_flight=8, clock=clock, probe=False)
    assert limiter.window == 8
    burst = [await limiter.acquire(ONE) for _ in range(8)]
    assert not limiter.has_room()
    # The whole burst comes back 429: one cut, not eight.
    for permit in burst:
        limiter.release(permit, Tokens(), ok=False)
        limiter.on_rate_limited(0.0, fallback=0.0, permit=permit)
    assert limiter.window == 4
    # A request sent after that cut and refused again cuts again.
    later = await limiter.acquire(ONE)
    limiter.release(later, Tokens(), ok=False)
    limiter.on_rate_limited(0.0, fallback=0.0, permit=later)
    assert limiter.window == 2
    # Additive increase: about +1 per window's worth of successes.
    for _ in range(2):
        limiter.release(await limiter.acquire(ONE), None, ok=True)
    assert limiter.window == pytest.approx(3, abs=0.2)
    for _ in range(30):
        limiter.release(await limiter.acquire(ONE), None, ok=True)
    assert 6 < limiter.window <= 8


async def test_a_full_window_waits_for_a_slot():
    clock = FakeClock()
    limiter = Limiter(max_in_flight=1, clock=clock, probe=False)
    first = await limiter.acquire(ONE)
    got: list[str] = []

    async def second() -> None:
        permit = await limiter.acquire(ONE)
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

    from rolebatch.pacing.estimate import DEFAULT_COMPLETION_ESTIMATE, TokenEstimate

    estimate = TokenEstimate()
    size = TokenEstimate.prompt_size({"messages": [{"role": "user", "content": "x" * 380}]})
    assert size == pytest.approx(len('[{"role": "user", "content": "' + "x" * 380 + '"}]') / 4)
    assert estimate.tokens(size) == pytest.approx(size + DEFAULT_COMPLETION_ESTIMATE)
    # The server counted half our guess for the prompt, and 30 completion tokens.
    estimate.observe(SimpleNamespace(prompt_tokens=size / 2, completion_tokens=30), size)
    assert estimate.tokens(size) == pytest.approx(size / 2 + 30)
    assert TokenEstimate(max_tokens=64).tokens(0) == 64


def test_anthropic_headers_read_as_four_budgets_with_rfc3339_resets():
    base = 1_800_000_000.0  # 2027-01-15T08:00:00Z
    headers = {
        "anthropic-ratelimit-requests-limit": "50",
        "anthropic-ratelimit-requests-remaining": "49",
        "anthropic-ratelimit-requests-reset": "2027-01-15T08:00:01.5Z",
        "anthropic-ratelimit-input-tokens-limit": "40000",
        "anthropic-ratelimit-input-tokens-remaining": "39000",
        "anthropic-ratelimit-input-tokens-reset": "2027-01-15T08:00:00+00:00",
        "anthropic-ratelimit-output-tokens-limit": "8000",
        "anthropic-ratelimit-output-tokens-remaining": "7990",
        "anthropic-ratelimit-output-tokens-reset": "not a time",
    }
    readings = read_limits(headers, now=base - 2.0)
    assert set(readings) == {"requests", "input_tokens", "output_tokens"}
    assert readings["requests"].limit == 50 and readings["requests"].remaining == 49
    assert readings["requests"].reset == pytest.approx(3.5)
    assert readings["input_tokens"].limit == 40000
    assert readings["input_tokens"].reset == pytest.approx(2.0)
    assert readings["output_tokens"].remaining == 7990
    assert readings["output_tokens"].reset is None  # unreadable: unknown, not zero


def test_openrouter_headers_read_remaining_and_a_reset_in_epoch_milliseconds():
    readings = read_limits(
        {
            "x-ratelimit-limit": "20",
            "x-ratelimit-remaining": "7",
            "x-ratelimit-reset": "1800000001250",
        },
        now=1_800_000_000.0,
    )
    assert set(readings) == {"requests"}
    assert readings["requests"].remaining == 7
    assert readings["requests"].reset == pytest.approx(1.25)
    assert readings["requests"].timed  # a time: exact whenever it is read


async def test_input_tokens_are_a_budget_apart_from_output_tokens():
    clock = FakeClock()
    limiter = Limiter(itpm=6000, otpm=600, clock=clock, probe=False)  # 100 in, 10 out a second
    start = clock.t
    for _ in range(5):
        permit = await limiter.acquire(Tokens(prompt=10, completion=10))
        limiter.release(permit, Tokens(prompt=10, completion=10), ok=True)
    # Input alone (97 a second, starting from one token) would take half a
    # second for all five; output tokens (9.7 a second) take five.
    assert clock.t - start == pytest.approx((50 - 1) / (10 * HEADROOM), rel=0.05)


# -- a server on the user's machine that queues ----------------------------------


async def test_a_queueing_server_starts_at_its_slots_and_answers_in_line_halve_the_window():
    clock = FakeClock()
    limiter = Limiter(max_in_flight=8, clock=clock, probe=False, queueing=True, window=1)
    assert limiter.window == 1 and limiter.has_room()
    first = await limiter.acquire(ONE)
    assert not limiter.has_room()  # one slot: the next waits
    limiter.release(first, Tokens(10, 20), ok=True, seconds=1.0)  # 50 ms a token: the best
    assert limiter.window == 2  # nothing waited: one more may go
    a, b = await limiter.acquire(ONE), await limiter.acquire(ONE)
    limiter.release(a, Tokens(10, 20), ok=True, seconds=1.1)  # near the best: clear
    assert limiter.window == 2.5
    limiter.release(b, Tokens(10, 20), ok=True, seconds=2.1)  # twice the best: it waited
    assert limiter.window == 1.25
    # An answer four times slower per token, sent before that cut: no second cut.
    limiter.release(await _sent_before(limiter, b), Tokens(10, 10), ok=True, seconds=2.0)
    assert limiter.window == 1.25


async def _sent_before(limiter: Limiter, permit):
    late = await limiter.acquire(ONE)
    late.cuts = permit.cuts  # as if it had gone out with ``permit``
    return late


async def test_a_long_answer_is_not_a_queued_one():
    clock = FakeClock()
    limiter = Limiter(max_in_flight=4, clock=clock, probe=False, queueing=True, window=1)
    limiter.release(await limiter.acquire(ONE), Tokens(10, 10), ok=True, seconds=0.5)
    limiter.release(await limiter.acquire(ONE), Tokens(10, 100), ok=True, seconds=5.0)
    assert limiter.window > 1  # ten times longer, ten times the tokens: not queued


async def test_a_timeout_at_a_queueing_server_holds_the_retry_for_one_answer():
    clock = FakeClock()
    limiter = Limiter(max_in_flight=4, clock=clock, probe=False, queueing=True, window=4)
    limiter.release(await limiter.acquire(ONE), Tokens(10, 10), ok=True, seconds=3.0)
    timed_out = await limiter.acquire(ONE)
    limiter.on_timeout(timed_out)
    limiter.release(timed_out, None, ok=False, seconds=60.0)
    assert limiter.window == 2  # halved
    start = clock.now()
    limiter.release(await limiter.acquire(ONE), None, ok=False)
    assert clock.now() - start == pytest.approx(3.0)  # the server's time for one answer


async def test_without_queueing_a_timeout_changes_nothing():
    clock = FakeClock()
    limiter = Limiter(max_in_flight=4, clock=clock, probe=False)
    permit = await limiter.acquire(ONE)
    limiter.on_timeout(permit)
    limiter.release(permit, None, ok=False)
    assert limiter.window == 4 and limiter.hold_until == -math.inf
