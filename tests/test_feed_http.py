"""/events.ics over HTTP: filters, bad input, caching headers, gzip, HEAD, download."""

from __future__ import annotations

import gzip
from datetime import timedelta
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any

import pytest

from tests.fake_ll2 import FakeLL2
from tests.helpers import Clock, later, make_event
from tests.ics_helpers import read_feed, summaries, uids


@pytest.fixture
def events(fake: FakeLL2) -> FakeLL2:
    """A small, varied dataset in the fake."""
    fake.upcoming = [
        make_event(1, "2026-12-01T10:00:00Z", name="Progress MS-36 Docking", type_id=2,
                   agencies=(63,), programs=(17,)),
        make_event(2, "2026-12-02T10:00:00Z", name="US Spacewalk 95", type_id=6,
                   type_name="EVA", agencies=(44,), programs=(17,)),
        make_event(3, "2026-12-03T10:00:00Z", name="Juice Earth flyby", type_id=23,
                   type_name="Flyby", agencies=(27,), precision=7),
        make_event(4, "2027-06-30T00:00:00Z", name="Lunar press event", type_id=20,
                   type_name="Press Event", agencies=(44, 27), programs=(18,), precision=12),
        make_event(5, "2029-12-31T00:00:00Z", name="Mars decade decision", type_id=20,
                   type_name="Press Event", precision=16),
        make_event(6, "2026-12-05T00:00:00Z", name="Starliner docking", type_id=2,
                   agencies=(44,), precision=5),
    ]
    fake.previous = [
        make_event(7, "2026-11-27T10:00:00Z", name="Cygnus berthing (2 days ago)", type_id=4,
                   type_name="Berthing", agencies=(44,)),
        make_event(8, "2026-11-10T10:00:00Z", name="Soyuz landing (19 days ago)", type_id=9,
                   type_name="Landing", agencies=(63,)),
    ]
    return fake


async def get_feed(client: Any, query: str = "", **headers: str) -> tuple[int, bytes, Any]:
    response = await client.get("/events.ics" + query, headers=headers)
    return response.status, await response.read(), response.headers


async def test_default_feed_has_upcoming_and_last_week(events: FakeLL2, calfeed: Any) -> None:
    client = await calfeed()
    status, body, headers = await get_feed(client)
    assert status == 200
    assert headers["Content-Type"] == "text/calendar; charset=utf-8"
    # default precision=month leaves out the half-year and decade events; past_days=7;
    # in start order, the month-long event (from Dec 1 00:00) first among December's
    assert uids(body) == [
        "ll2-event-7@calfeed", "ll2-event-3@calfeed", "ll2-event-1@calfeed",
        "ll2-event-2@calfeed", "ll2-event-6@calfeed",
    ]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("?type=2", {1, 6}),
        ("?type=2,6", {1, 2, 6}),
        ("?type=2&type=6", {1, 2, 6}),
        ("?type__ids=6", {2}),
        ("?agency=44", {2, 6, 7}),
        ("?agency__ids=63&past_days=30", {1, 8}),
        ("?program=17", {1, 2}),
        ("?program__ids=18&precision=half", {4}),
        ("?type=2&agency=44", {6}),
        ("?agency=44&program=17", {2}),
        ("?search=DOCKING", {1, 6}),
        ("?search=spacewalk%2095", {2}),
        ("?past_days=0", {1, 2, 3, 6}),
        ("?past_days=30", {1, 2, 3, 6, 7, 8}),
        ("?precision=minute", {1, 2, 7}),
        ("?precision=day", {1, 2, 6, 7}),
        ("?precision=month", {1, 2, 3, 6, 7}),
        ("?precision=half", {1, 2, 3, 4, 6, 7}),
        ("?precision=year", {1, 2, 3, 4, 6, 7}),
        ("?precision=any", {1, 2, 3, 4, 5, 6, 7}),
        ("?type=99", set()),
        ("?utm_source=newsletter&fbclid=abc&gclid=x&type=6", {2}),
    ],
)
async def test_filters_select_events(
    events: FakeLL2, calfeed: Any, query: str, expected: set[int]
) -> None:
    client = await calfeed()
    status, body, _ = await get_feed(client, query)
    assert status == 200, body
    assert {int(uid.split("-")[2].split("@")[0]) for uid in uids(body)} == expected


