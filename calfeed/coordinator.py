"""One syncer for many processes: who leads, what followers load, what Redis trouble does.

With a Redis URL every process runs a coordinator. Each round (about a second) it renews
or tries to take the leader lease, and, as a follower, loads every dataset whose
revision moved. The leader alone runs the syncer; each job it finishes is written back
to Redis under its lease. Redis out of reach: the process keeps serving what it holds
and nobody calls LL2 (the budget cannot be shared safely); one log line when that
starts and one when it ends. Redis back empty (a restart): the leader writes what it
holds and asks /api-throttle/ again before its next call.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from redis.exceptions import RedisError, ResponseError

from calfeed.sanitize import error_words
from calfeed.shared_store import SharedStore
from calfeed.steps import in_turns
from calfeed.sync import Sleep, Syncer

log = logging.getLogger("calfeed.shared")

Now = Callable[[], datetime]
# how often the lease is renewed and followers look for new data
ROUND_SECONDS = 1.0
# a dataset lost from Redis again within this long of the wait after it was written
# again (evicted at every write: maxmemory too small for it) waits twice as long as
# before for its next write, up to LOST_WAIT_MOST; one written each round made every
# follower decode it anew each second
LOST_AGAIN_WITHIN = 600.0
LOST_WAIT_MOST = 300.0


class Coordinator:
    """This process's part in a shared service: leader (syncs) or follower (loads)."""

    def __init__(self, shared: SharedStore, syncer: Syncer, *, lease: float, now: Now,
                 token: str | None = None,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.shared = shared
        self.syncer = syncer
        self.lease = lease
        self._now = now
        self.token = token or uuid.uuid4().hex
        self.leader = False
        # until when (monotonic seconds) the lease is surely ours: renewed at the start of
        # a round, it lasts `lease` from then, so a process that was stopped (SIGSTOP)
        # past it knows it may no longer fetch before its next round tells it so
        self.monotonic = monotonic
        self._lease_until = 0.0
        # "connected", "unreachable", "foreign" (the prefix holds someone else's data);
        # None until the first round
        self.redis_state: str | None = None
        self.redis_error: str | None = None
        self.generation = 0
        # kind -> the revision this process holds (loaded, or written as leader)
        self._held: dict[str, str] = {}
        # kinds the leader synced but could not write (Redis was away): written next round
        self._unwritten: set[str] = set()
        # kind -> when (monotonic) the leader last wrote it again after it left Redis,
        # and the wait before the next such write
        self._rewritten: dict[str, tuple[float, float]] = {}
        # when the leader's syncer wants to run next
        self._next_tick: datetime | None = None
        self.loads = 0
        syncer.may_fetch = self.may_fetch
        syncer.publish = self.publish

    def may_fetch(self) -> bool:
        """Whether this process leads, with a lease that has not run out meanwhile."""
        return self.leader and self.monotonic() < self._lease_until

    @property
    def role(self) -> str:
        """"leader" or "follower"."""
        return "leader" if self.leader else "follower"

    async def publish(self, kind: str, changed: bool) -> None:
        """After a leader's job: the kind's dataset into Redis, under the lease."""
        dataset = self.syncer.datasets[kind]
        try:
            revision = await self.shared.write(kind, dataset.to_state(), self.token, changed)
        except RedisError as error:
            self._unwritten.add(kind)
            # what this process holds is not what Redis holds: reload it as a follower
            self._held.pop(kind, None)
            self._trouble(error)
            return
        if revision is None:
            self._held.pop(kind, None)
            self._demote("another process holds the lease")
            return
        self._held[kind] = revision
        self._unwritten.discard(kind)

    async def step(self) -> None:
        """One round: check Redis, hold or seek the lease, load what moved."""
        try:
            layout = await self.shared.layout()
            if layout == "foreign":
                self._set_state("foreign", "the key prefix holds data calfeed did not write")
                self._demote(None)
                return
            if layout == "new" and self._held:
                # Redis came back empty. Every process serves what it has meanwhile (an
                # empty Redis drops nothing here); the leader finds the kinds missing from
                # Redis below and writes them again, whichever process noticed first
                log.warning("redis=reset the shared data was lost (a Redis restart?): "
                            "serving what this process holds until the leader writes it")
            asked = self.monotonic()
            status = await self.shared.hold_lease(self.token, self.lease)
            if status:
                self._lease_until = asked + self.lease
                if not self.leader:
                    # (taken now, or ours still after a Redis blip demoted us): first what
                    # the service holds, the last leader's writes, then lead from there
                    await self._load(leading=True)
                    log.info("leader=acquired token=%s", self.token[:8])
                    # another process may have spent LL2's quota: ask /api-throttle/ first
                    self.syncer.recheck_budget()
                    self._next_tick = None
                    self.leader = True
            else:
                self._demote("another process holds the lease")
            if self.leader:
                # what Redis holds that this leader did not write (Redis brought back from
                # an older copy with the lease in it): loaded if newer, else written again
                stored = await self.shared.revisions()
                await self._load(stored, leading=True)
                # a kind this process holds that Redis does not (Redis restarted empty,
                # whoever noticed it first): written again, as is anything unwritten
                held = {n for n, d in self.syncer.datasets.items()
                        if d.has_data and n not in self._unwritten}
                lost = {n for n in held if n not in stored} | await self.shared.missing(
                    n for n in held if n in stored)
                if lost:
                    # the budget's window went with them: LL2's own count before a call
                    self.syncer.recheck_budget()
                for kind in sorted(self._unwritten):
                    await self.publish(kind, True)
                for kind in sorted(self._due_again(lost - self._unwritten)):
                    # (the same items: no new generation, nothing for caches to redo)
                    await self.publish(kind, False)
            else:
                await self._load()
            self.generation = await self.shared.generation()
            now = self._now()
            # the service's budget as it stands, for /metrics and /healthz of followers too
            self.syncer.budget_view = await self.syncer.budget.view(now)
        except RedisError as error:
            self._trouble(error)
            return
        self._set_state("connected", None)

    def _due_again(self, lost: set[str]) -> set[str]:
        """Of the kinds lost from Redis, those to write again now: each at once the first
        time, then, while it keeps leaving soon after, at waits doubling from a second
        (one log line the first time it does)."""
        now = self.monotonic()
        due = set()
        for kind in lost:
            last, wait = self._rewritten.get(kind, (None, 0.0))
            if last is not None and now < last + wait:
                continue
            if last is not None and now < last + wait + LOST_AGAIN_WITHIN:
                if not wait:  # (the streak begins: said once)
                    log.warning("redis=evicting key=dataset:%s left Redis again %.0f s after "
                                "it was written again (maxmemory too small? calfeed's keys "
                                "need room, or maxmemory-policy noeviction): written again "
                                "at waits doubling up to %.0f s", kind, now - last,
                                LOST_WAIT_MOST)
                wait = min(LOST_WAIT_MOST, max(ROUND_SECONDS, wait * 2))
            else:
                # (lost once, or long after the last time: said again if it goes on)
                wait = 0.0
            self._rewritten[kind] = (now, wait)
            due.add(kind)
        return due

    async def _load(
        self, revisions: dict[str, str] | None = None, *, leading: bool = False,
    ) -> None:
        """Every dataset whose revision moved, from Redis (as a follower, or `leading`:
        as the leader, or before it leads), unless this process holds newer data;
        `revisions` as just read, if they were."""
        if revisions is None:
            revisions = await self.shared.revisions()
        for kind, revision in revisions.items():
            dataset = self.syncer.store.datasets.get(kind)
            if dataset is None or self._held.get(kind) == revision:
                continue
            state = await self.shared.read(kind)
            if state is None and await self.shared.missing([kind]):
                # (not held: looked for again next round, until the leader writes it)
                continue
            self._held[kind] = revision
            if state is None:
                self._unwritten.discard(kind)
                continue
            try:
                if dataset.holds_newer_than(state):
                    # Redis brought back from an older copy (its last snapshot, a backup),
                    # or a leader's write lost in a blip: kept, and as the leader written
                    log.warning("shared=older key=dataset:%s: this process holds newer "
                                "data (Redis restored from an older copy?)%s", kind,
                                ", written again" if leading else "; kept until the leader "
                                "writes newer")
                    if leading:
                        self._unwritten.add(kind)
                    continue
                self._unwritten.discard(kind)
                await in_turns(dataset.loading_state(state))
            except (ValueError, TypeError, KeyError, AttributeError) as error:
                log.warning("shared=ignored key=dataset:%s reason=%r", kind,
                            error_words(error))
                continue
            self.loads += 1

    def _demote(self, reason: str | None) -> None:
        if self.leader:
            log.warning("leader=lost reason=%r", reason or "redis")
            # a job may have fetched what it could not write: as a follower, this process
            # serves what the service holds, so everything is loaded again
            self._held.clear()
        self.leader = False

    def _trouble(self, error: RedisError) -> None:
        if isinstance(error, ResponseError):
            # Redis answers, but refuses: a key under the prefix of another type
            # (WRONGTYPE), the same at every round until someone removes it
            self._demote("a key under the prefix is not calfeed's")
            self._set_state("foreign", error_words(error))
            return
        self._demote("Redis is unreachable")
        self._set_state("unreachable", error_words(error))

    def _set_state(self, state: str, error: str | None) -> None:
        if state != self.redis_state:
            if state == "connected":
                log.info("redis=connected%s", " again" if self.redis_state else "")
            else:
                log.warning("redis=%s %s: serving the data this process holds, no LL2 calls "
                            "until that changes", state, error)
        self.redis_state = state
        self.redis_error = error

    async def sync(self) -> None:
        """As the leader: run the syncer when it has something due."""
        now = self._now()
        if not self.may_fetch() or (self._next_tick is not None and now < self._next_tick):
            return
        self._next_tick = await self.syncer.tick()

    async def run_forever(self, sleep: Sleep) -> None:
        """Rounds every second; the syncer runs beside them (a long fetch must not keep
        the lease from being renewed)."""
        syncing = asyncio.create_task(self._sync_forever(sleep))
        try:
            while True:
                try:
                    await self.step()
                except Exception as error:  # the round goes on whatever happens
                    log.warning("shared=round-failed error=%r", error_words(error))
                await sleep(ROUND_SECONDS)
        finally:
            syncing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await syncing

    async def _sync_forever(self, sleep: Sleep) -> None:
        while True:
            try:
                await self.sync()
            except Exception:
                log.exception("sync=crashed (retrying in a minute)")
                self._next_tick = self._now() + timedelta(minutes=1)
            await sleep(ROUND_SECONDS)

    async def close(self) -> None:
        """A clean stop: give the lease up so another process leads at once."""
        if self.leader:
            with contextlib.suppress(RedisError):
                await self.shared.release_lease(self.token)
            self.leader = False

    def health(self) -> dict[str, Any]:
        """What /healthz says of the shared service."""
        return {
            "redis": self.redis_state or "connecting",
            "redis_error": self.redis_error,
            "role": self.role,
            "generation": self.generation,
            # which process answered (behind a balancer, or one of several workers)
            "pid": os.getpid(),
        }
