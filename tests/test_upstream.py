"""Talking to LL2: versions, pagination, one shared dataset, and every way upstream fails."""

from __future__ import annotations

import asyncio
import logging
import pathlib
import socket
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from calfeed.ll2 import LL2Client
from calfeed.server import create_app
from calfeed.settings import Settings
from tests.fake_ll2 import FakeLL2
from tests.helpers import NOW, Clock, later, make_event
from tests.ics_helpers import read_feed, uids


@pytest.fixture
def some_events(fake: FakeLL2) -> FakeLL2:
    fake.upcoming = [
        make_event(i, f"2026-12-{i:02d}T10:00:00Z", type_id=i % 3) for i in range(1, 8)
    ]
    fake.previous = [make_event(50, "2026-11-25T10:00:00Z")]
    return fake


async def test_v230_endpoints_and_parameters(some_events: FakeLL2, calfeed: Any) -> None:
    client = await calfeed("2.3.0")
    assert (await client.get("/events.ics")).status == 200
    calls = some_events.list_calls()
    assert [c.path for c in calls] == ["/2.3.0/events/upcoming/", "/2.3.0/events/previous/"]
    assert all(c.query["mode"] == "detailed" and c.query["limit"] == "100" for c in calls)
    # the previous events of the last max_past_days (30), from the injected clock
    assert calls[1].query["date__gte"] == "2026-10-30T12:00:00Z"
    assert all("Authorization" not in c.headers for c in calls)


async def test_v220_endpoints_and_shape(fake: FakeLL2, calfeed: Any) -> None:
    fake.upcoming = [make_event(
        1, "2026-12-01T10:00:00Z", news_url="https://example.com/news",
        video_url="https://example.com/video", feature_image="https://example.com/i.jpg",
        image=None, webcast_live=True,
        launches=[{"id": "abc", "name": "Soyuz | MS-30",
                   "pad": {"latitude": "45.9", "longitude": "63.3"}}],
    )]
    client = await calfeed("2.2.0")
    response = await client.get("/events.ics")
    body = await response.read()
    calls = fake.list_calls()
    assert [c.path for c in calls] == ["/2.2.0/event/upcoming/", "/2.2.0/event/previous/"]
    assert all("mode" not in c.query for c in calls)
    event = read_feed(body)[0]
    assert str(event["URL"]) == "https://example.com/video"
    assert event.decoded("GEO") == (45.9, 63.3)
    assert "[LIVE] Webcast: https://example.com/video" in str(event["DESCRIPTION"])
    assert "News: https://example.com/news" in str(event["DESCRIPTION"])
    assert str(event["IMAGE"]) == "https://example.com/i.jpg"


async def test_token_is_sent(some_events: FakeLL2, calfeed: Any) -> None:
    client = await calfeed(ll2_token="secret-key")
    await client.get("/events.ics")
    assert {c.headers["Authorization"] for c in some_events.list_calls()} == {"Token secret-key"}


async def test_pagination_follows_next_and_deduplicates(fake: FakeLL2, calfeed: Any) -> None:
    fake.max_page = 40
    fake.upcoming = [make_event(i, f"2026-12-{i % 28 + 1:02d}T10:00:00Z") for i in range(1, 101)]
    # LL2 lists shift while being paged: an event added once page 1 is read pushes that
    # page's last event onto page 2 (the new one is the next sync's)
    fake.after_first_page = lambda listed: listed.insert(0, make_event(101))
    fake.previous = [make_event(7, "2026-12-08T10:00:00Z")]  # also in upcoming
    client = await calfeed()
    body = await (await client.get("/events.ics")).read()
    assert len(fake.list_calls()) == 4  # three upcoming pages, one previous
    found = uids(body)
    assert len(found) == len(set(found)) == 100


async def test_next_link_loop_is_a_failed_fetch(some_events: FakeLL2, calfeed: Any) -> None:
    some_events.next_loop = True
    client = await calfeed()
    response = await client.get("/events.ics")
    # a list that did not arrive whole is not served as if it were the whole list
    assert response.status == 503 and "Retry-After" in response.headers
    assert "did not arrive whole" in await response.text()
    # its first page, then the looping link once, seen to bring nothing new; then backoff
    assert len(some_events.list_calls()) == 2


async def test_cold_cache_1000_concurrent_requests_one_fetch(
    some_events: FakeLL2, calfeed: Any
) -> None:
    some_events.stall_seconds = 0.2
    client = await calfeed()
    responses = await asyncio.gather(*(client.get("/events.ics") for _ in range(1000)))
    assert {r.status for r in responses} == {200}
    assert len(some_events.list_calls()) == 2  # one dataset refresh: upcoming + previous


async def test_200_distinct_feeds_cost_one_refresh(some_events: FakeLL2, calfeed: Any) -> None:
    client = await calfeed()
    queries = [f"?type={t}&past_days={d}" for t in range(40) for d in range(5)]
    assert len(set(queries)) == 200
    for query in queries:
        assert (await client.get("/events.ics" + query)).status == 200
    assert len(some_events.list_calls()) == 2


