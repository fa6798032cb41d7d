"""Staying fresh on 15 requests an hour: budget, schedule, restarts and every upstream fault."""

from __future__ import annotations

import itertools
import json
import logging
import pathlib
import socket
import threading
from datetime import timedelta
from typing import Any

import aiohttp.resolver
import pytest
from aiohttp.test_utils import TestClient, TestServer

from calfeed.budget import MAX_BLOCK, LocalBudget
from calfeed.feeds import FEED_KINDS
from calfeed.server import create_app
from calfeed.settings import Settings
from calfeed.state import StateStore
from calfeed.sync import THROTTLE_RECHECK
from tests.fake_ll2 import FakeLL2
from tests.helpers import (
    NOW,
    Clock,
    counting_turns,
    later,
    make_event,
    readme_words,
    sync,
    syncer_of,
)
from tests.ics_helpers import by_uid, read_feed, uids

HOUR = 3600


def feed_urls(count: int) -> list[str]:
    """Distinct feed URLs, as many subscribers would use."""
    urls = []
    for type_id in range(20):
        for agency in range(5):
            for past in range(5):
                urls.append(f"/events.ics?type={type_id}&agency={agency}&past_days={past}")
    return urls[:count]


@pytest.fixture
def day_of_events(fake: FakeLL2, clock: Clock) -> FakeLL2:
    """A realistic upcoming list with an exactly timed event at noon tomorrow (a hot spell)."""
    fake.clock = clock
    fake.rate_limit = 15  # like LL2 without a key: the 16th call in an hour gets a 429
    fake.upcoming = [
        make_event(i, (NOW + timedelta(hours=5 * i)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                   type_id=i % 20, agencies=(i % 5,), precision=[1, 5, 7][i % 3])
        for i in range(1, 150)
    ]
    fake.upcoming.append(make_event(
        999, (NOW + timedelta(hours=24)).strftime("%Y-%m-%dT%H:%M:%SZ"), name="Launch day"
    ))
    fake.previous = [make_event(500, "2026-11-20T10:00:00Z")]
    return fake


@pytest.mark.slow  # 7,500 requests over a simulated day: about 10 s
async def test_a_day_of_500_feeds_stays_within_budget(
    day_of_events: FakeLL2, calfeed: Any, clock: Clock
) -> None:
    client = await calfeed()
    urls = feed_urls(500)
    assert len(set(urls)) == 500
    served = 0
    for minute in range(24 * 60 + 60):
        await later(client, clock, 60)
        for offset in range(5):  # steady traffic: every URL every 100 minutes
            url = urls[(minute * 5 + offset) % len(urls)]
            response = await client.get(url)
            assert response.status == 200, (minute, url)
            served += 1
        # the event moves now and then during the day; changes must keep flowing
        if minute % 97 == 0:
            day_of_events.upcoming[minute % 100]["last_updated"] = clock.current.strftime(
                "%Y-%m-%dT%H:%M:%SZ")
    assert served == 5 * 25 * 60
    assert day_of_events.throttled == 0
    assert day_of_events.most_in_any_hour() <= 13  # the budget: 15 less the reserve of 2
    calls = len(day_of_events.list_calls())
    # hot around the launch, relaxed the rest of the day
    assert 100 < calls < 25 * 13
    assert (await syncer_of(client).budget.view(clock.current)).used <= 13


async def test_with_an_api_key_an_imminent_event_is_fetched_every_minute(
    fake: FakeLL2, calfeed: Any, clock: Clock,
) -> None:
    from calfeed.sync import MIN_HOT_INTERVAL

    soon = NOW + timedelta(minutes=30)
    fake.upcoming = [make_event(1, soon.strftime("%Y-%m-%dT%H:%M:%SZ"), name="Docking")]
    fake.reported_limit = 300  # (a key's hourly limit, as `Settings.hourly_budget` takes it)
    client = await calfeed(ll2_token="secret-key")
    await client.get("/events.ics")
    syncer = syncer_of(client)
    assert syncer.is_hot(FEED_KINDS["events"], syncer.datasets["events"], clock.current)
    interval = syncer.hot_interval()
    assert interval == MIN_HOT_INTERVAL == 60
    before = len(fake.list_calls())
    for _ in range(5):
        await later(client, clock, 60)
    assert len(fake.list_calls()) - before == 5  # (a change fetch a minute)
    # as the README says
    readme = readme_words()
    assert f"({round(interval / 60)} with an API key)" in readme
    assert "about 8 minutes without a key, every minute with one" in readme


async def test_imminent_event_change_reaches_the_feed_within_the_hot_interval(
    fake: FakeLL2, calfeed: Any, clock: Clock
) -> None:
    soon = NOW + timedelta(minutes=30)
    fake.upcoming = [make_event(1, soon.strftime("%Y-%m-%dT%H:%M:%SZ"), name="Docking")]
    fake.upcoming += [make_event(i, "2027-01-01T00:00:00Z", precision=7) for i in range(2, 20)]
    client = await calfeed()
    await client.get("/events.ics")
    interval = syncer_of(client).hot_interval()
    # 13 an hour, less the full and past refreshes of events and launches and the quiet
    # launches' change fetches: about 8 minutes
    assert 450 <= interval <= 500
    # and the README says what the code computes, wherever it says it
    readme = readme_words()
    assert readme.count(f"about {round(interval / 60)} minutes without a key") == 2
    assert readme.count(f"about {round(interval / 60)} minutes old") == 1
    assert "6 minutes without a key" not in readme
    await later(client, clock, 120)
    # a scrub: the docking moves two hours later
    moved = soon + timedelta(hours=2)
    fake.upcoming[0] = make_event(1, moved.strftime("%Y-%m-%dT%H:%M:%SZ"), name="Docking",
                                  last_updated=clock.current.strftime("%Y-%m-%dT%H:%M:%SZ"))
    changed_at = clock.current
    for _ in range(10):
        await later(client, clock, 60)
        body = await (await client.get("/events.ics")).read()
        if by_uid(body)["ll2-event-1@calfeed"].decoded("DTSTART") == moved:
            break
    delay = (clock.current - changed_at).total_seconds()
    assert by_uid(body)["ll2-event-1@calfeed"].decoded("DTSTART") == moved
    assert delay <= interval + 60  # the hot interval (this test ticks once a minute)


async def test_three_hours_down_then_recovery(
    fake: FakeLL2, calfeed: Any, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    fake.upcoming = [make_event(i, f"2026-12-{i:02d}T10:00:00Z") for i in range(1, 20)]
    client = await calfeed()
    urls = feed_urls(50)
    before = {url: await (await client.get(url)).read() for url in urls}
    fake.fail_times = -1
    calls_before = len(fake.counted_calls())
    with caplog.at_level(logging.WARNING):
        for minute in range(180):
            await later(client, clock, 60)
            url = urls[minute % len(urls)]
            response = await client.get(url)
            assert response.status == 200
            assert await response.read() == before[url]
    # every call LL2 would count: event lists, launch lists and the event-type list
    attempts = len(fake.counted_calls()) - calls_before
    # exponential backoff: 30-60 s, then doubling to the cap of 15-30 minutes (jitter):
    # at most 16 tries in three hours even with the shortest draws, against 180 without
    assert 4 <= attempts <= 16
    failures = [r for r in caplog.records if "sync=failed" in r.getMessage()]
    assert len(failures) == attempts  # one clear line per fault
    # upstream returns with a change: the first successful sync brings it
    fake.fail_times = 0
    fake.upcoming[0] = make_event(1, "2026-12-01T18:00:00Z",
                                  last_updated=clock.current.strftime("%Y-%m-%dT%H:%M:%SZ"))
    for _ in range(31):
        await later(client, clock, 60)
        if syncer_of(client).failures == 0:
            break
    assert syncer_of(client).failures == 0
    body = await (await client.get("/events.ics")).read()
    assert by_uid(body)["ll2-event-1@calfeed"].decoded("DTSTART").hour == 18


async def test_backoff_doubles_with_jitter_up_to_the_cap(
    fake: FakeLL2, calfeed: Any, clock: Clock
) -> None:
    fake.fail_times = -1
    client = await calfeed(retry_backoff=60, max_backoff=600)
    await client.get("/events.ics")
    syncer = syncer_of(client)
    waits = []
    for _ in range(7):
        assert syncer.retry_at is not None
        waits.append((syncer.retry_at - clock.current).total_seconds())
        clock.current = syncer.retry_at
        await sync(client)
    for attempt, wait in enumerate(waits):
        ceiling = min(600, 60 * 2**attempt)
        assert ceiling / 2 <= wait <= ceiling
    assert waits[-1] > waits[0] * 4


async def test_a_list_that_keeps_failing_backs_off_alone_while_the_others_go_on(
    fake: FakeLL2, calfeed: Any, clock: Clock,
) -> None:
    # the past events' list answers 500 for half a day; changes are still fetched every
    # 15 minutes, and the failing list is tried less and less often (it was tried again
    # whenever another job of its kind succeeded: most of the budget)
    fake.upcoming = [make_event(i, f"2026-12-{i:02d}T10:00:00Z") for i in range(1, 6)]
    client = await calfeed(retry_backoff=60, max_backoff=1800, past_refresh_interval=3600)
    await client.get("/events.ics")
    fake.fail_times, fake.fail_only = -1, "/events/previous/"
    began = clock.current
    for _ in range(12 * 60):
        await later(client, clock, 60)
    calls = [c for c in fake.list_calls() if c.at and c.at > began]
    tried = [c.at for c in calls if c.at and "/events/previous/" in c.path]
    changes = [c for c in calls if "/events/upcoming/" in c.path
               and "last_updated__gte" in c.query]
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(tried)]
    # (waits from 30-60 s doubling up to 15-30 min: at most 52 tries in 12 hours)
    assert 20 <= len(tried) <= 52, gaps
    assert all(gap >= 900 for gap in gaps[-20:]), gaps
    # changes every 15 minutes but at the full refreshes (which read the whole list)
    assert len(changes) >= 12 * 3 - 2, len(changes)
    assert syncer_of(client).failures == len(tried)


async def test_a_clock_that_ran_ahead_and_was_put_right_stops_no_fetch(
    fake: FakeLL2, fake_server: TestServer, clock: Clock, state_dir: pathlib.Path,
) -> None:
    # a bad NTP step (or a VM resumed) puts the clock a day ahead for one sync, then it is
    # put right and calfeed restarted: the times kept with the state lie a day ahead
    fake.upcoming = [make_event(i, f"2026-12-{i:02d}T10:00:00Z") for i in range(1, 6)]
    settings = Settings(upstream=str(fake_server.make_url("/2.3.0")), state_dir=str(state_dir))
    right = clock.current
    async with TestClient(TestServer(create_app(settings, now=clock, background=False))) as c:
        await c.get("/events.ics")
        clock.advance(86400)
        await sync(c)
    clock.current = right + timedelta(minutes=5)
    soon = (clock.current + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    fake.upcoming.append(make_event(77, soon, name="Added on launch day"))
    async with TestClient(TestServer(create_app(settings, now=clock, background=False))) as c:
        calls = len(fake.list_calls())
        await sync(c)
        assert len(fake.list_calls()) > calls  # (it waited for the day to come round)
        assert "ll2-event-77@calfeed" in uids(await (await c.get("/events.ics")).read())
        health = await (await c.get("/healthz")).json()
        assert health["status"] == "ok"
        assert 0 <= health["datasets"]["events"]["parts"]["upcoming"]["age_seconds"] < 60
        # and from then on, on the schedule: what changed, a quarter of an hour later
        calls = len(fake.list_calls())
        for _ in range(16):
            await later(c, clock, 60)
        assert any("last_updated__gte" in call.query for call in fake.list_calls()[calls:])


async def test_restart_serves_from_disk_without_upstream_calls(
    fake: FakeLL2, fake_server: TestServer, clock: Clock, state_dir: pathlib.Path
) -> None:
    fake.upcoming = [make_event(i, f"2026-12-{i:02d}T10:00:00Z") for i in range(1, 10)]
    settings = Settings(upstream=str(fake_server.make_url("/2.3.0")), state_dir=str(state_dir))
    async with TestClient(TestServer(create_app(settings, now=clock, background=False))) as c:
        first = await (await c.get("/events.ics")).read()
    calls = len(fake.list_calls())
    assert calls == 2
    assert (state_dir / "dataset-events.json").exists() and (state_dir / "budget.json").exists()
    clock.advance(300)
    app = create_app(settings, now=clock, background=False)
    async with TestClient(TestServer(app)) as client:
        response = await client.get("/events.ics")
        assert response.status == 200
        assert await response.read() == first
        assert len(fake.list_calls()) == calls
        # nothing is due yet either: the schedule continues from the saved sync times
        await sync(client)
        assert len(fake.list_calls()) == calls
        syncer = syncer_of(client)
        # the window survived too: event and launch lists and the event-type list
        assert (await syncer.budget.view(clock.current)).used == 5
        await later(client, clock, 600)  # 15 minutes after the first sync
        assert len(fake.list_calls()) == calls + 1


async def test_restart_keeps_a_429_block(
    fake: FakeLL2, fake_server: TestServer, clock: Clock, state_dir: pathlib.Path
) -> None:
    fake.upcoming = [make_event(1)]
    fake.throttle_seconds = 1200
    settings = Settings(upstream=str(fake_server.make_url("/2.3.0")), state_dir=str(state_dir))
    async with TestClient(TestServer(create_app(settings, now=clock, background=False))) as c:
        assert (await c.get("/events.ics")).status == 503
    fake.throttle_seconds = 0
    calls = len(fake.list_calls())
    clock.advance(600)
    async with TestClient(TestServer(create_app(settings, now=clock, background=False))) as c:
        response = await c.get("/events.ics")
        assert response.status == 503
        assert 590 <= int(response.headers["Retry-After"]) <= 600
    assert len(fake.list_calls()) == calls


@pytest.mark.parametrize(
    "damage",
    [
        lambda text: "{this is not json",
        lambda text: text[: len(text) // 2],  # truncated mid-write by a crash
        lambda text: json.dumps({"format": 1, "state": {"parts": "nonsense"}}),
        lambda text: json.dumps({"format": 99, "state": {}}),
        lambda text: "",
        # the time the next incremental fetch is planned from, missing
        lambda text: text.replace('"synced_at": "', '"synced_at": null, "was": "'),
        # nested deeper than Python's JSON reader goes (calfeed never writes one)
        lambda text: '{"format": 1, "state": ' + "[" * 100_000 + "]" * 100_000 + "}",
    ],
)
async def test_corrupt_state_file_means_clean_start(
    fake: FakeLL2, fake_server: TestServer, clock: Clock, state_dir: pathlib.Path,
    caplog: pytest.LogCaptureFixture, damage: Any,
) -> None:
    fake.upcoming = [make_event(1, name="Fresh from upstream")]
    settings = Settings(upstream=str(fake_server.make_url("/2.3.0")), state_dir=str(state_dir))
    async with TestClient(TestServer(create_app(settings, now=clock, background=False))) as c:
        await c.get("/events.ics")
    path = state_dir / "dataset-events.json"
    path.write_text(damage(path.read_text()))
    (state_dir / "budget.json").write_text("[1, 2")
    with caplog.at_level(logging.WARNING):
        async with TestClient(TestServer(create_app(settings, now=clock, background=False))) as c:
            response = await c.get("/events.ics")
            assert response.status == 200
            assert uids(await response.read()) == ["ll2-event-1@calfeed"]
    assert any("state=" in r.getMessage() for r in caplog.records)
    assert len(fake.list_calls()) == 4  # the clean start fetched again


async def test_a_newer_calfeeds_state_is_kept_aside_not_written_over(
    fake: FakeLL2, calfeed: Any, state_dir: pathlib.Path,
) -> None:
    # rolled back from a newer calfeed: its files are there for it when it runs again
    fake.upcoming = [make_event(1)]
    state_dir.mkdir(parents=True)
    newer = json.dumps({"format": 2, "state": {"whatever": "it keeps"}})
    (state_dir / "dataset-events.json").write_text(newer)
    client = await calfeed()
    assert (await client.get("/events.ics")).status == 200
    assert (state_dir / "dataset-events.json.unknown-format").read_text() == newer
    assert json.loads((state_dir / "dataset-events.json").read_text())["format"] == 1


def _refuse_dns(*args: Any, **kwargs: Any) -> Any:
    raise OSError(socket.EAI_NONAME, "Name or service not known")


FAULTS: dict[str, dict[str, Any]] = {
    "connection dropped": {"drop_connection": True},
    "timeout": {"stall_seconds": 2.0},
    "HTTP 500": {"fail_times": -1, "fail_status": 500},
    "HTTP 503": {"fail_times": -1, "fail_status": 503},
    "429": {"throttle_seconds": 300},
    "invalid JSON": {"bad_json": True},
    "wrong shape": {"wrong_shape": True},
    "next loop": {"next_loop": True},
    "page repeats": {"repeat_page": True},
}


@pytest.mark.parametrize("fault", sorted(FAULTS))
async def test_every_fault_keeps_serving_and_recovers(
    fake: FakeLL2, calfeed: Any, clock: Clock, fault: str, caplog: pytest.LogCaptureFixture
) -> None:
    fake.upcoming = [make_event(i, f"2026-12-{i:02d}T10:00:00Z") for i in range(1, 6)]
    client = await calfeed(read_timeout=0.3)
    good = await (await client.get("/events.ics")).read()
    for name, value in FAULTS[fault].items():
        setattr(fake, name, value)
    with caplog.at_level(logging.WARNING):
        for _ in range(4):
            await later(client, clock, 900)
            response = await client.get("/events.ics")
            assert response.status == 200
            assert read_feed(await response.read()) == read_feed(good)
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert lines, "each fault is logged"
    assert all("Traceback" not in line for line in lines)
    # upstream heals; a new event shows up after the next successful sync
    for name in FAULTS[fault]:
        setattr(fake, name, getattr(FakeLL2(), name))
    fake.upcoming.append(make_event(77, "2026-12-20T10:00:00Z"))
    for _ in range(40):
        await later(client, clock, 300)
        if "ll2-event-77@calfeed" in uids(await (await client.get("/events.ics")).read()):
            break
    assert "ll2-event-77@calfeed" in uids(await (await client.get("/events.ics")).read())


async def test_a_dropped_connection_is_one_request_to_ll2_not_two(
    fake: FakeLL2, calfeed: Any, clock: Clock,
) -> None:
    # LL2 counts a request it reads, answered or not: one the client sent again by itself
    # would go out without a permit
    fake.upcoming = [make_event(1)]
    fake.drop_connection = True
    client = await calfeed(read_timeout=0.3)
    assert (await client.get("/events.ics")).status == 503
    for _ in range(6):
        await later(client, clock, 900)
    sent = syncer_of(client).requests_sent
    assert sent >= 3
    assert len(fake.counted_calls()) == sent


async def test_dns_failure_keeps_serving(
    fake: FakeLL2, calfeed: Any, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.upcoming = [make_event(1)]
    client = await calfeed()
    good = await (await client.get("/events.ics")).read()
    # no real lookup leaves the machine: the resolver itself fails, as for an unknown host
    monkeypatch.setattr(aiohttp.resolver.ThreadedResolver, "resolve", _refuse_dns)
    syncer = syncer_of(client)
    source: Any = syncer.source
    source.client.base_url = "http://ll2.calfeed-test.invalid/2.3.0"
    await later(client, clock, 900)
    assert syncer.last_error is not None and "cannot reach LL2" in syncer.last_error
    assert await (await client.get("/events.ics")).read() == good


async def test_incremental_merge_keeps_everything_once(
    fake: FakeLL2, calfeed: Any, clock: Clock
) -> None:
    fake.max_page = 30
    fake.upcoming = [make_event(i, f"2026-12-{i % 28 + 1:02d}T10:00:00Z") for i in range(1, 80)]
    client = await calfeed()
    await client.get("/events.ics")
    stamp = (clock.current + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    for i in (3, 40, 70):
        fake.upcoming[i - 1] = make_event(i, "2026-12-30T10:00:00Z", name=f"Moved {i}",
                                          last_updated=stamp)
    fake.upcoming.append(make_event(200, "2026-12-31T10:00:00Z", last_updated=stamp))
    await later(client, clock, 900)
    last = fake.list_calls()[-1]
    assert last.query["ordering"] == "last_updated" and "last_updated__gte" in last.query
    found = uids(await (await client.get("/events.ics")).read())
    assert len(found) == len(set(found)) == 80
    # the hourly full refresh drops what left upstream and keeps the rest
    fake.upcoming = [e for e in fake.upcoming if e["id"] != 5]
    await later(client, clock, 2700)
    found = uids(await (await client.get("/events.ics")).read())
    assert len(found) == 79 and "ll2-event-5@calfeed" not in found


def test_budget_sliding_window() -> None:
    budget = LocalBudget(3)
    start = NOW
    assert all(budget.try_spend(start + timedelta(minutes=m)) for m in (0, 10, 20))
    assert not budget.try_spend(start + timedelta(minutes=30))
    assert budget.next_slot(start + timedelta(minutes=30)) == start + timedelta(hours=1)
    assert budget.next_slot(start + timedelta(minutes=30), 2) == start + timedelta(minutes=70)
    assert budget.try_spend(start + timedelta(minutes=60, seconds=1))
    assert budget.used(start + timedelta(minutes=61)) == 3


def test_a_clock_set_back_does_not_stop_the_budget_for_as_long() -> None:
    budget = LocalBudget(3)
    ahead = NOW + timedelta(days=1)
    assert all(budget.try_spend(ahead + timedelta(minutes=m)) for m in (0, 1, 2))
    budget.blocked_until = ahead + timedelta(minutes=30)
    # NTP steps the clock back a day: the calls count as made now, the block as at most
    # MAX_BLOCK from now, rather than a day and an hour without a call
    assert budget.next_slot(NOW) == NOW + MAX_BLOCK
    budget.blocked_until = None
    assert budget.next_slot(NOW) == NOW + timedelta(hours=1)
    assert budget.try_spend(NOW + timedelta(hours=1, seconds=1))


def test_a_saved_window_from_a_clock_set_back_or_without_zones() -> None:
    budget = LocalBudget(3)
    # saved while the clock was a day ahead: counted as made now, not for a day and an hour
    ahead = (NOW + timedelta(days=1)).isoformat()
    budget.load_state({"calls": [ahead] * 3}, NOW)
    assert budget.next_slot(NOW) == NOW + timedelta(hours=1)
    # a window without zones changes nothing (and says so), rather than half loading
    with pytest.raises(ValueError, match="without a zone"):
        budget.load_state({"calls": ["2026-11-29T11:50:00"]}, NOW)
    assert budget.used(NOW) == 3
    with pytest.raises(ValueError, match="without a zone"):
        budget.load_state({"calls": [], "blocked_until": "2026-11-29T13:00:00"}, NOW)
    assert budget.used(NOW) == 3 and budget.blocked_until is None


async def test_a_window_that_cannot_be_read_does_not_stop_syncing(
    fake: FakeLL2, calfeed: Any, state_dir: pathlib.Path, caplog: pytest.LogCaptureFixture,
) -> None:
    fake.upcoming = [make_event(1)]
    state_dir.mkdir(parents=True)
    (state_dir / "budget.json").write_text(json.dumps(
        {"format": 1, "state": {"calls": ["2026-11-29T11:50:00"], "blocked_until": None}}))
    with caplog.at_level(logging.WARNING):
        client = await calfeed()
        response = await client.get("/events.ics")
    assert response.status == 200
    assert uids(await response.read()) == ["ll2-event-1@calfeed"]
    assert any("state=ignored name=budget" in r.getMessage() for r in caplog.records)


async def test_each_call_is_kept_in_the_state_folder_before_it_goes_out(
    fake: FakeLL2, calfeed: Any, state_dir: pathlib.Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # what LL2 has counted survives a process killed mid-job: on disk before LL2 answers,
    # written off the event loop (two fsyncs a call)
    fake.upcoming = [make_event(i) for i in range(1, 251)]
    seen: list[int] = []
    writers: set[bool] = set()
    save = StateStore.save

    def noting(store: StateStore, name: str, state: dict[str, Any]) -> None:
        if name == "budget":
            writers.add(threading.current_thread() is threading.main_thread())
        save(store, name, state)

    monkeypatch.setattr(StateStore, "save", noting)

    def read_window(listed: list[dict[str, Any]]) -> None:
        saved = json.loads((state_dir / "budget.json").read_text())
        seen.append(len(saved["state"]["calls"]))

    fake.after_first_page = read_window
    client = await calfeed()
    assert (await client.get("/events.ics")).status == 200
    assert seen == [1]
    assert False in writers
    saved = json.loads((state_dir / "budget.json").read_text())
    assert len(saved["state"]["calls"]) == len(fake.counted_calls()) >= 4


async def test_budget_adopts_ll2s_stricter_view() -> None:
    budget = LocalBudget(13)
    await budget.adopt({"your_request_limit": 15, "limit_frequency_secs": 3600,
                        "current_use": 9, "next_use_secs": 0}, NOW, reserve=2)
    assert budget.limit == 13 and budget.used(NOW) == 9
    await budget.adopt({"your_request_limit": 10, "current_use": 12, "next_use_secs": 125},
                       NOW, 2)
    assert budget.limit == 8
    assert budget.next_slot(NOW) >= NOW + timedelta(seconds=125)
    assert not budget.try_spend(NOW + timedelta(seconds=60))


async def test_startup_reads_throttle_state(fake: FakeLL2, calfeed: Any, clock: Clock) -> None:
    fake.upcoming = [make_event(1)]
    fake.throttle_seconds = 0
    client = await calfeed()
    await client.get("/events.ics")
    assert fake.calls[0].path.endswith("/api-throttle/")
    assert len(fake.list_calls()) == 2


async def test_calls_others_made_meanwhile_are_counted_before_fetching_again(
    fake: FakeLL2, calfeed: Any, clock: Clock,
) -> None:
    # a `calfeed build`, or someone's script, on the same address spends the same quota
    fake.upcoming = [make_event(1)]
    client = await calfeed()
    await client.get("/events.ics")
    asked = [c for c in fake.calls if "api-throttle" in c.path]
    assert len(asked) == 1
    fake.reported_use = 13
    clock.advance(901)  # the incremental fetch is due
    await sync(client)
    assert len([c for c in fake.calls if "api-throttle" in c.path]) == 2
    view = syncer_of(client).budget_view
    assert view is not None and view.used >= 13
    calls = len(fake.counted_calls())
    clock.advance(300)
    await sync(client)  # (asked again only after ten minutes; the window is full)
    assert len([c for c in fake.calls if "api-throttle" in c.path]) == 2
    assert len(fake.counted_calls()) == calls
    readme = readme_words()
    minutes = THROTTLE_RECHECK.total_seconds() / 60
    assert f"when it last asked more than {minutes:.0f} minutes ago" in readme


async def test_the_hot_times_of_new_data_are_read_with_turns_for_other_requests() -> None:
    """After new data the syncer reads every item's exact time again (to know whether
    anything is about to happen): a slice at a time, so /healthz or a tick over 5,000
    items lets the loop answer others in between, and comes out as read at once."""
    from calfeed.feeds import FEED_KINDS
    from calfeed.server import SYNCER

    soon = [make_event(i, (NOW + timedelta(minutes=20 + i)).strftime("%Y-%m-%dT%H:%M:%SZ"))
            for i in range(1, 5001)]
    app = create_app(Settings(), now=lambda: NOW, background=False,
                     items={"events": soon, "launches": []})
    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        syncer = app[SYNCER]
        await syncer.tick()
        syncer.datasets["events"].merge(
            "upcoming", [dict(e, last_updated="2026-11-29T13:00:00Z") for e in soon], NOW)
        async with counting_turns() as turns:
            await syncer.read_hot_times()  # (what /healthz and a tick do first)
        assert turns[0] >= 3, turns  # (5,000 items in slices of 2,000)
        health = await (await client.get("/healthz")).json()
        assert health["datasets"]["events"]["hot"] is True
        kind, dataset = FEED_KINDS["events"], syncer.datasets["events"]
        assert syncer.is_hot(kind, dataset, NOW) is True
        assert syncer.is_hot(kind, dataset, NOW + timedelta(days=30)) is False
    finally:
        await client.close()


async def test_a_long_list_fetched_again_is_compared_with_turns_for_others() -> None:
    """A full list of thousands of held items, fetched again: checking each against the
    one held and replacing the list give the loop turns in between (all equal, 50,000
    took 74 ms to compare in one piece), and a list that did not change makes no new
    generation, one edited item does."""
    from calfeed.dataset import Dataset
    from calfeed.feeds import FEED_KINDS
    from calfeed.steps import in_turns
    from calfeed.sync import _usable

    generations = iter(range(1, 100))
    dataset = Dataset("events", lambda: next(generations))
    items = [make_event(i) for i in range(6_000)]
    dataset.replace("upcoming", items, NOW)
    assert dataset.snapshot is not None
    before = dataset.snapshot.generation
    again = json.loads(json.dumps(items))  # (equal, new objects: as fetched anew)
    async with counting_turns() as checking:
        kept = await in_turns(_usable(FEED_KINDS["events"], dataset, "upcoming", again))
    async with counting_turns() as replacing:
        await in_turns(dataset.replacing("upcoming", kept, NOW + timedelta(minutes=5)))
    # (6,000 items read, then compared, each in slices of 2,000)
    assert checking[0] >= 2 and replacing[0] >= 5, (checking, replacing)
    assert dataset.snapshot.generation == before
    assert dataset.parts["upcoming"].synced_at == NOW + timedelta(minutes=5)
    # the held items stay, as the snapshot holds them (not a second copy of the dataset)
    assert dataset.parts["upcoming"].items["0"] is dataset.snapshot.items[0] is items[0]
    edited = [*again[:-1], dict(again[-1], name="Moved")]
    await in_turns(dataset.replacing("upcoming", edited, NOW + timedelta(minutes=10)))
    assert dataset.snapshot.generation > before
    assert dataset.parts["upcoming"].items["5999"]["name"] == "Moved"


def test_lists_that_moved_drop_no_more_than_can_have_left() -> None:
    # each list lacks two held items, one of them moved out of reach: one left LL2, and
    # however long both are lacked, no more than one goes at a time
    from calfeed.dataset import SHIFTED_MISSES, Dataset

    generations = iter(range(1, 100))
    dataset = Dataset("events", lambda: next(generations))
    dataset.replace("upcoming", [make_event(i) for i in range(1, 6)], NOW)
    read = [make_event(i) for i in range(1, 4)]
    dropped = [dataset.merge("upcoming", read, NOW, unread=1) for _ in range(SHIFTED_MISSES)]
    assert dropped == [0] * (SHIFTED_MISSES - 1) + [1]
    assert len(dataset.parts["upcoming"].items) == 4
    # as many lacking as moved out of reach: nothing need have left, nothing goes
    assert dataset.merge("upcoming", read, NOW, unread=1) == 0
    # a list read whole forgets the counts
    dataset.replace("upcoming", [make_event(i) for i in range(1, 6)], NOW)
    assert dataset.parts["upcoming"].missed == {}
    # a full refresh, whole or moved, has read what fetches of changes missed: they ask
    # from its time again, not from ever further back
    for unread in (None, 1):
        dataset.parts["upcoming"].changes_from = NOW - timedelta(hours=5)
        if unread is None:
            dataset.replace("upcoming", read, NOW)
        else:
            dataset.merge("upcoming", read, NOW, unread=unread)
        assert dataset.parts["upcoming"].changes_from is None


def test_what_lists_that_moved_left_is_kept_with_the_state() -> None:
    # a restart, or a new leader reading the service's data, goes on counting and asks
    # for changes from where the moved fetch left off; what does not fit is let go
    from calfeed.dataset import Dataset

    generations = iter(range(1, 100))
    dataset = Dataset("events", lambda: next(generations))
    dataset.replace("upcoming", [make_event(i) for i in range(1, 6)], NOW)
    dataset.merge("upcoming", [make_event(i) for i in range(1, 4)], NOW, unread=1)
    part = dataset.parts["upcoming"]
    part.changes_from = NOW - timedelta(minutes=20)
    state = json.loads(json.dumps(dataset.to_state()))
    restored = Dataset("events", lambda: next(generations))
    restored.load_state(state)
    again = restored.parts["upcoming"]
    assert again.missed == part.missed == {"4": 1, "5": 1}
    assert again.changes_from == part.changes_from
    upcoming = state["parts"]["upcoming"]
    upcoming.update(changes_from=(NOW + timedelta(hours=1)).isoformat(),
                    missed={"4": "many", "99": 2, "5": 2})
    restored.load_state(state)
    assert restored.parts["upcoming"].changes_from is None
    assert restored.parts["upcoming"].missed == {"5": 2}
    upcoming.update(changes_from="yesterday", missed=[1])
    restored.load_state(state)
    assert restored.parts["upcoming"].changes_from is None
    assert restored.parts["upcoming"].missed == {}


@pytest.mark.parametrize("later_in", ["past", "upcoming"])
def test_an_item_in_both_lists_is_the_copy_ll2_edited_last(later_in: str) -> None:
    # gone past while the upcoming list kept its old copy (its full refresh failing, or
    # moving at every read): the past list's newer copy is served, not the stale one
    from calfeed.dataset import Dataset

    generations = iter(range(1, 100))
    dataset = Dataset("events", lambda: next(generations))
    old = make_event(7, name="Old", last_updated="2026-11-28T10:00:00Z")
    new = make_event(7, name="New", last_updated="2026-11-29T10:00:00+00:00")
    dataset.replace("upcoming", [make_event(1), new if later_in == "upcoming" else old], NOW)
    dataset.replace("past", [make_event(2), old if later_in == "upcoming" else new], NOW)
    assert dataset.snapshot is not None
    names = {item["id"]: item["name"] for item in dataset.snapshot.items}
    assert names[7] == "New" and len(names) == 3
    restored = Dataset("events", lambda: next(generations))
    restored.load_state(json.loads(json.dumps(dataset.to_state())))
    assert restored.snapshot is not None
    assert {i["id"]: i["name"] for i in restored.snapshot.items} == names
    # (where the times cannot be told apart, the upcoming copy, as before)
    dataset.replace("past", [dict(new, name="Other", last_updated="soon")], NOW)
    assert {i["id"]: i["name"] for i in dataset.snapshot.items}[7] == (
        "New" if later_in == "upcoming" else "Old")


def test_a_follower_reading_the_dataset_again_keeps_one_copy_of_what_did_not_change() -> None:
    from calfeed.dataset import Dataset

    generations = iter(range(1, 100))
    leader = Dataset("events", lambda: next(generations))
    leader.replace("upcoming", [make_event(i) for i in range(5)], NOW)
    leader.replace("past", [make_event(9, "2026-11-20T10:00:00Z")], NOW)
    follower = Dataset("events", lambda: next(generations))
    follower.load_state(json.loads(json.dumps(leader.to_state())))
    held = dict(follower.parts["upcoming"].items)
    leader.merge("upcoming", [make_event(3, name="Moved", last_updated="2026-11-29T13:00:00Z")],
                 NOW + timedelta(minutes=15))
    follower.load_state(json.loads(json.dumps(leader.to_state())))  # (all new objects)
    now_held = follower.parts["upcoming"].items
    assert [now_held[k] is held[k] for k in sorted(held)] == [True, True, True, False, True]
    assert now_held["3"]["name"] == "Moved"
    assert follower.snapshot is not None and follower.snapshot.items == tuple(
        {**follower.parts["past"].items, **now_held}.values())


def test_a_list_compared_while_the_state_was_loaded_anew_is_not_written() -> None:
    """A follower's load (or a reset) while a fetched list was being compared in steps:
    the list, of older data, does not overwrite what was loaded."""
    from calfeed.dataset import Dataset

    generations = iter(range(1, 100))
    dataset = Dataset("events", lambda: next(generations))
    dataset.replace("upcoming", [make_event(i) for i in range(3_000)], NOW)
    loaded = Dataset("events", lambda: next(generations))
    loaded.replace("upcoming", [make_event(9_999)], NOW + timedelta(minutes=1))
    steps = dataset.replacing("upcoming", [make_event(i, name="Late") for i in range(3_000)],
                              NOW + timedelta(minutes=5))
    next(steps)
    dataset.load_state(loaded.to_state())
    assert dataset.snapshot is not None
    generation = dataset.snapshot.generation
    for _ in steps:
        pass
    # (nor does it publish the loaded data again as a new generation: every feed made anew)
    assert dataset.snapshot.generation == generation
    assert list(dataset.parts["upcoming"].items) == ["9999"]
    assert dataset.snapshot is not None and [i["id"] for i in dataset.snapshot.items] == [9999]


async def test_a_follower_loads_a_large_dataset_with_turns_for_others() -> None:
    """A follower's new data (the leader's state, decoded) is taken in a slice at a time,
    and comes out as a load all at once does."""
    from calfeed.dataset import Dataset
    from calfeed.steps import in_turns

    generations = iter(range(1, 100))
    leader = Dataset("events", lambda: next(generations))
    leader.replace("upcoming", [make_event(i) for i in range(6_000)], NOW)
    state = json.loads(json.dumps(leader.to_state()))
    stepped = Dataset("events", lambda: next(generations))
    async with counting_turns() as turns:
        await in_turns(stepped.loading_state(state))
    assert turns[0] >= 3, turns  # (6,000 items in slices of 2,000)
    at_once = Dataset("events", lambda: next(generations))
    at_once.load_state(state)
    assert stepped.to_state() == at_once.to_state() == leader.to_state()
    assert stepped.snapshot is not None and len(stepped.snapshot.items) == 6_000
