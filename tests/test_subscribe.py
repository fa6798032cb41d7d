"""What the subscribe page needs from the server: canonical URLs, client links, reminders,
/events.json, the public base URL; and the page itself rendered without JavaScript."""

from __future__ import annotations

import json
from datetime import timedelta
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlencode

import pytest

from calfeed.feeds import FEED_KINDS
from calfeed.links import MAX_FEED_URL, canonical_query, feed_links
from calfeed.page import embed_snippet, environment
from calfeed.query import parse_query
from calfeed.server import RENDERER
from tests.fake_ll2 import FakeLL2
from tests.helpers import Clock, later, make_event
from tests.ics_helpers import by_uid, uids

KIND = FEED_KINDS["events"]
PARAMS = KIND.params(30)


def canonical(*pairs: tuple[str, str]) -> str:
    return canonical_query(PARAMS, parse_query(PARAMS, list(pairs)))


@pytest.mark.parametrize(
    ("pairs", "expected"),
    [
        ((), ""),
        ((("type", "8,2"), ("type", "2")), "type=2,8"),
        ((("agency__ids", "44"), ("type", "6")), "type=6&agency=44"),
        ((("precision", "month"), ("past_days", "7")), ""),  # defaults left out
        ((("precision", "DAY"), ("past_days", "0")), "past_days=0&precision=day"),
        ((("search", "  Crew Dragon & co/1 "),), "search=Crew%20Dragon%20%26%20co%2F1"),
        ((("search", "it's (big)*!"),), "search=it's%20(big)*!"),
        ((("alarm", "60,10"), ("download", "1")), "alarm=10,60"),
        ((("utm_source", "x"), ("program", "17")), "program=17"),
    ],
)
def test_canonical_query(pairs: tuple[tuple[str, str], ...], expected: str) -> None:
    assert canonical(*pairs) == expected


def test_client_link_forms() -> None:
    links = feed_links("https://cal.example.org/", "events", "type=2,8", "Space events: Docking")
    assert links.https == "https://cal.example.org/events.ics?type=2,8"
    assert links.webcal == "webcal://cal.example.org/events.ics?type=2,8"
    assert links.google == ("https://calendar.google.com/calendar/render?cid="
                            "webcal%3A%2F%2Fcal.example.org%2Fevents.ics%3Ftype%3D2%2C8")
    assert links.outlook == (
        "https://outlook.live.com/calendar/0/addfromweb?url=https%3A%2F%2Fcal.example.org"
        "%2Fevents.ics%3Ftype%3D2%2C8&name=Space%20events%3A%20Docking")
    assert links.office365 == links.outlook.replace("outlook.live.com", "outlook.office.com")
    assert links.download == "https://cal.example.org/events.ics?type=2,8&download=1"
    assert links.page == "https://cal.example.org/?type=2,8"
    assert not links.too_long
    plain = feed_links("http://localhost:8080", "events", "", "Space events")
    assert plain.download == "http://localhost:8080/events.ics?download=1"
    embed = embed_snippet(environment(), links, "Space events: <Docking>")
    assert 'href="https://cal.example.org/?type=2,8"' in embed
    assert "Subscribe: Space events: &lt;Docking&gt;" in embed


def test_256_character_limit() -> None:
    base = "https://cal.example.org"
    fits = "search=" + "a" * (MAX_FEED_URL - len(base + "/events.ics?search="))
    assert len(feed_links(base, "events", fits, "x").https) == MAX_FEED_URL
    assert not feed_links(base, "events", fits, "x").too_long
    assert feed_links(base, "events", fits + "a", "x").too_long


@pytest.fixture
def events(fake: FakeLL2) -> FakeLL2:
    fake.upcoming = [
        make_event(1, "2026-12-01T10:00:00Z", name="Progress Docking", type_id=2,
                   agencies=(63,), programs=(17,),
                   vid_urls=[{"priority": 10, "publisher": "NASA", "title": "Live",
                              "url": "https://v.example/1", "live": True}]),
        make_event(2, "2026-12-31T00:00:00Z", name="Juice flyby", type_id=23,
                   type_name="Flyby", agencies=(27,), precision=7),
        make_event(3, "2026-12-04T00:00:00Z", name="Starliner docking", type_id=2,
                   agencies=(44,), precision=5),
    ]
    return fake


