"""The upstream request budget: a sliding one-hour window over every LL2 call calfeed makes.

The syncer spends it through the `Budget` interface: a consistent `view` to plan with,
`spend` before each call (atomic: the call is recorded or refused), `block` after a 429,
`adopt` with what LL2's /api-throttle/ says. `LocalBudget` keeps the window in this
process (and its state folder); a budget shared by several processes implements the
same four calls, and neither the syncer's policy nor the LL2 client changes.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

log = logging.getLogger("calfeed.budget")

WINDOW = timedelta(hours=1)
# the longest LL2 may make calfeed wait (its own throttle lasts an hour at most): a larger
# Retry-After or next_use_secs is a bug or an attack, and would silence calfeed for good
MAX_BLOCK = timedelta(hours=2)


@dataclass(frozen=True)
class BudgetView:
    """The budget as it stood at one moment: what the syncer plans with."""

    limit: int
    # the calls of the window ending at the view's moment, oldest first
    calls: tuple[datetime, ...]
    blocked_until: datetime | None

    @property
    def used(self) -> int:
        """Calls in the window."""
        return len(self.calls)

    @property
    def left(self) -> int:
        """Calls that may still be made in the window."""
        return max(0, self.limit - len(self.calls))

    def next_slot(self, now: datetime, count: int = 1) -> datetime:
        """The earliest time at which `count` calls fit (and LL2 does not block us)."""
        return _next_slot(self.calls, self.limit, self.blocked_until, now, count)


def _next_slot(
    calls: tuple[datetime, ...] | list[datetime], limit: int, blocked_until: datetime | None,
    now: datetime, count: int,
) -> datetime:
    recent = [c for c in calls if c > now - WINDOW]
    when = now
    excess = len(recent) + count - limit
    if excess > 0 and recent:
        when = max(when, recent[min(excess, len(recent)) - 1] + WINDOW)
    if blocked_until is not None and blocked_until > when:
        when = blocked_until
    return when


class Budget(Protocol):
    """What the syncer asks of the LL2 request budget."""

    async def view(self, now: datetime) -> BudgetView:
        """The window, the limit and any block, as they are now."""

    async def spend(self, now: datetime) -> bool:
        """Record one call if it fits now; False (and nothing recorded) if it does not."""

    async def refund(self, now: datetime) -> None:
        """Take back the latest call spent up to `now`: it never reached LL2."""

    async def block(self, until: datetime, now: datetime) -> None:
        """LL2 said 429: nothing goes out before `until` (at most MAX_BLOCK from now)."""

    async def adopt(self, throttle: Mapping[str, Any], now: datetime, reserve: int) -> None:
        """Take LL2's own count (/api-throttle/) where it is stricter."""

    def to_state(self) -> dict[str, Any] | None:
        """What to keep in the state folder across a restart (None: nothing)."""

    def load_state(self, state: Mapping[str, Any], now: datetime) -> None:
        """Restore what to_state kept."""


class LocalBudget:
    """At most `limit` calls in any 60 minutes, and none while LL2 has told us to wait: the
    window of this one process."""

    def __init__(self, limit: int) -> None:
        self.limit = max(1, limit)
        self._configured = self.limit
        self.calls: list[datetime] = []
        self.blocked_until: datetime | None = None

    def _trim(self, now: datetime) -> None:
        if self.calls and self.calls[-1] > now:
            # the clock was set back: a call dated after now would keep the window full
            # for as long as the clock was off (a day, after a bad NTP step); made now
            self.calls = [min(call, now) for call in self.calls]
        if self.blocked_until is not None and self.blocked_until > now + MAX_BLOCK:
            self.blocked_until = now + MAX_BLOCK
        cutoff = now - WINDOW
        while self.calls and self.calls[0] <= cutoff:
            self.calls.pop(0)

    def used(self, now: datetime) -> int:
        """Calls in the window ending now."""
        self._trim(now)
        return len(self.calls)

    def left(self, now: datetime) -> int:
        """Calls that may still be made in the window ending now."""
        return max(0, self.limit - self.used(now))

    def next_slot(self, now: datetime, count: int = 1) -> datetime:
        """The earliest time at which `count` calls fit (and LL2 does not block us)."""
        self._trim(now)
        return _next_slot(self.calls, self.limit, self.blocked_until, now, count)

    async def view(self, now: datetime) -> BudgetView:
        """The window as it is now."""
        self._trim(now)
        return BudgetView(self.limit, tuple(self.calls), self.blocked_until)

    async def spend(self, now: datetime) -> bool:
        """Record one call if it fits now."""
        return self.try_spend(now)

    async def refund(self, now: datetime) -> None:
        """Take back the latest call spent up to `now`."""
        for index in range(len(self.calls) - 1, -1, -1):
            if self.calls[index] <= now:
                del self.calls[index]
                return

    def try_spend(self, now: datetime) -> bool:
        """Record one call if it fits now; False (and nothing recorded) if it does not."""
        if self.next_slot(now) > now:
            return False
        self.calls.append(now)
        return True

    async def block(self, until: datetime, now: datetime) -> None:
        """LL2 said 429: nothing goes out before `until` (at most MAX_BLOCK from now)."""
        until = min(until, now + MAX_BLOCK)
        if self.blocked_until is None or until > self.blocked_until:
            self.blocked_until = until

    async def adopt(self, throttle: Mapping[str, Any], now: datetime, reserve: int) -> None:
        """Take LL2's own count (/api-throttle/) where it is stricter than ours."""
        limit = throttle.get("your_request_limit")
        if isinstance(limit, int) and not isinstance(limit, bool) and limit > 0:
            self.limit = max(1, min(self._configured, limit - reserve))
        current = throttle.get("current_use")
        if isinstance(current, int) and not isinstance(current, bool):
            # more than the limit says no more than "the limit is used up"
            current = min(current, self._configured)
            self._trim(now)
            # calls we did not see (another process, a restart): count them as made now
            for _ in range(max(0, current - len(self.calls))):
                self.calls.append(now)
        wait = throttle.get("next_use_secs")
        if isinstance(wait, int | float) and not isinstance(wait, bool) and wait > 0:
            await self.block(now + timedelta(seconds=min(float(wait), 1e9)), now)
        log.info("budget=adopted limit=%d used=%d blocked_until=%s", self.limit,
                 len(self.calls), self.blocked_until.isoformat() if self.blocked_until else "-")

    def to_state(self) -> dict[str, Any]:
        """The window and block, for the state file."""
        return {
            "calls": [c.isoformat() for c in self.calls],
            "blocked_until": self.blocked_until.isoformat() if self.blocked_until else None,
        }

    def load_state(self, state: Mapping[str, Any], now: datetime) -> None:
        """Restore a saved window (calls older than an hour fall away); ValueError for a
        malformed one, and then nothing changes (a half-read window would break every
        later comparison with now). A call saved with a later time than now (the clock
        was set back since) counts as made now: dated in the future, it would keep the
        window full for as long as the clock was off."""
        calls = state.get("calls", [])
        found = sorted(min(_aware(c), now) for c in calls if isinstance(c, str)) if (
            isinstance(calls, list)) else self.calls
        blocked = state.get("blocked_until")
        until = min(_aware(blocked), now + MAX_BLOCK) if isinstance(blocked, str) else None
        self.calls = found
        self._trim(now)
        if until is not None and until > now:
            self.blocked_until = until


def _aware(value: str) -> datetime:
    when = datetime.fromisoformat(value)
    if when.tzinfo is None:
        raise ValueError(f"a saved time without a zone: {value[:40]!r}")
    return when
