"""LL2 Events to VEVENTs: pure functions, no I/O and no clock.

An Event (a docking, a spacewalk, a flyby) is timed by its date and date precision
(`calfeed/precision.py`), read through `calfeed/readers.py`, and built into a VEVENT by
`calfeed/vevent.py`. Launches are mapped next to their feed kind
(`calfeed/feeds/launches.py`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import icalendar

from calfeed.precision import LEVEL, Timing, item_timing
from calfeed.readers import (
    MalformedItem,
    coordinates,
    event_launches,
    image_url,
    info_links,
    item_id,
    launch_facts,
    launch_unconfirmed,
    object_name,
    paragraphs,
    parse_datetime,
    parse_duration,
    precision_id,
    primary_url,
    text,
    web_url,
    webcasts,
)
from calfeed.vevent import ATTRIBUTION, MappingOptions, VEventFields, build, link_sections


def event_timing(event: Mapping[str, Any], options: MappingOptions) -> Timing:
    """Timing of an LL2 Event from date, date_precision and duration."""
    when = parse_datetime(event.get("date"))
    if when is None:
        raise MalformedItem(f"event {event.get('id')!r} has no usable date")
    return item_timing(when, precision_id(event, "date"), parse_duration(event.get("duration")),
                       options.default_duration)


def launch_summary_lines(launch: Mapping[str, Any]) -> list[str]:
    """A linked launch in a few plain-text lines: name, NET, status, provider, link."""
    name = text(launch.get("name")) or "Launch"
    lines = [f"- {name}"]
    facts = launch_facts(launch)
    shown = [
        words for words in (
            facts.net and "NET " + facts.net,
            facts.status and "status: " + facts.status,
            facts.provider and "provider: " + facts.provider,
        ) if words
    ]
    if shown:
        lines.append("  " + " · ".join(shown))
    url = web_url(launch.get("url"))
    if url:
        lines.append("  " + url)
    return lines


def event_description(event: Mapping[str, Any]) -> str:
    """Plain-text DESCRIPTION: text, linked launches, webcasts, links, attribution."""
    sections: list[str] = []
    about = paragraphs(event.get("description"))
    if about:
        sections.append(about)
    launches = event_launches(event)
    if launches:
        lines = ["Launches:"]
        for launch in launches:
            lines.extend(launch_summary_lines(launch))
        sections.append("\n".join(lines))
    sections.extend(link_sections(webcasts(event), info_links(event)))
    sections.append(ATTRIBUTION)
    return "\n\n".join(sections)


def _geo(launches: Iterable[Mapping[str, Any]]) -> tuple[float, float] | None:
    for launch in launches:
        found = coordinates(launch.get("pad"))
        if found is not None:
            return found
    return None


def event_summary(event: Mapping[str, Any], timing: Timing) -> str:
    """The title: the event name, with the date's uncertainty in words."""
    name = text(event.get("name")) or f"Space event {item_id(event)}"
    return f"{name} ({timing.label})" if timing.label else name


def event_fields(event: Mapping[str, Any], options: MappingOptions) -> VEventFields:
    """What the calendar entry of an LL2 Event (2.2.0 or 2.3.0 shape) shows."""
    ident = item_id(event)
    timing = event_timing(event, options)
    launches = event_launches(event)
    return VEventFields(
        uid=f"ll2-event-{ident}@{options.uid_domain}",
        summary=event_summary(event, timing),
        timing=timing,
        description=event_description(event),
        updated=parse_datetime(event.get("last_updated")),
        tentative=timing.level > LEVEL["hour"] or any(map(launch_unconfirmed, launches)),
        location=text(event.get("location")),
        geo=_geo(launches),
        category=object_name(event.get("type")),
        url=primary_url(webcasts(event), info_links(event)),
        image=image_url(event),
    )


def event_to_vevent(event: Mapping[str, Any], options: MappingOptions) -> icalendar.Event:
    """One LL2 Event (2.2.0 or 2.3.0 shape) as a VEVENT."""
    return build(event_fields(event, options), options.alarms)
