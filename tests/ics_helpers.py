"""Reading feeds back the way clients do: icalendar and the strict `ical` library."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import icalendar
from ical.calendar_stream import IcsCalendarStream


def read_feed(body: bytes) -> list[icalendar.Event]:
    """The VEVENTs of a feed, after both parsers accepted it; raises if either rejects it."""
    text = body.decode("utf-8")
    assert "\r\n" in text and "\n" not in text.replace("\r\n", ""), "lines must end in CRLF"
    strict = IcsCalendarStream.calendar_from_ics(text)
    calendar = icalendar.Calendar.from_ical(body)
    events = [e for e in calendar.walk("VEVENT") if isinstance(e, icalendar.Event)]
    assert len(strict.events) == len(events), "the two parsers disagree on the event count"
    for parsed, strict_event in zip(events, strict.events, strict=True):
        assert str(parsed["UID"]) == strict_event.uid
        assert parsed.decoded("DTSTART") == strict_event.dtstart
    return events


def summaries(body: bytes) -> list[str]:
    """SUMMARY of each VEVENT, in feed order."""
    return [str(event["SUMMARY"]) for event in read_feed(body)]


def uids(body: bytes) -> list[str]:
    """UID of each VEVENT, in feed order."""
    return [str(event["UID"]) for event in read_feed(body)]


def by_uid(body: bytes) -> dict[str, icalendar.Event]:
    """VEVENTs keyed by UID."""
    return {str(event["UID"]): event for event in read_feed(body)}


def span(event: icalendar.Event) -> tuple[date | datetime, date | datetime]:
    """(DTSTART, DTEND) as Python values."""
    start: Any = event.decoded("DTSTART")
    end: Any = event.decoded("DTEND")
    return start, end
