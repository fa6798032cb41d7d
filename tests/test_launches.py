"""/launches.ics: filters, a scrub seen by a real subscriber client, both feeds on one budget."""

from __future__ import annotations

import asyncio
import copy
import json
import pathlib
import shutil
import sys
from datetime import timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from tests.fake_ll2 import FakeLL2
from tests.helpers import NOW, Clock, later, make_event, syncer_of
from tests.ics_helpers import by_uid, read_feed, uids

DATA = pathlib.Path(__file__).parent / "data"
LAUNCHES = json.loads((DATA / "launches-2.3.0.json").read_text())["results"]
LAUNCHES_22 = json.loads((DATA / "launches-2.2.0.json").read_text())["results"]


def short(uid: str) -> int:
    """The fixture number hidden in a launch UID (ll2-launch-0000002a-…)."""
    return int(uid.split("-")[2], 16)


@pytest.fixture
def launches(fake: FakeLL2) -> FakeLL2:
    fake.launches_upcoming = [copy.deepcopy(launch) for launch in LAUNCHES]
    return fake


async def launch_numbers(client: Any, query: str) -> set[int]:
    response = await client.get("/launches.ics" + query)
    assert response.status == 200, await response.text()
    return {short(uid) for uid in uids(await response.read())}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("?provider=147", {3, 6, 41, 44}),
        ("?lsp__id=147", {3, 6, 41, 44}),
        ("?rocket=26", {3, 6, 41, 44}),
        ("?family=FALCON", {1, 2, 5, 8, 40, 42, 45}),
        ("?family=long%20march&precision=day", {4, 43}),
        ("?location=12", {1, 5, 8, 42}),
        ("?pad__location=27", {2, 45}),
        ("?pad=87", {2, 45}),
        ("?program=17", {2}),
        ("?status=1,8", {1, 2, 5, 6, 40, 41}),
        ("?status=3&status=4&past_days=7", {42, 43}),
        ("?crewed=true", {2}),
        ("?crewed=false&provider=121", {1, 5, 8, 40, 42, 45}),
        ("?orbit=gto", {5, 45}),
        ("?orbit=leo&provider=121&precision=minute", {1, 2, 40, 42}),
        ("?search=owl", {3}),
        ("?search=rocket%20lab", {3, 6, 41, 44}),
        ("?search=crew-13", {2}),
    ],
)
async def test_launch_filters(
    launches: FakeLL2, calfeed: Any, query: str, expected: set[int]
) -> None:
    client = await calfeed()
    assert await launch_numbers(client, query) == expected


@pytest.mark.parametrize(
    ("query", "name"),
    [("?crewed=maybe", "crewed"), ("?provider=spacex", "provider"), ("?pad=1.5", "pad"),
     ("?launch_pad=1", "launch_pad")],
)
async def test_bad_launch_filters_are_400(
    launches: FakeLL2, calfeed: Any, query: str, name: str
) -> None:
    client = await calfeed()
    response = await client.get("/launches.ics" + query)
    assert response.status == 400
    assert f"'{name}'" in await response.text()


async def test_v220_launch_paths_and_shape(fake: FakeLL2, calfeed: Any) -> None:
    fake.launches_upcoming = copy.deepcopy(LAUNCHES_22)
    client = await calfeed("2.2.0")
    body = await (await client.get("/launches.ics?precision=any")).read()
    assert {c.path for c in fake.launch_calls()} == {"/2.2.0/launch/upcoming/",
                                                    "/2.2.0/launch/previous/"}
    events = by_uid(body)
    crs = events["ll2-launch-a0000000-2200-4000-8000-000000000001@calfeed"]
    assert crs.decoded("GEO") == (28.608227, -80.604282)  # strings in 2.2.0, to 10 cm
    assert str(crs["URL"]) == "https://www.youtube.com/watch?v=crs35"
    assert "NASA CRS-35: https://www.nasa.gov/crs-35" in str(crs["DESCRIPTION"])
    assert "GEO" not in events["ll2-launch-a0000000-2200-4000-8000-000000000002@calfeed"]
    assert await launch_numbers_v22(client, "?family=falcon%209") == {2}


async def launch_numbers_v22(client: Any, query: str) -> set[int]:
    body = await (await client.get("/launches.ics" + query)).read()
    return {int(uid.split("-")[-1].split("@")[0], 16) for uid in uids(body)}


