"""Property-based tests of everything that takes untrusted input (hypothesis).

- LL2 items of both API versions with any of their keys, at any depth, replaced by values
  of the wrong type or size: mapping raises nothing but MalformedItem (the documented
  skip), and every feed made of them parses in both parsers the tests use, with no
  control character and no link that is not http(s).
- LL2 lists that moved while read, any ids and any rows moved out of reach: what a list
  holds stays, and no more goes than can have left LL2.
- Query strings of any shape: the server answers 200, 304 or 400 (503 is fine too while
  data is missing), never a 5xx from a bug, and never logs a traceback; nor do validator
  and encoding headers of any shape.

The default profile keeps the suite quick; CI runs HYPOTHESIS_PROFILE=ci, with more
examples.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import http.client
import json
import logging
import pathlib
import re
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest
from dateutil.relativedelta import relativedelta
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from calfeed.dataset import Snapshot
from calfeed.feeds import FEED_KINDS
from calfeed.precision import _add_months
from calfeed.readers import MalformedItem
from calfeed.render import Renderer
from calfeed.sanitize import item_key
from calfeed.settings import Settings
from calfeed.vevent import MappingOptions
from tests.helpers import NOW, make_event
from tests.ics_helpers import read_feed
from tests.server_thread import ServerThread

DATA = pathlib.Path(__file__).parent / "data"
CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")


def _results(stem: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = json.loads((DATA / f"{stem}.json").read_text())["results"]
    return items


# one rich item of each kind and API version, to be broken
BASES = {
    "events": [_results("shape-2.3.0")[0], _results("shape-2.2.0")[0],
               _results("shape-2.3.0")[-1]],
    "launches": [_results("launches-2.3.0")[0], _results("launches-2.2.0")[0],
                 _results("launches-2.3.0")[-1]],
}

HOSTILE_TEXT = [
    '"><img src=x onerror=alert(1)>', "javascript:alert(1)", " JaVa\tScRiPt:alert(1)",
    "data:text/html,<b>x</b>", "vbscript:x", "\x00\x01\x1b[31m\x7f\x85\u2028\r",
    "https://ok.example/" + "a" * 3000, "9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z",
    "2026-13-45T99:99:99Z", "P99999999999D", "99999999999 days, 00:00:00", "PT", "-1",
    "x" * 20_000, "", " ", "{{ 7*7 }}", "NaN", "inf",
]

scalars = st.one_of(
    st.none(), st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([10**400, -(10**400), 2**63, -1]),  # too large for a float, or an id
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    # lone surrogates (JSON's "\ud800"), line separators, bidi overrides
    st.text(st.characters(codec=None, categories=["Cs", "Zl", "Zp", "Cf", "Cc"]),
            max_size=5).map(lambda bad: f"a{bad}b"),
    st.sampled_from(HOSTILE_TEXT),
    st.datetimes().map(lambda d: d.isoformat() + "Z"),
)
wrong_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(["id", "name", "url", "abbrev", "priority", "live",
                                         "image_url", "latitude", "x"]), inner, max_size=4),
    ),
    max_leaves=8,
)


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key path in a JSON document."""
    found: list[tuple[Any, ...]] = []
    children: Any = (value.items() if isinstance(value, dict)
                     else enumerate(value) if isinstance(value, list) else ())
    for key, child in children:
        found.append((*prefix, key))
        found += paths(child, (*prefix, key))
    return found


def put(document: Any, path: tuple[Any, ...], value: Any) -> None:
    for key in path[:-1]:
        document = document[key]
    document[path[-1]] = value


@st.composite
def broken_items(draw: st.DrawFn, kind: str) -> dict[str, Any]:
    """An LL2 item of the kind with some keys, at any depth, given a wrong value."""
    item: dict[str, Any] = copy.deepcopy(draw(st.sampled_from(BASES[kind])))
    candidates = paths(item)
    for path in draw(st.lists(st.sampled_from(candidates), max_size=6)):
        value = draw(wrong_values)
        # an earlier replacement may have taken that path away
        with contextlib.suppress(KeyError, IndexError, TypeError):
            put(item, path, value)
    item["id"] = draw(st.one_of(st.integers(0, 10**6), st.uuids().map(str), wrong_values))
    return item


