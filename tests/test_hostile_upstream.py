"""LL2 as an attacker, or a broken proxy, would answer: nothing good is lost, no secret
leaves, no answer of any size or shape stops the syncer."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from tests.fake_ll2 import FakeLL2
from tests.helpers import Clock, later, make_event, syncer_of
from tests.ics_helpers import by_uid, uids

THIRTY_TWO = [make_event(i, f"2026-12-{i % 28 + 1:02d}T10:00:00Z") for i in range(1, 33)]


@pytest.fixture
async def other_site() -> Any:
    """A second fake LL2 on another port: somewhere the token must never go."""
    fake = FakeLL2(upcoming=[make_event(666, name="From the other site")])
    server = TestServer(fake.app())
    await server.start_server()
    yield fake, server
    await server.close()


async def feed_uids(client: Any, query: str = "") -> list[str]:
    response = await client.get("/events.ics" + query)
    assert response.status == 200
    return uids(await response.read())


async def test_incomplete_list_of_several_pages_loses_nothing(
    fake: FakeLL2, calfeed: Any, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    fake.max_page = 10
    fake.upcoming = list(THIRTY_TWO)
    client = await calfeed(retry_backoff=60)
    complete = await feed_uids(client, "?past_days=0")
    assert len(complete) == 32
    # the second page now links back to the first: only 20 of 32 events could be read
    fake.loop_back_at = 10
    with caplog.at_level(logging.WARNING):
        await later(client, clock, 3600)  # the hourly full refresh
    assert await feed_uids(client, "?past_days=0") == complete
    health = await (await client.get("/healthz")).json()
    assert "did not arrive whole" in health["last_error"]
    assert health["failures_in_a_row"] >= 1
    assert any("upstream=incomplete reason=page-repeats" in r.getMessage()
               for r in caplog.records)
    # it is a failure like any other: the syncer backs off rather than retrying at once
    calls = len(fake.list_calls())
    await later(client, clock, 20)
    assert len(fake.list_calls()) == calls
    # once LL2 pages properly again, the full list replaces the old one
    fake.loop_back_at = 0
    fake.upcoming = fake.upcoming[:31]
    for _ in range(10):
        await later(client, clock, 600)
    assert len(await feed_uids(client, "?past_days=0")) == 31


async def test_list_cut_short_loses_nothing(
    fake: FakeLL2, calfeed: Any, clock: Clock
) -> None:
    fake.max_page = 10
    fake.upcoming = list(THIRTY_TWO)
    client = await calfeed()
    assert len(await feed_uids(client, "?past_days=0")) == 32
    fake.cut_at = 10  # page 2 of 4 claims to be the last
    await later(client, clock, 3600)
    assert len(await feed_uids(client, "?past_days=0")) == 32
    assert "20 of 32 items" in (syncer_of(client).last_error or "")


@pytest.mark.parametrize("move", [(5, 25), (25, 5)], ids=["put-back", "brought-forward"])
async def test_an_item_moved_while_the_list_is_read_loses_nothing(
    fake: FakeLL2, calfeed: Any, clock: Clock, move: tuple[int, int],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # as many rows as LL2 counts, one of them twice: put back, an item on the first page
    # pushes another back onto it, unread (brought forward, the moved item itself is
    # missed); either way what arrived updates the list, and nothing held is dropped
    fake.max_page = 10
    fake.upcoming = list(THIRTY_TWO)
    client = await calfeed(retry_backoff=60)
    complete = await feed_uids(client, "?past_days=0")
    fake.upcoming[move[0]] = {**fake.upcoming[move[0]], "name": "Moved",
                              "last_updated": "2026-11-29T12:30:00Z"}
    fake.after_first_page = lambda listed: listed.insert(move[1], listed.pop(move[0]))
    with caplog.at_level(logging.WARNING):
        await later(client, clock, 3600)  # the hourly full refresh
    assert sorted(await feed_uids(client, "?past_days=0")) == sorted(complete)
    lines = [r.getMessage() for r in caplog.records]
    assert any("upstream=incomplete reason=shifted" in line for line in lines)
    assert any("sync=merged kind=events part=upcoming" in line for line in lines)
    # not a failure: LL2 may page an order with ties differently at every read
    syncer = syncer_of(client)
    assert syncer.failures == 0 and syncer.last_error is None
    if move[0] < 10:  # (read on the first page, before it moved)
        search = await client.get("/events.json?past_days=0&search=moved")
        assert len((await search.json())["events"]) == 1


async def test_a_last_page_of_rows_read_already_is_a_list_that_moved_not_a_failure(
    fake: FakeLL2, calfeed: Any, clock: Clock, caplog: pytest.LogCaptureFixture,
) -> None:
    # 21 events in pages of 10, the last ones tied: at every read LL2 pages the ties
    # otherwise, and the one row of the last page is one the first page had already
    fake.max_page = 10
    fake.upcoming = [make_event(i, "2026-12-31T00:00:00Z" if i > 8 else
                                f"2026-12-{i + 10:02d}T10:00:00Z") for i in range(1, 22)]
    client = await calfeed(retry_backoff=60)
    complete = sorted(await feed_uids(client, "?past_days=0"))
    assert len(complete) == 21

    def ties_paged_otherwise(listed: list[dict[str, Any]]) -> bool:
        listed[9], listed[20] = listed[20], listed[9]
        return True  # (at every read)

    fake.after_first_page = ties_paged_otherwise
    fake.upcoming[2] = {**fake.upcoming[2], "name": "Edited at LL2",
                        "last_updated": "2026-11-30T12:30:00Z"}
    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            await later(client, clock, 3600)  # the hourly full refreshes
    assert sorted(await feed_uids(client, "?past_days=0")) == complete
    search = await client.get("/events.json?past_days=0&search=edited")
    assert len((await search.json())["events"]) == 1
    lines = [r.getMessage() for r in caplog.records]
    assert any("upstream=incomplete reason=shifted" in line for line in lines)
    assert not any("page-repeats" in line for line in lines), lines
    syncer = syncer_of(client)
    assert syncer.failures == 0 and syncer.last_error is None


async def test_what_leaves_a_list_that_moved_while_read_goes_at_the_next_whole_one(
    fake: FakeLL2, calfeed: Any, clock: Clock,
) -> None:
    fake.max_page = 10
    fake.upcoming = list(THIRTY_TWO)
    client = await calfeed()
    await feed_uids(client, "?past_days=0")
    gone = fake.upcoming.pop(30)["id"]  # deleted at LL2, then a list that moves
    fake.after_first_page = lambda listed: listed.insert(25, listed.pop(5))
    await later(client, clock, 3600)
    assert f"ll2-event-{gone}@calfeed" in await feed_uids(client, "?past_days=0")
    calls = len(fake.list_calls())
    await later(client, clock, 60)
    assert len(fake.list_calls()) == calls  # (the next full refresh is an hour away)
    await later(client, clock, 3600)
    assert f"ll2-event-{gone}@calfeed" not in await feed_uids(client, "?past_days=0")


async def test_what_leaves_a_list_that_moves_at_every_read_goes_all_the_same(
    fake: FakeLL2, calfeed: Any, clock: Clock, caplog: pytest.LogCaptureFixture,
) -> None:
    # an order with ties LL2 pages differently at each read: no list ever arrives whole,
    # each misses another item; one deleted at LL2 is missed by them all
    from calfeed.dataset import SHIFTED_MISSES

    fake.max_page = 10
    fake.upcoming = list(THIRTY_TWO)
    client = await calfeed()
    complete = sorted(await feed_uids(client, "?past_days=0"))

    async def a_moving_read(at: int) -> None:
        fake.after_first_page = lambda listed: listed.insert(25, listed.pop(at))
        await later(client, clock, 3600)  # the hourly full refresh

    for at in range(4):  # (moved, nothing deleted: nothing goes, however long it lasts)
        await a_moving_read(at)
        assert sorted(await feed_uids(client, "?past_days=0")) == complete
    gone = fake.upcoming.pop(30)["id"]
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        for at in range(SHIFTED_MISSES):
            assert f"ll2-event-{gone}@calfeed" in await feed_uids(client, "?past_days=0")
            await a_moving_read(4 + at)
    assert sorted(await feed_uids(client, "?past_days=0")) == sorted(
        set(complete) - {f"ll2-event-{gone}@calfeed"})
    merged = [r.getMessage() for r in caplog.records if "sync=merged" in r.getMessage()]
    assert len(merged) == SHIFTED_MISSES and "dropped=1" in merged[-1], merged
    assert all("dropped=0" in line for line in merged[:-1])


async def test_changes_that_move_while_read_are_merged_not_a_failure(
    fake: FakeLL2, calfeed: Any, clock: Clock, caplog: pytest.LogCaptureFixture,
) -> None:
    # twenty edits at one time (ties, in whatever order LL2 pages them), one of them
    # moved while the changes are read
    fake.max_page = 10
    fake.upcoming = list(THIRTY_TWO)
    client = await calfeed(retry_backoff=60)
    await feed_uids(client, "?past_days=0")
    edited = (clock.current + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    for at in range(20):
        fake.upcoming[at] = {**fake.upcoming[at], "name": f"Edited {at}",
                             "last_updated": edited}
    fake.after_first_page = lambda listed: listed.insert(15, listed.pop(2))
    with caplog.at_level(logging.WARNING):
        await later(client, clock, 900)  # the incremental fetch
    lines = [r.getMessage() for r in caplog.records]
    assert any("upstream=incomplete reason=shifted" in line for line in lines)
    assert any("sync=merged kind=events part=upcoming job=incremental" in line
               for line in lines)
    syncer = syncer_of(client)
    assert syncer.failures == 0 and syncer.last_error is None
    response = await client.get("/events.json?past_days=0&search=edited")
    assert len((await response.json())["events"]) == 19  # (one moved out of reach)
    assert len(await feed_uids(client, "?past_days=0")) == 32

    def changes_since() -> list[str]:
        return [c.query["last_updated__gte"] for c in fake.list_calls()
                if "last_updated__gte" in c.query and c.query.get("offset", "0") == "0"]

    # what was pushed out of reach may have changed long before: the next fetch of
    # changes asks from the same time, and finds it
    await later(client, clock, 900)
    first, again = changes_since()[-2:]
    assert again == first
    response = await client.get("/events.json?past_days=0&search=edited")
    assert len((await response.json())["events"]) == 20
    for _ in range(3):  # (read whole: from then on, from the last fetch)
        await later(client, clock, 900)
    assert changes_since()[-1] > first
    # never from further back than a full refresh's interval, whatever the state says
    upcoming = syncer_of(client).datasets["events"].parts["upcoming"]
    assert upcoming.synced_at is not None
    upcoming.changes_from = upcoming.synced_at - timedelta(days=3)
    await later(client, clock, 900)
    asked = datetime.fromisoformat(changes_since()[-1])
    assert asked >= upcoming.synced_at - timedelta(hours=2)  # (not three days back)


async def test_more_pages_than_max_pages_is_a_failed_fetch(
    fake: FakeLL2, calfeed: Any, clock: Clock
) -> None:
    fake.max_page = 10
    fake.upcoming = list(THIRTY_TWO)
    client = await calfeed(max_pages=10)
    assert len(await feed_uids(client, "?past_days=0")) == 32
    syncer_of(client).source.client._max_pages = 2  # type: ignore[attr-defined]
    await later(client, clock, 3600)
    assert len(await feed_uids(client, "?past_days=0")) == 32
    assert "more than 2 pages" in (syncer_of(client).last_error or "")


async def test_next_link_to_another_origin_gets_no_token(
    fake: FakeLL2, calfeed: Any, clock: Clock, other_site: Any, fake_server: TestServer
) -> None:
    other, server = other_site
    fake.max_page = 10
    fake.upcoming = list(THIRTY_TWO)
    client = await calfeed(ll2_token="secret-key", retry_backoff=60)
    assert len(await feed_uids(client, "?past_days=0")) == 32
    assert {c.headers.get("Authorization") for c in fake.list_calls()} == {"Token secret-key"}
    # another port, and LL2's own host and port under another scheme
    for base in (str(server.make_url("/")), str(fake_server.make_url("/").with_scheme("https"))):
        fake.next_base = base
        await later(client, clock, 3600)
        # nothing was sent to the other site, and nothing of the list was dropped
        assert other.calls == []
        assert len(await feed_uids(client, "?past_days=0")) == 32
        assert "another site" in (syncer_of(client).last_error or "")


async def test_redirect_to_another_origin_is_not_followed(
    fake: FakeLL2, calfeed: Any, other_site: Any
) -> None:
    other, server = other_site
    fake.upcoming = [make_event(1)]
    fake.redirect_to = str(server.make_url("/"))
    client = await calfeed(ll2_token="secret-key")
    response = await client.get("/events.ics")
    assert response.status == 503
    assert "another site" in await response.text()
    assert other.calls == []


async def test_redirect_within_ll2_is_followed_with_the_token(
    fake: FakeLL2, calfeed: Any, fake_server: TestServer
) -> None:
    fake.upcoming = [make_event(1)]
    fake.redirect_to = str(fake_server.make_url("/"))
    client = await calfeed(ll2_token="secret-key")
    assert await feed_uids(client) == ["ll2-event-1@calfeed"]
    followed = [c for c in fake.list_calls() if c.query.get("redirected") == "1"]
    assert followed and all(c.headers["Authorization"] == "Token secret-key" for c in followed)
    # LL2 counts the redirect and the request it leads to: so does the budget
    used = (await (await client.get("/healthz")).json())["budget"]["used"]
    assert used == len(fake.counted_calls())
    # (each request that was followed came after the redirect that led to it, both counted)
    assert len(fake.list_calls()) == 2 * len(followed)


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_oversized_response_is_a_failed_fetch(
    fake: FakeLL2, calfeed: Any, clock: Clock, chunked: bool,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake.upcoming = [make_event(1), make_event(2)]
    client = await calfeed(max_response_bytes=2_000_000, retry_backoff=60)
    good = await feed_uids(client)
    fake.pad_bytes, fake.chunked = 50_000_000, chunked
    with caplog.at_level(logging.WARNING):
        await later(client, clock, 3600)
    assert await feed_uids(client) == good
    assert "more than 2000000 bytes" in (syncer_of(client).last_error or "")
    too_large = [r for r in caplog.records if "upstream=too-large" in r.getMessage()]
    assert len(too_large) == 1  # one line per failed fetch, not one per chunk


async def test_default_cap_admits_a_large_real_page(fake: FakeLL2, calfeed: Any) -> None:
    # a detailed page of 100 launches is about 3 MB: well inside the 20 MB default
    fake.upcoming = [make_event(1)]
    fake.pad_bytes = 5_000_000
    client = await calfeed()
    assert await feed_uids(client) == ["ll2-event-1@calfeed"]


def nested(depth: int) -> Any:
    value: Any = "bottom"
    for _ in range(depth):
        value = {"deeper": value}
    return value


async def test_malformed_items_are_skipped_and_the_rest_served(
    fake: FakeLL2, calfeed: Any, caplog: pytest.LogCaptureFixture
) -> None:
    fake.upcoming = [
        make_event(1),
        {**make_event(2), "id": [2]},
        {**make_event(3), "id": {"nested": 3}},
        {**make_event(4), "id": "<script>"},
        {**make_event(5), "id": "x" * 10_000},
        {**make_event(6), "id": True},
        make_event(7, description=nested(200)),
        make_event(8, description=nested(20)),  # odd, but not too deep: kept
        "not an object",  # type: ignore[list-item]
        make_event(9),
    ]
    client = await calfeed()
    with caplog.at_level(logging.WARNING):
        found = await feed_uids(client)
    assert found == ["ll2-event-1@calfeed", "ll2-event-8@calfeed", "ll2-event-9@calfeed"]
    skips = [r.getMessage() for r in caplog.records if "upstream=skip-item" in r.getMessage()]
    assert any("reason=no-id count=6" in line for line in skips)
    assert any("reason=too-deep count=1" in line for line in skips)
    assert all(r.exc_info is None for r in caplog.records)


@pytest.mark.parametrize("body", [
    "[" * 100_000 + "]" * 100_000,
    '{"results": ' + "[" * 100_000 + "]" * 100_000 + "}",
    '{"count": 2, "results": [{"id": 1, "name": "x"}], "next": 5}',
    '{"count": 1, "results": [{"id": 1, "name": "x"}], "next": "http://[::1"}',
    '{"count": 1, "results": [{"id": 1}], "next": "' + "x" * 10_000 + '"}',
    '{"count": 1, "results": {"id": 1}}',
    '{"results": [{"id": 1}], "next": null}',
    "null",
    '"just a string"',
    '{"count": 3, "results": [1, 2, 3], "next": null}',
    '{"count": "3", "results": [], "next": null}',
    '{"count": 0, "results": [], "next": null}',
], ids=["deep-list", "deep-results", "next-number", "next-garbage", "next-huge",
        "results-object", "no-count", "null", "string", "results-numbers", "count-text",
        "suddenly-empty"])
async def test_any_page_shape_is_one_failed_fetch_or_a_usable_page(
    fake: FakeLL2, calfeed: Any, clock: Clock, body: str, caplog: pytest.LogCaptureFixture
) -> None:
    fake.upcoming = [make_event(1), make_event(2)]
    client = await calfeed(retry_backoff=60)
    good = await feed_uids(client)
    fake.raw_body = body
    with caplog.at_level(logging.INFO):
        for _ in range(3):
            await later(client, clock, 3600)
            assert await feed_uids(client) == good
    # never a traceback: each fault is a line of its own
    assert all(r.exc_info is None for r in caplog.records)
    assert not any("crashed" in r.getMessage() for r in caplog.records)


async def test_sync_loop_survives_an_unexpected_error(
    fake: FakeLL2, calfeed: Any, clock: Clock, caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake.upcoming = [make_event(1)]
    client = await calfeed(retry_backoff=60)
    good = await feed_uids(client)
    dataset = syncer_of(client).datasets["events"]

    def explode(*args: Any) -> None:
        raise RecursionError("maximum recursion depth exceeded in comparison")

    monkeypatch.setattr(dataset, "replacing", explode)
    with caplog.at_level(logging.WARNING):
        await later(client, clock, 3600)
    assert await feed_uids(client) == good
    failed = [r for r in caplog.records if "sync=failed" in r.getMessage()]
    assert len(failed) == 1 and "RecursionError" in failed[0].getMessage()
    assert failed[0].exc_info is None



async def test_absurd_throttle_answers_are_bounded(
    fake: FakeLL2, calfeed: Any, clock: Clock
) -> None:
    fake.upcoming = [make_event(1)]
    client = await calfeed()
    good = await feed_uids(client)
    # a Retry-After of 31 million years, and an /api-throttle/ count of 10^18 calls
    fake.throttle_seconds = 10**15
    fake.reported_use = 10**18
    await later(client, clock, 3600)
    assert await feed_uids(client) == good
    health = await (await client.get("/healthz")).json()
    blocked = datetime.fromisoformat(health["budget"]["blocked_until"])
    assert blocked <= clock.current + timedelta(hours=2)
    assert health["budget"]["used"] <= health["budget"]["limit_per_hour"] + 2
    # once the (bounded) block is over and LL2 behaves, calfeed syncs again
    fake.throttle_seconds, fake.reported_use = 0, None
    fake.upcoming.append(make_event(2))
    for _ in range(20):
        await later(client, clock, 900)
    assert "ll2-event-2@calfeed" in await feed_uids(client)


async def test_a_page_with_only_an_unusable_item_does_not_stop_the_list(
    fake: FakeLL2, calfeed: Any, clock: Clock
) -> None:
    fake.upcoming = [make_event(i, f"2026-12-{i % 28 + 1:02d}T10:00:00Z") for i in range(1, 101)]
    fake.upcoming.append({**make_event(101), "id": "not an id"})  # alone on page 2
    client = await calfeed()
    assert len(await feed_uids(client, "?past_days=0")) == 100
    # and changes keep coming through the full refreshes
    fake.upcoming[0] = make_event(1, "2026-12-02T10:00:00Z", name="Renamed",
                                  last_updated="2026-11-29T13:00:00Z")
    await later(client, clock, 3600)
    response = await client.get("/events.json?past_days=0&search=renamed")
    assert [e["id"] for e in (await response.json())["events"]] == ["1"]
    assert syncer_of(client).failures == 0


@pytest.mark.parametrize("job", ["incremental", "full"])
@pytest.mark.parametrize("breakage", ["no-date", "too-deep"])
async def test_a_broken_new_version_keeps_the_last_good_one(
    fake: FakeLL2, calfeed: Any, clock: Clock, job: str, breakage: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake.upcoming = [make_event(1), make_event(2), make_event(3)]
    client = await calfeed()
    good = await feed_uids(client)
    # LL2 edits event 1 and loses its date, or nests a field deeper than any real item
    broken = {"date": None} if breakage == "no-date" else {"description": nested(200)}
    fake.upcoming[0] = {**make_event(1, last_updated="2026-11-29T12:30:00Z"), **broken}
    with caplog.at_level(logging.WARNING):
        await later(client, clock, 900 if job == "incremental" else 3600)
    assert await feed_uids(client) == good
    assert any("sync=kept-previous kind=events id=1" in r.getMessage() for r in caplog.records)


def poisoned_event(ident: int, **poison: Any) -> dict[str, Any]:
    event = make_event(ident, launches=[{
        "id": "l1", "name": "A launch", "net": "2026-12-01T10:00:00Z",
        "pad": {"latitude": 10**400, "longitude": 1}}])
    event.update(poison)
    return event


async def test_numbers_too_large_for_python_floats(fake: FakeLL2, calfeed: Any,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    fake.upcoming = [
        poisoned_event(1),
        make_event(2, vid_urls=[{"priority": 10**400, "url": "https://good.example/v"}],
                   info_urls=[{"priority": -(10**400), "url": "https://good.example/i"}],
                   launches=[{"id": "l1", "name": "x"}]),
        make_event(3, agencies=(), type={"id": 10**400, "name": "Huge"},
                   program=[{"id": 2**64, "name": "Too big an id"}]),
    ]
    fake.launches_upcoming = [{
        "id": "l1", "name": "Launch", "net": "2026-12-01T10:00:00Z", "probability": 10**400,
        "net_precision": {"id": 10**400}, "status": {"id": 10**400, "name": "Big"},
        "pad": {"latitude": 10**400, "longitude": -(10**400), "id": 10**400},
        "last_updated": "2026-11-20T00:00:00Z",
    }]
    client = await calfeed()
    with caplog.at_level(logging.WARNING):
        assert len(await feed_uids(client)) == 3
        for path in ("/launches.ics", "/events.json", "/launches.json", "/",
                     "/?feed=launches"):
            assert (await client.get(path)).status == 200, path
    assert not any(r.exc_info for r in caplog.records)


async def test_lone_surrogates_and_separators_in_ll2_text(
    fake: FakeLL2, calfeed: Any, clock: Clock, state_dir: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake.upcoming = [
        make_event(1, name="Dock\ud800ing", description="bad \udfff text\u2028here",
                   agencies=(5,), location="ISS\u202e"),
        make_event(2, type_name="Dock\udc00", url="https://e.example/\u2028x",
                   vid_urls=[{"url": "https://e.example/\ud800", "priority": 1}]),
    ]
    fake.upcoming[0]["agencies"][0]["abbrev"] = "A\ud800"
    client = await calfeed()
    with caplog.at_level(logging.WARNING):
        events = await feed_uids(client)
        assert len(events) == 2
        for path in ("/events.ics?agency=5", "/events.json", "/", "/?agency=5"):
            response = await client.get(path)
            assert response.status == 200, path
            body = await response.read()
            assert "\u2028".encode() not in body and b"\xed\xa0\x80" not in body
    assert not any(r.exc_info for r in caplog.records)
    # the state file was written, and a restart serves the same at once
    calls = len(fake.list_calls())
    again = await calfeed()
    assert await feed_uids(again) == events
    assert len(fake.list_calls()) == calls


async def test_a_dripping_upstream_is_a_failed_fetch(
    fake: FakeLL2, calfeed: Any, clock: Clock
) -> None:
    fake.upcoming = [make_event(1)]
    client = await calfeed(read_timeout=1.0, connect_timeout=1.0)
    good = await feed_uids(client)
    fake.drip_seconds = 0.2  # a byte every 0.2 s: never a gap of a second, never the end
    started = asyncio.get_running_loop().time()
    await later(client, clock, 3600)
    assert asyncio.get_running_loop().time() - started < 6
    assert "did not answer in time" in (syncer_of(client).last_error or "")
    assert await feed_uids(client) == good


def test_a_saved_throttle_block_is_bounded_too() -> None:
    from calfeed.budget import MAX_BLOCK, LocalBudget
    from tests.helpers import NOW

    budget = LocalBudget(13)
    budget.load_state({"calls": [], "blocked_until": "2999-01-01T00:00:00+00:00"}, NOW)
    assert budget.blocked_until == NOW + MAX_BLOCK


async def test_a_proxys_html_429_is_still_a_429(
    fake: FakeLL2, calfeed: Any, clock: Clock
) -> None:
    fake.upcoming = [make_event(1)]
    client = await calfeed()
    good = await feed_uids(client)
    # a proxy in front of LL2 answers with HTML and names no charset
    fake.throttle_seconds, fake.html_answers = 600, True
    await later(client, clock, 3600)
    assert await feed_uids(client) == good
    health = await (await client.get("/healthz")).json()
    assert health["budget"]["blocked_until"] is not None
    assert "throttled" in (syncer_of(client).last_error or "")


async def test_store_wakes_whoever_waits_for_a_change() -> None:
    from calfeed.store import Store

    store = Store(["events"])
    seen = store.generation
    waiter = asyncio.ensure_future(store.wait_for_change(seen))
    cancelled = asyncio.ensure_future(store.wait_for_change(seen))
    await asyncio.sleep(0)
    cancelled.cancel()
    store.datasets["events"].replace("upcoming", [make_event(1)], datetime.now(UTC))
    assert await asyncio.wait_for(waiter, 1) == store.generation > seen
    # a waiter that was cancelled does not keep a later one from waking
    later_waiter = asyncio.ensure_future(store.wait_for_change(store.generation))
    await asyncio.sleep(0)
    store.datasets["events"].replace("upcoming", [make_event(2)], datetime.now(UTC))
    assert await asyncio.wait_for(later_waiter, 1) == store.generation


async def test_new_data_is_rendered_before_anyone_asks(
    fake: FakeLL2, calfeed: Any, clock: Clock
) -> None:
    from calfeed.server import RENDERER

    fake.upcoming = [make_event(1)]
    client = await calfeed()
    await feed_uids(client)
    renderer = client.app[RENDERER]
    before = renderer.vevents_serialised
    fake.upcoming.append(make_event(2))
    await later(client, clock, 3600)
    for _ in range(50):  # the warm-up runs beside the sync, yielding to requests
        if renderer.vevents_serialised > before:
            break
        await asyncio.sleep(0.01)
    assert renderer.vevents_serialised == before + 1  # the new event, and only it


async def test_an_empty_recent_past_is_not_a_failure(
    fake: FakeLL2, calfeed: Any, clock: Clock
) -> None:
    fake.upcoming = [make_event(1)]
    # 29 days and 22 hours ago: out of the 30 days' window by the next past sync
    fake.previous = [make_event(2, "2026-10-30T14:00:00Z")]
    client = await calfeed()
    await feed_uids(client)
    fake.previous = []  # the past event aged out of LL2's window: nothing went wrong
    await later(client, clock, 6 * 3600)
    assert syncer_of(client).failures == 0 and syncer_of(client).last_error is None
    assert "ll2-event-2@calfeed" not in await feed_uids(client, "?past_days=30")


async def test_an_item_that_began_before_the_past_window_stays_while_it_lasts_in_it(
    fake: FakeLL2, calfeed: Any, clock: Clock
) -> None:
    # LL2's recent past is asked by date; past_days counts from an item's end. A ten-day
    # event begun 29 days ago (ended 19 days ago) leaves LL2's list in a day, not the feed
    fake.upcoming = [make_event(1)]
    fake.previous = [make_event(2, "2026-10-31T10:00:00Z", duration="P10D"),
                     make_event(3, "2026-11-20T10:00:00Z")]
    client = await calfeed()
    everything = "?past_days=30&precision=any"
    assert "ll2-event-2@calfeed" in await feed_uids(client, everything)
    fake.previous = [e for e in fake.previous if e["id"] != 3]  # (deleted at LL2)
    for _ in range(8):
        await later(client, clock, 6 * 3600)  # two days of past refreshes
    # (LL2's window no longer holds event 2's date)
    asked = [c for c in fake.calls if c.path.endswith("/events/previous/")][-1]
    assert asked.query["date__gte"] > "2026-10-31"
    found = await feed_uids(client, everything)
    assert "ll2-event-2@calfeed" in found and "ll2-event-3@calfeed" not in found


async def test_a_past_list_that_moves_at_every_read_keeps_what_still_lasts(
    fake: FakeLL2, calfeed: Any, clock: Clock, caplog: pytest.LogCaptureFixture,
) -> None:
    # begun before LL2's window (so never in its answer) and lasting still, an event the
    # past list moving at every read never holds is no event that list lacks
    from calfeed.dataset import SHIFTED_MISSES

    fake.max_page = 10
    fake.upcoming = [make_event(1)]
    fake.previous = [make_event(2, "2026-10-31T10:00:00Z", duration="P10D"),
                     *(make_event(i, f"2026-11-{i - 9:02d}T10:00:00Z") for i in range(10, 38))]
    client = await calfeed()
    everything = "?past_days=30&precision=any"
    assert "ll2-event-2@calfeed" in await feed_uids(client, everything)
    moves = iter(range(100))

    def move(listed: list[dict[str, Any]]) -> bool:
        if listed is fake.previous:
            listed.insert(15, listed.pop(next(moves) % 8))
        return True  # (at every read)

    fake.after_first_page = move
    with caplog.at_level(logging.WARNING):
        for _ in range(4 * (SHIFTED_MISSES + 1)):
            await later(client, clock, 6 * 3600)  # the past refreshes of four days
    assert sum("sync=merged kind=events part=past" in r.getMessage()
               for r in caplog.records) > SHIFTED_MISSES
    asked = [c for c in fake.calls if c.path.endswith("/events/previous/")][-1]
    assert asked.query["date__gte"] > "2026-10-31"  # (event 2 is out of LL2's window)
    assert "ll2-event-2@calfeed" in await feed_uids(client, everything)
    assert syncer_of(client).last_error is None


async def test_an_empty_recent_past_keeps_what_it_dates_within_it(
    fake: FakeLL2, calfeed: Any, clock: Clock, caplog: pytest.LogCaptureFixture,
) -> None:
    # an outage that answers "no results": the events of last week are still LL2's past;
    # one put forward into the future is in the upcoming list instead
    fake.upcoming = [make_event(1)]
    fake.previous = [make_event(2, "2026-11-25T10:00:00Z"), make_event(3, "2026-11-20T10:00:00Z"),
                     make_event(4, "2026-11-21T10:00:00Z")]
    client = await calfeed()
    before = await feed_uids(client, "?past_days=30")
    assert "ll2-event-2@calfeed" in before
    fake.previous = []
    fake.upcoming.append(make_event(4, "2026-12-21T10:00:00Z",
                                    last_updated="2026-11-29T13:00:00Z"))
    past_calls = len([c for c in fake.calls if c.path.endswith("/events/previous/")])
    with caplog.at_level(logging.WARNING):
        for _ in range(24):
            await later(client, clock, 3600)  # a day
    found = await feed_uids(client, "?past_days=30")
    assert {"ll2-event-2@calfeed", "ll2-event-3@calfeed", "ll2-event-4@calfeed"} <= set(found)
    event_4 = by_uid(await (await client.get("/events.ics?past_days=30")).read())[
        "ll2-event-4@calfeed"]
    assert event_4.decoded("DTSTART").month == 12
    # not a failure, retried on the backoff clock: the past is asked every six hours
    assert syncer_of(client).last_error is None
    assert len([c for c in fake.calls if c.path.endswith("/events/previous/")]) == (
        past_calls + 4)
    assert any("sync=kept-past kind=events count=2" in r.getMessage() for r in caplog.records)
