"""The VEVENT every feed kind makes: its fields, how they become iCalendar, and the parts
of a description all kinds share.

A feed kind fills in `VEventFields` from its LL2 item; `build` is the one place that
knows which properties a calfeed VEVENT carries, so every kind's entries look alike to a
calendar: a UID from the LL2 id, DTSTAMP and SEQUENCE from `last_updated` (an unchanged
item serialises to the same bytes), TRANSP:TRANSPARENT (space events do not make anyone
busy), and reminders only where there is a time to be reminded of.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import icalendar

from calfeed.precision import Timing
from calfeed.readers import Link

ATTRIBUTION = "Data: Launch Library 2 by The Space Devs, https://thespacedevs.com/llapi"
# A fixed DTSTAMP for objects without last_updated keeps their bytes stable.
FALLBACK_STAMP = datetime(2000, 1, 1, tzinfo=UTC)
_SEQUENCE_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
_SEQUENCE_MAX = 2**31 - 1


@dataclass(frozen=True)
class MappingOptions:
    """What, besides the LL2 object, decides a VEVENT's bytes."""

    uid_domain: str = "calfeed"
    default_duration: timedelta = timedelta(hours=1)
    # minutes before the start of each timed event at which to remind (VALARM)
    alarms: tuple[int, ...] = ()


@dataclass(frozen=True)
class VEventFields:
    """Everything a calendar entry shows, read from one LL2 item."""

    uid: str
    summary: str
    timing: Timing
    description: str
    # the item's last_updated: DTSTAMP, LAST-MODIFIED and SEQUENCE
    updated: datetime | None
    tentative: bool
    location: str = ""
    geo: tuple[float, float] | None = None
    category: str = ""
    url: str = ""
    image: str = ""


def sequence_number(last_updated: datetime | None) -> int:
    """SEQUENCE that grows with last_updated (seconds since 2000, which fit in RFC 5545's
    32-bit INTEGER until 2068; a later date, which only a bad edit gives, keeps the
    largest, or no client could read the VEVENT)."""
    if last_updated is None:
        return 0
    return min(_SEQUENCE_MAX, max(0, int((last_updated - _SEQUENCE_EPOCH).total_seconds())))


def build(fields: VEventFields, alarms: Sequence[int] = ()) -> icalendar.Event:
    """The VEVENT of the fields, with a reminder `alarms` minutes before a timed start."""
    vevent = icalendar.Event()
    vevent.add("uid", fields.uid)
    vevent.add("dtstamp", fields.updated or FALLBACK_STAMP)
    if fields.updated is not None:
        vevent.add("last-modified", fields.updated)
    vevent.add("sequence", sequence_number(fields.updated))
    vevent.add("summary", fields.summary)
    vevent.add("dtstart", fields.timing.start)
    vevent.add("dtend", fields.timing.end)
    vevent.add("status", "TENTATIVE" if fields.tentative else "CONFIRMED")
    vevent.add("transp", "TRANSPARENT")
    vevent.add("description", fields.description)
    if fields.location:
        vevent.add("location", fields.location)
    if fields.geo is not None:
        vevent.add("geo", fields.geo)
    if fields.category:
        vevent.add("categories", [fields.category])
    if fields.url:
        vevent.add("url", fields.url)
    if fields.image:
        vevent.add("image", fields.image, parameters={"VALUE": "URI"})
    if not fields.timing.all_day:
        # reminders only where there is a time to be reminded of
        for minutes in alarms:
            vevent.add_component(alarm(fields.summary, minutes))
    return vevent


def alarm(summary: str, minutes: int) -> icalendar.Alarm:
    """A reminder `minutes` before the start, saying the event's title. The renderer
    splices these into cached VEVENTs: build() and it make them here alike."""
    component = icalendar.Alarm()
    component.add("action", "DISPLAY")
    component.add("description", summary)
    component.add("trigger", timedelta(minutes=-minutes))
    return component


def link_lines(links: Sequence[Link]) -> list[str]:
    """A description's list of links, live webcasts marked."""
    return [f"- {'[LIVE] ' if link.live else ''}{link.label}: {link.url}" for link in links]


def link_sections(videos: Sequence[Link], links: Sequence[Link]) -> list[str]:
    """The "Webcasts:" and "Links:" parts of a description, where there are any."""
    sections = []
    if videos:
        sections.append("\n".join(["Webcasts:", *link_lines(videos)]))
    if links:
        sections.append("\n".join(["Links:", *link_lines(links)]))
    return sections
