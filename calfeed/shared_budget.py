"""The LL2 request budget of a whole service, in Redis: one window for every process.

The same `Budget` interface as `LocalBudget`; each call is one Lua script, so a spend
is checked and recorded in one step even when two processes (two leaders during a
hand-over, say) spend at the same moment. Calls are a sorted set scored by their time
(seconds since the epoch, from the caller's injected clock: processes agree on time
through NTP, as the leader lease already assumes).

Why not the `limits` library's Redis moving window: it counts and refuses, but calfeed
also needs LL2's 429 block, a refund for a call that never left, the count that
/api-throttle/ reports adopted into the window, and the window's call times to plan
when a job of several pages fits. Those are a few lines of Lua each here; with `limits`
they would be a second structure beside its own.

If Redis cannot be reached, nothing may be spent (another process may be spending the
same budget unseen): `spend` raises BudgetExhausted, and `view` answers with the last
window it saw, so /healthz still reports.
"""

from __future__ import annotations

import itertools
import logging
import math
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from calfeed.budget import MAX_BLOCK, WINDOW, BudgetView
from calfeed.exceptions import BudgetExhausted
from calfeed.sanitize import excerpt

log = logging.getLogger("calfeed.budget")

# A spend: drop calls that left the window (ARGV[5]: its start, as the caller computed
# it, so that a spend and a view agree on the boundary), refuse while blocked or full,
# else record. A stored limit counts only where it is stricter than this process's own
# (a NaN, an infinity or a larger number under the key changes nothing).
_SPEND = """
local now = tonumber(ARGV[1])
-- a call dated well after now (by a process whose clock ran ahead, or this one's before
-- it was set back) counts as made now: dated ahead, it would hold the window full for
-- every process for as long as that clock was off
local ahead = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. (now + 60), '+inf')
for _, member in ipairs(ahead) do redis.call('ZADD', KEYS[1], now, member) end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[5])
local blocked = tonumber(redis.call('GET', KEYS[2]) or '0') or 0
if blocked > now then return 0 end
local limit = tonumber(ARGV[3])
local stored = tonumber(redis.call('GET', KEYS[3]) or '')
if stored and stored == stored and stored >= 1 and stored < limit then limit = stored end
if redis.call('ZCARD', KEYS[1]) >= limit then return 0 end
redis.call('ZADD', KEYS[1], now, ARGV[4])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2]) * 2)
return 1
"""
# a refund: exactly the call this process spent last (not another process's)
_REFUND = """
return redis.call('ZREM', KEYS[1], ARGV[1])
"""
# a block only ever grows (a later 429 may say less than an earlier one)
_BLOCK = """
local upto = tonumber(ARGV[1])
local current = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
if upto > current then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', tonumber(ARGV[2]))
end
return 1
"""
# LL2's own count: calls we did not see are counted as made now; its limit, if stricter
_ADOPT = """
local now = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[6])
if ARGV[3] ~= '' then redis.call('SET', KEYS[2], ARGV[3], 'EX', tonumber(ARGV[2]) * 24) end
local seen = redis.call('ZCARD', KEYS[1])
local current = tonumber(ARGV[4]) or 0
for i = seen + 1, current do
  redis.call('ZADD', KEYS[1], now, ARGV[5] .. ':' .. i)
end
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2]) * 2)
return redis.call('ZCARD', KEYS[1])
"""
# the view: the window's calls, the block and the limit, as one consistent reading
_VIEW = """
local calls = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[2], '+inf', 'WITHSCORES')
return {calls, redis.call('GET', KEYS[2]) or '', redis.call('GET', KEYS[3]) or ''}
"""


def _epoch(when: datetime) -> str:
    return repr(when.timestamp())


def _when(value: Any) -> datetime | None:
    """A time Redis holds (seconds since the epoch), or None for what is not one."""
    try:
        seconds = float(value)
        return datetime.fromtimestamp(seconds, UTC) if math.isfinite(seconds) else None
    except (TypeError, ValueError, OverflowError, OSError):
        return None


