"""The renderer's caches: each VEVENT serialised once per event version, bodies reused."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import gzip
import logging
import weakref
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from calfeed.dataset import Snapshot
from calfeed.feeds import FEED_KINDS, Entry
from calfeed.query import Query, parse_query
from calfeed.render import Renderer, nearest_first
from calfeed.settings import Settings
from tests.helpers import NOW, counting_turns, make_event

KIND = FEED_KINDS["events"]


def query(*pairs: tuple[str, str]) -> Query:
    return parse_query(KIND.params(30), list(pairs))


async def test_each_event_version_is_serialised_once_across_feeds() -> None:
    renderer = Renderer(Settings(), lambda: NOW)
    items = tuple(
        make_event(i, f"2026-12-{i:02d}T10:00:00Z", type_id=i % 2) for i in range(1, 11)
    )
    first = Snapshot(items, NOW, 1)
    await renderer.render(KIND, query(("type", "0")), first)
    await renderer.render(KIND, query(("type", "1")), first)
    everything = await renderer.render(KIND, query(), first)
    assert everything.count == 10
    assert renderer.vevents_serialised == 10
    # a refresh where one event changed: only that one is serialised again
    changed = list(items)
    changed[3] = make_event(4, "2026-12-04T12:00:00Z", last_updated="2026-11-29T11:00:00Z")
    second = Snapshot(tuple(changed), NOW, 2)
    again = await renderer.render(KIND, query(), second)
    assert renderer.vevents_serialised == 11
    assert again.etag != everything.etag
    # both fetches carry the same time: the changed body must still look newer
    assert again.last_modified > everything.last_modified


async def test_an_item_changed_with_its_last_updated_the_same_is_served_changed() -> None:
    # LL2 leaves an event's last_updated when a launch it names slips or changes status;
    # some items have none at all. A running server serves what a fresh one would.
    renderer = Renderer(Settings(), lambda: NOW)
    launch = {"id": "l1", "name": "Soyuz MS-30", "net": "2026-12-05T10:00:00Z",
              "status": {"id": 2, "name": "To Be Determined", "abbrev": "TBD"}}
    slipping = make_event(1, "2026-12-05T10:00:00Z", launches=[launch])
    undated = {**make_event(2, "2026-12-06T10:00:00Z"), "last_updated": None}
    first = Snapshot((slipping, {**undated, "date": None}, make_event(3)), NOW, 1)
    before = await renderer.render(KIND, query(), first)
    assert before.count == 2  # (2 has no date yet)
    moved = {**launch, "net": "2026-12-06T10:00:00Z",
             "status": {"id": 1, "name": "Go for Launch", "abbrev": "Go"}}
    second = Snapshot((make_event(1, "2026-12-06T10:00:00Z", launches=[moved]), undated,
                       first.items[2]), NOW, 2)
    after = await renderer.render(KIND, query(), second)
    fresh = await Renderer(Settings(), lambda: NOW).render(KIND, query(), second)
    assert after.body == fresh.body and after.count == 3
    assert b"Go for Launch" in after.body and b"To Be Determined" not in after.body
    # the unchanged item was neither compared nor serialised again; the old versions'
    # blocks went with them
    assert renderer.vevents_serialised == 2 + 2
    assert len(renderer._blocks) == 3
    again = await renderer.render(KIND, query(("past_days", "1")), second)
    assert renderer.vevents_serialised == 4 and again.count == 3
    # the same data read anew (a follower's copy): equal, so nothing is made again
    copied = Snapshot(tuple(dict(item) for item in second.items), NOW, 3)
    assert (await renderer.render(KIND, query(), copied)).body == after.body
    assert renderer.vevents_serialised == 4


def test_comparing_items_read_anew_gives_the_loop_turns() -> None:
    def turns(renderer: Renderer, snapshot: Snapshot) -> int:
        steps, count = renderer._index(KIND, snapshot), 0
        with contextlib.suppress(StopIteration):
            while True:
                next(steps)
                count += 1
        return count

    renderer = Renderer(Settings(), lambda: NOW)
    items = tuple(make_event(i) for i in range(1, 5001))
    renderer.entries(KIND, Snapshot(items, NOW, 1))
    same = turns(renderer, Snapshot(items, NOW, 2))  # (the ordering's and dropping's)
    # 5,000 equal copies compared, 2,000 between two turns
    assert turns(renderer, Snapshot(tuple(dict(i) for i in items), NOW, 3)) == same + 2


async def test_bodies_are_cached_per_query_and_generation() -> None:
    renderer = Renderer(Settings(), lambda: NOW)
    snapshot = Snapshot((make_event(1),), NOW, 1)
    a = await renderer.render(KIND, query(("type", "2")), snapshot)
    b = await renderer.render(KIND, query(("type", "2"), ("download", "1")), snapshot)
    assert a is b  # download changes headers, not the body
    refreshed = Snapshot((make_event(1),), NOW, 2)
    c = await renderer.render(KIND, query(("type", "2")), refreshed)
    assert c is not a and c.body == a.body and c.etag == a.etag
    assert c.last_modified == a.last_modified  # the same body keeps its Last-Modified


async def test_an_events_feed_stays_cached_when_only_the_launches_change() -> None:
    """The events' VEVENTs draw on no other dataset: a launches sync leaves their feeds
    cached (before, each one was made again, and its blocks checked against all events)."""
    renderer = Renderer(Settings(), lambda: NOW)
    events = Snapshot((make_event(1), make_event(2, "2026-12-05T10:00:00Z")), NOW, 1)
    launch = {"id": "l-1", "name": "Falcon 9 | Crew-13", "net": "2026-12-02T14:00:00Z",
              "net_precision": {"id": 1}, "last_updated": "2026-11-01T00:00:00Z"}
    first = await renderer.render(KIND, query(), events, NOW, {
        "events": events, "launches": Snapshot((launch,), NOW, 2)})
    again = await renderer.render(KIND, query(), events, NOW, {
        "events": events, "launches": Snapshot((dict(launch, name="Crew-14"),), NOW, 3)})
    assert again is first and renderer.vevents_serialised == 2


async def test_an_unchanged_body_is_not_compressed_again() -> None:
    renderer = Renderer(Settings(), lambda: NOW)
    snapshot = Snapshot((make_event(1),), NOW, 1)
    first = await renderer.render(KIND, query(), snapshot, NOW)
    # bodies are reassembled every few minutes because they depend on "now"
    again = await renderer.render(KIND, query(), snapshot, NOW + timedelta(minutes=6))
    assert again is not first and again.fresh_until > first.fresh_until
    assert again.body == first.body and again.gzipped is first.gzipped
    assert gzip.decompress(again.gzipped) == again.body
    # a body that changed is compressed anew
    gone = await renderer.render(KIND, query(), snapshot, NOW + timedelta(days=30))
    assert gone.body != first.body and gzip.decompress(gone.gzipped) == gone.body


async def test_body_cache_is_bounded() -> None:
    renderer = Renderer(Settings(body_cache_size=3), lambda: NOW)
    snapshot = Snapshot((make_event(1),), NOW, 1)
    for days in range(10):
        await renderer.render(KIND, query(("past_days", str(days))), snapshot)
    assert len(renderer._bodies) == 3


async def test_blocks_made_with_old_related_events_are_dropped() -> None:
    launches = FEED_KINDS["launches"]
    launch = {"id": "l-1", "name": "Falcon 9 | Crew-13", "net": "2026-12-02T14:00:00Z",
              "net_precision": {"id": 1}, "last_updated": "2026-11-01T00:00:00Z"}
    renderer = Renderer(Settings(), lambda: NOW)
    snapshot = Snapshot((launch,), NOW, 1)
    query_ = parse_query(launches.params(30), [])
    for generation in range(1, 6):
        event = make_event(7, "2026-12-03T15:00:00Z", name=f"Docking, version {generation}",
                           launches=[{"id": "l-1", "name": "Crew-13"}])
        others = {"events": Snapshot((event,), NOW, generation), "launches": snapshot}
        body = (await renderer.render(launches, query_, snapshot, NOW, others)).body
        assert f"version {generation}".encode() in body.replace(b"\r\n ", b"")
    # one block for the one launch: the four earlier related-event versions are gone
    assert len([k for k in renderer._blocks if k.item.kind == "launches"]) == 1


async def test_reminders_are_spliced_into_cached_blocks_not_rendered_again() -> None:
    renderer = Renderer(Settings(), lambda: NOW)
    snapshot = Snapshot((make_event(1), make_event(2, "2026-12-03", precision=5)), NOW, 1)
    await renderer.render(KIND, query(), snapshot)
    assert renderer.vevents_serialised == 2
    for minutes in range(100):
        feed = await renderer.render(KIND, query(("alarm", str(minutes))), snapshot)
        # the timed event has its reminder, the all-day one none
        assert feed.body.count(b"BEGIN:VALARM") == 1
    # a hundred alarm= values: not one VEVENT mapped or serialised again
    assert renderer.vevents_serialised == 2
    # (and the texts are bounded in bytes: test_cli measures the worst case)
    assert 0 < len(renderer._alarm_texts) <= 100 + 1


async def test_body_cache_is_bounded_in_bytes() -> None:
    from calfeed.render import feed_bytes

    events = tuple(make_event(i, f"2026-12-{i % 28 + 1:02d}T10:00:00Z") for i in range(1, 60))
    snapshot = Snapshot(events, NOW, 1)
    one = await Renderer(Settings(), lambda: NOW).render(KIND, query(), snapshot)
    budget = feed_bytes(one) * 5 // 2  # room for two and a half bodies
    renderer = Renderer(Settings(cache_bytes=budget), lambda: NOW)
    for days in range(10):
        await renderer.render(KIND, query(("past_days", str(days))), snapshot)
        assert renderer.body_bytes <= budget
        assert renderer.body_bytes == sum(feed_bytes(f) for f in renderer._bodies.values())
    assert len(renderer._bodies) == 2


async def test_a_render_of_older_data_finishing_late_undoes_nothing_newer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import asyncio

    import calfeed.render

    first = tuple(make_event(i, f"2027-01-{i % 28 + 1:02d}T10:00:00Z", type_id=i % 3)
                  for i in range(1, 3001))  # large enough to be chosen in several slices
    changed = list(first)
    changed[0] = make_event(1, "2027-02-01T10:00:00Z", name="Moved",
                            last_updated="2026-11-29T11:00:00Z")
    old, new = Snapshot(first, NOW, 1), Snapshot(tuple(changed), NOW, 2)
    renderer = Renderer(Settings(max_feed_bytes=10**8), lambda: NOW)  # (nothing trimmed)
    # hold the old request while it chooses until the new data has been rendered
    late_query = query(("type", "1"))
    entered, gate = asyncio.Event(), asyncio.Event()
    real = calfeed.render._choosing

    def choosing(kind: Any, entries: Any, chosen_by: Query, now: Any) -> Any:
        if chosen_by.key == late_query.key:
            entered.set()
            while not gate.is_set():
                yield  # (a turn of the loop for the others, each time)
        return (yield from real(kind, entries, chosen_by, now))

    monkeypatch.setattr(calfeed.render, "_choosing", choosing)
    late = asyncio.create_task(renderer.render(KIND, late_query, old, NOW))
    await entered.wait()
    fresh = await renderer.render(KIND, query(), new, NOW)
    gate.set()
    stale = await late
    assert b"Moved" not in stale.body.replace(b"\r\n ", b"")
    # the newer index, its body and its blocks stand
    assert renderer._indexed["events"][0] == 2
    assert await renderer.render(KIND, query(), new, NOW) is fresh
    assert b"Moved" in fresh.body.replace(b"\r\n ", b"")
    made = renderer.vevents_serialised
    await renderer.render(KIND, query(("type", "2")), new, NOW)
    assert renderer.vevents_serialised == made  # (no block made again)


async def test_a_body_of_replaced_data_is_never_dated_after_the_newer_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # a poll on the old data still choosing while the same URL renders on the new data:
    # the old body, served once, must look older than the new one, or its client gets
    # 304s for the change until the time slot moves
    import calfeed.render

    first = tuple(make_event(i, f"2027-01-{i % 28 + 1:02d}T10:00:00Z") for i in range(1, 3001))
    changed = (make_event(1, "2027-02-01T10:00:00Z", name="Moved",
                          last_updated="2026-11-29T11:00:00Z"), *first[1:])
    old = Snapshot(first, NOW - timedelta(minutes=1), 1)
    new = Snapshot(changed, NOW, 2)
    renderer = Renderer(Settings(max_feed_bytes=10**8), lambda: NOW)
    entered, gate = asyncio.Event(), asyncio.Event()
    real = calfeed.render._choosing

    def choosing(kind: Any, entries: Any, chosen_by: Query, now: Any) -> Any:
        if not entered.is_set():  # (the first, the old data's: held)
            entered.set()
            while not gate.is_set():
                yield
        return (yield from real(kind, entries, chosen_by, now))

    monkeypatch.setattr(calfeed.render, "_choosing", choosing)
    late = asyncio.create_task(renderer.render(KIND, query(), old, NOW))
    await entered.wait()
    fresh = await renderer.render(KIND, query(), new, NOW)
    gate.set()
    stale = await late
    assert stale.etag != fresh.etag
    assert stale.last_modified < fresh.last_modified
    again = await renderer.render(KIND, query(), new, NOW + timedelta(minutes=10))
    assert again.etag == fresh.etag and again.last_modified == fresh.last_modified


async def test_a_request_on_replaced_data_is_served_from_the_newer_index() -> None:
    """A request that began on older data and asks for the index once newer data is
    indexed: served from the newer one (fresher), not by indexing the replaced data
    again, whose versions the caches would then keep until the next generation."""
    renderer = Renderer(Settings(), lambda: NOW)
    old = Snapshot(tuple(make_event(i) for i in range(300)), NOW, 1)
    new = Snapshot(tuple(make_event(i, name=f"Renamed {i}", last_updated="2026-11-20T00:00:00Z")
                         for i in range(300)), NOW, 2)
    await renderer.index(KIND, old)
    await renderer.index(KIND, new)
    late = await renderer.render(KIND, query(), old, NOW)
    assert b"Renamed 1" in late.body.replace(b"\r\n ", b"")
    assert len(renderer._entries) == 300  # (the new versions only)
    assert renderer._indexed["events"][0] == 2
    # and its body is served, not kept for the old generation
    assert await renderer.render(KIND, query(), new, NOW) is not late


async def test_the_pages_choices_are_made_once_per_generation() -> None:
    renderer = Renderer(Settings(), lambda: NOW)
    snapshot = Snapshot(tuple(make_event(i, type_id=i % 3) for i in range(1, 20)), NOW, 1)
    first = await renderer.choices(KIND, snapshot, {}, None)
    assert sorted(value for value, _ in first["type"]) == [0, 1, 2]
    assert await renderer.choices(KIND, snapshot, {}, None) is first  # a second page view
    # new reference lists, or new data, make them anew
    named = await renderer.choices(KIND, snapshot, {"type": {9: "Flyby"}}, NOW)
    assert (9, "Flyby") in named["type"]
    moved = Snapshot(snapshot.items[:5], NOW, 2)
    assert await renderer.choices(KIND, moved, {}, None) is not named


async def test_the_pages_choices_and_items_are_made_with_turns_for_other_requests() -> None:
    """Over thousands of events the page's choices (the agencies' full names are read
    from every item) and its items as JSON let the loop answer others in between, and
    come out as made at once."""
    renderer = Renderer(Settings(), lambda: NOW)
    snapshot = Snapshot(tuple(make_event(i, type_id=i % 3, agencies=(i % 5,))
                              for i in range(1, 5001)), NOW, 1)
    entries = renderer.entries(KIND, snapshot)
    async with counting_turns() as turns:
        choices = await renderer.choices(KIND, snapshot, {}, None)
    assert turns[0] >= 2, turns  # (5,000 entries in steps of 2,000)
    async with counting_turns() as turns:
        shown = await renderer.items_json(KIND, entries[:500])
    assert turns[0] >= 9, turns  # (500 items in slices of 50)
    assert choices == KIND.choices(entries, renderer.labels(KIND, snapshot), {})
    assert [item.data["id"] for item in shown] == [e.ident for e in entries[:500]]


async def test_the_old_versions_are_freed_a_slice_at_a_time() -> None:
    """After a big edit, the old entries are freed over many turns of the loop as the new
    index drops them from its cache, not all in the one turn something let go of the old
    index last (43 ms in one piece at 50,000, with the items only they held)."""
    renderer = Renderer(Settings(), lambda: NOW)
    old = Snapshot(tuple(make_event(i) for i in range(6_000)), NOW, 1)
    await renderer.index(KIND, old)
    freed_at: list[int] = []
    async with counting_turns() as turns:
        for entry in renderer.entries(KIND, old):
            weakref.finalize(entry, lambda: freed_at.append(turns[0]))
        del entry
        edited = Snapshot(tuple(make_event(i, last_updated="2026-11-20T00:00:00Z")
                                for i in range(6_000)), NOW, 2)
        await renderer.index(KIND, edited)
    assert len(freed_at) == 6_000
    most_at_once = max(Counter(freed_at).values())
    assert len(set(freed_at)) >= 3 and most_at_once <= 2_000, Counter(freed_at)


async def test_a_plain_feed_reads_no_facts_and_a_filtered_one_reads_them_all() -> None:
    """The first feed of new data (the warm-up's, plain) waits for no entry's facets,
    labels or search text, a third of indexing an item before; a filtered feed has them
    all made, with their names, a slice at a time, and names its calendar by them."""
    renderer = Renderer(Settings(), lambda: NOW)
    snapshot = Snapshot(tuple(make_event(i, type_id=i % 3, type_name=f"Kind {i % 3}")
                              for i in range(1, 3001)), NOW, 1)
    plain = await renderer.render(KIND, query(), snapshot, NOW)
    indexed = await renderer.index(KIND, snapshot)
    entries = indexed[1]
    assert plain.count > 0 and not any("facts" in vars(entry) for entry in entries)
    async with counting_turns() as turns:
        labels = await renderer.known_labels(KIND, indexed)
    assert turns[0] >= 6, turns  # (3,000 entries' facts in slices of 500)
    assert all("facts" in vars(entry) for entry in entries)
    assert labels["type"] == {0: "Kind 0", 1: "Kind 1", 2: "Kind 2"}
    typed = await renderer.render(KIND, query(("type", "2")), snapshot, NOW)
    assert typed.name == "Space events: Kind 2"
    assert typed.matching == 1000


async def test_the_warm_up_makes_the_facts_and_names_after_the_plain_feed() -> None:
    """Ahead of the first filtered feed or page view; and names made from an index that
    newer data replaced meanwhile are served, not kept."""
    renderer = Renderer(Settings(), lambda: NOW)
    old = Snapshot(tuple(make_event(i, type_id=i % 3) for i in range(1, 1001)), NOW, 1)
    await renderer.warm(KIND, old)
    assert all("facts" in vars(entry) for entry in renderer.entries(KIND, old))
    assert renderer._labels["events"][0] == 1
    made = renderer.vevents_serialised
    await renderer.render(KIND, query(("type", "1")), old, NOW)
    assert renderer.vevents_serialised - made < 1000  # (the plain feed's blocks reused)
    stale = await renderer.index(KIND, old)
    new = Snapshot(tuple(make_event(i, type_id=5, type_name="Other",
                                    last_updated="2026-11-20T00:00:00Z")
                         for i in range(1, 1001)), NOW, 2)
    await renderer.index(KIND, new)
    assert "events" not in renderer._labels  # (dropped with the old index)
    assert (await renderer.known_labels(KIND, stale))["type"] == {0: "Docking", 1: "Docking",
                                                                  2: "Docking"}
    assert "events" not in renderer._labels
    assert (await renderer.known_labels(KIND, await renderer.index(KIND, new)))["type"] == {
        5: "Other"}


async def test_an_item_whose_facts_cannot_be_read_stays_on_unfiltered_feeds(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    real = type(KIND).facts

    def facts(self: Any, item: Any) -> Any:
        if item["id"] == 2:
            raise TypeError("a bug of the reader")
        return real(self, item)

    monkeypatch.setattr(type(KIND), "facts", facts)
    renderer = Renderer(Settings(), lambda: NOW)
    snapshot = Snapshot((make_event(1), make_event(2, "2026-12-02T10:00:00Z")), NOW, 1)
    with caplog.at_level(logging.WARNING, logger="calfeed.feeds"):
        assert (await renderer.render(KIND, query(), snapshot, NOW)).count == 2
        typed = await renderer.render(KIND, query(("type", "2")), snapshot, NOW)
    assert typed.count == 1 and b"ll2-event-1@" in typed.body
    assert [r.getMessage() for r in caplog.records] == [
        "facts=unreadable kind=events id='2' reason='TypeError: a bug of the reader'"]


async def test_indexing_pauses_the_collector_and_restores_it() -> None:
    """The cyclic collector is off while items are indexed (it took more than half the
    time at 50,000) -- across the slices, so for whatever else the loop runs between them
    too -- and on again after, also when the indexing request is cancelled halfway; a
    collector someone else turned off stays off."""
    renderer = Renderer(Settings(), lambda: NOW)
    snapshot = Snapshot(tuple(make_event(i, "2026-12-10T00:00:00Z") for i in range(500)),
                        NOW, 1)
    seen: list[bool] = []

    async def watch() -> None:
        while True:
            seen.append(gc.isenabled())
            await asyncio.sleep(0)

    watcher = asyncio.create_task(watch())
    await asyncio.sleep(0)
    await renderer.index(KIND, snapshot)
    watcher.cancel()
    assert len(renderer.entries(KIND, snapshot)) == 500
    assert False in seen  # off between slices
    assert gc.isenabled()
    cut = asyncio.create_task(renderer.index(KIND, Snapshot(
        tuple(make_event(i, "2026-12-11T00:00:00Z") for i in range(1000, 1500)), NOW, 3)))
    for _ in range(3):
        await asyncio.sleep(0)
    assert not gc.isenabled()  # halfway
    cut.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await cut
    assert gc.isenabled()
    gc.disable()
    try:
        renderer.entries(KIND, Snapshot(snapshot.items[:10], NOW, 2))
        assert not gc.isenabled()
    finally:
        gc.enable()


def _distance(entry: Entry, now: datetime) -> float:
    # the plain definition: none while it lasts, else to the nearer of its two ends
    if entry.timing.start_utc <= now < entry.timing.end_utc:
        return 0.0
    return min(abs((entry.timing.start_utc - now).total_seconds()),
               abs((entry.timing.end_utc - now).total_seconds()))


@given(st.lists(st.tuples(
    st.integers(min_value=-3000, max_value=3000),  # hours from noon
    st.sampled_from([None, *range(17)]),  # date precision
    # (a zero duration is no duration to LL2's readers: the default applies)
    st.sampled_from([None, "PT30M", "PT5H", "P3D"]),
), max_size=60), st.sampled_from([0, 3600, 7200]), st.sampled_from([0, 12]))
def test_the_nearest_first_order_is_a_sort_by_distance(
    items: list[tuple[int, int | None, str | None]], default_duration: int, now_hour: int,
) -> None:
    """A trimmed body keeps the entries nearest to now; the lazy order it takes them in is
    exactly a stable sort of the calendar-ordered entries by their distance to now (what
    has begun sorted, the rest merged in as taken), whatever the mix of lasting, ended,
    all-day and coming items, ties included: items of the shortest length (a default
    duration of 0 gives a second), and all-day ones that begin at the very moment (now at
    midnight)."""
    now = NOW.replace(hour=now_hour, minute=0, second=0, microsecond=0)
    renderer = Renderer(Settings(default_duration=default_duration), lambda: now)
    events = [make_event(i, (NOW.replace(hour=12, minute=0, second=0, microsecond=0)
                             + timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                         precision=precision, duration=duration)
              for i, (hours, precision, duration) in enumerate(items)]
    entries = renderer.entries(KIND, Snapshot(tuple(events), now, 1))
    assert [e.timing.start_utc for e in entries] == sorted(e.timing.start_utc for e in entries)
    expected = sorted(entries, key=lambda entry: _distance(entry, now))
    assert list(nearest_first(entries, now)) == expected


async def test_a_body_gzipped_in_slices_is_the_bytes_of_one_call() -> None:
    import zlib

    from calfeed.render import _gzipping
    from calfeed.steps import in_turns

    # (a body of many slices, as a megabyte feed is)
    body = b"".join(b"BEGIN:VEVENT\r\nUID:ll2-event-%d@calfeed\r\nEND:VEVENT\r\n" % i
                    for i in range(20_000))
    gzipped = await in_turns(_gzipping(body))
    assert len(body) > 10 * 64 * 1024
    assert gzipped == zlib.compress(body, 9, wbits=31)
    assert gzip.decompress(gzipped) == body


@given(st.lists(st.tuples(st.integers(min_value=-50, max_value=50),  # hours from noon
                          st.sampled_from([None, 1, 5, 7, 11])), max_size=80),
       st.randoms(use_true_random=False))
def test_the_index_order_made_in_runs_is_a_sort_by_calendar_order(
    items: list[tuple[int, int | None]], rand: Any,
) -> None:
    """Sorted a slice at a time and merged, the index keeps what one stable sort by
    `calendar_order` gives, ties on the start included, in whatever order items come."""
    from unittest import mock

    import calfeed.render
    from calfeed.render import _in_calendar_order, calendar_order
    from calfeed.steps import all_at_once

    noon = NOW.replace(hour=12, minute=0, second=0, microsecond=0)
    events = [make_event(i, (noon + timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                         precision=precision) for i, (hours, precision) in enumerate(items)]
    entries = Renderer(Settings(), lambda: NOW).entries(KIND, Snapshot(tuple(events), NOW, 1))
    rand.shuffle(entries)
    with mock.patch.object(calfeed.render, "_ENTRIES_SLICE", 7):  # (several runs)
        ordered = all_at_once(_in_calendar_order(entries))
    assert ordered == sorted(entries, key=calendar_order)
