"""One provider quota shared by every process, held in Redis (or Valkey).

Processes that buy from the same quota (the shards of one job, or several
jobs on one model) each pace themselves with a ``Limiter``; with ``--quota
URL`` every request must also be granted by the shared budgets here:
requests, tokens, input and output tokens a second, refilling continuously
up to about a second's worth, exactly like the local ones.  All state lives
in one Redis hash and changes only inside one Lua script, so that

- one round trip per request does everything: it registers the process,
  settles what the previous requests really used (``settle`` rides along
  with the next ``take``), applies a hold, refills and takes;
- time is Redis's own (``TIME``): hosts with skewed clocks agree;
- limits given on the command line or learned from a provider's headers by
  any process are written to the shared state and used by all;
- a 429's Retry-After holds every process until it has passed, and the
  budgets start empty after it, so the processes come back spread out at the
  limit's pace rather than all at once.

Keys share one hash tag (``rolebatch:{quota:<digest>}:...``), so a Redis
Cluster keeps them on one node.  If Redis goes away mid-run, ``take``
returns None: the caller falls back to a local budget of the limit divided by
the number of processes alive when it was last heard (each says so every half
second, and is forgotten 1.5 s after its last word; no fewer than a
shard's N until the store has been heard that long), and ``take`` tries
Redis again every few seconds, rejoining when it is back: what it sent on
its local share in the last second is charged to the shared budgets as it
rejoins, so the server's window is not spent twice.  No record fails
because Redis failed.
"""

from __future__ import annotations

import hashlib
import os
import random
import socket
import sys
import time
import uuid
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ..errors import UsageError
from .headers import BUDGETS

SCHEMES = {"redis": "redis", "rediss": "rediss", "valkey": "redis", "valkeys": "rediss"}
# A process not heard from for this long is not counted among the sharers;
# each says it is alive (``heartbeat``) every BEAT seconds while it runs, so
# that a shard killed is no longer counted seconds later.
SEEN_RECENTLY = 1.5
BEAT = 0.5
# While Redis is away, try it again this often.
RETRY_DOWN = 5.0
BURST_SECONDS = 1.0
TIMEOUT = 2.0