async def test_alarms_on_timed_events_only(events: FakeLL2, calfeed: Any) -> None:
    client = await calfeed()
    body = await (await client.get("/events.ics?alarm=60,10")).read()
    feed = by_uid(body)
    timed = feed["ll2-event-1@calfeed"]
    triggers = sorted(a.decoded("TRIGGER") for a in timed.walk("VALARM"))
    assert triggers == [timedelta(minutes=-60), timedelta(minutes=-10)]
    assert all(str(a["ACTION"]) == "DISPLAY" for a in timed.walk("VALARM"))
    assert all(str(a["DESCRIPTION"]) == "Progress Docking" for a in timed.walk("VALARM"))
    assert list(feed["ll2-event-2@calfeed"].walk("VALARM")) == []
    assert list(feed["ll2-event-3@calfeed"].walk("VALARM")) == []
    plain = await (await client.get("/events.ics")).read()
    assert b"VALARM" not in plain  # off by default


@pytest.mark.parametrize("value", ["-5", "soon", "10081", "1,2,3,4,5"])
async def test_bad_alarm_is_400(events: FakeLL2, calfeed: Any, value: str) -> None:
    client = await calfeed()
    response = await client.get(f"/events.ics?alarm={value}")
    assert response.status == 400
    assert "'alarm'" in await response.text()


async def test_events_json_lists_what_the_feed_contains(events: FakeLL2, calfeed: Any) -> None:
    client = await calfeed(public_url="https://cal.example.org")
    for query in ("", "?type=2", "?precision=day", "?agency=27&precision=any"):
        feed = await (await client.get("/events.ics" + query)).read()
        response = await client.get("/events.json" + query)
        assert response.headers["Access-Control-Allow-Origin"] == "*"
        data = await response.json()
        assert [f"ll2-event-{e['id']}@calfeed" for e in data["events"]] == uids(feed)
        assert data["count"] == len(data["events"])
        assert data["feed_url"] == "https://cal.example.org/events.ics" + query
    data = await (await client.get("/events.json")).json()
    found = {e["id"]: e for e in data["events"]}
    first, month = found["1"], found["2"]
    assert first == {
        "id": "1", "name": "Progress Docking", "title": "Progress Docking",
        "type": [{"id": 2, "name": "Docking"}],
        "tags": ["Docking"],
        "start": "2026-12-01T10:00:00Z", "end": "2026-12-01T11:00:00Z", "all_day": False,
        "precision": {"id": 1, "level": "minute", "words": "2026-12-01 10:00 UTC",
                      "label": None},
        "location": "International Space Station", "url": "https://v.example/1",
        "webcasts": [{"url": "https://v.example/1", "label": "NASA: Live", "live": True}],
        "links": [], "agencies": [{"id": 63, "name": "A63"}],
        "programs": [{"id": 17, "name": "Program 17"}],
    }
    assert (month["start"], month["end"], month["all_day"]) == ("2026-12-01", "2027-01-01", True)
    assert month["precision"]["words"] == "Dec 2026"
    response = await client.get("/events.json?type=x")
    assert response.status == 400


async def test_items_are_converted_to_json_once_per_version(
    events: FakeLL2, calfeed: Any, clock: Clock
) -> None:
    client = await calfeed()
    renderer = client.app[RENDERER]
    for query in ("", "?type=2", "?precision=any", ""):
        response = await client.get("/events.json" + query)
        assert response.content_type == "application/json"
        assert (await response.json())["events"]
    await client.get("/")
    assert renderer.items_shown_as_json == 3
    # a changed event is converted again, and the old version's text is not served
    clock.advance(600)
    events.upcoming[0] = make_event(1, "2026-12-01T12:00:00Z", name="Progress Docking",
                                    last_updated="2026-11-29T12:05:00Z")
    await later(client, clock, 300)
    data = await (await client.get("/events.json")).json()
    assert {e["id"]: e["start"] for e in data["events"]}["1"] == "2026-12-01T12:00:00Z"
    assert renderer.items_shown_as_json == 4


