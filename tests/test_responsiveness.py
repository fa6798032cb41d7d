"""Rendering never stops the server answering: while a large dataset is indexed and
serialised cold, cached feeds, the page's files and /healthz are answered in between. (Ordering, not
timing: the latencies are measured in bench/loop_bench.py.)"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from calfeed.server import SYNCER, create_app
from calfeed.settings import Settings
from tests.helpers import NOW, make_event
from tests.ics_helpers import uids

pytestmark = pytest.mark.slow


def many_events(count: int) -> list[dict[str, Any]]:
    return [make_event(i, (NOW + timedelta(hours=3 * i)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                       type_id=i % 7, precision=[1, 5, 7][i % 3]) for i in range(1, count + 1)]


async def test_healthz_and_cached_feeds_are_answered_during_a_cold_render_of_10000(
) -> None:
    launch = {"id": "l-1", "name": "Falcon 9 | Crew-13", "net": "2026-12-02T14:00:00Z",
              "net_precision": {"id": 1}, "last_updated": "2026-11-01T00:00:00Z"}
    app = create_app(Settings(max_feed_bytes=300_000), now=lambda: NOW, background=False,
                     items={"events": many_events(10_000), "launches": [launch]})
    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        await app[SYNCER].tick()
        # a feed that is cached before the big render starts
        assert (await client.get("/launches.ics")).status == 200
        cold = asyncio.create_task(client.get("/events.ics?type=3&precision=any"))
        answered = 0
        while not cold.done():
            health = await client.get("/healthz")
            cached = await client.get("/launches.ics")
            assert health.status == cached.status == 200
            answered += 1
        # the render went on for many round trips of the others, not in one block
        assert answered >= 5, answered
        response = cold.result()
        assert response.status == 200
        body = await response.read()
        # the body holds the type-3 events nearest to now that fit, and says so
        held = uids(body)
        assert 100 < len(held) < 10_000 // 7
        assert len(body) <= 300_000
        assert all(int(uid.split("-")[2].split("@")[0]) % 7 == 3 for uid in held)
        assert b"nearest to now" in body.replace(b"\r\n ", b"")
        # the page's files too, asked for beside /healthz, about as often answered (read
        # from disk in the thread pool, they waited for the GIL while the loop rendered:
        # hundreds of milliseconds each)
        counts = {"/healthz": 0, "/static/calfeed.css": 0}
        second = asyncio.create_task(client.get("/events.ics?type=4&precision=any"))

        async def keep_asking(path: str) -> None:
            while not second.done():
                assert (await client.get(path)).status == 200
                counts[path] += 1

        await asyncio.gather(*(keep_asking(path) for path in counts))
        assert counts["/healthz"] >= 5 and 2 * counts["/static/calfeed.css"] >= counts[
            "/healthz"], counts
        assert (await second).status == 200
    finally:
        await client.close()


async def test_the_collector_stays_off_until_the_warm_up_has_frozen_what_it_made() -> None:
    """Back on between the index and the freeze, the collector's first pass went over
    every entry just made (its longest stall), only for the freeze to follow."""
    import gc

    app = create_app(Settings(), now=lambda: NOW, background=False,
                     items={"events": many_events(3_000), "launches": []})
    client = TestClient(TestServer(app))
    await client.start_server()
    samples: list[tuple[bool, int]] = []

    async def watch() -> None:
        while True:
            samples.append((gc.isenabled(), gc.get_freeze_count()))
            await asyncio.sleep(0)

    try:
        watcher = asyncio.create_task(watch())
        await app[SYNCER].tick()
        await (await client.get("/events.ics")).read()
        for _ in range(1000):  # (until the warm-up is done and the collector on again)
            if gc.isenabled() and samples[-1][0]:
                break
            await asyncio.sleep(0.01)
        watcher.cancel()
        # the collector goes off for the index, and when it is on again, what the warm-up
        # made is frozen already
        first_off = next(i for i, (enabled, _) in enumerate(samples) if not enabled)
        back_on = next(i for i in range(first_off, len(samples)) if samples[i][0])
        assert samples[back_on][1] > samples[first_off][1] + 3_000, (first_off, back_on)
        assert gc.isenabled()
    finally:
        await client.close()


async def test_what_an_index_made_is_out_of_the_collectors_way_when_it_is_on_again(
) -> None:
    """An index a request starts (no warm-up first): as the collector comes back on, the
    entries made meanwhile are frozen already, not left in its young generation for its
    first pass to walk at once (52 ms at 50,000 items, the longest stall after new
    data)."""
    import gc

    from calfeed.dataset import Snapshot
    from calfeed.feeds import FEED_KINDS
    from calfeed.render import Renderer

    renderer = Renderer(Settings(), lambda: NOW)
    snapshot = Snapshot(tuple(many_events(3_000)), NOW, 1)
    assert gc.isenabled()
    _, entries = await renderer.index(FEED_KINDS["events"], snapshot)
    assert gc.isenabled() and len(entries) == 3_000
    young = {id(o) for generation in range(3) for o in gc.get_objects(generation)}
    assert not [entry for entry in entries if id(entry) in young]