@pytest.mark.parametrize("query", ["?past_days=", "?past_days=%20", "?precision=",
                                   "?past_days=&precision=&search=&alarm="])
async def test_an_empty_value_means_the_default(
    events: FakeLL2, calfeed: Any, query: str
) -> None:
    # as the form sends a field the visitor cleared (the script leaves it out)
    client = await calfeed()
    _, default, default_headers = await get_feed(client)
    status, body, headers = await get_feed(client, query)
    assert status == 200, body
    assert body == default and headers["ETag"] == default_headers["ETag"]


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("?type=abc", ["'type'", "'abc'", "whole numbers"]),
        ("?agency=1.5", ["'agency'", "'1.5'"]),
        ("?program=-3", ["'program'", "'-3'"]),
        ("?precision=fortnight", ["'precision'", "'fortnight'", "minute, hour, day"]),
        ("?past_days=-1", ["'past_days'", "'-1'", "0 to 30"]),
        ("?past_days=31", ["'past_days'", "'31'", "0 to 30"]),
        ("?past_days=week", ["'past_days'", "'week'"]),
        ("?past_days=1&past_days=2", ["'past_days'"]),
        ("?past_days=&past_days=", ["'past_days'"]), ("?precision=&precision=day", ["'precision'"]),
        ("?download=maybe", ["'download'", "'maybe'"]),
        ("?search=a&search=b", ["'search'"]),
        # digits that are not ASCII: the value as sent, not Python's words about int()
        ("?type=%C2%B2", ["'type'", "'²'"]), ("?type=%D9%A3", ["'type'", "'٣'"]),
        ("?past_days=%C2%B2", ["'past_days'", "'²'"]), ("?past_days=--5", ["'--5'"]),
        ("?alarm=%C2%B2", ["'alarm'", "'²'"]),
        ("?colour=red", ["unknown parameter 'colour'", "type, agency, program, search"]),
    ],
)
async def test_bad_parameters_are_400_naming_them(
    events: FakeLL2, calfeed: Any, query: str, words: list[str]
) -> None:
    client = await calfeed()
    response = await client.get("/events.ics" + query)
    assert response.status == 400
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    text = await response.text()
    assert text.count("\n") == 1
    for word in words:
        assert word in text
    assert "literal" not in text


async def test_bad_request_costs_no_upstream_call(events: FakeLL2, calfeed: Any) -> None:
    client = await calfeed()
    await client.get("/events.ics?type=abc")
    assert events.list_calls() == []


async def test_calendar_names_the_filters(events: FakeLL2, calfeed: Any) -> None:
    client = await calfeed()
    _, body, _ = await get_feed(client, "?type=6,2&agency=44&search=dock")
    text = body.decode()
    assert "X-WR-CALNAME:Space events: Docking\\, EVA · A44 · “dock”" in text
    assert "NAME:Space events: Docking\\, EVA" in text
    assert "REFRESH-INTERVAL;VALUE=DURATION:PT1H" in text
    assert "X-PUBLISHED-TTL:PT1H" in text
    assert "METHOD" not in text


async def test_empty_feed_is_a_valid_calendar(events: FakeLL2, calfeed: Any) -> None:
    client = await calfeed()
    status, body, _ = await get_feed(client, "?type=99")
    assert status == 200
    assert read_feed(body) == []
    assert b"BEGIN:VTIMEZONE" in body


async def test_download_names_the_file(events: FakeLL2, calfeed: Any) -> None:
    client = await calfeed()
    _, body, headers = await get_feed(client, "?type=6&download=1")
    assert headers["Content-Disposition"] == 'attachment; filename="space-events-eva.ics"'
    assert summaries(body) == ["US Spacewalk 95"]
    _, _, plain = await get_feed(client, "?type=6")
    assert "Content-Disposition" not in plain


