"""Hostile LL2 data (tests/data/*hostile.json) through every output calfeed has: both
feeds, both JSON endpoints, the page, the embed snippet and the CLI. Nothing unsafe comes
out, and the good parts of the same items still do."""

from __future__ import annotations

import json
import logging
import pathlib
import re
from datetime import timedelta
from html.parser import HTMLParser
from typing import Any

import pytest

from calfeed.cli import main
from calfeed.dataset import Snapshot
from calfeed.feeds import FEED_KINDS, MAX_NAME
from calfeed.query import parse_query
from calfeed.readers import MAX_LISTED
from calfeed.render import Renderer
from calfeed.sanitize import MAX_LINE, MAX_PARAGRAPHS
from calfeed.settings import MIN_FEED_BYTES, Settings
from calfeed.vevent import ATTRIBUTION
from tests.fake_ll2 import FakeLL2
from tests.helpers import NOW, make_event
from tests.ics_helpers import read_feed, uids

DATA = pathlib.Path(__file__).parent / "data"
HOSTILE_EVENTS = json.loads((DATA / "hostile.json").read_text())["results"]
HOSTILE_LAUNCHES = json.loads((DATA / "launches-hostile.json").read_text())["results"]
EVERYTHING = "precision=any&past_days=30"
# what no link calfeed hands out may be, however it is spelt
FORBIDDEN = re.compile(r"(javascript|vbscript|data|file):|evil\.example", re.IGNORECASE)
CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
EVENTS = FEED_KINDS["events"]


@pytest.fixture
def hostile(fake: FakeLL2) -> FakeLL2:
    fake.upcoming = json.loads(json.dumps(HOSTILE_EVENTS))
    fake.launches_upcoming = json.loads(json.dumps(HOSTILE_LAUNCHES))
    return fake


def unsafe_link(text: str) -> bool:
    """Whether text names a link that is not http(s), with whitespace taken out as a
    browser would (the attribution's "Data:" is not a link)."""
    return FORBIDDEN.search(re.sub(r"\s", "", text.replace(ATTRIBUTION, ""))) is not None


def check_feed(body: bytes) -> list[Any]:
    """A feed both parsers accept, without control characters or unsafe links."""
    text = body.decode("utf-8")
    assert not CONTROL.search(text.replace("\r\n", ""))
    assert "\r" not in text.replace("\r\n", "")
    events = read_feed(body)
    for event in events:
        for name in ("URL", "IMAGE"):
            if name in event:
                assert str(event[name]).startswith(("https://", "http://")), event[name]
        for name in ("SUMMARY", "LOCATION", "DESCRIPTION"):
            value = str(event.get(name, ""))
            # what a person reads: no link to anything but the web
            assert not unsafe_link(value), (name, value)
        for name in ("SUMMARY", "LOCATION"):
            assert "\n" not in str(event.get(name, "")), "one-line properties stay one line"
    return events


def json_strings(value: Any) -> list[tuple[str, str]]:
    """Every (key, string) in a JSON document."""
    found: list[tuple[str, str]] = []
    if isinstance(value, dict):
        for key, child in value.items():
            found += [(key, child)] if isinstance(child, str) else json_strings(child)
    elif isinstance(value, list):
        for child in value:
            found += json_strings(child)
    return found