class SharedBudget:
    """At most `limit` LL2 calls in any 60 minutes across every process on one Redis."""

    def __init__(self, redis: Redis, prefix: str, limit: int) -> None:
        self._redis = redis
        self.limit = max(1, limit)
        self._calls_key = f"{prefix}:budget:calls"
        self._block_key = f"{prefix}:budget:blocked-until"
        self._limit_key = f"{prefix}:budget:limit"
        # members must differ between processes and calls
        self._token = uuid.uuid4().hex
        self._serial = itertools.count()
        self._spend = redis.register_script(_SPEND)
        self._refund = redis.register_script(_REFUND)
        self._block = redis.register_script(_BLOCK)
        self._adopt = redis.register_script(_ADOPT)
        self._view = redis.register_script(_VIEW)
        self._last = BudgetView(self.limit, (), None)
        # the member of the call this process spent last (what a refund takes back)
        self._spent: str | None = None
        # whether the keys were found holding what calfeed did not write (logged once)
        self._foreign = False

    @property
    def _window(self) -> str:
        return str(int(WINDOW.total_seconds()))

    async def view(self, now: datetime) -> BudgetView:
        """The shared window as it is now (the last one seen, if Redis is unreachable)."""
        try:
            calls, blocked, limit = await self._view(
                keys=[self._calls_key, self._block_key, self._limit_key],
                args=[_epoch(now), _epoch(now - WINDOW)],
            )
        except RedisError:
            return self._last
        # (as the spend has them: a call dated after now, as made now; a block, at most
        # MAX_BLOCK from now)
        times = tuple(sorted(min(t, now) for score in calls[1::2]
                             if (t := _when(score)) is not None))
        until = _when(blocked) if blocked else None
        until = min(until, now + MAX_BLOCK) if until else None
        self._last = BudgetView(
            _limit(limit, self.limit), times, until if until and until > now else None)
        return self._last

    async def spend(self, now: datetime) -> bool:
        """Record one call if it fits now in the service's window."""
        member = f"{self._token}:{next(self._serial)}"
        try:
            spent = await self._spend(
                keys=[self._calls_key, self._block_key, self._limit_key],
                args=[_epoch(now), self._window, str(self.limit), member,
                      _epoch(now - WINDOW)],
            )
        except ResponseError as error:
            # a key of the budget holds another type (someone else's data under the
            # prefix): nothing is spent, so no LL2 call, and it is said once
            if not self._foreign:
                self._foreign = True
                log.warning("budget=foreign the shared budget's keys under the prefix hold "
                            "data calfeed did not write (%s): no LL2 calls until they are "
                            "removed", excerpt(str(error)))
            raise BudgetExhausted("the shared LL2 budget's keys in Redis hold foreign data",
                                  60.0) from None
        except RedisError as error:
            raise BudgetExhausted(
                f"Redis is unreachable, so the shared LL2 budget cannot be checked ({error})",
                5.0) from None
        self._foreign = False
        if spent:
            self._spent = member
        return bool(spent)

    async def refund(self, now: datetime) -> None:
        """Take back the call this process spent last (it never reached LL2)."""
        if self._spent is None:
            return
        try:
            await self._refund(keys=[self._calls_key], args=[self._spent])
        except RedisError as error:
            log.warning("budget=refund-failed error=%r", str(error))
        self._spent = None

    async def block(self, until: datetime, now: datetime) -> None:
        """LL2 said 429: no process sends anything before `until` (at most MAX_BLOCK)."""
        until = min(until, now + MAX_BLOCK)
        seconds = max(1, int((until - now).total_seconds()) + 1)
        try:
            await self._block(keys=[self._block_key], args=[_epoch(until), str(seconds)])
        except RedisError as error:
            log.warning("budget=block-failed error=%r", str(error))

    async def adopt(self, throttle: Mapping[str, Any], now: datetime, reserve: int) -> None:
        """Take LL2's own count (/api-throttle/) where it is stricter than the window's."""
        limit = throttle.get("your_request_limit")
        stricter = ""
        if isinstance(limit, int) and not isinstance(limit, bool) and limit > 0:
            stricter = str(max(1, min(self.limit, limit - reserve)))
        current = throttle.get("current_use")
        count = (min(current, self.limit) if isinstance(current, int)
                 and not isinstance(current, bool) else 0)
        try:
            used = await self._adopt(
                keys=[self._calls_key, self._limit_key],
                args=[_epoch(now), self._window, stricter, str(max(0, count)),
                      f"{self._token}:adopted:{next(self._serial)}", _epoch(now - WINDOW)],
            )
        except RedisError as error:
            log.warning("budget=adopt-failed error=%r", str(error))
            return
        wait = throttle.get("next_use_secs")
        if isinstance(wait, int | float) and not isinstance(wait, bool) and wait > 0:
            await self.block(now + timedelta(seconds=min(float(wait), 1e9)), now)
        log.info("budget=adopted shared=yes limit=%s used=%s", stricter or self.limit, used)

    def to_state(self) -> None:
        """Nothing for the state folder: the window lives in Redis."""
        return None

    def load_state(self, state: Mapping[str, Any], now: datetime) -> None:
        """Nothing to restore: the window lives in Redis."""


def _limit(stored: Any, configured: int) -> int:
    try:
        return max(1, min(configured, int(stored)))
    except (TypeError, ValueError):
        return configured