async def test_public_base_url(events: FakeLL2, calfeed: Any) -> None:
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "cal.example.org"}
    client = await calfeed()
    data = await (await client.get("/events.json", headers=forwarded)).json()
    assert data["feed_url"].startswith("http://127.0.0.1:")  # proxy headers not trusted
    trusting = await calfeed(trust_proxy=True)
    data = await (await trusting.get("/events.json", headers=forwarded)).json()
    assert data["feed_url"] == "https://cal.example.org/events.ics"
    fixed = await calfeed(public_url="https://feeds.example.net/", trust_proxy=True)
    page = await (await fixed.get("/?type=2", headers=forwarded)).text()
    assert 'href="webcal://feeds.example.net/events.ics?type=2"' in page


async def test_page_without_javascript(events: FakeLL2, calfeed: Any) -> None:
    client = await calfeed(public_url="https://cal.example.org")
    response = await client.get("/?type__ids=2&agency=44&precision=day&alarm=60")
    assert response.status == 200
    page = await response.text()
    assert '<code id="feed-url">https://cal.example.org/events.ics?type=2&amp;agency=44' \
           '&amp;precision=day&amp;alarm=60</code>' in page
    assert 'name="type" value="2" checked' in page
    assert 'name="agency" value="44" checked' in page
    assert '<option value="day" selected>' in page
    assert 'name="alarm" value="60" checked' in page
    assert 'data-id="3"' in page and 'data-id="1"' not in page
    assert "1 event in this feed" in page
    # every type LL2 knows is offered, not only those in the data
    assert "Never seen in the data" in page
    # the agency list has full names, abbreviations beside them
    assert "Agency 44 (A44)" in page
    for resource in ("/static/calfeed.css", "/static/calfeed.js", "/static/favicon.svg"):
        assert resource in page
        assert (await client.get(resource)).status == 200
    assert "http://" not in page.replace("http://127.0.0.1", "")  # nothing from other sites


async def test_the_page_keeps_choices_the_data_does_not_hold(
    events: FakeLL2, calfeed: Any,
) -> None:
    # sent again by the form (without the script too), an old link's choices stay chosen
    client = await calfeed()
    page = await (await client.get("/?type=999&agency=44&program=4242")).text()
    for name, value in (("type", 999), ("program", 4242)):
        assert (f'<input type="checkbox" name="{name}" value="{value}" checked> '
                f"not in the current data <small>#{value}</small>") in page
    assert '<input type="checkbox" name="agency" value="44" checked>' in page
    page = await (await client.get("/?feed=launches&family=Saturn")).text()
    assert ('<input type="checkbox" name="family" value="saturn" checked> saturn (not in the '
            "current data)") in page


class FormFields(HTMLParser):
    """What the builder form sends when submitted without JavaScript: hidden and typed
    fields as they stand, ticked boxes and the selected option."""

    def __init__(self) -> None:
        super().__init__()
        self.pairs: list[tuple[str, str]] = []
        self.inside = False
        self.select: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {key: value or "" for key, value in attrs}
        if tag == "form":
            self.inside = found.get("id") == "builder"
        if not self.inside or "disabled" in found:
            return
        if tag == "input" and "name" in found:
            if found.get("type") not in ("checkbox", "radio") or "checked" in found:
                self.pairs.append((found["name"], found.get("value", "")))
        elif tag == "select":
            self.select = found["name"]
        elif tag == "option" and self.select and "selected" in found:
            self.pairs.append((self.select, found["value"]))

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.inside = False
        elif tag == "select":
            self.select = None