class Tags(HTMLParser):
    """Every start tag of a page with its attributes, and the text of its textareas."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.textarea: list[str] = []
        self._in_textarea = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_textarea = tag == "textarea"

    def handle_endtag(self, tag: str) -> None:
        self._in_textarea = False

    def handle_data(self, data: str) -> None:
        if self._in_textarea:
            self.textarea.append(data)


def parse_html(text: str) -> Tags:
    parser = Tags()
    parser.feed(text)
    parser.close()
    return parser


def check_page(text: str) -> None:
    """No markup from the data: no images, no scripts but calfeed's, no handlers, links
    only to the web, to calendar apps or to calfeed itself."""
    page = parse_html(text)
    tags = [tag for tag, _ in page.tags]
    assert "img" not in tags
    scripts = [attrs for tag, attrs in page.tags if tag == "script"]
    assert scripts == [{"type": "application/json", "id": "calfeed-config"},
                       {"src": "/static/calfeed.js", "defer": None}]
    for tag, attrs in page.tags:
        assert not any(name.startswith("on") for name in attrs), (tag, attrs)
        href = attrs.get("href")
        if href is not None:
            # the web, calendar apps, calfeed itself, or a place on the page
            assert href.startswith(("https://", "http://", "webcal://", "/", "#")), href
            assert not href.startswith("//"), href
    # the embed snippet is one link and nothing else
    embed = parse_html("".join(page.textarea))
    assert [tag for tag, _ in embed.tags] == ["a"]
    assert str(embed.tags[0][1]["href"]).startswith("http")


@pytest.mark.parametrize("kind", ["events", "launches"])
@pytest.mark.parametrize("extra", ["", "&alarm=10,60"])
async def test_feeds_carry_nothing_unsafe(
    hostile: FakeLL2, calfeed: Any, kind: str, extra: str
) -> None:
    client = await calfeed()
    response = await client.get(f"/{kind}.ics?{EVERYTHING}{extra}")
    assert response.status == 200
    events = check_feed(await response.read())
    # the items that are usable are all there, hostile text and all, as plain text
    expected = {"events": 11, "launches": 6}[kind]
    assert len(events) == expected
    summaries = " ".join(str(e["SUMMARY"]) for e in events)
    assert '"><img src=x onerror=alert(1)>' in summaries
    # and the good links of hostile items survive
    described = " ".join(str(e.get("DESCRIPTION", "")) for e in events)
    assert "https://good.example/" in described


@pytest.mark.parametrize("kind", ["events", "launches"])
async def test_json_carries_nothing_unsafe(hostile: FakeLL2, calfeed: Any, kind: str) -> None:
    client = await calfeed()
    response = await client.get(f"/{kind}.json?{EVERYTHING}")
    assert response.status == 200
    data = await response.json()
    assert len(data[kind]) == {"events": 11, "launches": 6}[kind]
    for key, value in json_strings(data):
        assert not CONTROL.search(value), (key, value)
        if key == "url" or key.endswith("_url"):
            assert value.startswith(("https://", "http://")), (key, value)
        assert not unsafe_link(value), (key, value)


@pytest.mark.parametrize("path", [
    f"/?{EVERYTHING}",
    f"/?feed=launches&{EVERYTHING}",
    # choices made from hostile facet values, so they are echoed in the form and the name
    "/?feed=launches&family=%22%3E%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E&"
    + EVERYTHING,
    "/?search=%3C%2Ftextarea%3E%3Cscript%3Ealert(1)%3C%2Fscript%3E",
    "/?precision=%3Cscript%3Ealert(1)%3C%2Fscript%3E",  # an error page echoing the value
])
async def test_page_carries_no_markup_from_data_or_url(
    hostile: FakeLL2, calfeed: Any, path: str
) -> None:
    client = await calfeed(public_url="https://cal.example.org")
    response = await client.get(path)
    assert response.status in (200, 400)
    text = await response.text()
    check_page(text)
    # the hostile names are shown, as text
    if response.status == 200 and "search" not in path:
        assert "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in text


async def test_hostile_host_header_makes_no_links(hostile: FakeLL2, calfeed: Any) -> None:
    client = await calfeed(trust_proxy=True)
    for headers in (
        {"X-Forwarded-Proto": "javascript", "X-Forwarded-Host": "cal.example.org"},
        {"X-Forwarded-Host": 'x"><script>alert(1)</script>'},
        {"Host": "evil.example/<script>"},
        {"Host": "cal.example.org:99999"},  # (no such port)
    ):
        response = await client.get("/events.json", headers=headers)
        assert response.status == 400, headers
        assert "Host" in await response.text() or "Forwarded" in await response.text()
    good = await client.get("/events.json", headers={"X-Forwarded-Proto": "https",
                                                     "X-Forwarded-Host": "cal.example.org"})
    assert (await good.json())["feed_url"] == "https://cal.example.org/events.ics"
    for host in ("cal.example.org:65535", "[::1]:8080", "[::1]"):
        response = await client.get("/events.json", headers={"Host": host})
        assert (await response.json())["feed_url"] == f"http://{host}/events.ics"


@pytest.mark.parametrize(("stem", "kind", "count"), [
    ("hostile", "events", 11), ("launches-hostile", "launches", 6),
])
def test_cli_build_of_hostile_input(
    tmp_path: pathlib.Path, stem: str, kind: str, count: int,
    caplog: pytest.LogCaptureFixture,
) -> None:
    out = tmp_path / "feed.ics"
    code = main(["build", "--feed", kind, "--input", str(DATA / f"{stem}.json"),
                 "--now", NOW.isoformat(), "--precision", "any", "--past-days", "30",
                 "-o", str(out)])
    assert code == 0
    assert len(check_feed(out.read_bytes())) == count
    assert all(record.exc_info is None for record in caplog.records)


@pytest.mark.parametrize("value", ["a\x00b", "\x1b[31m", "line\nbreak", "tab\there", "\x7f",
                                   "\x85", "a\u2028b", "rtl\u202eoverride"])
async def test_control_characters_in_a_query_are_refused(
    hostile: FakeLL2, calfeed: Any, value: str
) -> None:
    client = await calfeed()
    for path in ("/events.ics", "/launches.json", "/"):
        response = await client.get(path, params={"search": value})
        assert response.status == 400
        text = await response.text()
        assert "search" in text and "control characters" in text
        assert not CONTROL.search(text)


async def test_error_bodies_echo_little(hostile: FakeLL2, calfeed: Any) -> None:
    client = await calfeed()
    cases = {
        "alarm=" + ",".join(str(i) for i in range(1000)): "1000 values, at most 4",
        "type=" + "x" * 5000: "parameter 'type'",
        "z" * 5000 + "=1": "unknown parameter",
        "past_days=7&past_days=8": "parameter 'past_days' given 2 times",
        "search=a&search=b": "parameter 'search' given 2 times",
        "type=" + ",".join(str(i) for i in range(101)): "101 values, at most 100",
        "type=" + "9" * 5000: "invalid value '9999999999",
        "past_days=" + "9" * 5000: "invalid value '9999999999",
    }
    for query, words in cases.items():
        response = await client.get("/events.ics?" + query)
        text = await response.text()
        assert response.status == 400, query
        assert words in text, text
        assert len(text) < 400, text


async def test_page_kind_given_twice(hostile: FakeLL2, calfeed: Any) -> None:
    client = await calfeed()
    response = await client.get("/?feed=launches&feed=events")
    assert response.status == 400
    assert "parameter 'feed' given 2 times" in await response.text()


async def test_a_long_calendar_name_stays_within_the_size_limit(
    fake: FakeLL2, calfeed: Any
) -> None:
    # a hundred agencies, each with a long name, all chosen: a header of several kilobytes
    fake.upcoming = [
        make_event(i, f"2026-12-{i % 28 + 1:02d}T10:00:00Z", agencies=(i % 100,),
                   description="x" * 400)
        for i in range(400)
    ]
    for event in fake.upcoming:
        event["agencies"][0]["abbrev"] = "Agency with a long name " * 3
    client = await calfeed(max_feed_bytes=50_000)
    query = "agency=" + ",".join(str(i) for i in range(100))
    response = await client.get("/events.ics?" + query)
    body = await response.read()
    assert len(body) <= 50_000
    events = check_feed(body)
    assert 0 < len(events) < 400


# What a stranger's edit can make large, and how large it gets (the feeds' 1 MB)

def _near(i: int, **extra: Any) -> dict[str, Any]:
    return make_event(i, (NOW + timedelta(hours=i)).strftime("%Y-%m-%dT%H:%M:%SZ"), **extra)


async def _render(items: list[dict[str, Any]], pairs: list[tuple[str, str]] | None = None,
                  **settings: Any) -> Any:
    renderer = Renderer(Settings(**settings), lambda: NOW)
    return await renderer.render(EVENTS, parse_query(EVENTS.params(30), pairs or []),
                                 Snapshot(tuple(items), NOW, 1), NOW)


async def test_a_megabyte_of_text_in_the_nearest_item_does_not_empty_the_feed() -> None:
    # the nearest item is what a feed takes first: as large as a feed, it took every
    # other item's place
    items = [_near(1, description="x" * 1_200_000, name="n" * 50_000),
             *(_near(i) for i in range(2, 50))]
    feed = await _render(items)
    assert (feed.count, feed.matching) == (49, 49)
    assert len(feed.body) <= 1_000_000
    big = next(e for e in read_feed(feed.body) if str(e["UID"]).startswith("ll2-event-1@"))
    assert len(str(big["SUMMARY"])) <= MAX_LINE
    description = str(big["DESCRIPTION"])
    assert "x" * 1000 in description and len(description) < MAX_PARAGRAPHS + 2000


async def test_thousands_of_links_make_an_entry_of_twenty() -> None:
    links = [{"priority": i, "url": f"https://video.example/{i}", "title": f"Cast {i}"}
             for i in range(5000)]
    items = [_near(1, vid_urls=links, info_urls=links,
                   launches=[{"id": f"l{i}", "name": f"Launch {i}"} for i in range(5000)]),
             _near(2)]
    feed = await _render(items)
    assert feed.count == 2
    description = str(read_feed(feed.body)[0]["DESCRIPTION"])
    assert description.count("https://video.example/") == 2 * MAX_LISTED
    # (by priority, of the first 200 listed: no real item has more than a handful)
    assert "Cast 199: " in description and "Cast 179: " not in description
    assert description.count("- Launch ") == MAX_LISTED


async def test_an_entry_larger_than_a_feed_is_left_out_not_the_rest(
    caplog: pytest.LogCaptureFixture,
) -> None:
    items = [_near(1, description="y" * 18_000), *(_near(i) for i in range(2, 6))]
    renderer = Renderer(Settings(max_feed_bytes=15_000), lambda: NOW)
    snapshot = Snapshot(tuple(items), NOW, 1)
    with caplog.at_level(logging.WARNING):
        for pairs in ([], [("past_days", "1")], [("alarm", "30")]):
            feed = await renderer.render(EVENTS, parse_query(EVENTS.params(30), pairs),
                                         snapshot, NOW)
            assert [str(e["UID"]) for e in read_feed(feed.body)] == [
                f"ll2-event-{i}@calfeed" for i in range(2, 6)]
            assert len(feed.body) <= 15_000
    # (said once, not at every feed that reaches it)
    assert sum("skip=events id='1'" in r.getMessage() and "larger than a feed" in r.getMessage()
               for r in caplog.records) == 1


async def test_an_entry_too_large_beside_one_feeds_long_name_is_kept_for_the_others() -> None:
    # a feed with a long name (a search) has less room for entries: an entry that fits
    # only the default feed is left out of the long-named one, not of every feed after
    rocket = "\U0001F680" * 60
    items = [_near(1, description="y" * 12_700, name=rocket + " one"),
             *(_near(i, name=f"{rocket} {i}") for i in range(2, 6))]
    snapshot = Snapshot(tuple(items), NOW, 1)
    searched = parse_query(EVENTS.params(30), [("search", rocket)])
    default = parse_query(EVENTS.params(30), [])
    seen = Renderer(Settings(max_feed_bytes=15_000), lambda: NOW)
    long_named = await seen.render(EVENTS, searched, snapshot, NOW)
    assert "ll2-event-1@calfeed" not in uids(long_named.body) and long_named.count == 4
    after = await seen.render(EVENTS, default, snapshot, NOW)
    fresh = await Renderer(Settings(max_feed_bytes=15_000), lambda: NOW).render(
        EVENTS, default, snapshot, NOW)
    assert uids(after.body)[0] == "ll2-event-1@calfeed" and len(after.body) <= 15_000
    assert after.body == fresh.body


async def test_long_names_make_a_short_calendar_name_and_a_feed_within_its_limit() -> None:
    items = [make_event(i, "2026-12-01T10:00:00Z", type_id=i, type_name=f"{i}" + "t" * 20_000)
             for i in range(1, 31)]
    pairs = [("type", ",".join(str(i) for i in range(1, 31)))]
    feed = await _render(items, pairs, max_feed_bytes=20_000)
    assert len(feed.body) <= 20_000
    assert len(feed.name) <= MAX_NAME and feed.name.endswith("…")
    check_feed(feed.body)
    # the smallest max_feed_bytes allowed holds the longest name, in characters of four
    # bytes each, twice (NAME, X-WR-CALNAME), with what fits beside it
    wide = [make_event(i, "2026-12-01T10:00:00Z", type_id=i, type_name="\U0001F680" * 20_000)
            for i in range(1, 31)]
    small = await _render(wide, pairs, max_feed_bytes=MIN_FEED_BYTES)
    assert len(small.name) == MAX_NAME and small.body.count("\U0001F680".encode()) > 2 * 190
    assert len(small.body) <= MIN_FEED_BYTES
    check_feed(small.body)