async def test_requests_never_fetch_once_data_exists(
    some_events: FakeLL2, calfeed: Any, clock: Clock
) -> None:
    client = await calfeed()
    await client.get("/events.ics")
    for _ in range(50):
        clock.advance(3600)  # however stale: the request path does not call LL2
        assert (await client.get("/events.ics?type=1")).status == 200
    assert len(some_events.list_calls()) == 2


async def test_schedule_when_nothing_is_imminent(
    some_events: FakeLL2, calfeed: Any, clock: Clock
) -> None:
    client = await calfeed()
    await client.get("/events.ics")
    kinds = []
    for _ in range(6 * 60):  # six hours, a minute at a time
        before = len(some_events.list_calls())
        await later(client, clock, 60)
        for call in some_events.list_calls()[before:]:
            kinds.append((round((call.at or clock.current).timestamp() - NOW.timestamp()),
                          call.path.split("/")[3], "last_updated__gte" in call.query))
    # incremental fetches every 15 minutes, the full upcoming list hourly, the past at 6 h
    assert [k for k in kinds if k[1] == "previous"] == [(21600, "previous", False)]
    full = [k[0] for k in kinds if k[1] == "upcoming" and not k[2]]
    assert full == [3600 * h for h in range(1, 7)]
    incremental = [k[0] for k in kinds if k[2]]
    assert len(incremental) == 18 and incremental[:3] == [900, 1800, 2700]


async def no_data_answer(client: TestClient[Any, Any]) -> tuple[int, str, Any]:
    response = await client.get("/events.ics")
    return response.status, await response.text(), response.headers


@pytest.mark.parametrize(
    ("fault", "words"),
    [
        ({"fail_times": -1, "fail_status": 500}, "HTTP 500"),
        ({"fail_times": -1, "fail_status": 502}, "HTTP 502"),
        ({"bad_json": True}, "invalid JSON"),
        ({"wrong_shape": True}, "without a results list"),
    ],
)
async def test_upstream_fault_without_data_is_503(
    some_events: FakeLL2, calfeed: Any, fault: dict[str, Any], words: str
) -> None:
    for name, value in fault.items():
        setattr(some_events, name, value)
    client = await calfeed(retry_backoff=60)
    status, text, headers = await no_data_answer(client)
    assert status == 503
    assert 30 <= int(headers["Retry-After"]) <= 60  # the first backoff, with jitter
    assert headers["Content-Type"] == "text/plain; charset=utf-8"
    assert words in text and text.count("\n") == 1
    assert "Traceback" not in text


