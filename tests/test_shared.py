"""Several calfeed processes as one service on a real Redis: one dataset, one budget, one
syncer, and what Redis trouble does.

Each "process" here is a whole calfeed app with its own Redis connections, caches and
datasets, sharing nothing with the others but Redis and the fake LL2; all read one
injected clock (as NTP-synced machines agree on time), so a simulated day runs in
seconds. tests/test_processes.py does what needs real processes: SIGKILL, SIGSTOP,
--workers.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from calfeed.budget import MAX_BLOCK
from calfeed.coordinator import Coordinator
from calfeed.server import COORDINATOR
from calfeed.shared_budget import SharedBudget
from tests.fake_ll2 import FakeLL2
from tests.helpers import NOW, Clock, make_event
from tests.ics_helpers import by_uid
from tests.redis_server import RedisServer, needs_redis
from tests.test_sync import feed_urls

pytestmark = needs_redis

Client = TestClient[Any, Any]


def coordinator_of(client: Client) -> Coordinator:
    """The coordinator of a test app."""
    coordinator: Coordinator = client.app[COORDINATOR]
    return coordinator


async def rounds(*clients: Client) -> None:
    """One round of every process (lease, loading), then the leader's due syncs, then
    one more round so the followers load what it wrote."""
    for client in clients:
        await coordinator_of(client).step()
    for client in clients:
        await coordinator_of(client).sync()
    for client in clients:
        await coordinator_of(client).step()


def stamp(clock: Clock) -> str:
    return clock.current.strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture
def upcoming(fake: FakeLL2, clock: Clock) -> FakeLL2:
    fake.clock = clock
    fake.rate_limit = 15
    fake.upcoming = [
        make_event(i, (NOW + timedelta(hours=7 * i)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                   type_id=i % 20, agencies=(i % 5,), precision=[1, 5, 7][i % 3])
        for i in range(1, 120)
    ]
    fake.previous = [make_event(500, "2026-11-20T10:00:00Z")]
    return fake


async def test_one_leader_syncs_and_every_process_serves_the_same_bytes(
    upcoming: FakeLL2, instances: Any, clock: Clock
) -> None:
    a, b, c = [await instances() for _ in range(3)]
    await rounds(a, b, c)
    roles = [coordinator_of(x).role for x in (a, b, c)]
    assert roles.count("leader") == 1, roles
    calls = len(upcoming.counted_calls())
    assert calls > 0
    for url in ("/events.ics", "/events.ics?type=1&type=2&past_days=3&alarm=30",
                "/launches.ics", "/events.ics?download=1"):
        answers = [await x.get(url) for x in (a, b, c)]
        bodies = [await r.read() for r in answers]
        assert all(r.status == 200 for r in answers), url
        assert bodies[0] == bodies[1] == bodies[2], url
        for header in ("ETag", "Last-Modified", "Content-Length", "Cache-Control"):
            assert len({r.headers.get(header) for r in answers}) == 1, (url, header)
        # a subscriber bounced between processes revalidates rather than downloads
        again = await b.get(url, headers={"If-None-Match": answers[0].headers["ETag"]})
        assert again.status == 304, url
        since = await c.get(url, headers={
            "If-Modified-Since": answers[1].headers["Last-Modified"]})
        assert since.status == 304, url
    # serving on the followers cost LL2 nothing
    assert len(upcoming.counted_calls()) == calls

    # a scrub reaches every process, alike, once the leader's next sync has run
    before = (await a.get("/events.ics")).headers["ETag"]
    moved = NOW + timedelta(days=3, hours=2)
    upcoming.upcoming[2] = make_event(3, moved.strftime("%Y-%m-%dT%H:%M:%SZ"),
                                      last_updated=stamp(clock))
    clock.advance(16 * 60)
    await rounds(a, b, c)
    answers = [await x.get("/events.ics") for x in (a, b, c)]
    bodies = [await r.read() for r in answers]
    assert bodies[0] == bodies[1] == bodies[2]
    assert len({r.headers["ETag"] for r in answers}) == 1
    assert answers[0].headers["ETag"] != before
    assert by_uid(bodies[1])["ll2-event-3@calfeed"].decoded("DTSTART") == moved


async def test_a_process_that_joins_serves_at_once_without_calling_ll2(
    upcoming: FakeLL2, instances: Any
) -> None:
    a = await instances()
    await rounds(a)
    body = await (await a.get("/launches.ics?past_days=5")).read()
    calls = len(upcoming.calls)
    joined = await instances()
    response = await joined.get("/launches.ics?past_days=5")
    assert response.status == 200
    assert await response.read() == body
    events = await joined.get("/events.ics")
    assert events.status == 200
    assert len(upcoming.calls) == calls  # not even /api-throttle/
    assert coordinator_of(joined).role == "follower"


async def test_a_dataset_lost_from_redis_is_written_again_and_a_joiner_serves_it(
    upcoming: FakeLL2, instances: Any, redis_server: RedisServer,
) -> None:
    # evicted under maxmemory, a partial restore, deleted by hand: the revisions still
    # name it, so the leader looked no further, and a process that joined served 503
    a, b = await instances(), await instances()
    await rounds(a, b)
    body = await (await a.get("/events.ics")).read()
    redis = Redis.from_url(redis_server.url)
    try:
        assert await redis.delete("calfeed:v1:dataset:events") == 1
        joined = await instances(cold_start_wait=0.2)
        await rounds(a, b, joined)
        assert await redis.exists("calfeed:v1:dataset:events")
    finally:
        await redis.aclose()
    response = await joined.get("/events.ics")
    assert response.status == 200 and await response.read() == body


async def test_a_dataset_evicted_at_every_write_is_written_at_waits_doubling(
    upcoming: FakeLL2, instances: Any, redis_server: RedisServer,
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # maxmemory too small for the dataset: written again each round, each write evicted
    # at once, every follower decoded it anew every second
    from calfeed.coordinator import LOST_WAIT_MOST

    a, b = await instances(), await instances()
    await rounds(a, b)
    leader = coordinator_of(a) if coordinator_of(a).leader else coordinator_of(b)
    follower = coordinator_of(b) if leader is coordinator_of(a) else coordinator_of(a)
    seconds = [0.0]
    leader.monotonic = follower.monotonic = lambda: seconds[0]
    await leader.step()
    generation, loads = await leader.shared.generation(), follower.loads
    held = follower.syncer.datasets["events"].snapshot
    written: list[float] = []
    write = leader.shared.write

    async def noting(kind: str, *args: Any) -> str | None:
        written.append(seconds[0])
        return await write(kind, *args)

    monkeypatch.setattr(leader.shared, "write", noting)
    redis = Redis.from_url(redis_server.url)
    try:
        with caplog.at_level(logging.WARNING):
            for second in range(1, 41):
                seconds[0] = float(second)
                await redis.delete("calfeed:v1:dataset:events")
                await leader.step()
                await follower.step()
        assert written == [1.0, 2.0, 3.0, 5.0, 9.0, 17.0, 33.0], written
        assert sum("redis=evicting key=dataset:events" in r.getMessage()
                   for r in caplog.records) == 1
        # the same items each time: no new generation, and the follower decodes each
        # write (not one a second) and keeps its snapshot, caches and all
        assert await leader.shared.generation() == generation
        assert follower.loads - loads == len(written)
        assert follower.syncer.datasets["events"].snapshot is held
        # left alone, it is back within the longest wait, and stays
        for second in range(41, 41 + int(LOST_WAIT_MOST) + 2):
            seconds[0] = float(second)
            await leader.step()
        assert await redis.exists("calfeed:v1:dataset:events")
        # evicted again at every write long after: written at once, and said again
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            for second in (5000, 5001, 5002):
                seconds[0] = float(second)
                await redis.delete("calfeed:v1:dataset:events")
                await leader.step()
        assert written[-3:] == [5000.0, 5001.0, 5002.0]
        said = [r.getMessage() for r in caplog.records if "redis=evicting" in r.getMessage()]
        assert len(said) == 1 and "again 1 s after" in said[0], said
    finally:
        await redis.aclose()
    response = await b.get("/events.ics")
    assert response.status == 200 and b"BEGIN:VEVENT" in await response.read()


async def test_a_cold_follower_waits_for_the_leaders_first_sync(
    upcoming: FakeLL2, instances: Any
) -> None:
    # a leader holds the lease but has not synced yet: the follower's first request
    # waits (bounded) for the leader's data rather than calling LL2 itself
    leader = await instances()
    follower = await instances(cold_start_wait=5.0)
    assert coordinator_of(follower).role == "follower"
    assert not upcoming.calls

    async def leader_syncs_soon() -> None:
        await asyncio.sleep(0.3)
        await coordinator_of(leader).sync()
        for _ in range(20):
            await coordinator_of(follower).step()
            await asyncio.sleep(0.05)

    task = asyncio.create_task(leader_syncs_soon())
    response = await follower.get("/events.ics")
    await task
    assert response.status == 200
    assert b"BEGIN:VEVENT" in await response.read()


@pytest.mark.slow  # 7,500 requests on three processes over a simulated day: about a minute
async def test_a_day_of_500_feeds_on_three_processes_stays_within_one_budget(
    upcoming: FakeLL2, instances: Any, clock: Clock
) -> None:
    processes = [await instances() for _ in range(3)]
    urls = feed_urls(500)
    for minute in range(24 * 60 + 60):
        clock.advance(60)
        await rounds(*processes)
        for offset in range(5):
            index = minute * 5 + offset
            url = urls[index % len(urls)]
            response = await processes[index % 3].get(url)
            assert response.status == 200, (minute, url)
        if minute % 97 == 0:
            upcoming.upcoming[minute % 100]["last_updated"] = stamp(clock)
        if minute == 12 * 60:
            # a hand-over at noon: the leader stops cleanly, another takes over
            leader = next(p for p in processes if coordinator_of(p).leader)
            await leader.close()
            processes.remove(leader)
            processes.append(await instances())
    assert upcoming.throttled == 0
    # the budget of the whole service: 15 an hour less the reserve of 2, not 3 x 13
    assert upcoming.most_in_any_hour() <= 13
    assert len(upcoming.list_calls()) > 100  # and it kept syncing all day


async def test_a_process_whose_clock_ran_ahead_does_not_stop_the_shared_budget(
    redis_server: RedisServer
) -> None:
    redis = Redis.from_url(redis_server.url)
    try:
        ahead, behind = SharedBudget(redis, "t", 3), SharedBudget(redis, "t", 3)
        day = NOW + timedelta(days=1)
        assert all([await ahead.spend(day) for _ in range(3)])
        await ahead.block(day + timedelta(minutes=30), day)
        # the rest of the service, on the right time: a full window made now, a block of
        # at most MAX_BLOCK, not a day and more without a call
        assert (await behind.view(NOW)).next_slot(NOW) == NOW + MAX_BLOCK
        assert not await behind.spend(NOW)
        # (the block's key expires within MAX_BLOCK of real time, whatever it says)
        assert 0 < await redis.ttl("t:budget:blocked-until") <= MAX_BLOCK.total_seconds() + 1
        await redis.delete("t:budget:blocked-until")
        # (made at NOW, as far as the rest can tell: out of the window an hour later)
        assert (await behind.view(NOW + timedelta(minutes=30))).used == 3
        later = NOW + timedelta(hours=1, seconds=1)
        assert await behind.spend(later)
        assert (await behind.view(later)).used == 1
    finally:
        await redis.aclose()


async def test_two_budgets_on_one_redis_never_spend_more_than_the_limit(
    redis_server: RedisServer
) -> None:
    first, second = Redis.from_url(redis_server.url), Redis.from_url(redis_server.url)
    try:
        budgets = [SharedBudget(first, "t", 13), SharedBudget(second, "t", 13)]
        # two leaders during a hand-over, spending at the same moment
        results = await asyncio.gather(*[b.spend(NOW) for b in budgets for _ in range(20)])
        assert sum(results) == 13
        view = await budgets[1].view(NOW)
        assert (view.used, view.left) == (13, 0)
        assert view.next_slot(NOW) == NOW + timedelta(hours=1)
        # a call that never reached LL2 is given back (by a process that made one: the
        # race above may give all 13 to either), to whichever process asks
        spender, other = budgets if any(results[:20]) else budgets[::-1]
        await spender.refund(NOW)
        assert await other.spend(NOW + timedelta(seconds=1))
        assert not await spender.spend(NOW + timedelta(seconds=2))
        # LL2's 429 holds for every process
        later = NOW + timedelta(hours=1, seconds=10)
        await budgets[0].block(later + timedelta(minutes=10), later)
        assert not await budgets[1].spend(later)
        assert (await budgets[1].view(later)).blocked_until == later + timedelta(minutes=10)
        after = later + timedelta(minutes=11)
        assert await budgets[1].spend(after)
        # /api-throttle/ says more were used (another machine, a restart): counted as now
        await budgets[1].adopt({"your_request_limit": 15, "current_use": 10}, after, 2)
        assert (await budgets[0].view(after)).used == 10
        # a limit stricter than ours is adopted by every process
        await budgets[0].adopt({"your_request_limit": 8, "current_use": 0}, after, 2)
        assert (await budgets[1].view(after)).limit == 6
        assert not await budgets[1].spend(after)
        # a limit under the key that is no number, or looser than ours, loosens nothing
        for hours, stored in enumerate((b"nan", b"inf", b"1000"), start=5):
            await first.set("t:budget:limit", stored)
            moment = after + timedelta(hours=hours)
            spent = [await budgets[0].spend(moment) for _ in range(20)]
            assert sum(spent) == 13, stored
        # a refund takes back this process's own call, not another's later one
        fresh = after + timedelta(hours=10)
        assert await budgets[0].spend(fresh)
        assert await budgets[1].spend(fresh + timedelta(seconds=10))
        await budgets[0].refund(fresh + timedelta(seconds=20))
        left = await first.zrange("t:budget:calls", 0, -1, withscores=True)
        assert [pair[1] for pair in left] == [(fresh + timedelta(seconds=10)).timestamp()]
    finally:
        await first.aclose()
        await second.aclose()


async def test_redis_stopped_processes_serve_their_data_and_ll2_sees_nothing(
    upcoming: FakeLL2, instances: Any, clock: Clock, redis_server: RedisServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    a, b = await instances(), await instances()
    await rounds(a, b)
    bodies = [await (await x.get("/events.ics")).read() for x in (a, b)]
    redis_server.stop()
    calls = len(upcoming.calls)
    with caplog.at_level(logging.INFO, "calfeed"):
        for _ in range(40):  # 40 minutes: full and incremental syncs fall due meanwhile
            clock.advance(60)
            await rounds(a, b)
            for x, body in zip((a, b), bodies, strict=True):
                response = await x.get("/events.ics")
                assert response.status == 200
                assert await response.read() == body
    assert len(upcoming.calls) == calls
    # one line per process when it happened, not one per round or request
    unreachable = [r for r in caplog.records if "redis=unreachable" in r.getMessage()]
    assert len(unreachable) == 2
    health = await (await b.get("/healthz")).json()
    assert health["shared"]["redis"] == "unreachable"
    assert health["status"] == "ok"
    # only data older than stale_after turns /healthz to 503
    clock.advance(3 * 3600)
    await rounds(a, b)
    stale = await b.get("/healthz")
    assert stale.status == 503
    assert (await stale.json())["status"] == "stale"
    assert (await b.get("/events.ics")).status == 200

    # Redis back, empty (a restart): the leader writes what it holds, asks /api-throttle/
    # before its next call, and syncing resumes within the budget
    caplog.clear()
    redis_server.start()
    moved = NOW + timedelta(days=4)
    upcoming.upcoming[0] = make_event(1, moved.strftime("%Y-%m-%dT%H:%M:%SZ"),
                                      last_updated=stamp(clock))
    with caplog.at_level(logging.INFO, "calfeed"):
        for _ in range(3):
            clock.advance(60)
            await rounds(a, b)
    assert len([r for r in caplog.records if "redis=connected" in r.getMessage()]) == 2
    after = upcoming.calls[calls:]
    assert after and "api-throttle" in after[0].path
    for x in (a, b):
        body = await (await x.get("/events.ics")).read()
        assert by_uid(body)["ll2-event-1@calfeed"].decoded("DTSTART") == moved
        health = await (await x.get("/healthz")).json()
        assert health["status"] == "ok" and health["shared"]["redis"] == "connected"
    assert upcoming.most_in_any_hour() <= 13


async def test_corrupt_or_foreign_data_under_the_prefix_is_logged_and_ignored(
    upcoming: FakeLL2, instances: Any, redis_server: RedisServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    a, b = await instances(), await instances()
    await rounds(a, b)
    body = await (await b.get("/events.ics")).read()
    redis = Redis.from_url(redis_server.url)
    try:
        # someone else's value where a dataset belongs, and a revision that says it moved
        await redis.set("calfeed:v1:dataset:events", b"\x00not calfeed")
        await redis.hset("calfeed:v1:revisions", "events", "forged")
        await redis.hset("calfeed:v1:revisions", b"\xff", "x")  # not a kind's name
        with caplog.at_level(logging.WARNING, "calfeed"):
            await coordinator_of(b).step()
        assert any("shared=ignored key=dataset:events" in r.getMessage()
                   for r in caplog.records)
        assert await (await b.get("/events.ics")).read() == body
        # a prefix that holds another program's keys: nothing read, nothing written,
        # no LL2 call, and /healthz says why
        await redis.set("other:v1:layout", b"somebody else")
        calls = len(upcoming.calls)
        stranger = await instances(redis_prefix="other", cold_start_wait=0.2)
        await rounds(stranger)
        health = await (await stranger.get("/healthz")).json()
        assert health["shared"]["redis"] == "foreign"
        assert (await stranger.get("/events.ics")).status == 503
        assert len(upcoming.calls) == calls
        assert await redis.keys("other:*") == [b"other:v1:layout"]
        assert await redis.get("other:v1:layout") == b"somebody else"
        # one of calfeed's keys of another type: Redis answers, and refuses (WRONGTYPE):
        # said once as what it is, not "unreachable", and gone once the key is
        for key in ("calfeed:v1:revisions", "calfeed:v1:generation"):
            saved = await redis.dump(key)
            assert saved is not None
            await redis.delete(key)
            await redis.rpush(key, "not calfeed's")
            caplog.clear()
            with caplog.at_level(logging.WARNING, "calfeed"):
                for _ in range(3):
                    await rounds(a, b)
            health = await (await a.get("/healthz")).json()
            assert health["shared"]["redis"] == "foreign", key
            assert "WRONGTYPE" in health["shared"]["redis_error"]
            assert [r.getMessage().split(" ")[0] for r in caplog.records
                    if r.getMessage().startswith("redis=")] == ["redis=foreign"] * 2  # (each)
            assert not any(r.exc_info for r in caplog.records)
            await redis.delete(key)
            await redis.restore(key, 0, saved)
            await rounds(a, b)
            health = await (await a.get("/healthz")).json()
            assert health["shared"]["redis"] == "connected"
            assert {coordinator_of(x).role for x in (a, b)} == {"leader", "follower"}
    finally:
        await redis.aclose()


async def test_a_leader_stopped_past_its_lease_fetches_nothing_until_it_holds_it_again(
    upcoming: FakeLL2, instances: Any
) -> None:
    leader = coordinator_of(await instances())
    seconds = [1000.0]
    leader.monotonic = lambda: seconds[0]
    await leader.step()
    assert leader.may_fetch()
    # stopped (SIGSTOP) for longer than the lease: on waking, before its next round has
    # asked Redis, it must not assume the lease is still its own
    seconds[0] += leader.lease + 1
    await leader.sync()
    assert not upcoming.calls
    # the next round finds the lease free (nobody took it) and holds it again
    await leader.step()
    await leader.sync()
    assert upcoming.counted_calls()


async def test_rediss_urls_work_with_a_redis_that_speaks_only_tls(
    upcoming: FakeLL2, calfeed: Any, tmp_path: Any
) -> None:
    server = RedisServer(tls=tmp_path)
    server.start()
    try:
        assert server.url.startswith("rediss://")
        a = await calfeed(redis_url=server.url)
        b = await calfeed(redis_url=server.url)
        await rounds(a, b)
        assert [coordinator_of(x).redis_state for x in (a, b)] == ["connected"] * 2
        first, second = await a.get("/events.ics"), await b.get("/events.ics")
        assert await first.read() == await second.read()
        assert first.headers["ETag"] == second.headers["ETag"]
    finally:
        server.stop()


async def test_a_redis_blip_shorter_than_the_lease_leaves_the_leader_leading(
    upcoming: FakeLL2, instances: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = await instances(), await instances()
    await rounds(a, b)
    leader = coordinator_of(a)
    assert leader.leader
    real = leader.shared.generation

    async def blip() -> int:
        raise RedisConnectionError("Connection reset by peer")

    monkeypatch.setattr(leader.shared, "generation", blip)
    await leader.step()
    assert not leader.leader and leader.redis_state == "unreachable"
    monkeypatch.setattr(leader.shared, "generation", real)
    # Redis answers again and the lease is still its own: it leads again, no one else
    await rounds(a, b)
    assert [coordinator_of(x).role for x in (a, b)] == ["leader", "follower"]
    assert leader.may_fetch()


async def test_a_new_leader_starts_from_the_last_leaders_writes_without_refetching(
    upcoming: FakeLL2, instances: Any, clock: Clock
) -> None:
    a, b = await instances(), await instances()
    await rounds(a, b)
    # a change the old leader fetches and writes just before it stops: the follower has
    # not had a round since
    moved = NOW + timedelta(days=6)
    upcoming.upcoming[1] = make_event(2, moved.strftime("%Y-%m-%dT%H:%M:%SZ"),
                                      last_updated=stamp(clock))
    clock.advance(16 * 60)
    await coordinator_of(a).sync()
    await a.close()  # a clean stop gives the lease up
    calls = len(upcoming.counted_calls())
    new = coordinator_of(b)
    await new.step()
    assert new.leader
    await new.sync()
    # it serves what the old leader wrote, and fetched nothing that was not due
    body = await (await b.get("/events.ics")).read()
    assert by_uid(body)["ll2-event-2@calfeed"].decoded("DTSTART") == moved
    assert len(upcoming.counted_calls()) == calls


async def test_redis_restored_from_an_older_copy_takes_no_process_back(
    upcoming: FakeLL2, instances: Any, clock: Clock, redis_server: RedisServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Redis comes back with its last snapshot (an unclean restart, a backup restored):
    # the data the processes had since is newer, and stays, and the leader writes it
    a, b = await instances(), await instances()
    await rounds(a, b)
    redis = Redis.from_url(redis_server.url)
    keys = await redis.keys("calfeed:*")
    saved = {key: await redis.dump(key) for key in keys}
    moved = NOW + timedelta(days=3, hours=2)
    upcoming.upcoming[2] = make_event(3, moved.strftime("%Y-%m-%dT%H:%M:%SZ"),
                                      last_updated=stamp(clock))
    clock.advance(16 * 60)
    await rounds(a, b)
    newer = [await (await x.get("/events.ics")).read() for x in (a, b)]
    assert newer[0] == newer[1] and b"20261202T140000Z" in newer[0]
    calls = len(upcoming.counted_calls())
    for key, value in saved.items():  # (the budget's window and the lease go back too)
        assert value is not None
        await redis.restore(key, 0, value, replace=True)
    await redis.aclose()
    with caplog.at_level(logging.WARNING):
        await rounds(a, b)
        await rounds(a, b)
    assert [await (await x.get("/events.ics")).read() for x in (a, b)] == newer
    assert len(upcoming.counted_calls()) == calls  # (nothing fetched again)
    assert any("shared=older key=dataset:events" in r.getMessage() for r in caplog.records)
    # and a process that joins now gets the newer data from Redis
    c = await instances()
    await rounds(c)
    assert await (await c.get("/events.ics")).read() == newer[0]


async def test_what_a_job_fetched_during_a_redis_blip_is_written_not_lost(
    upcoming: FakeLL2, instances: Any, clock: Clock, monkeypatch: pytest.MonkeyPatch,
) -> None:
    a, b = await instances(), await instances()
    await rounds(a, b)
    leader = coordinator_of(a)
    moved = NOW + timedelta(days=3, hours=2)
    upcoming.upcoming[2] = make_event(3, moved.strftime("%Y-%m-%dT%H:%M:%SZ"),
                                      last_updated=stamp(clock))
    clock.advance(16 * 60)
    real = leader.shared.write

    async def blip(*args: Any, **kwargs: Any) -> str | None:
        raise RedisConnectionError("Connection reset by peer")

    monkeypatch.setattr(leader.shared, "write", blip)
    await leader.sync()  # the job fetches the change; its write fails
    monkeypatch.setattr(leader.shared, "write", real)
    calls = len(upcoming.counted_calls())
    for _ in range(2):  # Redis answers again: rounds only, nothing due to sync
        await leader.step()
        await coordinator_of(b).step()
    assert leader.leader
    for x in (a, b):
        body = await (await x.get("/events.ics")).read()
        assert by_uid(body)["ll2-event-3@calfeed"].decoded("DTSTART") == moved
    assert len(upcoming.counted_calls()) == calls


async def test_healthz_answers_at_once_while_redis_hangs(
    upcoming: FakeLL2, instances: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # a Redis that stops answering (SIGSTOP, a fork or swap stall) takes redis-py's
    # socket timeout to give up; a monitor probes with a timeout of a second or two
    a = await instances()
    await rounds(a)
    budget = coordinator_of(a).syncer.budget
    assert isinstance(budget, SharedBudget)

    async def hung(*args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(5)

    monkeypatch.setattr(budget, "_view", hung)
    loop = asyncio.get_running_loop()
    began = loop.time()
    response = await a.get("/healthz")
    assert loop.time() - began < 1
    assert response.status == 200
    assert (await response.json())["budget"]["limit_per_hour"] == 13