async def test_download_does_not_change_the_body(events: FakeLL2, calfeed: Any) -> None:
    client = await calfeed()
    _, with_download, a = await get_feed(client, "?type=6&download=1")
    _, without, b = await get_feed(client, "?type=6")
    assert with_download == without and a["ETag"] == b["ETag"]


async def test_gzip_when_accepted(events: FakeLL2, calfeed: Any) -> None:
    client = await calfeed()
    response = await client.get(
        "/events.ics", headers={"Accept-Encoding": "gzip"}, auto_decompress=False
    )
    raw = await response.read()
    assert response.headers["Content-Encoding"] == "gzip"
    assert response.headers["Vary"] == "Accept-Encoding"
    plain = await client.get("/events.ics", headers={"Accept-Encoding": "identity"})
    assert "Content-Encoding" not in plain.headers
    assert gzip.decompress(raw) == await plain.read()
    assert response.headers["ETag"] != plain.headers["ETag"]


async def test_gzip_refused_with_q_zero(events: FakeLL2, calfeed: Any) -> None:
    client = await calfeed()
    # (every spelling of a zero weight RFC 9110 allows: "0.", three decimals, a tab)
    for refused in ("gzip;q=0", "gzip;\tq=0", "gzip;q=0.", "gzip ; Q = 0.000",
                    "br, x-gzip;level=1;q=0"):
        response = await client.get("/events.ics", headers={"Accept-Encoding": refused})
        assert "Content-Encoding" not in response.headers, refused
    for taken in ("gzip;q=0.001", "gzip;q=1", "gzip;q=nonsense"):
        response = await client.get("/events.ics", headers={"Accept-Encoding": taken},
                                    auto_decompress=False)
        assert response.headers["Content-Encoding"] == "gzip", taken


async def test_head_has_headers_and_no_body(events: FakeLL2, calfeed: Any) -> None:
    client = await calfeed()
    get = await client.get("/events.ics", headers={"Accept-Encoding": "identity"})
    body = await get.read()
    head = await client.head("/events.ics", headers={"Accept-Encoding": "identity"})
    assert head.status == 200
    assert await head.read() == b""
    assert head.headers["ETag"] == get.headers["ETag"]
    assert head.headers["Content-Length"] == str(len(body))
    assert head.headers["Content-Type"] == "text/calendar; charset=utf-8"


async def test_cache_headers(events: FakeLL2, calfeed: Any) -> None:
    client = await calfeed(refresh_interval=1800)
    _, body, headers = await get_feed(client)
    assert headers["Cache-Control"] == "public, max-age=1800"
    assert headers["ETag"].startswith('"') and not headers["ETag"].startswith("W/")
    assert parsedate_to_datetime(headers["Last-Modified"])
    assert headers["Access-Control-Allow-Origin"] == "*"
    assert b"REFRESH-INTERVAL;VALUE=DURATION:PT30M" in body


async def test_if_none_match_gives_304_only_when_matching(events: FakeLL2, calfeed: Any) -> None:
    client = await calfeed()
    _, _, headers = await get_feed(client)
    etag = headers["ETag"]
    status, body, again = await get_feed(client, **{"If-None-Match": etag})
    assert (status, body) == (304, b"")
    assert again["ETag"] == etag
    status, _, _ = await get_feed(client, **{"If-None-Match": '"other"'})
    assert status == 200
    status, _, _ = await get_feed(client, **{"If-None-Match": f'"x", W/{etag}'})
    assert status == 304
    # a different query is a different feed
    status, _, _ = await get_feed(client, "?type=2", **{"If-None-Match": etag})
    assert status == 200
    # If-None-Match wins over a matching If-Modified-Since
    status, _, _ = await get_feed(
        client, **{"If-None-Match": '"other"', "If-Modified-Since": headers["Last-Modified"]}
    )
    assert status == 200


