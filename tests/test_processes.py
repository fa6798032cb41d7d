"""Real `calfeed serve` processes on one Redis and one fake LL2: a leader killed or hung,
another takes over within the lease; `--workers 2` is two servers and one syncer."""

from __future__ import annotations

import asyncio
import os
import signal
from datetime import UTC, datetime, timedelta

import pytest

from tests.fake_ll2 import FakeLL2
from tests.helpers import make_event
from tests.ics_helpers import by_uid
from tests.processes import LEASE, Calfeed, Start, all_ok, feed, health, iso, until
from tests.redis_server import needs_redis

pytestmark = [needs_redis, pytest.mark.slow]


async def leader_among(processes: list[Calfeed]) -> Calfeed:
    """The one process that says it leads (waiting for the first lease to be taken)."""
    async def found() -> bool:
        roles = [(await health(p))["shared"]["role"] for p in processes]
        return roles.count("leader") == 1

    await until(found, 10)
    for process in processes:
        if (await health(process))["shared"]["role"] == "leader":
            return process
    raise AssertionError("no leader")


@pytest.mark.parametrize("how", ["SIGKILL", "SIGSTOP"])
async def test_a_dead_or_hung_leader_is_replaced_within_the_lease(
    how: str, upstream: FakeLL2, serve: Start
) -> None:
    processes = [await serve() for _ in range(3)]
    leader = await leader_among(processes)
    await until(lambda: all_ok(processes), 10)
    others = [p for p in processes if p is not leader]
    leader.process.send_signal(getattr(signal, how))

    async def taken_over() -> bool:
        roles = [(await health(p))["shared"]["role"] for p in others]
        return "leader" in roles

    took = await until(taken_over, LEASE + 5)
    assert took <= LEASE + 2.5  # the lease, and a round or two to notice
    # a scrub upstream afterwards reaches every process still running
    moved = datetime.now(UTC).replace(microsecond=0) + timedelta(days=5)
    upstream.upcoming[0] = make_event(1, iso(moved),
                                      last_updated=iso(datetime.now(UTC)))

    async def everywhere() -> bool:
        for process in others:
            start = by_uid(await feed(process))["ll2-event-1@calfeed"].decoded("DTSTART")
            if start != moved:
                return False
        return True

    await until(everywhere, 15)
    if how == "SIGSTOP":
        # the old leader wakes: it finds the lease gone, follows, and serves the new data
        leader.process.send_signal(signal.SIGCONT)

        async def follows() -> bool:
            return bool((await health(leader))["shared"]["role"] == "follower")

        await until(follows, LEASE + 5)
        await until(lambda: _serves(leader, moved), 10)
        roles = [(await health(p))["shared"]["role"] for p in processes]
        assert roles.count("leader") == 1


async def _serves(process: Calfeed, moved: datetime) -> bool:
    return bool(by_uid(await feed(process))["ll2-event-1@calfeed"].decoded("DTSTART") == moved)


async def test_two_workers_answer_on_one_port_with_one_syncer(
    upstream: FakeLL2, serve: Start
) -> None:
    workers = await serve("--workers", "2")
    pids: dict[int, str] = {}

    async def both_answered() -> bool:
        report = await health(workers)  # a new connection each time: either worker
        pids[report["shared"]["pid"]] = report["shared"]["role"]
        return len(pids) == 2

    await until(both_answered, 20)
    assert sorted(pids.values()) == ["follower", "leader"]
    await until(lambda: all_ok([workers]), 10)
    # one syncer: each list was fetched in full once, not once per worker
    full_fetches = sorted(c.path for c in upstream.counted_calls()
                          if "/upcoming" in c.path and "last_updated__gte" not in c.query)
    assert full_fetches == ["/2.3.0/events/upcoming/", "/2.3.0/launches/upcoming/"]
    # SIGTERM stops the parent and both workers
    workers.process.terminate()
    assert await asyncio.wait_for(workers.process.wait(), 15) == 0
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