async def test_v230_asks_for_normal_mode(launches: FakeLL2, calfeed: Any) -> None:
    client = await calfeed()
    await client.get("/launches.ics")
    calls = launches.launch_calls()
    assert {c.path for c in calls} == {"/2.3.0/launches/upcoming/", "/2.3.0/launches/previous/"}
    assert {c.query["mode"] for c in calls} == {"normal"}
    assert calls[-1].query["net__gte"] == "2026-10-30T12:00:00Z"


def crew13_docking() -> dict[str, Any]:
    """The LL2 Event of Crew-13's docking, which names the Crew-13 launch."""
    return make_event(
        7, "2026-12-03T15:00:00Z", name="Crew-13 Docking",
        launches=[{"id": LAUNCHES[1]["id"], "name": "Falcon 9 Block 5 | Crew-13"}],
        info_urls=[{"url": "https://www.nasa.gov/crew-13-docking"}],
    )


async def test_related_events_are_linked(launches: FakeLL2, calfeed: Any) -> None:
    crew13 = LAUNCHES[1]["id"]
    launches.upcoming = [crew13_docking()]
    client = await calfeed()
    body = await (await client.get("/launches.ics")).read()
    text = str(by_uid(body)[f"ll2-launch-{crew13}@calfeed"]["DESCRIPTION"])
    assert ("Related events:\n- Crew-13 Docking (2026-12-03 15:00 UTC): "
            "https://www.nasa.gov/crew-13-docking") in text
    assert "ll2-event-7@calfeed" in uids(await (await client.get("/events.ics")).read())


@pytest.mark.parametrize("shared", [False, True], ids=["one-process", "with-redis"])
async def test_a_launches_feed_is_newer_when_only_its_related_events_changed(
    shared: bool,
) -> None:
    # the events change (a docking renamed), the launches do not: the body changes with
    # its related events, and so must Last-Modified, for a client that revalidates by
    # date; also on a renderer with no history of the feed (a start, an eviction) in the
    # same time slot, and with Redis, where every process stamps by the data's time
    from calfeed.dataset import Snapshot
    from calfeed.feeds import FEED_KINDS
    from calfeed.query import parse_query
    from calfeed.render import Renderer
    from calfeed.settings import Settings

    kind = FEED_KINDS["launches"]
    query = parse_query(kind.params(30), [])
    settings = Settings(redis_url="redis://127.0.0.1:1" if shared else "")
    launches = Snapshot(tuple(LAUNCHES), NOW - timedelta(hours=2), 1)
    before = Snapshot((crew13_docking(),), NOW - timedelta(hours=2), 1)
    renamed = Snapshot(({**crew13_docking(), "name": "Crew-13 Docking, moved"},),
                       NOW + timedelta(seconds=30), 2)
    first = await Renderer(settings, lambda: NOW).render(
        kind, query, launches, NOW, {"events": before})
    # (a renderer of its own: no history of the feed, and the same five-minute slot)
    later_on = NOW + timedelta(minutes=1)
    second = await Renderer(settings, lambda: later_on).render(
        kind, query, launches, later_on, {"events": renamed})
    assert b"moved" in second.body and second.etag != first.etag
    assert second.last_modified > first.last_modified


async def test_launches_json(launches: FakeLL2, calfeed: Any) -> None:
    client = await calfeed()
    data = await (await client.get("/launches.json?provider=121&precision=minute")).json()
    feed = await (await client.get("/launches.ics?provider=121&precision=minute")).read()
    assert [f"ll2-launch-{item['id']}@calfeed" for item in data["launches"]] == uids(feed)
    starlink = next(item for item in data["launches"] if "12-3" in item["name"])
    assert (starlink["start"], starlink["end"]) == ("2026-12-01T03:15:00Z",
                                                    "2026-12-01T07:45:00Z")
    assert starlink["provider"] == [{"id": 121, "name": "SpaceX", "abbrev": "SpX"}]
    assert starlink["crewed"] is False and starlink["orbit"] == "LEO (Low Earth Orbit)"