async def test_if_modified_since(events: FakeLL2, calfeed: Any, clock: Clock) -> None:
    client = await calfeed()
    _, _, headers = await get_feed(client)
    last_modified = parsedate_to_datetime(headers["Last-Modified"])
    status, _, _ = await get_feed(client, **{"If-Modified-Since": headers["Last-Modified"]})
    assert status == 304
    clock.advance(600)
    later = format_datetime(last_modified + timedelta(seconds=300), usegmt=True)
    status, _, _ = await get_feed(client, **{"If-Modified-Since": later})
    assert status == 304
    earlier = format_datetime(last_modified.replace(year=2025), usegmt=True)
    status, _, _ = await get_feed(client, **{"If-Modified-Since": earlier})
    assert status == 200
    # what says nothing (RFC 9110 §13.1.3): no date, a list of dates, a date to come (a
    # client's own clock, running ahead: it would get 304s for changes it has not seen)
    # (and numbers too large for a date: Python overflows on them, a 200 all the same)
    for said in ("not a date", f"{later}, {later}",
                 format_datetime(clock.current.replace(year=2027), usegmt=True),
                 "Fri, 04 Dec 99999999999 21:40:44 GMT",
                 "Fri, 04 Dec 2026 99999999999999:40:44 GMT"):
        status, _, _ = await get_feed(client, **{"If-Modified-Since": said})
        assert status == 200, said


async def test_a_304_is_for_the_representation_the_client_holds(
    events: FakeLL2, calfeed: Any,
) -> None:
    client = await calfeed()
    packed = await client.get("/events.ics", headers={"Accept-Encoding": "gzip"})
    plain = await client.get("/events.ics", headers={"Accept-Encoding": "identity"})
    assert packed.headers["ETag"] != plain.headers["ETag"]
    for tag, encoding, status in ((packed.headers["ETag"], "gzip", 304),
                                  (plain.headers["ETag"], "gzip", 200),
                                  (plain.headers["ETag"], "identity", 304),
                                  (packed.headers["ETag"], "identity", 200)):
        again = await client.get("/events.ics", headers={
            "Accept-Encoding": encoding, "If-None-Match": tag})
        assert again.status == status, (tag, encoding)
    # every If-None-Match line counts
    again = await client.get("/events.ics", headers=[
        ("Accept-Encoding", "identity"), ("If-None-Match", '"nomatch"'),
        ("If-None-Match", plain.headers["ETag"])])
    assert again.status == 304


async def test_each_query_as_sent_is_a_feed_of_its_own(events: FakeLL2, calfeed: Any) -> None:
    # "%2526" is the text "%26", "%26" the text "&": decoded alike, they were one cache entry
    client = await calfeed()
    for sent, said in (("AT%2526T", "“AT%26T”"), ("AT%26T", "“AT&T”"),
                       ("Z%2B%2B", "“Z++”"), ("Z%252B%252B", "“Z%2B%2B”")):
        body = await (await client.get(f"/events.ics?search={sent}")).text()
        assert f"X-WR-CALNAME:Space events: {said}" in body.replace("\r\n ", ""), sent


async def test_feed_that_lost_an_event_is_modified(
    events: FakeLL2, calfeed: Any, clock: Clock
) -> None:
    client = await calfeed()
    _, body, headers = await get_feed(client)
    # the event leaves upstream; no remaining event's last_updated changes
    events.upcoming = [e for e in events.upcoming if e["id"] != 2]
    await later(client, clock, 3600)  # the hourly full refresh notices
    status, new_body, new_headers = await get_feed(
        client, **{"If-None-Match": headers["ETag"]}
    )
    assert status == 200
    assert "ll2-event-2@calfeed" in uids(body) and "ll2-event-2@calfeed" not in uids(new_body)
    status, _, _ = await get_feed(client, **{"If-Modified-Since": headers["Last-Modified"]})
    assert status == 200
    assert parsedate_to_datetime(new_headers["Last-Modified"]) > parsedate_to_datetime(
        headers["Last-Modified"]
    )


