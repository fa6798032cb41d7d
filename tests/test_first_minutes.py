"""What a new user meets first: an offline start that explains itself, a demo that says
so, and mistakes (a wrong path, a wrong id, the wrong input, a taken port) answered in
one clear sentence."""

from __future__ import annotations

import asyncio
import json
import logging
import pathlib
import socket
import sys
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from calfeed.server import create_app
from calfeed.settings import Settings
from tests.fake_ll2 import FakeLL2
from tests.helpers import Clock, later, make_event
from tests.test_cli import run_cli

DATA = pathlib.Path(__file__).parent / "data"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_offline_start_costs_no_budget_and_says_what_to_do(
    clock: Clock, tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(upstream=f"http://127.0.0.1:{closed_port()}/2.3.0", retry_backoff=30,
                        state_dir=str(tmp_path), cold_start_wait=1)
    async with TestClient(TestServer(create_app(settings, now=clock, background=False))) as client:
        with caplog.at_level(logging.INFO):
            response = await client.get("/events.ics")
            assert response.status == 503
            # no client jargon: which host, not how the resolver or the socket failed
            text = await response.text()
            assert "cannot reach LL2 at 127.0.0.1" in text and "Errno" not in text
            page = await (await client.get("/")).text()
            assert "The event data is not available yet; calfeed will try again" in page
            for _ in range(6):
                await later(client, clock, 1900)
        health = await (await client.get("/healthz")).json()
    kinds_tried = {word.split("=")[1] for r in caplog.records
                   if "sync=failed" in r.getMessage()
                   for word in r.getMessage().split() if word.startswith("kind=")}
    # connections that never reached LL2 cost nothing at LL2, and nothing here
    assert health["budget"]["used"] == 0
    offline = [r.getMessage() for r in caplog.records if "sync=offline" in r.getMessage()]
    assert len(offline) == 1 and "calfeed serve --demo" in offline[0]
    # one kind's failure does not keep the other from being tried
    assert {"events", "launches"} <= kinds_tried


async def test_demo_says_so_everywhere(tmp_path: pathlib.Path) -> None:
    settings = Settings(demo=True, state_dir=str(tmp_path))
    async with TestClient(TestServer(create_app(settings, background=False))) as client:
        feed = await (await client.get("/launches.ics")).text()
        assert "X-WR-CALNAME:Rocket launches (demo data)" in feed
        assert "DESCRIPTION:Demo data: a sample" in feed.replace("\r\n ", "")
        assert (await (await client.get("/healthz")).json())["demo"] is True
        assert "class=\"demo\"" in await (await client.get("/")).text()
        data = await (await client.get("/events.json")).json()
        assert data["name"].endswith("(demo data)")


async def test_live_data_has_no_demo_label(fake: FakeLL2, calfeed: Any) -> None:
    fake.upcoming = [make_event(1)]
    client = await calfeed()
    assert "demo data" not in await (await client.get("/events.ics")).text()
    assert (await (await client.get("/healthz")).json())["demo"] is False
    assert "class=\"demo\"" not in await (await client.get("/")).text()


async def test_demo_start_is_logged(tmp_path: pathlib.Path) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "calfeed", "serve", "--demo", "--port", str(closed_port()),
        "--state-dir", str(tmp_path), stderr=asyncio.subprocess.PIPE)
    assert process.stderr is not None
    try:
        line = await asyncio.wait_for(process.stderr.readline(), 20)
    finally:
        process.terminate()
        await process.wait()
    assert b"demo=on" in line and b"not LL2" in line


async def test_unknown_path_lists_what_calfeed_serves(fake: FakeLL2, calfeed: Any) -> None:
    client = await calfeed()
    response = await client.get("/event.ics")
    assert response.status == 404
    text = await response.text()
    assert "'/event.ics'" in text and "/events.ics" in text and "/launches.ics" in text
    assert "subscribe page" in text


async def test_a_name_for_an_id_says_where_the_ids_are(fake: FakeLL2, calfeed: Any) -> None:
    client = await calfeed()
    response = await client.get("/events.ics?type=docking")
    assert response.status == 400
    assert "the subscribe page at / lists them by name" in await response.text()


