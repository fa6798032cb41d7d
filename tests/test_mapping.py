"""Precision periods, durations, titles, status, links (precision.py, readers.py,
mapping.py): pure and byte-stable."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from calfeed.mapping import event_to_vevent
from calfeed.precision import period_words, precision
from calfeed.readers import MalformedItem, parse_duration
from calfeed.vevent import MappingOptions, sequence_number
from tests.helpers import make_event

OPTIONS = MappingOptions(uid_domain="feeds.example", default_duration=timedelta(minutes=45))


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("pid", "when", "start", "end"),
    [
        (3, "2026-12-03T06:00", date(2026, 12, 3), date(2026, 12, 4)),
        (5, "2026-12-31T23:59", date(2026, 12, 31), date(2027, 1, 1)),
        (6, "2026-12-13T00:00", date(2026, 12, 7), date(2026, 12, 14)),  # a Sunday
        (6, "2026-12-14T00:00", date(2026, 12, 14), date(2026, 12, 21)),  # a Monday
        (6, "2026-12-30T00:00", date(2026, 12, 28), date(2027, 1, 4)),  # across a year
        (7, "2026-02-28T00:00", date(2026, 2, 1), date(2026, 3, 1)),
        (7, "2027-02-01T00:00", date(2027, 2, 1), date(2027, 3, 1)),  # start-of-month date
        (7, "2026-12-31T00:00", date(2026, 12, 1), date(2027, 1, 1)),
        (8, "2027-03-31T00:00", date(2027, 1, 1), date(2027, 4, 1)),
        (9, "2027-06-30T00:00", date(2027, 4, 1), date(2027, 7, 1)),
        (10, "2027-09-30T00:00", date(2027, 7, 1), date(2027, 10, 1)),
        (11, "2026-10-31T00:00", date(2026, 10, 1), date(2027, 1, 1)),  # Q4 not at its end
        (11, "2026-01-15T00:00", date(2026, 10, 1), date(2027, 1, 1)),  # number from the id
        (12, "2027-06-30T00:00", date(2027, 1, 1), date(2027, 7, 1)),
        (13, "2027-12-31T00:00", date(2027, 7, 1), date(2028, 1, 1)),
        (14, "2027-12-31T00:00", date(2027, 1, 1), date(2028, 1, 1)),
        (14, "2027-01-01T00:00", date(2027, 1, 1), date(2028, 1, 1)),
        (15, "2027-09-30T00:00", date(2026, 10, 1), date(2027, 10, 1)),
        (15, "2027-12-31T00:00", date(2027, 1, 1), date(2028, 1, 1)),
        (16, "2029-12-31T00:00", date(2020, 1, 1), date(2030, 1, 1)),
        (16, "2030-01-01T00:00", date(2030, 1, 1), date(2040, 1, 1)),
    ],
)
def test_period_from_precision_id_and_date(pid: int, when: str, start: date, end: date) -> None:
    assert precision(pid).period(at(when)) == (start, end)


@pytest.mark.parametrize(
    ("pid", "title"),
    [
        (None, "X"), (0, "X"), (1, "X"), (99, "X"),
        (2, "X (time approximate)"), (3, "X (morning)"), (4, "X (afternoon)"),
        (5, "X (time TBD)"), (6, "X (week of 2027-09-27)"), (7, "X (NET Sep 2027)"),
        (10, "X (Q3 2027)"), (13, "X (H2 2027)"), (14, "X (2027)"),
        (15, "X (FY Oct 2026-Sep 2027)"), (16, "X (2020s)"),
    ],
)
def test_title_shows_uncertainty(pid: int | None, title: str) -> None:
    event = make_event(1, "2027-09-30T00:00:00Z", name="X", precision=pid)
    assert str(event_to_vevent(event, OPTIONS)["SUMMARY"]) == title


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("PT1H30M", timedelta(hours=1, minutes=30)),
        ("P1DT2H", timedelta(days=1, hours=2)),
        ("PT45S", timedelta(seconds=45)),
        ("P1W", timedelta(weeks=1)),
        ("01:30:00", timedelta(hours=1, minutes=30)),
        ("1 02:00:00", timedelta(days=1, hours=2)),
        ("00:00:30.5", timedelta(seconds=30.5)),
        ("PT0S", None), ("00:00:00", None), ("-1 23:00:00", None), ("P", None), ("PT", None),
        # under a second: in iCalendar's whole seconds the end would be the start
        ("PT0.5S", None), ("P0.00001D", None), ("00:00:00.3", None),
        ("PT1S", timedelta(seconds=1)),
        ("an hour", None), ("", None), (None, None), (3600, None),
        # no duration is this long: a stranger's text is neither parsed nor cached
        ("PT" + "0" * 100 + "1H", None), ("  PT2H  ", timedelta(hours=2)),
    ],
)
def test_parse_duration(text: Any, expected: timedelta | None) -> None:
    assert parse_duration(text) == expected


def test_timed_event_uses_duration_or_default() -> None:
    with_duration = event_to_vevent(make_event(1, duration="PT2H"), OPTIONS)
    assert with_duration.decoded("DTEND") - with_duration.decoded("DTSTART") == timedelta(hours=2)
    default = event_to_vevent(make_event(1, duration="nonsense"), OPTIONS)
    assert default.decoded("DTEND") - default.decoded("DTSTART") == timedelta(minutes=45)
    assert default.decoded("DTSTART") == datetime(2026, 12, 1, 10, tzinfo=UTC)


@pytest.mark.parametrize(("date", "duration"), [
    ("2026-12-01T10:00:00.7Z", "PT0.2S"),  # a fraction of a second on both
    ("2026-12-01T10:00:00.999999+00:00", None),  # (read by dateutil, not the fast path)
])
def test_an_end_always_comes_after_its_start(date: str, duration: str | None) -> None:
    vevent = event_to_vevent(make_event(1, date, duration=duration), OPTIONS)
    start, end = vevent.decoded("DTSTART"), vevent.decoded("DTEND")
    assert start == datetime(2026, 12, 1, 10, tzinfo=UTC)
    assert end - start == timedelta(minutes=45)  # (the default: no length is given)
    zero = MappingOptions(default_duration=timedelta(0))
    vevent = event_to_vevent(make_event(1, date, duration=duration), zero)
    assert vevent.decoded("DTEND") - vevent.decoded("DTSTART") == timedelta(seconds=1)


@pytest.mark.parametrize(("latitude", "longitude", "geo"), [
    (28.60822681, -80.60428186, b"GEO:28.608227;-80.604282"),
    ("1e-7", 2e-5, None),  # (text that is no decimal degrees)
    (1e-7, 2e-5, b"GEO:0.0;0.0"),  # (a float under 1e-4 would print as 1e-05)
    (0.00012, -45, b"GEO:0.00012;-45.0"),
    ("1_0", "20", None), ("inf", "0", None), (float("nan"), 0, None), (True, 1, None),
    ("45.5", " -73.25 ", b"GEO:45.5;-73.25"),
])
def test_geo_is_a_plain_decimal_or_left_out(latitude: Any, longitude: Any,
                                            geo: bytes | None) -> None:
    event = make_event(1, launches=[{"id": "a", "name": "A",
                                     "pad": {"latitude": latitude, "longitude": longitude}}])
    lines = [line for line in event_to_vevent(event, OPTIONS).to_ical().split(b"\r\n")
             if line.startswith(b"GEO")]
    assert lines == ([geo] if geo else [])


def test_identity_and_versioning_fields() -> None:
    event = event_to_vevent(make_event(77, last_updated="2026-11-20T10:00:01Z"), OPTIONS)
    assert str(event["UID"]) == "ll2-event-77@feeds.example"
    assert event.decoded("DTSTAMP") == datetime(2026, 11, 20, 10, 0, 1, tzinfo=UTC)
    assert event.decoded("LAST-MODIFIED") == datetime(2026, 11, 20, 10, 0, 1, tzinfo=UTC)
    newer = event_to_vevent(make_event(77, last_updated="2026-11-20T10:00:02Z"), OPTIONS)
    assert newer.decoded("SEQUENCE") == event.decoded("SEQUENCE") + 1
    assert str(event["TRANSP"]) == "TRANSPARENT"


def test_missing_last_updated_gives_fixed_stamp_not_now() -> None:
    first = event_to_vevent(make_event(5, last_updated=None), OPTIONS).to_ical()  # type: ignore[arg-type]
    second = event_to_vevent(make_event(5, last_updated=None), OPTIONS).to_ical()  # type: ignore[arg-type]
    assert first == second
    assert b"DTSTAMP:20000101T000000Z" in first and b"SEQUENCE:0" in first


def test_sequence_fits_32_bits_for_decades() -> None:
    assert sequence_number(datetime(2060, 1, 1, tzinfo=UTC)) < 2**31


def test_a_last_updated_past_2068_still_gives_a_readable_vevent() -> None:
    # (seconds since 2000 outgrow RFC 5545's 32-bit INTEGER in January 2068)
    block = event_to_vevent(make_event(5, last_updated="2099-01-01T00:00:00Z"), OPTIONS).to_ical()
    assert b"SEQUENCE:2147483647" in block
    assert sequence_number(datetime(2068, 1, 1, tzinfo=UTC)) < sequence_number(
        datetime(2068, 2, 1, tzinfo=UTC)) == 2**31 - 1


@pytest.mark.parametrize(
    ("pid", "launch_status", "status"),
    [
        (1, "Go", "CONFIRMED"), (2, "Go", "CONFIRMED"), (5, "Go", "TENTATIVE"),
        (7, None, "TENTATIVE"), (1, "TBD", "TENTATIVE"), (1, "TBC", "TENTATIVE"),
        (None, None, "CONFIRMED"),
    ],
)
def test_status(pid: int | None, launch_status: str | None, status: str) -> None:
    launches = (
        [{"id": "l", "name": "L", "status": {"id": 1, "name": launch_status,
                                              "abbrev": launch_status}}]
        if launch_status else []
    )
    event = make_event(1, precision=pid, launches=launches)
    assert str(event_to_vevent(event, OPTIONS)["STATUS"]) == status


def test_description_lists_launch_webcasts_links_and_attribution() -> None:
    event = make_event(
        1,
        description="Docking of Crew-13.",
        webcast_live=False,
        launches=[{
            "id": "u1", "name": "Falcon 9 | Crew-13",
            "url": "https://ll.thespacedevs.com/2.3.0/launches/u1/",
            "net": "2026-11-30T14:00:00Z", "net_precision": {"id": 7, "name": "Month"},
            "status": {"id": 1, "name": "Go for Launch", "abbrev": "Go"},
            "launch_service_provider": {"id": 121, "name": "SpaceX"},
        }],
        vid_urls=[
            {"priority": 1, "publisher": "Fan", "title": "Stream", "url": "https://v.example/fan"},
            {"priority": 10, "publisher": "NASA", "title": "Coverage", "live": True,
             "url": "https://v.example/nasa"},
        ],
        info_urls=[{"priority": 5, "title": "Mission page", "url": "https://i.example/m"}],
    )
    vevent = event_to_vevent(event, OPTIONS)
    text = str(vevent["DESCRIPTION"])
    assert text.startswith("Docking of Crew-13.\n\nLaunches:\n- Falcon 9 | Crew-13\n")
    assert "NET Nov 2026 · status: Go for Launch · provider: SpaceX" in text
    assert "https://ll.thespacedevs.com/2.3.0/launches/u1/" in text
    assert text.index("[LIVE] NASA: Coverage") < text.index("Fan: Stream")
    assert "- Mission page: https://i.example/m" in text
    assert text.rstrip().endswith("https://thespacedevs.com/llapi")
    assert str(vevent["URL"]) == "https://v.example/nasa"


def test_url_falls_back_to_info_link_and_bad_urls_are_dropped() -> None:
    event = make_event(1, vid_urls=[{"url": "javascript:alert(1)"}],
                       info_urls=[{"url": "https://i.example/a b"}, {"url": "https://i.example/ok"}])
    vevent = event_to_vevent(event, OPTIONS)
    assert str(vevent["URL"]) == "https://i.example/ok"
    assert "javascript" not in str(vevent["DESCRIPTION"])


def test_location_geo_categories_image() -> None:
    event = make_event(
        1, location="Kennedy Space Center, FL",
        image={"image_url": "https://img.example/a.jpg"},
        launches=[{"id": "a", "name": "A", "pad": {"latitude": None, "longitude": None}},
                  {"id": "b", "name": "B", "pad": {"latitude": 28.6, "longitude": -80.6}}],
    )
    vevent = event_to_vevent(event, OPTIONS)
    assert str(vevent["LOCATION"]) == "Kennedy Space Center, FL"
    assert vevent.decoded("GEO") == (28.6, -80.6)
    assert vevent.decoded("CATEGORIES") == ["Docking"]
    assert str(vevent["IMAGE"]) == "https://img.example/a.jpg"
    assert b"IMAGE;VALUE=URI:https://img.example/a.jpg" in vevent.to_ical()


@pytest.mark.parametrize(
    "event",
    [
        {"name": "no id", "date": "2026-12-01T10:00:00Z"},
        {"id": 1, "name": "no date"},
        {"id": 1, "date": None},
        {"id": 1, "date": "tomorrow"},
        {"id": True, "date": "2026-12-01T10:00:00Z"},
        # (its week began in 999, which no four-digit DATE holds)
        {"id": 1, "date": "1000-01-01T10:00:00+00:00", "date_precision": {"id": 6}},
    ],
)
def test_unusable_events_raise_malformed(event: dict[str, Any]) -> None:
    with pytest.raises(MalformedItem):
        event_to_vevent(event, OPTIONS)


@pytest.mark.parametrize(
    ("pid", "words"),
    [(None, "2026-09-19 13:46 UTC"), (2, "2026-09-19 ~13:00 UTC"), (3, "2026-09-19 (morning)"),
     (5, "2026-09-19"), (6, "week of 2026-09-14"), (7, "Sep 2026"), (10, "Q3 2026"),
     (12, "H1 2026"), (14, "2026")],
)
def test_launch_net_words(pid: int | None, words: str) -> None:
    assert period_words(pid, datetime(2026, 9, 19, 13, 46, tzinfo=UTC)) == words


@pytest.mark.parametrize("pid", [None, 0, 2, 3, 6, 7, 8, 12, 14, 15, 16, 99])
def test_a_timing_and_an_entry_made_fast_are_what_their_init_makes(pid: int | None) -> None:
    # (indexing makes both without their dataclass __init__: see precision.made)
    import dataclasses

    from calfeed.feeds import FEED_KINDS, Entry
    from calfeed.precision import Timing, item_timing

    timing = item_timing(datetime(2026, 8, 14, 13, 5, tzinfo=UTC), pid, None,
                         timedelta(hours=1))
    again = Timing(**{f.name: getattr(timing, f.name) for f in dataclasses.fields(Timing)})
    assert vars(timing) == vars(again) and timing == again and hash(timing) == hash(again)
    assert timing.label == again.label  # (a cached property works on both)
    event = make_event(7, "2026-08-14T13:05:00Z", precision=pid)
    entry = FEED_KINDS["events"].entry(event, MappingOptions())
    rebuilt = Entry(**{f.name: getattr(entry, f.name) for f in dataclasses.fields(Entry)})
    assert vars(entry) == vars(rebuilt) and entry == rebuilt
    assert entry.facts == rebuilt.facts
    with pytest.raises(dataclasses.FrozenInstanceError):
        entry.ident = "8"  # type: ignore[misc]


# bidi marks (LRM, RLM, ALM) and noncharacters, from the first and last planes
@pytest.mark.parametrize("mark", ["\u200e", "\u200f", "\u061c", "\ufdd0", "\ufdef", "\ufffe",
                                  "\uffff", "\U0001fffe", "\U0010ffff"])
def test_bidi_marks_and_noncharacters_are_not_shown(mark: str) -> None:
    event = make_event(1, name=f"Crew{mark}-13 Docking", description=f"Soft{mark} capture.",
                       info_urls=[{"url": f"https://i.example/{mark}a"},
                                  {"url": "https://i.example/ok"}])
    vevent = event_to_vevent(event, OPTIONS)
    assert str(vevent["SUMMARY"]) == "Crew-13 Docking"
    assert str(vevent["DESCRIPTION"]).startswith("Soft capture.\n\n")
    # (a link with one is no link a browser would follow as shown: dropped)
    assert str(vevent["URL"]) == "https://i.example/ok"
    assert mark.encode() not in vevent.to_ical()


def test_joiners_and_the_characters_beside_the_noncharacters_stay() -> None:
    # (an emoji's zero-width joiner, and the assigned letters either side of U+FDD0-FDEF)
    name = "Astronaut \U0001f469\u200d\U0001f680 \ufdcf\ufdf0"
    assert str(event_to_vevent(make_event(1, name=name), OPTIONS)["SUMMARY"]) == name