async def test_unchanged_feed_keeps_etag_and_last_modified_across_refreshes(
    events: FakeLL2, calfeed: Any, clock: Clock
) -> None:
    client = await calfeed()
    _, body, headers = await get_feed(client)
    await later(client, clock, 900)  # an incremental fetch
    await later(client, clock, 2700)  # a full refresh of the upcoming list
    _, again, headers2 = await get_feed(client)
    assert [c.query.get("last_updated__gte") for c in events.list_calls()] == [
        None, None, "2026-11-29T11:50:00Z", None,
    ]
    assert again == body
    assert headers2["ETag"] == headers["ETag"]
    assert headers2["Last-Modified"] == headers["Last-Modified"]


async def test_changed_event_updates_in_place(events: FakeLL2, calfeed: Any, clock: Clock) -> None:
    client = await calfeed()
    _, body, _ = await get_feed(client, "?type=6")
    before = read_feed(body)[0]
    clock.advance(600)
    events.upcoming[1] = make_event(
        2, "2026-12-02T14:30:00Z", name="US Spacewalk 95", type_id=6, type_name="EVA",
        agencies=(44,), programs=(17,), last_updated="2026-11-29T12:10:00Z",
    )
    await later(client, clock, 300)  # the incremental fetch 15 minutes after the first
    assert events.list_calls()[-1].query["last_updated__gte"] == "2026-11-29T11:50:00Z"
    _, body, _ = await get_feed(client, "?type=6")
    after = read_feed(body)[0]
    assert after["UID"] == before["UID"]
    assert after.decoded("SEQUENCE") > before.decoded("SEQUENCE")
    assert after.decoded("DTSTART").hour == 14


async def test_feed_trimmed_to_size_keeps_nearest_events(fake: FakeLL2, calfeed: Any) -> None:
    fake.upcoming = [
        make_event(100 + day, f"2026-{12 if day < 31 else 1:02d}-{day % 31 + 1:02d}T10:00:00Z",
                   description="x" * 2000)
        for day in range(60)
    ]
    client = await calfeed(max_feed_bytes=40_000)
    _, body, _ = await get_feed(client)
    assert len(body) <= 40_000
    kept = read_feed(body)
    assert 5 < len(kept) < 60
    starts = sorted(event.decoded("DTSTART") for event in kept)
    # nearest to now: the first days of December are all there
    assert starts[0].day == 1 and starts[0].month == 12
    assert "nearest to now" in body.decode().replace("\r\n ", "")


async def test_unknown_path_is_404(calfeed: Any) -> None:
    client = await calfeed()
    response = await client.get("/nope.ics")
    assert response.status == 404


async def test_feed_follows_the_clock_between_syncs(fake: FakeLL2, calfeed: Any,
                                                    clock: Clock) -> None:
    # an event an hour long that starts in 30 minutes; past_days=0 keeps only what has
    # not ended, so the feed must change as time passes, with no upstream change at all
    fake.upcoming = [make_event(1, "2026-11-29T12:30:00Z"),
                     make_event(2, "2026-12-05T10:00:00Z")]
    client = await calfeed()
    _, body, headers = await get_feed(client, "?past_days=0")
    assert uids(body) == ["ll2-event-1@calfeed", "ll2-event-2@calfeed"]
    calls = len(fake.calls)
    clock.advance(2 * 3600)
    status, body, new_headers = await get_feed(
        client, "?past_days=0", **{"If-None-Match": headers["ETag"]}
    )
    assert status == 200
    assert uids(body) == ["ll2-event-2@calfeed"]
    assert new_headers["ETag"] != headers["ETag"]
    assert len(fake.calls) == calls  # answered from the data it had