async def test_port_in_use_is_one_line(tmp_path: pathlib.Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, _, err = await run_cli("serve", "--demo", "--port", str(port),
                                     "--state-dir", str(tmp_path))
    assert code == 2
    last = err.decode().strip().splitlines()[-1]
    assert last.startswith("calfeed: cannot listen on 127.0.0.1:") and "--port" in last
    assert "Traceback" not in err.decode()


async def test_build_input_with_nothing_usable_exits_2(tmp_path: pathlib.Path) -> None:
    garbage = tmp_path / "oops.json"
    garbage.write_text(json.dumps({"oops": 1}))
    code, out, err = await run_cli("build", "--input", str(garbage))
    assert code == 2 and out == b""
    assert b"none of the 1 items" in err and err.count(b"\n") == 1
    # launches given to the events feed: the way to say what was meant
    code, out, err = await run_cli("build", "--input", str(DATA / "launches-2.3.0.json"))
    assert code == 2
    assert b"they look like launches: add --feed launches" in err
    assert err.count(b"\n") == 1


async def test_filter_of_another_feed_names_it() -> None:
    code, _, err = await run_cli("build", "--provider", "121", "--input", "-", stdin=b"[]")
    assert code == 2
    assert b"--provider is not a filter of the events feed; it filters --feed launches" in err


async def test_a_local_address_is_flagged_beside_the_buttons(
    fake: FakeLL2, calfeed: Any
) -> None:
    fake.upcoming = [make_event(1)]
    local = await (await (await calfeed()).get("/")).text()
    assert 'id="local-url"' in local and "CALFEED_PUBLIC_URL" in local
    public = await calfeed(public_url="https://cal.example.org")
    assert 'id="local-url"' not in await (await public.get("/")).text()


@pytest.mark.parametrize(("base", "local"), [
    ("http://127.0.0.1:8080", True), ("http://localhost", True), ("http://[::1]:8080", True),
    ("http://192.168.1.20:8080", True), ("http://10.1.2.3", True), ("http://calfeed", True),
    ("http://pi.local:8080", True), ("https://cal.example.org", False),
    ("https://93.184.216.34", False),
])
def test_which_addresses_count_as_local(base: str, local: bool) -> None:
    from calfeed.links import is_local

    assert is_local(base) is local


async def test_one_failing_kind_backs_off_while_the_other_syncs(
    fake: FakeLL2, calfeed: Any, clock: Clock
) -> None:
    fake.upcoming = [make_event(1)]
    fake.launches_upcoming = [{"id": "l-1", "name": "A launch", "net": "2026-12-01T10:00:00Z",
                               "last_updated": "2026-11-01T00:00:00Z"}]
    client = await calfeed(retry_backoff=60)
    await client.get("/events.ics")
    fake.fail_times, fake.fail_only = -1, "/events/"
    calls = len(fake.list_calls())
    for _ in range(6 * 60):
        await later(client, clock, 60)
    failing = len(fake.list_calls()) - calls
    # the backoff grows (60 s, 2 min, 4 min, … 30 min) although launches keep succeeding:
    # even with every jitter draw at its lowest (half of each wait: 30 s … 15 min) that is
    # at most 5 + 21,600 / 900 = 29 calls in 6 h; resetting it on launches' success made 56
    assert failing <= 29, failing
    assert any("/launches/" in c.path for c in fake.launch_calls()[-3:])


async def test_real_routes_still_answer_405(fake: FakeLL2, calfeed: Any) -> None:
    client = await calfeed()
    for path in ("/events.ics", "/launches.json", "/healthz", "/"):
        response = await client.post(path)
        assert response.status == 405, path


async def test_a_build_the_budget_cuts_short_exits_3(
    fake: FakeLL2, fake_server: TestServer
) -> None:
    fake.launches_upcoming = [{"id": "l-1", "name": "A launch", "net": "2030-01-01T10:00:00Z",
                               "last_updated": "2026-11-01T00:00:00Z"}]
    fake.reported_use = 12  # LL2 says the hour is nearly used up
    code, out, err = await run_cli("build", "--feed", "launches", "--upstream",
                                   str(fake_server.make_url("/2.3.0")))
    assert code == 3 and out == b""
    assert b"could not fetch all the launches feed needs" in err


async def test_the_page_keeps_what_it_has_no_field_for(fake: FakeLL2, calfeed: Any) -> None:
    fake.upcoming = [make_event(1)]
    client = await calfeed(public_url="https://cal.example.org")
    page = await (await client.get("/?last_updated__gte=2026-11-05")).text()
    assert '<input type="hidden" name="last_updated__gte" value="2026-11-05T00:00:00Z">' in page
    assert "events.ics?last_updated__gte=2026-11-05T00%3A00%3A00Z" in page


async def test_input_of_no_objects_exits_2() -> None:
    for payload in (b"[1, 2, 3]", b'{"results": [1]}'):
        code, out, err = await run_cli("build", "--input", "-", stdin=payload)
        assert code == 2 and out == b"", payload
        assert b"found none" in err


def test_ll2_style_flags() -> None:
    from calfeed.feeds import FEED_KINDS

    flags = {p.flag for p in FEED_KINDS["events"].params(30)}
    assert {"--last-updated-gte", "--last-updated-lte", "--past-days"} <= flags


async def test_fixed_choices_get_no_hint_about_the_page(fake: FakeLL2, calfeed: Any) -> None:
    client = await calfeed()
    text = await (await client.get("/launches.ics?crewed=maybe")).text()
    assert "true or false" in text and "lists them by name" not in text


async def test_a_first_sync_in_flight_stops_with_the_server(
    fake: FakeLL2, calfeed: Any, caplog: pytest.LogCaptureFixture
) -> None:
    fake.upcoming = [make_event(1)]
    # LL2 stalls: the cold request gives up waiting, the first sync goes on
    fake.stall_seconds = 5
    client = await calfeed(cold_start_wait=0.2)
    assert (await client.get("/events.ics")).status == 503

    def syncing() -> list[asyncio.Task[Any]]:
        return [task for task in asyncio.all_tasks() if not task.done()
                and getattr(task.get_coro(), "__qualname__", "") == "Syncer.tick"]

    assert syncing()
    with caplog.at_level(logging.INFO):
        await client.close()
        # nothing of the stopped server runs on (to fail later on its closed session)
        assert not syncing()
        await asyncio.sleep(0.3)
    assert not [r for r in caplog.records if "sync=" in r.getMessage()]
    # the call the cut-short sync spent is remembered by the next start
    fake.stall_seconds = 0
    again = await calfeed()
    assert (await (await again.get("/healthz")).json())["budget"]["used"] == 1