# KEYS[1]: the state hash; KEYS[2]: the processes seen (a sorted set by time).
# ARGV: process id, hold seconds (0: none), take (1/0), seconds a process
# counts as seen, burst seconds, then per budget in BUDGETS order: rate a
# second (0: not known to this process), cost, what to give back from earlier
# reservations (reserved - used; negative: more), and what the server said it
# has left when it first confirmed the limit (-1: nothing new); the first such
# word fills the bucket up to it, once in the quota's life, as the local
# limiter does: the server's first window need not go unused.
# Returns {granted, wait seconds (a string), processes seen, held}.
SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state, procs = KEYS[1], KEYS[2]
redis.call('ZADD', procs, now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', procs, '-inf', now - tonumber(ARGV[4]))
local nprocs = redis.call('ZCARD', procs)
local burst = tonumber(ARGV[5])
local hold_until = tonumber(redis.call('HGET', state, 'hold_until') or '0')
local hold = tonumber(ARGV[2])
if hold > 0 and now + hold > hold_until + 0.05 then
  hold_until = now + hold
  redis.call('HSET', state, 'hold_until', tostring(hold_until))
else
  hold = 0  -- no news: a hold already known does not empty the budgets again
end
local names = {'requests', 'tokens', 'input_tokens', 'output_tokens'}
local rates, levels, stamps, caps, costs = {}, {}, {}, {}, {}
local wait = 0
local held = 0
if hold_until > now then
  wait = hold_until - now
  held = 1
end
for i, name in ipairs(names) do
  local base = 5 + (i - 1) * 4
  local rate = tonumber(ARGV[base + 1])
  if rate > 0 then
    redis.call('HSET', state, name .. ':rate', tostring(rate))
  else
    rate = tonumber(redis.call('HGET', state, name .. ':rate') or '0')
  end
  rates[i] = rate
  costs[i] = tonumber(ARGV[base + 2])
  if rate > 0 then
    local cap = math.max(1, rate * burst)
    local raw = redis.call('HGET', state, name .. ':level')
    local level, stamp
    if raw then
      level = tonumber(raw)
      stamp = tonumber(redis.call('HGET', state, name .. ':stamp'))
    else
      level = math.max(1, math.min(costs[i], cap))  -- the first request goes at once
      stamp = now
    end
    if now > stamp then
      level = math.min(cap, level + (now - stamp) * rate)
      stamp = now
    end
    level = math.min(cap, level + tonumber(ARGV[base + 3]))
    local top = tonumber(ARGV[base + 4])
    if top >= 0 and not redis.call('HGET', state, name .. ':topped') then
      level = math.max(level, math.min(cap, top))
      redis.call('HSET', state, name .. ':topped', '1')
    end
    if hold > 0 then
      -- Empty after the hold: everyone comes back at the limit's pace.
      level = math.min(level, 0)
      stamp = math.max(stamp, hold_until)
    end
    local need = math.min(costs[i], cap)
    if level < need - 1e-9 then
      wait = math.max(wait, math.max(0, stamp - now) + (need - level) / rate)
    end
    levels[i], stamps[i], caps[i] = level, stamp, cap
  end
end
local granted = 0
if wait <= 0 and ARGV[3] == '1' then
  granted = 1
end
for i, name in ipairs(names) do
  if rates[i] > 0 then
    local level = levels[i]
    if granted == 1 then
      level = level - costs[i]
    end
    redis.call('HSET', state, name .. ':level', tostring(level), name .. ':stamp',
      tostring(stamps[i]))
  end
end
redis.call('PEXPIRE', state, 3600000)
redis.call('PEXPIRE', procs, 3600000)
return {granted, tostring(wait), nprocs, held}
"""


# KEYS[1]: the processes seen; ARGV: this process, seconds a process counts
# as seen.  Returns how many are seen now.
BEAT_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))
redis.call('PEXPIRE', KEYS[1], 3600000)
return redis.call('ZCARD', KEYS[1])
"""


def normalize_url(url: str) -> str:
    """redis://, rediss://, valkey:// and valkeys:// URLs, as redis-py takes them."""
    parts = urlsplit(url)
    scheme = SCHEMES.get(parts.scheme.lower())
    if scheme is None or not parts.hostname:
        raise UsageError(
            f"--quota {redact_url(url)}: expected redis://host:6379/0 (or rediss://, valkey://)"
        )
    return urlunsplit((scheme, *parts[1:]))


def redact_url(url: str) -> str:
    """``url`` with its password, if any, replaced by ***."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    netloc = f"{user}:***@{host}{port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def quota_name(provider: str, base_url: str, model: str, override: str | None) -> str:
    """What the provider limits: one quota per provider, endpoint and model."""
    return override or f"{provider} {base_url} {model}"


def keys(name: str) -> tuple[str, str]:
    tag = hashlib.sha256(name.encode()).hexdigest()[:20]
    return f"rolebatch:{{quota:{tag}}}:state", f"rolebatch:{{quota:{tag}}}:procs"


def check_reachable(url: str) -> None:
    """Before anything is written: exit 2 naming the URL if Redis does not answer."""
    import redis

    client = redis.Redis.from_url(
        normalize_url(url), socket_connect_timeout=TIMEOUT, socket_timeout=TIMEOUT
    )
    try:
        client.ping()
    except redis.RedisError as exc:
        raise UsageError(
            f"--quota {redact_url(url)}: cannot reach it ({type(exc).__name__}: "
            f"{_clean(exc, url)}). Start Redis or Valkey there, or run without --quota."
        ) from None
    finally:
        client.close()


def _clean(exc: BaseException, url: str) -> str:
    text = str(exc) or type(exc).__name__
    password = urlsplit(url).password
    return text.replace(password, "***") if password else text


class SharedQuota:
    """This process's side of a shared quota."""

    def __init__(self, url: str, name: str, expected: int = 1):
        self.url = url
        self.name = name
        self.id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.up = True
        self.seen = 1  # sharers the store counted at the last word from it
        # How many are expected to share (a shard's N); until the store has
        # been heard for as long as a sharer takes to be counted, the share
        # is never larger than 1/expected: a shard that started just before
        # the store went away has not seen the others start.
        self.expected = max(1, expected)
        self._heard_since: float | None = None
        self._away: list[tuple[float, dict[str, float]]] = []  # (when, cost) sent while away
        self._state, self._procs = keys(name)
        self._give = dict.fromkeys(BUDGETS, 0.0)
        self._hold = 0.0
        self._hold_at = 0.0
        self._retry_at = 0.0
        self._warned = False
        self._client: Any = None
        self._script: Any = None

    @property
    def processes(self) -> int:
        """How many share the quota, for the local share while it is away:
        those the store counted alive at its last word, and no fewer than
        expected until it had been heard for SEEN_RECENTLY."""
        settled = (
            self._heard_since is not None and time.monotonic() - self._heard_since >= SEEN_RECENTLY
        )
        return self.seen if settled else max(self.seen, self.expected)

    async def open(self) -> None:
        import redis.asyncio as aioredis

        self._client = aioredis.Redis.from_url(
            normalize_url(self.url), socket_connect_timeout=TIMEOUT, socket_timeout=TIMEOUT
        )
        self._script = self._client.register_script(SCRIPT)
        self._beat = self._client.register_script(BEAT_SCRIPT)
        await self._client.hset(self._state, "name", self.name)

    async def heartbeat(self) -> None:
        """Until cancelled: say this process is alive every BEAT seconds, so
        that the others count it while it waits, and stop counting it soon
        after it dies."""
        import anyio

        while True:
            await anyio.sleep(BEAT)
            if not self.up or self._client is None:
                continue
            try:
                seen = await self._beat(keys=[self._procs], args=[self.id, SEEN_RECENTLY])
            except Exception as exc:  # away: the next take says so and paces locally
                self._down(exc)
                continue
            self._heard(int(seen))

    def spent_away(self, cost: Any) -> None:
        """A request sent on the local share while the store is away: told
        to the store when it is back, so that the window it went into is not
        spent twice."""
        now = time.monotonic()
        self._away = [(at, c) for at, c in self._away if now - at <= BURST_SECONDS]
        self._away.append((now, {name: cost.of(name) for name in BUDGETS}))

    def _heard(self, seen: int) -> None:
        self.seen = max(1, seen)
        if self._heard_since is None:
            self._heard_since = time.monotonic()

    async def take(
        self, rates: dict[str, float], cost: Any, tops: dict[str, float] | None = None
    ) -> float | None:
        """Seconds to wait before trying again (0: granted, and taken);
        None: Redis is away, pace locally (``processes`` says by how many).
        ``tops``: what the server said it has left, for budgets it has just
        confirmed."""
        if not self.up and time.monotonic() < self._retry_at:
            return None
        return await self._call(rates, cost, tops or {}, take=True)

    @property
    def holding(self) -> bool:
        """A 429's hold not yet told to the others."""
        return self._hold > 0

    async def tell_hold(self) -> None:
        """Tell the others about a 429 now, not with the next request."""
        if self.up:
            await self._call({}, None, {}, take=False)

    async def _call(
        self, rates: dict[str, float], cost: Any, tops: dict[str, float], take: bool
    ) -> float | None:
        hold = max(0.0, self._hold - (time.monotonic() - self._hold_at))
        args: list[Any] = [self.id, hold, int(take), SEEN_RECENTLY, BURST_SECONDS]
        # Back from away: what went out on the local share within the last
        # burst is in the server's window already; charged as debt.
        now = time.monotonic()
        away = [c for at, c in self._away if now - at <= BURST_SECONDS] if not self.up else []
        for name in BUDGETS:
            spend = cost.of(name) if cost is not None else 0.0
            give = self._give[name] - sum(c[name] for c in away)
            args += [rates.get(name, 0.0), spend, give, tops.get(name, -1)]
        try:
            granted, wait, processes, held = await self._script(
                keys=[self._state, self._procs], args=args
            )
        except Exception as exc:  # any failure of Redis: pace locally, no record fails
            self._down(exc)
            return None
        self._give = dict.fromkeys(BUDGETS, 0.0)  # settled
        self._away = []
        self._hold = 0.0
        self._heard(int(processes))
        if not self.up:
            self.up = True
            _say(f"shared quota {redact_url(self.url)} is back: pacing with the others again")
        if int(granted) or not take:
            return 0.0
        seconds = max(float(wait), 0.001)
        if int(held):
            # Everyone was held: come back spread over a little while.
            seconds += random.uniform(0, min(1.0, 0.2 * seconds))
        return seconds

    def settle(self, reserved: Any, used: Any) -> None:
        """What a request really used: given back (or charged) with the next take."""
        for name in BUDGETS:
            if name != "requests":
                self._give[name] += reserved.of(name) - used.of(name)

    def hold(self, seconds: float) -> None:
        """A 429 asked for ``seconds``: every process waits (``tell_hold``)."""
        left = max(0.0, self._hold - (time.monotonic() - self._hold_at))
        self._hold, self._hold_at = max(left, seconds), time.monotonic()

    def _down(self, exc: BaseException) -> None:
        self._retry_at = time.monotonic() + RETRY_DOWN
        if self.up:
            self.up = False
            if not self._warned:
                self._warned = True
                _say(
                    f"warning: shared quota {redact_url(self.url)} is unreachable"
                    f" ({type(exc).__name__}); pacing locally at 1/{self.processes} of the"
                    f" limit until it is back"
                )

    async def close(self) -> None:
        if self._client is None:
            return
        try:
            if self.up and any(self._give.values()):
                await self._call({}, None, {}, take=False)
            if self.up:
                await self._client.zrem(self._procs, self.id)
        except Exception:
            pass  # leaving: the state expires on its own
        finally:
            await self._client.aclose()
            self._client = None


def _say(text: str) -> None:
    print(f"rolebatch: {text}", file=sys.stderr, flush=True)