def check_body(body: bytes) -> int:
    text = body.decode("utf-8")
    assert not CONTROL.search(text.replace("\r\n", ""))
    vevents = read_feed(body)
    for vevent in vevents:
        for name in ("URL", "IMAGE"):
            if name in vevent:
                assert str(vevent[name]).startswith(("http://", "https://"))
    return len(vevents)


@pytest.mark.parametrize("kind_name", ["events", "launches"])
@settings(suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_mapping_skips_or_maps_any_item(kind_name: str, data: st.DataObject) -> None:
    kind = FEED_KINDS[kind_name]
    items = data.draw(st.lists(broken_items(kind_name), min_size=1, max_size=4))
    # the events that launches link to are broken too
    events = data.draw(st.lists(broken_items("events"), max_size=2))
    # one item per id, the last one drawn, as a dataset holds them (a snapshot never
    # has two: its feed would hold two VEVENTs with one UID)
    usable = list({key: i for i in items if (key := item_key(i.get("id"))) is not None}.values())
    snapshots = {"events": Snapshot(tuple(e for e in events if item_key(e.get("id"))),
                                    NOW, 1), kind_name: Snapshot(tuple(usable), NOW, 2)}
    context = kind.context(snapshots)
    options = MappingOptions(alarms=(60, 10))
    mapped = 0
    for item in usable:
        try:
            entry = kind.entry(item, options)
        except MalformedItem:
            continue
        # the facts, read when first asked, raise nothing either (not even the guard's
        # fallback is needed)
        facts = kind.facts(item)
        assert isinstance(facts.search_text, str) and facts.facets.keys() == facts.labels.keys()
        json.dumps(kind.to_json(entry))
        try:
            block = kind.to_vevent(item, options, context).to_ical()
        except MalformedItem:
            continue
        check_body(b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//t//EN\r\n" + block
                   + b"END:VCALENDAR\r\n")
        # (what ended more than the feed's 30 days ago, a wrong value's year 1000 say, is
        # mapped but not in the feed)
        mapped += entry.timing.end_utc > NOW - timedelta(days=30)
    event(f"mapped {mapped} of {len(usable)}")
    # the whole feed, as the server assembles it
    renderer = Renderer(Settings(), lambda: NOW)
    query = _everything(kind_name)
    body = asyncio.run(renderer.render(kind, query, snapshots[kind_name], NOW, snapshots)).body
    assert check_body(body) == mapped


def _everything(kind_name: str) -> Any:
    from calfeed.query import parse_query

    return parse_query(FEED_KINDS[kind_name].params(30),
                       [("precision", "any"), ("past_days", "30"), ("alarm", "15")])


# -- random query strings against a running server ----------------------------------------


class Tracebacks(logging.Handler):
    """Keeps every log record that carries a traceback."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info:
            self.records.append(record)


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, int, Tracebacks]]:
    events = [make_event(i, (NOW + timedelta(hours=i)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                         agencies=(i % 3,), programs=(i % 2,)) for i in range(1, 30)]
    launches = _results("launches-2.3.0")
    thread = ServerThread({"events": events, "launches": launches})
    url = thread.start()
    watcher = Tracebacks()
    logging.getLogger().addHandler(watcher)
    # the first request renders each kind; no test should wait on that
    for path in ("/events.ics", "/launches.ics"):
        connection = http.client.HTTPConnection("127.0.0.1", thread.port, timeout=30)
        connection.request("GET", path)
        connection.getresponse().read()
        connection.close()
    yield url, thread.port, watcher
    logging.getLogger().removeHandler(watcher)
    thread.stop()


names = st.sampled_from([
    "type", "agency", "program", "search", "past_days", "precision", "alarm", "download",
    "provider", "rocket", "family", "location", "pad", "status", "crewed", "orbit", "feed",
    "type__ids", "lsp__id", "utm_source", "x", "",
])
values = st.one_of(
    st.text(max_size=30),
    st.from_regex(r"[0-9,\-]{0,20}", fullmatch=True),
    st.sampled_from(["any", "day", "1", "0", "true", "-1", "99999999999999999999", "1e3",
                     "%00", "%ff", "%", "%zz", "+", "&", "=", "%E2%80%A8", "%C2%85"]),
)


@st.composite
def query_strings(draw: st.DrawFn) -> str:
    from urllib.parse import quote

    pairs = draw(st.lists(st.tuples(names, values), max_size=6))
    raw = draw(st.booleans())
    # either properly encoded, or the bytes as they come (percent signs and all)
    return "&".join(
        (f"{k}={v}" if raw else f"{quote(k)}={quote(v)}") for k, v in pairs
    )


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(path=st.sampled_from(["/events.ics", "/launches.ics", "/events.json",
                             "/launches.json", "/"]),
       query=query_strings())
def test_any_query_is_answered_without_a_server_error(
    server: tuple[str, int, Tracebacks], path: str, query: str
) -> None:
    _, port, watcher = server
    target = path + ("?" + query if query else "")
    # http.client sends the target as given (it refuses only control characters itself)
    target = "".join(c if 0x21 <= ord(c) < 0x7f else f"%{ord(c):02X}" if ord(c) < 0x80
                     else "".join(f"%{b:02X}" for b in c.encode()) for c in target)
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("GET", target)
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()
    assert response.status in (200, 400), (target, response.status, body[:300])
    if response.status == 400 and path != "/":  # the page shows its error in the page
        text = body.decode("utf-8")
        assert len(text) < 600 and not CONTROL.search(text.rstrip("\n"))
    elif path.endswith(".ics"):
        check_body(body)
    assert watcher.records == [], [r.getMessage() for r in watcher.records]


# header text as clients (and strangers) send it: dates with numbers of any size, weights
header_values = st.one_of(
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7e), max_size=40),
    st.builds("Fri, {} Dec {} {}:{}:{} GMT".format, *(st.one_of(
        st.sampled_from(["04", "2026", "21", "0", "99999999999"]),
        st.from_regex(r"[0-9]{1,25}", fullmatch=True)) for _ in range(5))),
    st.builds("gzip;q={}".format, st.from_regex(r"[0-9.\- ]{0,8}", fullmatch=True)),
    st.sampled_from(["*", 'W/"x"', '"', "W/", ",,,", "gzip;;", ";q=0", "gzip;q"]),
)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(path=st.sampled_from(["/events.ics", "/launches.ics", "/static/calfeed.css"]),
       headers=st.dictionaries(
           st.sampled_from(["If-None-Match", "If-Modified-Since", "Accept-Encoding"]),
           header_values))
def test_any_validator_or_encoding_header_is_answered_without_a_server_error(
    server: tuple[str, int, Tracebacks], path: str, headers: dict[str, str],
) -> None:
    _, port, watcher = server
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        response.read()
    finally:
        connection.close()
    assert response.status in (200, 304), (headers, response.status)
    assert watcher.records == [], [r.getMessage() for r in watcher.records]


@given(st.one_of(
    st.from_regex(r"\A(19[7-9]\d|2[01]\d\d)-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z\Z"),
    st.datetimes().map(lambda d: d.strftime("%Y-%m-%dT%H:%M:%S.%fZ")),
    st.text(max_size=30),
))
def test_the_fast_timestamp_path_reads_what_dateutil_reads(text: str) -> None:
    from datetime import UTC, datetime

    from dateutil.parser import isoparse

    from calfeed.readers import EARLIEST_YEAR, LATEST_YEAR, parse_datetime

    expected: datetime | None
    try:
        parsed = isoparse(text.strip())
        expected = (parsed.replace(tzinfo=UTC) if parsed.tzinfo is None
                    else parsed.astimezone(UTC))
        if not EARLIEST_YEAR <= expected.year <= LATEST_YEAR:
            expected = None
        else:  # (in whole seconds, as iCalendar writes them)
            expected = expected.replace(microsecond=0)
    except (ValueError, OverflowError):
        expected = None
    if not text.strip():
        expected = None
    assert parse_datetime(text) == expected


# escapes, carets and wide characters, wherever a fold can fall
_FOLDED_TEXT = st.text(st.one_of(
    st.sampled_from("ab\\^;,: \u00e9\u20ac\U0001f680"), st.characters(codec="utf-8")),
    max_size=300)
_AWKWARD = ("\\", "^", "\\\\", "^\\", "\u00e9", "\u20ac", "\U0001f680", "\u00e9\\")


def _folds_as_icalendar(line: str) -> None:
    from icalendar.parser import Contentline

    from calfeed.ical_text import folded

    # (icalendar's content lines have no annotations)
    assert folded(line) == Contentline(line).to_ical()  # type: ignore[no-untyped-call]


@pytest.mark.parametrize("awkward", _AWKWARD)
def test_lines_are_folded_as_icalendar_folds_them_at_every_edge(awkward: str) -> None:
    """`ical_text.folded` (which replaced icalendar's folding for speed) cuts a content
    line where icalendar does, with what must not be cut at each place near a fold."""
    for before in range(0, 230):
        _folds_as_icalendar("a" * before + awkward)
        _folds_as_icalendar("a" * before + awkward + "b" * 80)
        # (and again at the next fold, in a segment that began with a carried character)
        for between in range(69, 76):
            _folds_as_icalendar("a" * before + awkward + "b" * between + awkward + "c" * 9)
    for length in range(0, 300):
        _folds_as_icalendar(awkward * length)


@given(st.builds("".join, st.lists(st.one_of(
    _FOLDED_TEXT, st.sampled_from(_AWKWARD),
    st.integers(1, 150).map(lambda size: "a" * size)), max_size=8)))
def test_lines_are_folded_as_icalendar_folds_them(line: str) -> None:
    """... and of any text."""
    # (no line break: icalendar's content lines have none)
    _folds_as_icalendar(line.replace("\n", ""))


@given(
    first=st.dates(min_value=date(3, 1, 1), max_value=date(9997, 1, 1)).map(
        lambda day: day.replace(day=1)),
    months=st.integers(min_value=-24, max_value=24),
)
def test_month_arithmetic_is_relativedeltas(first: date, months: int) -> None:
    """The spans' plain month arithmetic gives what dateutil does (it was replaced for
    speed)."""
    assert _add_months(first, months) == first + relativedelta(months=months)


@given(st.lists(st.tuples(st.frozensets(st.integers(1, 12)), st.integers(0, 4)),
                min_size=1, max_size=12))
def test_lists_that_moved_never_lose_what_they_hold_nor_more_than_can_have_left(
    reads: list[tuple[frozenset[int], int]],
) -> None:
    # LL2's lists as a stranger may send them: any ids each time, any count of rows
    # moved out of reach. Whatever a read holds is held after it; no read drops more
    # than the held items it lacks beyond those moved out of reach; an item goes only
    # after SHIFTED_MISSES reads in a row lacked it, each lacking more than moved (the
    # others say nothing of what left)
    from calfeed.dataset import SHIFTED_MISSES, Dataset

    generations = iter(range(1, 1000))
    dataset = Dataset("events", lambda: next(generations))
    dataset.replace("upcoming", [make_event(i) for i in range(1, 13)], NOW)
    lacked_in_a_row: dict[str, int] = {}
    for ids, unread in reads:
        held = set(dataset.parts["upcoming"].items)
        read = {str(i) for i in ids}
        lacking = held - read
        dropped = dataset.merge("upcoming", [make_event(i) for i in sorted(ids)], NOW,
                                unread=unread)
        now_held = set(dataset.parts["upcoming"].items)
        assert read <= now_held
        assert held - now_held <= lacking and len(held - now_held) == dropped
        assert dropped <= max(0, len(lacking) - unread)
        more = 1 if len(lacking) > unread else 0
        lacked_in_a_row = {key: lacked_in_a_row.get(key, 0) + more for key in lacking}
        assert all(lacked_in_a_row[key] >= SHIFTED_MISSES for key in held - now_held)
        assert dataset.snapshot is not None
        assert {item_key(item["id"]) for item in dataset.snapshot.items} == now_held