async def test_a_normal_mode_launch_shows_the_webcasts_listed_under_its_mission(
    launches: FakeLL2, calfeed: Any
) -> None:
    # a 2.3.0 launch in normal mode (what calfeed asks LL2 for) has no vid_urls of its
    # own: its webcasts are its mission's, and the launch says that one is live
    assert all("vid_urls" not in launch for launch in LAUNCHES)
    client = await calfeed()
    events = by_uid(await (await client.get("/launches.ics")).read())
    starlink = events[f"ll2-launch-{LAUNCHES[0]['id']}@calfeed"]
    assert str(starlink["URL"]) == "https://x.com/i/broadcasts/starlink123"
    assert ("Webcasts:\n- SpaceX: Starlink Mission: https://x.com/i/broadcasts/starlink123"
            in str(starlink["DESCRIPTION"]))
    in_flight = events[f"ll2-launch-{LAUNCHES[-1]['id']}@calfeed"]
    assert str(in_flight["URL"]) == "https://www.youtube.com/watch?v=inflight"
    assert ("Webcasts:\n- [LIVE] SpaceX: Launch webcast: "
            "https://www.youtube.com/watch?v=inflight") in str(in_flight["DESCRIPTION"])
    data = await (await client.get("/launches.json?search=in%20flight%20now")).json()
    assert [item["webcasts"] for item in data["launches"]] == [[{
        "url": "https://www.youtube.com/watch?v=inflight", "label": "SpaceX: Launch webcast",
        "live": True}]]


def test_a_launchs_own_webcasts_come_first_and_each_is_listed_once() -> None:
    from calfeed.feeds.launches import launch_to_vevent
    from calfeed.vevent import MappingOptions

    launch = copy.deepcopy(LAUNCHES[0])
    launch.update(webcast_live=True, vid_urls=[
        {"priority": 1, "publisher": "SpaceX", "url": "https://v.example/spacex"}])
    launch["mission"]["vid_urls"] = [
        {"priority": 10, "publisher": "NASA", "url": "https://v.example/nasa"},
        {"priority": 9, "publisher": "Copy", "url": "https://v.example/spacex"},
        {"priority": 8, "publisher": "Bad", "url": "javascript:alert(1)"},
    ]
    vevent = launch_to_vevent(launch, MappingOptions())
    assert ("Webcasts:\n- [LIVE] SpaceX: https://v.example/spacex\n"
            "- NASA: https://v.example/nasa\n\n") in str(vevent["DESCRIPTION"])
    assert str(vevent["URL"]) == "https://v.example/spacex"
    assert b"javascript" not in vevent.to_ical() and b"Copy" not in vevent.to_ical()