async def test_a_feed_changed_by_the_clock_is_modified_after_its_history_is_forgotten(
    fake: FakeLL2, calfeed: Any, clock: Clock,
) -> None:
    # the renderer remembers a few hundred feeds' Last-Modified; one it forgot, and whose
    # body the clock changed meanwhile, must not answer 304 to the date the client holds
    fake.upcoming = [make_event(1, "2026-11-29T12:30:00Z"),
                     make_event(2, "2026-12-05T10:00:00Z")]
    client = await calfeed(body_cache_size=1)
    _, _, headers = await get_feed(client, "?past_days=0")
    clock.advance(2 * 3600)  # event 1 is over: the body changes, the data does not
    _, body, moved = await get_feed(client, "?past_days=0")
    assert uids(body) == ["ll2-event-2@calfeed"]
    assert parsedate_to_datetime(moved["Last-Modified"]) > parsedate_to_datetime(
        headers["Last-Modified"])
    for term in range(8):  # (history holds 4 x body_cache_size feeds)
        await get_feed(client, f"?search=e{term}")
    status, _, again = await get_feed(
        client, "?past_days=0", **{"If-Modified-Since": headers["Last-Modified"]})
    assert status == 200
    # (a later stamp than the client may hold: one 200 it did not need, then 304s)
    assert parsedate_to_datetime(again["Last-Modified"]) >= parsedate_to_datetime(
        moved["Last-Modified"])
    status, _, _ = await get_feed(
        client, "?past_days=0", **{"If-Modified-Since": again["Last-Modified"]})
    assert status == 304


async def test_data_age_moves_on_a_repeated_feed(events: FakeLL2, calfeed: Any,
                                                 clock: Clock) -> None:
    client = await calfeed()
    _, body, headers = await get_feed(client)
    clock.advance(30)
    _, again, headers2 = await get_feed(client)
    assert again == body and headers2["ETag"] == headers["ETag"]
    assert int(headers2["X-Calfeed-Data-Age"]) == int(headers["X-Calfeed-Data-Age"]) + 30
    status, _, headers3 = await get_feed(client, **{"If-None-Match": headers["ETag"]})
    assert status == 304 and headers3["X-Calfeed-Data-Age"] == headers2["X-Calfeed-Data-Age"]


async def test_prepared_responses_are_bounded_and_follow_the_data(
    events: FakeLL2, calfeed: Any, clock: Clock
) -> None:
    from calfeed.server import PREPARED

    client = await calfeed(body_cache_size=8)
    prepared = client.app[PREPARED]["events"]
    for term in range(20):
        status, _, _ = await get_feed(client, f"?search=e{term}")
        assert status == 200
    assert len(prepared) == 8
    _, body, _ = await get_feed(client, "?type=6")
    events.upcoming = [e for e in events.upcoming if e["id"] != 2]
    await later(client, clock, 3600)
    _, new_body, _ = await get_feed(client, "?type=6")
    assert b"US Spacewalk 95" in body and b"US Spacewalk 95" not in new_body
    # what was prepared from the old data went with it
    assert [query for query, _ in prepared] == ["type=6"]


async def test_prepared_responses_are_bounded_in_bytes(events: FakeLL2, calfeed: Any) -> None:
    from calfeed.feeds import FEED_KINDS
    from calfeed.render import feed_bytes
    from calfeed.server import PREPARED

    client = await calfeed()
    await client.get("/events.ics?past_days=0")
    size = feed_bytes(next(iter(client.app[PREPARED]["events"].values())).feed)
    budget = size * 3 * len(FEED_KINDS)  # each kind's share: three feeds' worth
    client = await calfeed(cache_bytes=budget)
    for days in range(12):  # twelve distinct URLs, each a prepared response
        response = await client.get(f"/events.ics?past_days={days}",
                                    headers={"Accept-Encoding": "identity"})
        assert response.status == 200
        held = client.app[PREPARED]["events"]
        # what an entry keeps alive is its feed in both encodings
        assert sum(feed_bytes(p.feed) for p in held.values()) <= budget // len(FEED_KINDS)
    assert 1 <= len(held) <= 3
