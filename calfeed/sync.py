"""Keeping the datasets fresh within the request budget, off the request path.

Each feed kind's dataset has three jobs: a full refresh of the upcoming list (which drops
items that left it), incremental fetches of what changed since the last sync
(`last_updated__gte`), and a rare refresh of the recent past. The syncer runs whichever
job is due and fits the budget; requests only read the datasets, except that the very
first request of a cold server waits (bounded) for the first sync.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
import math
import random
from collections import deque
from collections.abc import Awaitable, Callable, Generator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from calfeed.budget import MAX_BLOCK, Budget, BudgetView
from calfeed.dataset import SHIFTED_MISSES, Dataset, Snapshot
from calfeed.exceptions import (
    BudgetExhausted,
    NoDataYet,
    UpstreamBadResponse,
    UpstreamError,
    UpstreamShifted,
    UpstreamThrottled,
    UpstreamUnreachable,
)
from calfeed.feeds import FeedKind
from calfeed.ll2 import Permit
from calfeed.readers import MAX_DURATION, parse_datetime
from calfeed.sanitize import error_words, item_key
from calfeed.settings import Settings
from calfeed.state import StateStore
from calfeed.steps import all_at_once, in_turns, slices
from calfeed.store import Store
from calfeed.vevent import MappingOptions

log = logging.getLogger("calfeed.sync")

Now = Callable[[], datetime]
Sleep = Callable[[float], Awaitable[None]]
# after a job: (kind, whether its items changed), for a store shared with other processes
Publish = Callable[[str, bool], Awaitable[None]]
# LL2 answers from a cache for a few minutes: re-ask for changes a little further back
INCREMENTAL_OVERLAP = timedelta(minutes=10)
# an event that started this long ago may still be scrubbed or moved
HOT_AFTER_START = timedelta(hours=1)
MIN_HOT_INTERVAL = 60.0
# how far ahead of the clock a time the syncer kept may be and still be believed: another
# process's clock may run a little ahead of this one's; a time further ahead was taken
# while the clock was wrong (a bad NTP step, since put right)
CLOCK_SLACK = timedelta(minutes=5)
# seconds /healthz waits for the budget's window before it says what it last saw
HEALTH_BUDGET_WAIT = 0.25
# items whose exact times are read between two turns for other requests
_HOT_SLICE = 2000
# fetched items checked against the held ones between two steps (a few milliseconds),
# or, of those that changed, read again
_USABLE_SLICE = 2000
_USABLE_CHECKS = 300
# LL2's lists of event types and the like change rarely
REFERENCE_INTERVAL = timedelta(days=1)
# LL2's own count of our calls (/api-throttle/, free) is asked before fetching when it
# is older than this: others on this address (`calfeed build`, a second server without
# Redis, someone's script) spend the same hourly quota unseen
THROTTLE_RECHECK = timedelta(minutes=10)


class Source(Protocol):
    """Where items come from: LL2, or fixed data. `permit` is awaited before every
    upstream request (the syncer's budget decides; it raises BudgetExhausted)."""

    async def upcoming(
        self, kind: FeedKind, updated_since: datetime | None, permit: Permit
    ) -> Sequence[Mapping[str, Any]]:
        """The upcoming list, or only its items updated since a time."""

    async def previous(
        self, kind: FeedKind, since: datetime, permit: Permit
    ) -> Sequence[Mapping[str, Any]]:
        """Past items dated at or after `since`."""

    async def throttle_state(self) -> dict[str, Any] | None:
        """Upstream's own count of our calls (LL2's /api-throttle/), if it has one."""

    async def reference(self, kind: FeedKind, permit: Permit) -> dict[str, dict[int, str]]:
        """The kind's reference lists: facet -> id -> name."""


@dataclass(frozen=True)
class Job:
    """One planned fetch."""

    kind: FeedKind
    name: str  # "full", "incremental", "past" or "reference"
    due: datetime
    pages: int  # requests it is expected to cost


def _exact_times(kind: FeedKind, snapshot: Snapshot) -> Generator[None, None, list[datetime]]:
    """When the snapshot's items happen, where known to the hour or better, sorted."""
    times: list[datetime] = []
    for part in slices(snapshot.items, _HOT_SLICE):
        times += [t for item in part if (t := kind.hot_time(item))]
        yield
    times.sort()
    return times


_LONG_AGO = datetime.min.replace(tzinfo=UTC)


class Syncer:
    """Plans and runs every upstream fetch; the one writer of the datasets."""

    def __init__(
        self,
        settings: Settings,
        kinds: Mapping[str, FeedKind],
        store: Store,
        source: Source,
        budget: Budget,
        *,
        now: Now,
        state: StateStore | None = None,
        reference: bool = True,
        rand: Callable[[], float] = random.random,
        may_fetch: Callable[[], bool] = lambda: True,
        publish: Publish | None = None,
    ) -> None:
        self.settings = settings
        # the kinds this syncer keeps fresh (the CLI asks for those its feed needs)
        self.kinds = kinds
        self.store = store
        self.datasets = {name: store.datasets[name] for name in kinds}
        self.source = source
        self.budget = budget
        self.state = state
        # the reference lists (every event type, for the page) are fetched only if asked
        self._reference = reference
        self._now = now
        self._rand = rand
        # with several processes only the leader fetches, and what it fetched is published
        self.may_fetch = may_fetch
        self.publish = publish
        self._lock = asyncio.Lock()
        self._cold: asyncio.Task[datetime] | None = None
        # when any job may be tried after the latest failure (None: a job succeeded
        # since), a wait that grows with the failures in a row of whichever jobs with no
        # success between: LL2 out of reach costs one try per retry, however many wait
        self.retry_at: datetime | None = None
        self._streak = 0
        self._last_failed_kind: str | None = None
        # (kind, job) -> its failures in a row and when it is tried again: a job's backoff
        # grows until that job succeeds, whatever the others do, and theirs go on at their
        # own times (a list that kept failing was tried again whenever another job of its
        # kind succeeded, most of the budget, and held the change fetches back)
        self._failing: dict[tuple[str, str], tuple[int, datetime]] = {}
        # whether LL2 was out of reach at the last try (logged once per change)
        self._offline = False
        self.last_error: str | None = None
        self.last_error_at: datetime | None = None
        self.next_fetch: datetime | None = None
        # the latest jobs that succeeded (when, kind, job), for tests and benchmarks
        self.runs: deque[tuple[datetime, str, str]] = deque(maxlen=100)
        # when LL2's own count of our calls was last asked (None: not yet)
        self._budget_checked_at: datetime | None = None
        # LL2 requests sent, and their outcomes ("ok", "throttled", "unreachable",
        # "error"), for /metrics
        self.requests_sent = 0
        self.call_results: dict[str, int] = {}
        # the budget as the last tick saw it (for planning between ticks)
        self.budget_view = BudgetView(settings.hourly_budget, (), None)
        self._saved_budget: dict[str, Any] | None = None
        # kind -> (generation, sorted exact times of its items)
        self._hot_times: dict[str, tuple[int, list[datetime]]] = {}

    # -- planning -------------------------------------------------------------------

    def _full_interval(self, kind: FeedKind) -> float:
        return float(self.settings.full_refresh_interval * kind.full_refresh_every)

    def hot_interval(self, now: datetime | None = None) -> float:
        """Seconds between change fetches while something is imminent.

        What the budget has left per hour after the full and past refreshes and the
        relaxed change fetches of the quiet kinds, shared by the hot kinds.
        """
        if self.settings.hot_interval:
            return float(self.settings.hot_interval)
        now = now or self._now()
        baseline = 0.0
        hot = 0
        for name, kind in self.kinds.items():
            dataset = self.datasets[name]
            baseline += _pages(dataset, "upcoming") * 3600 / self._full_interval(kind)
            baseline += _pages(dataset, "past") * 3600 / self.settings.past_refresh_interval
            if self.is_hot(kind, dataset, now):
                hot += 1
            else:
                baseline += 3600 / self.settings.incremental_interval
        spare = self.budget_view.limit - baseline
        if spare < 1:
            return float(self.settings.incremental_interval)
        return max(MIN_HOT_INTERVAL, 3600.0 * max(1, hot) / spare)

    def is_hot(self, kind: FeedKind, dataset: Dataset, now: datetime) -> bool:
        """Whether an exactly timed item of the dataset is within the hot window."""
        snapshot = dataset.snapshot
        if snapshot is None:
            return False
        cached = self._hot_times.get(kind.name)
        if cached is None or cached[0] != snapshot.generation:
            # parsed once per dataset generation, not on every tick (and by
            # `read_hot_times` first, where the loop can be given its turns)
            cached = (snapshot.generation, all_at_once(_exact_times(kind, snapshot)))
            self._hot_times[kind.name] = cached
        earliest = now - HOT_AFTER_START
        latest = now + timedelta(seconds=self.settings.hot_window)
        index = bisect.bisect_left(cached[1], earliest)
        return index < len(cached[1]) and cached[1][index] <= latest

    async def read_hot_times(self) -> None:
        """The exact times of each dataset's new generation, read a slice of items at a
        time with turns for other requests between (the dates of 50,000 items took tens
        of milliseconds in one piece, on the first tick or /healthz after new data)."""
        for name, dataset in self.datasets.items():
            snapshot = dataset.snapshot
            cached = self._hot_times.get(name)
            if snapshot is None or (cached is not None and cached[0] == snapshot.generation):
                continue
            times = await in_turns(_exact_times(self.kinds[name], snapshot))
            # (if the data moved meanwhile, is_hot reads the newer generation itself)
            self._hot_times[name] = (snapshot.generation, times)

    def plan(self, now: datetime) -> list[Job]:
        """Every job with its due time, soonest (and most needed) first."""
        jobs = []
        for name, kind in self.kinds.items():
            dataset = self.datasets[name]
            upcoming, past = dataset.parts["upcoming"], dataset.parts["past"]
            up_pages, past_pages = _pages(dataset, "upcoming"), _pages(dataset, "past")
            if upcoming.full_at is None:
                jobs.append(Job(kind, "full", now, up_pages))
            else:
                jobs.append(Job(kind, "full", _due(upcoming.full_at, timedelta(
                    seconds=self._full_interval(kind)), now), up_pages))
                interval = (self.hot_interval(now) if self.is_hot(kind, dataset, now)
                            else float(self.settings.incremental_interval))
                assert upcoming.synced_at is not None
                jobs.append(Job(kind, "incremental",
                                _due(upcoming.synced_at, timedelta(seconds=interval), now), 1))
            past_due = (now if past.full_at is None else _due(
                past.full_at, timedelta(seconds=self.settings.past_refresh_interval), now))
            jobs.append(Job(kind, "past", past_due, past_pages))
            if kind.reference_paths and self._reference:
                reference_due = (now if dataset.reference_at is None
                                 else _due(dataset.reference_at, REFERENCE_INTERVAL, now))
                jobs.append(Job(kind, "reference", reference_due, len(kind.reference_paths)))
        jobs = [Job(j.kind, j.name, max(j.due, self._retry_of(j.kind.name, j.name)), j.pages)
                for j in jobs]
        order = {"full": 0, "incremental": 1, "past": 2, "reference": 3}
        # an incremental fetch is pointless when a full refresh is due anyway
        full_due = {j.kind.name for j in jobs if j.name == "full" and j.due <= now}
        jobs = [j for j in jobs if not (j.name == "incremental" and j.kind.name in full_due)]
        # after a failure, the other kinds' jobs go first when all wait for the same retry,
        # so that one kind's trouble does not keep the others from being tried
        return sorted(jobs, key=lambda j: (
            j.due, j.kind.name == self._last_failed_kind, order[j.name]))

    def _retry_of(self, kind: str, job: str) -> datetime:
        """When a job may run again after failures: its own backoff's retry, and the one
        every job waits for after the latest failure."""
        failing = self._failing.get((kind, job))
        return self._believable(max(failing[1] if failing else _LONG_AGO,
                                    self.retry_at or _LONG_AGO))

    def _believable(self, retry: datetime) -> datetime:
        """A retry no later than the longest wait a failure sets from now: one set while
        the clock ran ahead (since put right) would stop every fetch for that long."""
        now = self._now()
        longest = max(timedelta(seconds=self.settings.max_backoff), MAX_BLOCK) + CLOCK_SLACK
        return now if retry > now + longest else retry

    @property
    def failures(self) -> int:
        """Failures in a row: of the job failing longest, or of jobs one after another
        (0: the last try of every job succeeded)."""
        return max([self._streak, *(count for count, _ in self._failing.values())])

    # -- running --------------------------------------------------------------------

    async def tick(self) -> datetime:
        """Run the jobs that are due and fit the budget; return when to look again."""
        async with self._lock:
            if not self.may_fetch():
                return self._now() + timedelta(seconds=5)
            while True:
                now = self._now()
                self.budget_view = await self.budget.view(now)
                await self.read_hot_times()
                jobs = self.plan(now)
                due = [j for j in jobs if j.due <= now]
                runnable = [j for j in due if self.budget_view.next_slot(now, j.pages) <= now]
                if not runnable:
                    break
                if self._throttle_due(now):
                    # A restart, another calfeed (a `calfeed build`) or anything else on
                    # this address may have used LL2's quota meanwhile: ask LL2, which is
                    # free, before fetching after a while, and plan again with its count.
                    self._budget_checked_at = now
                    await self._adopt_upstream_count()
                    continue
                if not await self._run(runnable[0], now):
                    break
            self._save_budget()
            now = self._now()
            self.budget_view = view = await self.budget.view(now)
            await self.read_hot_times()
            candidates = [max(j.due, view.next_slot(now, j.pages)) for j in self.plan(now)]
            self.next_fetch = min(candidates) if candidates else None
            return self.next_fetch or now + timedelta(minutes=5)

    async def _permit(self) -> None:
        """Before each upstream request: spend one call of the budget, or stop the job."""
        now = self._now()
        if not self.may_fetch():
            # the lease went to another process mid-job: it fetches from now on
            raise BudgetExhausted("another calfeed process is syncing now", 5.0)
        if not await self.budget.spend(now):
            wait = ((await self.budget.view(now)).next_slot(now) - now).total_seconds()
            log.warning("upstream=skipped reason=budget wait=%.0f", wait)
            raise BudgetExhausted(f"request budget used up; next slot in {int(wait)} s", wait)
        self.requests_sent += 1
        # kept before the call goes out, not at the end of the tick: a process killed
        # mid-job (SIGKILL, out of memory) and started again would not know of the calls
        # it made, and LL2 counts them (20 such restarts: 24 calls within 19 minutes).
        # Written in a thread (two fsyncs: on a slow disk, long for the loop to stop).
        if self.state is not None and (state := self._budget_to_save()) is not None:
            await asyncio.to_thread(self.state.save, "budget", state)

    def _count_calls(self, sent: int, failure: UpstreamError | None) -> None:
        """A job's requests by outcome: the client stops at the first failed one, so all
        before it succeeded (a job stopped by the budget sent nothing that failed)."""
        failed = failure is not None and sent > 0 and not isinstance(failure, BudgetExhausted)
        if sent - failed:
            self.call_results["ok"] = self.call_results.get("ok", 0) + sent - failed
        if failed:
            result = ("throttled" if isinstance(failure, UpstreamThrottled)
                      else "unreachable" if isinstance(failure, UpstreamUnreachable)
                      else "error")
            self.call_results[result] = self.call_results.get(result, 0) + 1

    def recheck_budget(self) -> None:
        """Ask upstream's own count again before the next fetch (a new leader, or the
        shared budget was lost with a restarted Redis)."""
        self._budget_checked_at = None

    def _throttle_due(self, now: datetime) -> bool:
        checked = self._budget_checked_at
        return checked is None or not checked <= now < checked + THROTTLE_RECHECK

    async def _adopt_upstream_count(self) -> None:
        """Make the budget at least as strict as upstream's own count of our calls; one
        warning when it was stricter (calls on this address that calfeed did not make, or
        LL2 blocking it: what an operator wants to know of)."""
        state = await self.source.throttle_state()
        if state is None:
            return
        now = self._now()
        before = await self.budget.view(now)
        await self.budget.adopt(state, now, self.settings.budget_reserve)
        after = await self.budget.view(now)
        blocked = after.blocked_until is not None and after.blocked_until > now and (
            before.blocked_until is None or after.blocked_until > before.blocked_until)
        if after.used > before.used or blocked:
            log.warning("budget=behind-upstream used=%d counted_here=%d blocked_until=%s "
                        "(LL2 counts calls calfeed did not make here: another process or "
                        "tool on this address?)", after.used, before.used,
                        after.blocked_until.isoformat() if blocked and after.blocked_until
                        else "-")

    async def _refresh(
        self, kind: FeedKind, dataset: Dataset, part: str,
        fetching: Awaitable[Sequence[Mapping[str, Any]]],
        check: Callable[[Sequence[Mapping[str, Any]]], None] | None = None,
        held: Callable[[list[Mapping[str, Any]]],
                       Generator[None, None, list[Mapping[str, Any]]]] | None = None,
    ) -> Sequence[Mapping[str, Any]]:
        """A whole list fetched into a part, replacing it: what arrived, after `check`
        (which raises for a list to refuse) and with what of the held items should stay
        besides (`held`). Returns what arrived.

        A whole list but for the items that moved while it was read (UpstreamShifted) is
        merged instead (updated and added); what it lacks is dropped only when a list
        arrives whole, or after SHIFTED_MISSES such lists in a row lacked it (see
        Dataset.merge). Not a failure (LL2 may page an order with ties differently at
        every read, and the list would then never come whole): the next full refresh is
        planned from now."""
        moved: UpstreamShifted | None = None
        try:
            items: Sequence[Mapping[str, Any]] = await fetching
        except UpstreamShifted as shifted:
            items, moved = shifted.items, shifted
        if check is not None and moved is None:
            check(items)
        kept = await in_turns(_usable(kind, dataset, part, items))
        if held is not None:
            # (what stays besides the list, a past item still lasting that LL2 lists no
            # more, is no item a moved list lacks: never counted as missed)
            kept += await in_turns(held(kept))
        if moved is None:
            await in_turns(dataset.replacing(part, kept, self._now()))
            return items
        dropped = dataset.merge(part, kept, self._now(), unread=moved.shortfall)
        log.warning("sync=merged kind=%s part=%s items=%d dropped=%d reason='the list moved "
                    "while it was read: only what %d such lists in a row went without is "
                    "dropped'", kind.name, part, len(kept), dropped, SHIFTED_MISSES)
        return items

    async def _throttled(self, error: UpstreamThrottled) -> None:
        """LL2 said 429: nothing goes out before it allows, and its count is adopted."""
        now = self._now()
        await self.budget.block(now + timedelta(seconds=error.retry_after or 60), now)
        await self._adopt_upstream_count()

    async def _run(self, job: Job, now: datetime) -> bool:
        dataset = self.datasets[job.kind.name]
        before = dataset.snapshot.generation if dataset.snapshot else None
        sent = self.requests_sent
        try:
            permit = self._permit
            if job.name == "full":
                items = await self._refresh(
                    job.kind, dataset, "upcoming", self.source.upcoming(job.kind, None, permit),
                    lambda items: _whole(dataset, "upcoming", items))
            elif job.name == "incremental":
                upcoming = dataset.parts["upcoming"]
                assert upcoming.synced_at is not None
                # (from further back than the last full refresh's interval, no more:
                # what a moved fetch missed, that refresh has read since)
                furthest = timedelta(seconds=self.settings.full_refresh_interval)
                since = max(upcoming.changes_from or upcoming.synced_at,
                            upcoming.synced_at - furthest)
                if since > now + CLOCK_SLACK:
                    # (a time the clock, running ahead, gave: LL2 has no changes after it)
                    since = now - furthest
                # (None: the next fetch of changes asks from now)
                ask_again_from: datetime | None = None
                try:
                    items = await self.source.upcoming(
                        job.kind, since - INCREMENTAL_OVERLAP, permit)
                except UpstreamShifted as shifted:
                    # what changed, moving while it was read: what arrived is merged as
                    # ever, not a failure; what was pushed out of reach may have changed
                    # long before this fetch, so the next one asks from the same time
                    items, ask_again_from = shifted.items, since
                    log.warning("sync=merged kind=%s part=upcoming job=incremental items=%d "
                                "reason='the list moved while it was read: the next fetch "
                                "of changes asks from the same time'", job.kind.name,
                                len(items))
                kept = await in_turns(_usable(job.kind, dataset, "upcoming", items))
                dataset.merge("upcoming", kept, self._now(), changes_from=ask_again_from)
            elif job.name == "past":
                since = now - timedelta(days=self.settings.max_past_days)
                options = MappingOptions(
                    default_duration=timedelta(seconds=self.settings.default_duration))
                items = await self._refresh(
                    job.kind, dataset, "past", self.source.previous(job.kind, since, permit),
                    held=lambda kept: _held_past(job.kind, dataset, kept, since, options))
            else:
                reference = await self.source.reference(job.kind, permit)
                dataset.set_reference(reference, self._now())
                # counted in the log line like the lists: one per named value
                items = [{"id": ident} for names in reference.values() for ident in names]
        except UpstreamError as error:
            self._count_calls(self.requests_sent - sent, error)
            if isinstance(error, UpstreamThrottled):
                await self._throttled(error)
            if isinstance(error, UpstreamUnreachable) and not error.reached:
                await self.budget.refund(self._now())
            self._failed(job, error)
            return False
        except Exception as error:
            # whatever LL2 sends, the loop goes on: a failed job, one log line, backoff
            failure = UpstreamBadResponse(f"could not use LL2's answer ({error_words(error)})")
            self._count_calls(self.requests_sent - sent, failure)
            self._failed(job, failure)
            return False
        self._count_calls(self.requests_sent - sent, None)
        self.runs.append((now, job.kind.name, job.name))
        self._failing.pop((job.kind.name, job.name), None)
        if job.name == "full":  # (a whole list read holds every change a fetch missed)
            self._failing.pop((job.kind.name, "incremental"), None)
        # LL2 answers: each job goes at its own time again, a failing one at its own
        # backoff's (this success says nothing of that one)
        self._streak = 0
        self.retry_at = None
        if not self._failing:
            self._last_failed_kind = None
        if self._offline:
            self._offline = False
            log.info("sync=online LL2 answers again")
        log.info("sync=%s kind=%s items=%d generation=%d", job.name, job.kind.name,
                 len(items), dataset.snapshot.generation if dataset.snapshot else 0)
        if self.publish is not None:
            after = dataset.snapshot.generation if dataset.snapshot else None
            await self.publish(job.kind.name, after != before)
        if self.state is not None:
            # a large dataset's text is made in slices, and written in a thread (the state
            # folder logs its own failures: serving from memory goes on)
            await self.state.save_in_turns(f"dataset-{job.kind.name}", dataset.to_state())
        return True

    def _failed(self, job: Job, error: UpstreamError) -> None:
        now = self._now()
        kind = job.kind.name
        self._streak += 1
        # The job's wait grows with the failures of its kind's failing jobs together (a
        # kind whose every list fails, tried a job at a time, backs off as one), and with
        # the failures in a row of any jobs (while LL2 is down they fail in turn); every
        # other job waits by the latter alone, briefly unless LL2 itself is in trouble.
        kin = [count for (name, _), (count, _) in self._failing.items() if name == kind]
        failures = max([*kin, self._streak - 1]) + 1
        drawn = 0.5 + 0.5 * self._rand()  # (jitter, so that many servers do not retry in step)

        def wait_for(count: int) -> float:
            backoff = min(float(self.settings.max_backoff),
                          self.settings.retry_backoff * 2.0 ** (count - 1))
            return max(backoff * drawn, float(error.retry_after or 0))

        wait = wait_for(failures)
        retry = now + timedelta(seconds=wait)
        self.retry_at = now + timedelta(seconds=wait_for(self._streak))
        for key, (count, at) in list(self._failing.items()):
            if key[0] == kind:  # (and the kind's other failing jobs wait as long)
                self._failing[key] = (count, max(at, retry))
        self._failing[(kind, job.name)] = (failures, retry)
        self.last_error = error.message
        self.last_error_at = now
        self._last_failed_kind = job.kind.name
        log.warning("sync=failed job=%s kind=%s error=%r failures=%d retry_in=%.0f",
                    job.name, job.kind.name, error.message, failures, wait)
        offline = isinstance(error, UpstreamUnreachable) and not error.reached
        if offline and not self._offline:
            # said once, when it happens: what it means and what to do (and once more,
            # "online", when a sync succeeds again)
            log.warning("sync=offline %s: calfeed keeps trying (with backoff, at no cost "
                        "to the budget); `calfeed serve --demo` serves sample data without "
                        "a network", error.message)
            self._offline = True

    def _budget_to_save(self) -> dict[str, Any] | None:
        """The budget's state if it changed since it was last saved (the loop ticks every
        minute: written on change only)."""
        state = self.budget.to_state() if self.state is not None else None
        if state is None or state == self._saved_budget:
            return None
        self._saved_budget = state
        return state

    def _save_budget(self) -> None:
        if self.state is not None and (state := self._budget_to_save()) is not None:
            self.state.save("budget", state)

    def load(self) -> None:
        """Restore datasets and the budget window from the state folder."""
        if self.state is None:
            return
        budget = self.state.load("budget")
        if budget is not None:
            try:
                self.budget.load_state(budget, self._now())
            except (ValueError, TypeError) as error:
                log.warning("state=ignored name=budget error=%r", str(error))
        for name, dataset in self.datasets.items():
            saved = self.state.load(f"dataset-{name}")
            if saved is None:
                continue
            try:
                dataset.load_state(saved)
            except (ValueError, TypeError, KeyError, AttributeError) as error:
                log.warning("state=ignored name=dataset-%s error=%r", name, str(error))
                dataset.reset()
            else:
                log.info("state=loaded name=dataset-%s items=%d", name,
                         len(dataset.snapshot.items) if dataset.snapshot else 0)

    async def run_forever(self, sleep: Sleep) -> None:
        """The background loop: tick, sleep until the next job, repeat."""
        while True:
            try:
                wake = await self.tick()
            except Exception:
                log.exception("sync=crashed (retrying in a minute)")
                wake = self._now() + timedelta(minutes=1)
            # wake at least once a minute: hotness and budget change as time passes
            await sleep(min(60.0, max(1.0, (wake - self._now()).total_seconds())))

    async def wait_for_data(self, name: str) -> None:
        """For a request on a cold server: one first sync for all, bounded in time."""
        dataset = self.datasets[name]
        if dataset.snapshot is not None:
            return
        waiting: Awaitable[Any]
        if not self.may_fetch():
            # another process syncs: wait for its first data to arrive here
            waiting = self._arrival(name)
        else:
            if self._cold is None or self._cold.done():
                self._cold = asyncio.ensure_future(self.tick())
            waiting = asyncio.shield(self._cold)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(waiting, self.settings.cold_start_wait)
        if dataset.snapshot is None:
            now = self._now()
            slot = (await self.budget.view(now)).next_slot(now)
            retry = max(self._retry_of(name, "full"), now, slot)
            wait = max(1.0, (retry - now).total_seconds())
            reason = self.last_error or "first fetch still under way"
            if slot > now and not self.last_error:
                reason = f"LL2 rate limit, next request allowed in {round(wait)} s"
            raise NoDataYet(f"no {name} data yet: {reason}", wait)

    async def close(self) -> None:
        """A clean stop: a first sync that a cold request started (and that outlived its
        wait) ends with the app, not later on a closed session and a stopped server; and
        the calls spent by a sync cut short are saved, as a finished tick saves them, so
        that a restart does not spend them again."""
        if self._cold is not None and not self._cold.done():
            self._cold.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._cold
        self._save_budget()

    async def _arrival(self, name: str) -> None:
        seen = self.store.generation
        while self.datasets[name].snapshot is None:
            seen = await self.store.wait_for_change(seen)

    async def health(self) -> dict[str, Any]:
        """Everything /healthz reports."""
        await self.read_hot_times()
        now = self._now()
        try:
            # (a shared budget asks Redis: one that hangs must not hang /healthz, which
            # monitors probe with a timeout of a second or two)
            view = await asyncio.wait_for(self.budget.view(now), HEALTH_BUDGET_WAIT)
        except TimeoutError:
            view = self.budget_view  # (what the last tick or round saw)
        datasets = {}
        for name, dataset in self.datasets.items():
            datasets[name] = {
                "items": len(dataset.snapshot.items) if dataset.snapshot else 0,
                "parts": {
                    part_name: {
                        "items": len(part.items),
                        "age_seconds": _rounded(dataset.age(part_name, now)),
                        "last_full_age_seconds": _rounded(
                            (now - part.full_at).total_seconds() if part.full_at else None
                        ),
                    }
                    for part_name, part in dataset.parts.items()
                },
                "hot": self.is_hot(self.kinds[name], dataset, now),
            }
        return {
            "datasets": datasets,
            "next_fetch": self.next_fetch.isoformat() if self.next_fetch else None,
            "next_fetch_in_seconds": _rounded(
                (self.next_fetch - now).total_seconds() if self.next_fetch else None
            ),
            "budget": {
                "limit_per_hour": view.limit,
                "used": view.used,
                "left": view.left,
                "blocked_until": (view.blocked_until.isoformat()
                                  if view.blocked_until and view.blocked_until > now
                                  else None),
            },
            "last_error": self.last_error,
            "last_error_age_seconds": _rounded(
                (now - self.last_error_at).total_seconds() if self.last_error_at else None
            ),
            "failures_in_a_row": self.failures,
        }


def _due(last: datetime, interval: timedelta, now: datetime) -> datetime:
    """When a job is due again, `interval` after it last ran; now, if that time lies
    ahead of the clock (beyond CLOCK_SLACK): it was taken while the clock was wrong, and
    planning from it would stop the job for as long as the clock was ahead (a restart
    would not help: the time is kept with the state)."""
    return now if last > now + CLOCK_SLACK else last + interval


def _pages(dataset: Dataset, part: str) -> int:
    """Requests a full fetch of a list costs, judged by its size last time (100 a page)."""
    return max(1, math.ceil(len(dataset.parts[part].items) / 100))


def _rounded(value: float | None) -> int | None:
    return None if value is None else round(value)


def _whole(dataset: Dataset, part: str, items: Sequence[Mapping[str, Any]]) -> None:
    """An upcoming list that came back empty where we hold items is taken for LL2's
    failure (an outage that answers "no results"), not for every event having gone."""
    held = len(dataset.parts[part].items)
    if not items and held:
        raise UpstreamBadResponse(f"LL2 sent an empty {part} list where {held} items were")


def _held_past(
    kind: FeedKind, dataset: Dataset, fetched: Sequence[Mapping[str, Any]], since: datetime,
    options: MappingOptions,
) -> Generator[None, None, list[Mapping[str, Any]]]:
    """The held past items that stay although LL2's recent past (asked by date since
    `since`) did not list them, in steps of a slice:

    - one that began before the window but ends after its start: a feed still shows it
      (`past_days` counts from an item's end), so it stays until it ends before the
      window (and at most MAX_DURATION past its date: LL2 no longer sends its edits);
    - when the list came back empty, one dated within the window: an outage that
      answers "no results" looks like that (when the list is not empty, such an item is
      one LL2 deleted, and goes).

    One now in the upcoming list (put forward into the future) is there instead."""
    listed = {item_key(item.get("id")) for item in fetched}
    upcoming = dataset.parts["upcoming"].items
    held: list[Mapping[str, Any]] = []
    within = 0
    for chunk in slices(list(dataset.parts["past"].items.items()), _USABLE_SLICE):
        for key, item in chunk:
            when = parse_datetime(item.get(kind.date_field))
            if key in listed or key in upcoming or when is None:
                continue
            if when >= since:
                if not fetched:
                    held.append(item)
                    within += 1
                continue
            if when < since - MAX_DURATION:
                continue
            try:
                ends = kind.timing(item, options).end_utc
            except Exception:  # untrusted data: any fault, and it goes as it would have
                continue
            if ends > since:
                held.append(item)
        yield
    if within:
        log.warning("sync=kept-past kind=%s count=%d reason='LL2 listed no recent past, "
                    "though it dates these within it'", kind.name, within)
    return held


def _usable(
    kind: FeedKind, dataset: Dataset, part: str, items: Sequence[Mapping[str, Any]]
) -> Generator[None, None, list[Mapping[str, Any]]]:
    """The fetched items with an id; where LL2 broke an item we had (its new version has
    no usable date, say), the last good version stays, so an edit never makes an event
    vanish from the feeds. An item equal to the one held is the held one: the dataset's
    comparison then finds it the same object at once (not a second deep comparison),
    and the snapshot's items are not joined in memory by fetched copies of them. In
    steps of a slice (each item is compared with the one held: tens of milliseconds over
    tens of thousands)."""
    kept: list[Mapping[str, Any]] = []
    checked = 0  # (items read again: each a few microseconds, where a comparison is one)
    for count, item in enumerate(items, 1):
        if count % _USABLE_SLICE == 0 or checked >= _USABLE_CHECKS:
            checked = 0
            yield
        key = item_key(item.get("id")) if isinstance(item, Mapping) else None
        if key is None:
            continue
        previous = dataset.parts[part].items.get(key)
        # only a changed item can have been broken: the others need no second look
        if previous is None or previous == item:
            kept.append(item if previous is None else previous)
            continue
        checked += 1
        if not kind.usable(item) and kind.usable(previous):
            log.warning("sync=kept-previous kind=%s id=%s reason='new version unusable'",
                        kind.name, key)
            item = previous
        kept.append(item)
    return kept