def form_fields(page: str) -> list[tuple[str, str]]:
    parser = FormFields()
    parser.feed(page)
    return parser.pairs


def feed_url(page: str) -> str:
    return page.split('<code id="feed-url">', 1)[1].split("</code>", 1)[0].replace("&amp;", "&")


async def test_a_reminder_the_page_has_no_box_for_is_kept(events: FakeLL2, calfeed: Any) -> None:
    # an edited or older link's reminder: listed and ticked among the offered ones, so
    # that submitting the form (or any change the script makes) keeps it
    client = await calfeed(public_url="https://cal.example.org")
    page = await (await client.get("/?alarm=15&type=2")).text()
    assert ('<input type="checkbox" name="alarm" value="15" checked> 15 minutes before'
            in page)
    assert '<input type="checkbox" name="alarm" value="10"> 10 minutes before' in page
    submitted = form_fields(page)
    assert ("alarm", "15") in submitted
    again = await client.get("/?" + urlencode(submitted))
    assert again.status == 200
    page = await again.text()
    assert feed_url(page) == "https://cal.example.org/events.ics?type=2&alarm=15"
    assert 'name="alarm" value="15" checked' in page
    # four reminders (the most a feed takes), each in words like the offered ones
    page = await (await client.get("/?alarm=0,90,120,2880")).text()
    for minutes, words in ((0, "0 minutes"), (90, "90 minutes"), (120, "2 hours"),
                           (2880, "2 days")):
        assert (f'<input type="checkbox" name="alarm" value="{minutes}" checked> {words} '
                "before") in page
    assert page.count('name="alarm"') == 8


async def test_past_days_cleared_in_the_form_is_the_default(
    events: FakeLL2, calfeed: Any,
) -> None:
    # without the script the form sends the emptied field as past_days=
    client = await calfeed(public_url="https://cal.example.org")
    page = await (await client.get("/?type=2")).text()
    submitted = [(name, "" if name == "past_days" else value)
                 for name, value in form_fields(page)]
    assert ("past_days", "") in submitted
    response = await client.get("/?" + urlencode(submitted))
    assert response.status == 200
    page = await response.text()
    assert '<p class="error" role="alert">' not in page
    assert feed_url(page) == "https://cal.example.org/events.ics?type=2"
    assert ("past_days", "7") in form_fields(page)  # (the field shows what the feed keeps)
    response = await client.get("/?past_days=")
    assert response.status == 200
    assert '<p class="error" role="alert">' not in await response.text()


async def test_page_with_bad_parameter_says_so(events: FakeLL2, calfeed: Any) -> None:
    client = await calfeed()
    response = await client.get("/?precision=fortnight")
    assert response.status == 400
    assert "invalid value &#39;fortnight&#39; for parameter &#39;precision&#39;" in (
        await response.text())


async def test_page_when_upstream_is_down(fake: FakeLL2, calfeed: Any) -> None:
    fake.fail_times = -1
    client = await calfeed()
    response = await client.get("/")
    assert response.status == 200
    assert "The event data is not available yet" in await response.text()
    # nothing is known of what the data holds: an old link's choice is kept and ticked,
    # not called absent, and the empty lists do not say the data has none
    page = await (await client.get("/?type=999")).text()
    assert ('<input type="checkbox" name="type" value="999" checked> chosen '
            "<small>#999</small>") in page
    assert "not in the current data" not in page and "None in the current data" not in page
    assert "Listed once the data is available." in page
    assert '<span class="note" data-total="">(1 chosen)</span>' in page  # (no "(0)")
    # and the feed is not called empty
    assert "0 events in this feed" not in page
    assert "No preview yet; the feed link works." in page
    # (and what the script says after a later preview finds no data either)
    config = json.loads(page.split('id="calfeed-config">', 1)[1].split("</script>", 1)[0])
    assert config["notYet"] == "No preview yet; the feed link works."