def test_a_launch_and_its_mission_list_twenty_info_links_at_most_each_once() -> None:
    from calfeed.feeds.launches import launch_to_vevent
    from calfeed.readers import MAX_LISTED
    from calfeed.vevent import MappingOptions

    launch = copy.deepcopy(LAUNCHES[0])
    launch["info_urls"] = [{"priority": 50 - n, "title": f"Own {n}",
                            "url": f"https://i.example/own/{n}"} for n in range(15)]
    launch["mission"]["info_urls"] = [
        {"priority": 1, "title": "Again", "url": "https://i.example/own/0"},
        *({"priority": 40 - n, "title": f"Mission {n}", "url": f"https://i.example/m/{n}"}
          for n in range(15))]
    text = str(launch_to_vevent(launch, MappingOptions())["DESCRIPTION"])
    links = text.split("Links:\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert len(links) == MAX_LISTED
    assert links[0] == "- Own 0: https://i.example/own/0" and "Again" not in text
    assert links[15:] == [f"- Mission {n}: https://i.example/m/{n}" for n in range(5)]


@pytest.mark.parametrize(
    ("window_start", "window_end", "start", "end", "reason"),
    [
        # a window that holds the NET, instantaneous or hours long: the window
        ("2026-12-10T10:00:00Z", "2026-12-10T12:00:00Z", "2026-12-10T10:00", "2026-12-10T12:00",
         None),
        ("2026-12-10T09:00:00Z", "2026-12-11T09:00:00Z", "2026-12-10T09:00", "2026-12-11T09:00",
         None),
        ("2026-12-10T10:00:00Z", "2026-12-10T10:00:00Z", "2026-12-10T10:00", "2026-12-10T10:45",
         None),
        (None, None, "2026-12-10T10:00", "2026-12-10T10:45", None),
        # a scrub that moved the NET and not the window: on the NET's day, not the window's
        ("2026-12-06T10:00:00Z", "2026-12-06T12:00:00Z", "2026-12-10T10:00", "2026-12-10T10:45",
         "the NET is outside it"),
        # an end (or start) years away: no entry under way for years
        ("2026-12-10T10:00:00Z", "2031-12-10T12:00:00Z", "2026-12-10T10:00", "2026-12-10T10:45",
         "longer than 24 hours"),
        ("2020-01-01T00:00:00Z", "2026-12-10T11:00:00Z", "2026-12-10T10:00", "2026-12-10T10:45",
         "longer than 24 hours"),
        ("2026-12-10T10:00:00Z", "soon", "2026-12-10T10:00", "2026-12-10T10:45",
         "not two timestamps"),
    ],
)
def test_a_launch_is_timed_by_its_window_only_where_the_window_holds_its_net(
    caplog: pytest.LogCaptureFixture, window_start: str | None, window_end: str | None,
    start: str, end: str, reason: str | None,
) -> None:
    from datetime import UTC, datetime

    from calfeed.feeds import FEED_KINDS
    from calfeed.feeds.launches import _log_ignored_window
    from calfeed.vevent import MappingOptions

    _log_ignored_window.cache_clear()  # (a window is logged once per process)
    kind = FEED_KINDS["launches"]
    launch = copy.deepcopy(LAUNCHES[0])
    launch.update(id="0000beef-0000-4000-8000-000000000001", net="2026-12-10T10:00:00Z",
                  window_start=window_start, window_end=window_end)
    options = MappingOptions(default_duration=timedelta(minutes=45))
    entry = kind.entry(launch, options)
    vevent = kind.to_vevent(launch, options, {})
    expected = tuple(datetime.fromisoformat(t).replace(tzinfo=UTC) for t in (start, end))
    assert (vevent.decoded("DTSTART"), vevent.decoded("DTEND")) == expected
    assert (entry.timing.start_utc, entry.timing.end_utc) == expected
    assert "NET: 2026-12-10 10:00 UTC" in str(vevent["DESCRIPTION"])
    # one line for an ignored window, however often the launch is read
    lines = [r.getMessage() for r in caplog.records if "window=ignored" in r.getMessage()]
    assert lines == ([] if reason is None else [
        f"window=ignored kind=launches id='0000beef-0000-4000-8000-000000000001' "
        f"start={parse_or_none(window_start)} end={parse_or_none(window_end)} "
        f"reason={reason!r}: timed by its NET"])


def parse_or_none(value: str | None) -> str | None:
    from calfeed.readers import parse_datetime

    when = parse_datetime(value)
    return when.isoformat() if when else None


async def test_a_window_years_long_does_not_keep_a_past_launch_in_the_feed(
    fake: FakeLL2, calfeed: Any
) -> None:
    # NET two days ago, the window's end left years on: the launch is over, and a feed
    # of one past day leaves it out (as it leaves out one with a real window)
    net = NOW - timedelta(days=2)
    stale, real = copy.deepcopy(LAUNCHES[0]), copy.deepcopy(LAUNCHES[1])
    stale.update(net=net.strftime("%Y-%m-%dT%H:%M:%SZ"),
                 window_start=net.strftime("%Y-%m-%dT%H:%M:%SZ"),
                 window_end=(net + timedelta(days=5 * 365)).strftime("%Y-%m-%dT%H:%M:%SZ"))
    real.update(net=net.strftime("%Y-%m-%dT%H:%M:%SZ"),
                window_start=net.strftime("%Y-%m-%dT%H:%M:%SZ"),
                window_end=(net + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ"))
    fake.launches_upcoming = [stale, real]
    client = await calfeed()
    assert await launch_numbers(client, "?past_days=1") == set()
    assert await launch_numbers(client, "?past_days=3") == {1, 2}


def _vdirsyncer() -> str:
    # (a test dependency, installed with pytest: missing, the test fails rather than skips)
    # (the one installed beside this Python first, as the test command installs it)
    beside = pathlib.Path(sys.executable).parent / "vdirsyncer"
    return str(beside) if beside.exists() else shutil.which("vdirsyncer") or str(beside)


async def _run(*args: str, cwd: pathlib.Path) -> str:
    process = await asyncio.create_subprocess_exec(
        *args, cwd=cwd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        stdin=asyncio.subprocess.PIPE,
    )
    out, _ = await asyncio.wait_for(process.communicate(b"y\n" * 5), timeout=120)
    assert process.returncode == 0, out.decode()
    return out.decode()


async def test_scrub_moves_one_entry_in_a_real_subscriber(
    fake: FakeLL2, fake_server: TestServer, clock: Clock, tmp_path: pathlib.Path,
) -> None:
    from aiohttp.test_utils import TestServer as Server

    from calfeed.server import SYNCER, create_app
    from calfeed.settings import Settings

    tuesday = NOW + timedelta(days=2, hours=3)
    launch = copy.deepcopy(LAUNCHES[0])
    launch.update(net=tuesday.strftime("%Y-%m-%dT%H:%M:%SZ"),
                  window_start=tuesday.strftime("%Y-%m-%dT%H:%M:%SZ"),
                  window_end=(tuesday + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ"))
    fake.launches_upcoming = [launch]
    settings = Settings(upstream=str(fake_server.make_url("/2.3.0")),
                        state_dir=str(tmp_path / "state"))
    app = create_app(settings, now=clock, background=False)
    async with Server(app) as server:
        feed_url = str(server.make_url("/launches.ics"))
        config = tmp_path / "config"
        config.write_text(f"""
[general]
status_path = "{tmp_path / 'status'}"

[pair launches]
a = "feed"
b = "local"
collections = null
conflict_resolution = "a wins"

[storage feed]
type = "http"
url = "{feed_url}"

[storage local]
type = "filesystem"
path = "{tmp_path / 'calendar'}"
fileext = ".ics"
""")
        (tmp_path / "calendar").mkdir()
        command = [_vdirsyncer(), "-c", str(config)]
        await _run(*command, "discover", cwd=tmp_path)
        await _run(*command, "sync", cwd=tmp_path)
        first = read_feed(await _fetch(feed_url))[0]
        stored = list((tmp_path / "calendar").glob("*.ics"))
        assert len(stored) == 1

        # scrub: Tuesday's launch moves to Thursday
        thursday = tuesday + timedelta(days=2)
        clock.advance(900)
        launch.update(net=thursday.strftime("%Y-%m-%dT%H:%M:%SZ"),
                      window_start=thursday.strftime("%Y-%m-%dT%H:%M:%SZ"),
                      window_end=(thursday + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                      last_updated=clock.current.strftime("%Y-%m-%dT%H:%M:%SZ"))
        await app[SYNCER].tick()
        second = read_feed(await _fetch(feed_url))
        assert len(second) == 1
        moved = second[0]
        assert moved["UID"] == first["UID"]
        assert moved.decoded("SEQUENCE") > first.decoded("SEQUENCE")
        assert moved.decoded("DTSTART") == thursday

        await _run(*command, "sync", cwd=tmp_path)
        stored = list((tmp_path / "calendar").glob("*.ics"))
        assert len(stored) == 1  # the subscriber has one entry, moved, not two
        # vdirsyncer stores the item as it came (one VEVENT in its own VCALENDAR)
        stored_text = stored[0].read_text()
        assert thursday.strftime("DTSTART:%Y%m%dT%H%M%SZ") in stored_text
        assert tuesday.strftime("%Y%m%dT%H%M%SZ") not in stored_text


async def _fetch(url: str) -> bytes:
    import aiohttp

    async with aiohttp.ClientSession() as session, session.get(url) as response:
        data: bytes = await response.read()
        return data


async def test_events_and_launches_share_one_budget_for_a_day(
    fake: FakeLL2, calfeed: Any, clock: Clock
) -> None:
    fake.clock = clock
    fake.rate_limit = 15
    fake.upcoming = [
        make_event(i, (NOW + timedelta(hours=7 * i)).strftime("%Y-%m-%dT%H:%M:%SZ"))
        for i in range(1, 120)
    ]
    # three pages of launches, one of them a launch tomorrow at noon (hot spell)
    fake.launches_upcoming = []
    for i in range(260):
        launch = copy.deepcopy(LAUNCHES[0])
        when = NOW + timedelta(hours=24 + 9 * i)
        launch.update(id=f"{i:08x}-1111-4000-8000-000000000000",
                      net=when.strftime("%Y-%m-%dT%H:%M:%SZ"),
                      window_start=when.strftime("%Y-%m-%dT%H:%M:%SZ"),
                      window_end=when.strftime("%Y-%m-%dT%H:%M:%SZ"))
        fake.launches_upcoming.append(launch)
    client = await calfeed()
    for minute in range(24 * 60):
        await later(client, clock, 60)
        if minute % 10 == 0:
            assert (await client.get(f"/launches.ics?provider=121&past_days={minute % 8}")
                    ).status == 200
            assert (await client.get(f"/events.ics?past_days={minute % 8}")).status == 200
    assert fake.throttled == 0
    assert fake.most_in_any_hour() <= 13
    assert len(fake.launch_calls()) > 24  # launches kept fresh all day, hot around launch
    assert len(fake.list_calls()) > 24
    syncer = syncer_of(client)
    assert syncer.datasets["launches"].parts["upcoming"].synced_at is not None
    age = (clock.current - syncer.datasets["launches"].parts["upcoming"].synced_at)
    assert age <= timedelta(minutes=30)


async def test_cli_builds_the_same_launches_feed_as_the_server(
    launches: FakeLL2, calfeed: Any, fake_server: Any
) -> None:
    from tests.helpers import NOW
    from tests.test_cli import run_cli

    crew13 = LAUNCHES[1]["id"]
    launches.upcoming = [crew13_docking()]
    client = await calfeed()
    served = await (await client.get("/launches.ics?provider=121")).read()
    launches.calls.clear()
    code, built, err = await run_cli(
        "build", "--feed", "launches", "--provider", "121", "--now", NOW.isoformat(),
        "--upstream", str(fake_server.make_url("/2.3.0")), "-o", "-")
    assert code == 0, err
    description = str(by_uid(built)[f"ll2-launch-{crew13}@calfeed"]["DESCRIPTION"])
    assert "Related events:\n- Crew-13 Docking (2026-12-03 15:00 UTC)" in description
    assert built == served
    # what a launches feed is made of: the launches and the events that name them
    assert sorted(c.path for c in launches.counted_calls()) == [
        "/2.3.0/events/previous/", "/2.3.0/events/upcoming/",
        "/2.3.0/launches/previous/", "/2.3.0/launches/upcoming/",
    ]


def test_related_events_are_found_in_steps_that_give_the_loop_its_turn() -> None:
    from calfeed.dataset import Snapshot
    from calfeed.feeds import FEED_KINDS

    kind = FEED_KINDS["launches"]
    crew13 = LAUNCHES[1]["id"]
    events = [make_event(i, "2026-12-03T15:00:00Z", name=f"Docking {i}",
                         launches=[{"id": crew13, "name": "Crew-13"}]) for i in range(1, 1001)]
    snapshots = {"events": Snapshot(tuple(events), NOW, 1)}
    steps = kind.context_steps(snapshots)
    turns = 0
    while True:
        try:
            next(steps)
        except StopIteration as done:
            made = done.value
            break
        turns += 1
    # a thousand events are read a slice at a time, with the same result as all at once
    assert turns >= 5
    assert made == kind.context(snapshots)
    # (a launch lists the first 20 of them, by date, then name: at one time, by name)
    assert [r.name for r in made[str(crew13)]] == sorted(
        f"Docking {i}" for i in range(1, 1001))[:20]


def test_a_launchs_related_events_are_in_date_order_whatever_the_snapshots() -> None:
    # the snapshot's order moves with every full refresh and with items moving to the
    # past: an unchanged launch keeps its bytes, and lists what comes first first
    from calfeed.dataset import Snapshot
    from calfeed.feeds import FEED_KINDS
    from calfeed.render import Renderer
    from calfeed.settings import Settings

    kind = FEED_KINDS["launches"]
    crew13 = LAUNCHES[1]["id"]
    events = [make_event(1, "2027-01-05T10:00:00Z", name="Docking", precision=1,
                         launches=[{"id": crew13, "name": "Crew-13"}]),
              make_event(2, "2026-12-20T10:00:00Z", name="Press", precision=7,
                         launches=[{"id": crew13, "name": "Crew-13"}]),
              make_event(3, "2027-01-05T10:00:00Z", name="Briefing", precision=1,
                         launches=[{"id": crew13, "name": "Crew-13"}])]
    bodies = []
    for order in (events, events[::-1]):
        renderer = Renderer(Settings(), lambda: NOW)
        launch = Snapshot((LAUNCHES[1],), NOW, 1)
        entry = renderer.entries(kind, launch)[0]
        context = kind.context({"events": Snapshot(tuple(order), NOW, 2)})
        bodies.append(renderer.block(kind, entry, renderer.options, context))
    assert bodies[0] == bodies[1]
    text = (bodies[0] or b"").decode().replace("\r\n ", "")
    # (by date, though "NET Dec 2026" reads after "2027-…"; then by name)
    assert text.index("Press") < text.index("Briefing") < text.index("Docking")