async def test_connection_refused_is_503(clock: Clock, tmp_path: pathlib.Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = Settings(upstream=f"http://127.0.0.1:{port}/2.3.0", retry_backoff=30,
                        state_dir=str(tmp_path))
    app = create_app(settings, now=clock, background=False)
    async with TestClient(TestServer(app)) as client:
        status, text, headers = await no_data_answer(client)
    assert status == 503
    assert 15 <= int(headers["Retry-After"]) <= 30
    assert "cannot reach LL2" in text


async def test_stalled_upstream_times_out_to_503(some_events: FakeLL2, calfeed: Any) -> None:
    some_events.stall_seconds = 5
    client = await calfeed(read_timeout=0.3)
    status, text, _ = await asyncio.wait_for(no_data_answer(client), timeout=3)
    assert status == 503
    assert "did not answer in time" in text


async def test_failure_backoff_limits_upstream_calls(
    some_events: FakeLL2, calfeed: Any, clock: Clock
) -> None:
    some_events.fail_times = -1
    client = await calfeed(retry_backoff=60)
    for _ in range(20):
        assert (await client.get("/events.ics")).status == 503
    assert len(some_events.list_calls()) == 1
    clock.advance(61)  # past the first backoff (at most 60 s)
    some_events.fail_times = 0
    assert (await client.get("/events.ics")).status == 200
    assert len(some_events.list_calls()) == 3


async def test_last_good_data_served_when_upstream_fails(
    some_events: FakeLL2, calfeed: Any, clock: Clock
) -> None:
    client = await calfeed(retry_backoff=60)
    first = await (await client.get("/events.ics")).read()
    some_events.fail_times = -1
    for step in range(10):
        await later(client, clock, 900)
        response = await client.get("/events.ics")
        assert response.status == 200, step
        assert await response.read() == first
    health = await (await client.get("/healthz")).json()
    assert "HTTP 500" in health["last_error"]
    # recovery: the next refresh brings new data
    some_events.fail_times = 0
    some_events.upcoming.append(make_event(99, "2026-12-20T10:00:00Z"))
    await later(client, clock, 1800)
    assert "ll2-event-99@calfeed" in uids(await (await client.get("/events.ics")).read())


async def test_429_is_honoured(some_events: FakeLL2, calfeed: Any, clock: Clock) -> None:
    some_events.throttle_seconds = 120
    client = await calfeed(retry_backoff=10)
    status, text, headers = await no_data_answer(client)
    assert status == 503
    assert headers["Retry-After"] == "120"
    assert "next request allowed in 120 s" in text
    calls = len(some_events.list_calls())
    some_events.throttle_seconds = 0
    clock.advance(100)
    status, _, headers = await no_data_answer(client)
    assert status == 503 and headers["Retry-After"] == "20"
    assert len(some_events.list_calls()) == calls  # nothing sent before Retry-After
    # after the 429 calfeed asked LL2's free /api-throttle/ for the real state
    assert any(c.path.endswith("/api-throttle/") for c in some_events.calls)
    clock.advance(21)
    assert (await client.get("/events.ics")).status == 200


async def test_429_detail_text_without_header(fake: FakeLL2, calfeed: Any) -> None:
    from calfeed.ll2 import retry_after_seconds
    from tests.helpers import NOW

    body = '{"detail": "Request was throttled. Expected available in 842 seconds."}'
    assert retry_after_seconds({}, body, NOW) == 842
    assert retry_after_seconds({"Retry-After": "Sun, 29 Nov 2026 12:05:00 GMT"}, "", NOW) == 300


async def test_malformed_events_are_skipped_and_logged(
    fake: FakeLL2, calfeed: Any, caplog: pytest.LogCaptureFixture
) -> None:
    fake.upcoming = [
        make_event(1, "2026-12-01T10:00:00Z"),
        make_event(2, None),  # type: ignore[arg-type]
        make_event(3, "soon"),
        {"name": "no id at all", "date": "2026-12-01T10:00:00Z"},
        make_event(4, "2026-12-02T10:00:00Z", launches="oops", vid_urls=[None, 3]),
    ]
    client = await calfeed()
    with caplog.at_level(logging.WARNING):
        response = await client.get("/events.ics")
    assert response.status == 200
    assert uids(await response.read()) == ["ll2-event-1@calfeed", "ll2-event-4@calfeed"]
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "skip=events id=2" in messages and "skip=events id=3" in messages
    assert "no-id" in messages


async def test_healthz_reports_dataset(some_events: FakeLL2, calfeed: Any, clock: Clock) -> None:
    client = await calfeed(stale_after=7200)
    response = await client.get("/healthz")
    assert response.status == 503  # nothing fetched yet
    await client.get("/events.ics")
    clock.advance(42)
    response = await client.get("/healthz")
    report = await response.json()
    events = report["datasets"]["events"]
    assert response.status == 200 and report["status"] == "ok"
    assert events["items"] == 8
    assert events["parts"]["upcoming"] == {"items": 7, "age_seconds": 42,
                                           "last_full_age_seconds": 42}
    assert events["parts"]["past"]["items"] == 1
    assert report["last_error"] is None
    assert report["budget"] == {"limit_per_hour": 13, "used": 5, "left": 8,
                                "blocked_until": None}
    assert report["next_fetch_in_seconds"] == 900 - 42
    feed = await client.get("/events.ics")
    assert feed.headers["X-Calfeed-Data-Age"] == "42"
    # upstream goes away: after stale_after without a sync, /healthz says 503
    some_events.fail_times = -1
    for _ in range(8):
        await later(client, clock, 900)
    response = await client.get("/healthz")
    assert response.status == 503 and (await response.json())["status"] == "stale"
    assert (await client.get("/events.ics")).status == 200


async def test_the_call_log_tells_ll2s_time_from_the_budgets(
    fake: FakeLL2, fake_server: TestServer, caplog: pytest.LogCaptureFixture,
) -> None:
    """`ms=` is LL2's answer, `permit_ms=` the budget's permits (Redis round trips, for a
    shared budget): a slow budget is not mistaken for a slow LL2. With a redirect, both
    requests' permits count."""
    fake.upcoming = [make_event(1)]
    fake.redirect_to = str(fake_server.make_url("/"))

    async def slow_permit() -> None:
        await asyncio.sleep(0.5)

    async with aiohttp.ClientSession() as session:
        client = LL2Client(session, str(fake_server.make_url("/2.3.0")), now=lambda: NOW)
        with caplog.at_level(logging.INFO, logger="calfeed.ll2"):
            items = await client.list_all(
                str(fake_server.make_url("/2.3.0/events/upcoming/")), {}, slow_permit)
    assert [item["id"] for item in items] == [1]
    line = next(r.getMessage() for r in caplog.records if "upstream=get" in r.getMessage())
    fields = dict(pair.split("=", 1) for pair in line.split() if "=" in pair)
    assert int(fields["permit_ms"]) >= 1000, line
    # (a local fake answers in milliseconds: half the permits' time is a wide margin)
    assert int(fields["ms"]) < int(fields["permit_ms"]) / 2, line