async def test_launches_page_without_javascript(fake: FakeLL2, calfeed: Any) -> None:
    import copy
    import json
    import pathlib

    fake.launches_upcoming = copy.deepcopy(json.loads(
        (pathlib.Path(__file__).parent / "data" / "launches-2.3.0.json").read_text())["results"])
    client = await calfeed(public_url="https://cal.example.org")
    page = await (await client.get("/?feed=launches&provider=121&family=falcon")).text()
    assert '<input type="hidden" name="feed" value="launches">' in page
    assert ('<code id="feed-url">https://cal.example.org/launches.ics?provider=121'
            '&amp;family=falcon</code>') in page
    assert 'name="family" value="falcon" checked' in page
    assert "Launch sites" in page and "Kennedy Space Center, FL, USA" in page
    # the embed snippet (escaped once more inside its textarea) links to this page
    assert "https://cal.example.org/?feed=launches&amp;amp;provider=121&amp;amp;family=falcon" \
        in page
    assert (await client.get("/?feed=rockets")).status == 400


async def test_ll2s_own_changed_since_and_ordering(events: FakeLL2, calfeed: Any) -> None:
    events.upcoming[0]["last_updated"] = "2026-11-28T10:00:00Z"
    events.upcoming[2]["last_updated"] = "2026-11-29T09:00:00Z"
    client = await calfeed()
    since = "last_updated__gte=2026-11-28T00:00:00Z"
    data = await (await client.get(f"/events.json?{since}&ordering=-last_updated")).json()
    assert [e["id"] for e in data["events"]] == ["3", "1"]
    data = await (await client.get(f"/events.json?{since}&ordering=last_updated")).json()
    assert [e["id"] for e in data["events"]] == ["1", "3"]
    # a feed of what changed: the same filter in the .ics
    feed = await (await client.get(f"/events.ics?{since}")).read()
    assert uids(feed) == ["ll2-event-1@calfeed", "ll2-event-3@calfeed"]
    older = await (await client.get("/events.ics?last_updated__lte=2026-11-27")).read()
    assert "ll2-event-1@calfeed" not in uids(older) and uids(older)
    # a calendar orders its entries itself
    response = await client.get("/events.ics?ordering=-last_updated")
    assert response.status == 400
    assert "calendar apps order a feed's entries themselves" in await response.text()
    bad = await client.get("/events.json?ordering=name")
    assert bad.status == 400 and "'ordering'" in await bad.text()
    assert (await client.get("/events.json?last_updated__gte=yesterday")).status == 400


async def test_the_pages_files_are_served_from_memory_gzipped_and_revalidated(
    events: FakeLL2, calfeed: Any,
) -> None:
    import gzip
    import pathlib

    static = pathlib.Path(__file__).resolve().parents[1] / "calfeed" / "static"
    client = await calfeed()
    for name, content_type in (("calfeed.css", "text/css"), ("calfeed.js", "text/javascript"),
                               ("favicon.svg", "image/svg+xml")):
        plain = await client.get(f"/static/{name}", headers={"Accept-Encoding": "identity"})
        assert plain.status == 200 and plain.content_type == content_type
        assert await plain.read() == (static / name).read_bytes()
        assert plain.headers["Cache-Control"] == "no-cache"  # (its URL has no version)
        packed = await client.get(f"/static/{name}", headers={"Accept-Encoding": "gzip"},
                                  auto_decompress=False)
        assert packed.headers["Content-Encoding"] == "gzip"
        assert gzip.decompress(await packed.read()) == (static / name).read_bytes()
        assert packed.headers["ETag"] != plain.headers["ETag"]  # another representation
        again = await client.get(f"/static/{name}", headers={
            "Accept-Encoding": "gzip", "If-None-Match": packed.headers["ETag"]})
        assert again.status == 304 and not await again.read()
    assert (await client.get("/static/calfeed.css")).charset == "utf-8"
    for missing in ("/static/nothing.css", "/static/..%2Fserver.py", "/static/"):
        response = await client.get(missing)
        assert response.status == 404, missing
        assert "calfeed has no page" in await response.text()
