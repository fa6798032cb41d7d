"""LL2 objects to iCalendar: pure functions, no I/O and no clock.

The precision table lives here once; every feed kind times its items with it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import icalendar
from dateutil.parser import isoparse
from dateutil.relativedelta import relativedelta

from calfeed.sanitize import clean_paragraphs, clean_text, excerpt, item_key, safe_url

# Coarseness levels a feed can be limited to, finest first; index = level.
LEVELS: tuple[str, ...] = (
    "minute", "hour", "day", "week", "month", "quarter", "half", "year", "any",
)
LEVEL = {name: index for index, name in enumerate(LEVELS)}

# LL2 date_precision id -> level. Ids missing here (and null) count as exact.
_PRECISION_LEVEL: dict[int, int] = {
    0: LEVEL["minute"], 1: LEVEL["minute"], 2: LEVEL["hour"],
    3: LEVEL["day"], 4: LEVEL["day"], 5: LEVEL["day"],
    6: LEVEL["week"], 7: LEVEL["month"],
    8: LEVEL["quarter"], 9: LEVEL["quarter"], 10: LEVEL["quarter"], 11: LEVEL["quarter"],
    12: LEVEL["half"], 13: LEVEL["half"], 14: LEVEL["year"],
    15: LEVEL["any"], 16: LEVEL["any"],
}

# years an LL2 date may have (the first launches were in the 1950s; anything near
# datetime's own limits is garbage, and would overflow once a period is added)
_EARLIEST, _LATEST = 1000, 9000
# longer than this is no event's duration (the default duration is used instead)
MAX_DURATION = timedelta(days=366)
ATTRIBUTION = "Data: Launch Library 2 by The Space Devs, https://thespacedevs.com/llapi"
# A fixed DTSTAMP for objects without last_updated keeps their bytes stable.
FALLBACK_STAMP = datetime(2000, 1, 1, tzinfo=UTC)
_SEQUENCE_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
_TENTATIVE_LAUNCH_STATUS = {"TBD", "TBC"}


class MalformedItem(ValueError):
    """An LL2 object that cannot become a calendar entry (no id, no usable date)."""


@dataclass(frozen=True)
class MappingOptions:
    """What, besides the LL2 object, decides a VEVENT's bytes."""

    uid_domain: str = "calfeed"
    default_duration: timedelta = timedelta(hours=1)
    # minutes before the start of each timed event at which to remind (VALARM)
    alarms: tuple[int, ...] = ()


@dataclass(frozen=True)
class Timing:
    """When an item happens, as a calendar shows it."""

    start: datetime | date
    end: datetime | date
    all_day: bool
    level: int
    # the uncertainty in words for the title, None when timed to the minute
    label: str | None

    @property
    def start_utc(self) -> datetime:
        """Start as an aware UTC datetime (midnight UTC for all-day)."""
        return _as_utc(self.start)

    @property
    def end_utc(self) -> datetime:
        """End (exclusive) as an aware UTC datetime."""
        return _as_utc(self.end)


def _as_utc(value: datetime | date) -> datetime:
    if isinstance(value, datetime):
        return value
    return datetime(value.year, value.month, value.day, tzinfo=UTC)


def parse_datetime(value: Any) -> datetime | None:
    """An LL2 timestamp as an aware UTC datetime; None when absent or unreadable."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        parsed = isoparse(value.strip())
        parsed = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        return None
    # far enough from datetime's limits that periods and durations stay in range
    if not _EARLIEST <= parsed.year <= _LATEST:
        return None
    return parsed


_ISO_DURATION = re.compile(
    r"^P(?:(?P<weeks>\d+(?:\.\d+)?)W)?(?:(?P<days>\d+(?:\.\d+)?)D)?"
    r"(?:T(?:(?P<hours>\d+(?:\.\d+)?)H)?(?:(?P<minutes>\d+(?:\.\d+)?)M)?"
    r"(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$"
)
_DJANGO_DURATION = re.compile(
    r"^(?:(?P<days>-?\d+) (?:days?, )?)?"
    r"(?P<hours>\d+):(?P<minutes>\d\d):(?P<seconds>\d\d(?:\.\d+)?)$"
)


def parse_duration(value: Any) -> timedelta | None:
    """ISO 8601 (PT1H30M, P1DT2H) or Django ([D ]HH:MM:SS) duration; None if unusable."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    match = _ISO_DURATION.match(text)
    if not match or text in {"P", "PT"} or text.endswith("T"):
        match = _DJANGO_DURATION.match(text)
    if not match:
        return None
    try:
        result = timedelta(**{k: float(v) for k, v in match.groupdict().items() if v})
    except OverflowError:
        return None
    if not timedelta(0) < result <= MAX_DURATION:
        return None
    return result


def precision_id(obj: Any) -> int | None:
    """The id of an LL2 precision object (or a bare int); None when absent."""
    if isinstance(obj, Mapping):
        obj = obj.get("id")
    if isinstance(obj, bool) or not isinstance(obj, int):
        return None
    return obj


def precision_level(pid: int | None) -> int:
    """The coarseness level of an LL2 precision id; null and unknown ids are exact."""
    if pid is None:
        return LEVEL["minute"]
    return _PRECISION_LEVEL.get(pid, LEVEL["minute"])


def _add_months(day: date, months: int) -> date:
    result: date = day + relativedelta(months=months)
    return result


def period(pid: int, when: datetime) -> tuple[date, date]:
    """The all-day span [start, end) an imprecise date stands for.

    Derived from the id and the date's year/month/day only, because LL2 puts
    the date at the end of its period usually, but not always.
    """
    day = when.date()
    if pid in (3, 4, 5):
        return day, day + timedelta(days=1)
    if pid == 6:
        monday = day - timedelta(days=day.weekday())
        return monday, monday + timedelta(days=7)
    if pid == 7:
        first = day.replace(day=1)
        return first, _add_months(first, 1)
    if 8 <= pid <= 11:
        first = date(day.year, 3 * (pid - 8) + 1, 1)
        return first, _add_months(first, 3)
    if pid in (12, 13):
        first = date(day.year, 6 * (pid - 12) + 1, 1)
        return first, _add_months(first, 6)
    if pid == 14:
        return date(day.year, 1, 1), date(day.year + 1, 1, 1)
    if pid == 15:
        end = _add_months(day.replace(day=1), 1)
        return _add_months(end, -12), end
    if pid == 16:
        first_year = day.year - day.year % 10
        return date(first_year, 1, 1), date(first_year + 10, 1, 1)
    raise ValueError(f"precision {pid} is not a period")


def _month_label(day: date) -> str:
    return day.strftime("%b %Y")


def period_words(pid: int | None, when: datetime) -> str:
    """A date as a person reads it at the given LL2 precision ("Q3 2026", "14:00 UTC")."""
    level = precision_level(pid)
    if level == LEVEL["minute"]:
        return when.strftime("%Y-%m-%d %H:%M UTC")
    assert pid is not None
    if pid == 2:
        return when.strftime("%Y-%m-%d ~%H:00 UTC")
    if pid == 3:
        return when.strftime("%Y-%m-%d (morning)")
    if pid == 4:
        return when.strftime("%Y-%m-%d (afternoon)")
    if pid == 5:
        return when.strftime("%Y-%m-%d")
    start, end = period(pid, when)
    if pid == 6:
        return "week of " + start.strftime("%Y-%m-%d")
    if pid == 7:
        return _month_label(start)
    if 8 <= pid <= 11:
        return f"Q{pid - 7} {start.year}"
    if pid in (12, 13):
        return f"H{pid - 11} {start.year}"
    if pid == 14:
        return str(start.year)
    if pid == 15:
        last = end - timedelta(days=1)
        return f"FY {_month_label(start)}-{_month_label(last)}"
    return f"{start.year}s"


def _title_label(pid: int | None, when: datetime) -> str | None:
    level = precision_level(pid)
    if level == LEVEL["minute"]:
        return None
    assert pid is not None
    if pid == 2:
        return "time approximate"
    if pid in (3, 4):
        return "morning" if pid == 3 else "afternoon"
    if pid == 5:
        return "time TBD"
    if pid == 7:
        return "NET " + period_words(pid, when)
    return period_words(pid, when)


def item_timing(
    when: datetime, pid: int | None, length: timedelta | None, options: MappingOptions
) -> Timing:
    """Start, end and uncertainty of an LL2 date at a given precision."""
    level = precision_level(pid)
    label = _title_label(pid, when)
    if level <= LEVEL["hour"]:
        duration = length or options.default_duration
        return Timing(when, when + duration, False, level, label)
    assert pid is not None
    start, end = period(pid, when)
    return Timing(start, end, True, level, label)


def event_timing(event: Mapping[str, Any], options: MappingOptions) -> Timing:
    """Timing of an LL2 Event from date, date_precision and duration."""
    when = parse_datetime(event.get("date"))
    if when is None:
        raise MalformedItem(f"event {event.get('id')!r} has no usable date")
    return item_timing(
        when, precision_id(event.get("date_precision")), parse_duration(event.get("duration")),
        options,
    )


# every LL2 string and link is read through these (see calfeed/sanitize.py)
_text = clean_text
_paragraphs = clean_paragraphs
web_url = safe_url


def _ranked_links(value: Any) -> list[Mapping[str, Any]]:
    """LL2 link objects with a usable URL, most important first (higher priority wins)."""
    if not isinstance(value, list):
        return []
    links = [v for v in value if isinstance(v, Mapping) and web_url(v.get("url"))]
    return sorted(links, key=lambda v: -_number(v.get("priority")))


def _number(value: Any) -> float:
    if isinstance(value, bool):
        return 0.0
    if isinstance(value, int | float):
        return float(value)
    return 0.0


@dataclass(frozen=True)
class Link:
    """A URL with the words shown before it."""

    url: str
    label: str
    live: bool = False


def webcasts(obj: Mapping[str, Any]) -> list[Link]:
    """Webcasts of an LL2 object: vid_urls by priority, then 2.2.0's video_url."""
    live_flag = obj.get("webcast_live") is True
    links: list[Link] = []
    # 2.2.0's detailed launches call the list vidURLs
    for video in _ranked_links(obj.get("vid_urls") or obj.get("vidURLs")):
        words = [w for w in (_text(video.get("publisher")), _text(video.get("title"))) if w]
        live = video.get("live") is True or (live_flag and not links)
        links.append(Link(web_url(video["url"]), ": ".join(words) or "Webcast", live))
    video_url = web_url(obj.get("video_url"))
    if video_url and all(link.url != video_url for link in links):
        links.append(Link(video_url, "Webcast", live_flag and not links))
    return links


def info_links(obj: Mapping[str, Any]) -> list[Link]:
    """News and info links: info_urls by priority, then 2.2.0's news_url."""
    links = [
        Link(web_url(info["url"]), _text(info.get("title")) or _text(info.get("source")) or "Info")
        for info in _ranked_links(obj.get("info_urls") or obj.get("infoURLs"))
    ]
    news_url = web_url(obj.get("news_url"))
    if news_url and all(link.url != news_url for link in links):
        links.append(Link(news_url, "News"))
    return links


def primary_url(*choices: Sequence[Link]) -> str:
    """The URL an item links to: the first of the first non-empty list ("" when none)."""
    for links in choices:
        if links:
            return links[0].url
    return ""


def image_url(obj: Mapping[str, Any]) -> str:
    """The picture of an LL2 object: 2.3.0 image object, else 2.2.0 strings."""
    image = obj.get("image")
    if isinstance(image, Mapping):
        url = web_url(image.get("image_url"))
        if url:
            return url
    elif web_url(image):
        return web_url(image)
    return web_url(obj.get("feature_image"))


def coordinates(pad: Any) -> tuple[float, float] | None:
    """A pad's latitude/longitude (strings in 2.2.0, floats in 2.3.0), if valid."""
    if not isinstance(pad, Mapping):
        return None
    try:
        lat = float(pad.get("latitude"))  # type: ignore[arg-type]
        lon = float(pad.get("longitude"))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180) or lat != lat or lon != lon:
        return None
    return lat, lon


def _named(obj: Any) -> str:
    if isinstance(obj, Mapping):
        return _text(obj.get("name"))
    return _text(obj)


def object_name(obj: Any) -> str:
    """The `name` of an LL2 object ("" when there is none)."""
    return _named(obj) if isinstance(obj, Mapping) else ""


def named_ids(value: Any, *, prefer_abbrev: bool = False) -> dict[int, str]:
    """{id: name} from an LL2 object or a list of them (abbreviation first if asked)."""
    objects = value if isinstance(value, list) else [value]
    found: dict[int, str] = {}
    for obj in objects:
        if not isinstance(obj, Mapping):
            continue
        ident = obj.get("id")
        if isinstance(ident, bool) or not isinstance(ident, int):
            continue
        name = _text(obj.get("abbrev")) if prefer_abbrev else ""
        found[ident] = name or _named(obj) or str(ident)
    return found


def launch_unconfirmed(launch: Mapping[str, Any]) -> bool:
    """Whether a launch's date is still To Be Determined or To Be Confirmed."""
    status = launch.get("status")
    if not isinstance(status, Mapping):
        return False
    abbrev = _text(status.get("abbrev")).upper()
    return precision_id(status) in (TBD, TBC) or abbrev in _TENTATIVE_LAUNCH_STATUS


def launch_summary_lines(launch: Mapping[str, Any]) -> list[str]:
    """A linked launch in a few plain-text lines: name, NET, status, provider, link."""
    name = _text(launch.get("name")) or "Launch"
    lines = [f"- {name}"]
    facts = []
    net = parse_datetime(launch.get("net"))
    if net is not None:
        facts.append("NET " + period_words(precision_id(launch.get("net_precision")), net))
    status = launch.get("status")
    if isinstance(status, Mapping) and _named(status):
        facts.append("status: " + _named(status))
    provider = launch.get("launch_service_provider")
    if _named(provider):
        facts.append("provider: " + _named(provider))
    if facts:
        lines.append("  " + " · ".join(facts))
    url = web_url(launch.get("url"))
    if url:
        lines.append("  " + url)
    return lines


def _link_lines(links: Sequence[Link]) -> list[str]:
    return [f"- {'[LIVE] ' if link.live else ''}{link.label}: {link.url}" for link in links]


def _launches(event: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    launches = event.get("launches")
    if not isinstance(launches, list):
        return []
    return [launch for launch in launches if isinstance(launch, Mapping)]


def event_description(event: Mapping[str, Any]) -> str:
    """Plain-text DESCRIPTION: text, linked launches, webcasts, links, attribution."""
    sections: list[str] = []
    text = _paragraphs(event.get("description"))
    if text:
        sections.append(text)
    launches = _launches(event)
    if launches:
        lines = ["Launches:"]
        for launch in launches:
            lines.extend(launch_summary_lines(launch))
        sections.append("\n".join(lines))
    sections.extend(_link_sections(webcasts(event), info_links(event)))
    sections.append(ATTRIBUTION)
    return "\n\n".join(sections)


def _link_sections(videos: Sequence[Link], links: Sequence[Link]) -> list[str]:
    """The "Webcasts:" and "Links:" parts of a description, where there are any."""
    sections = []
    if videos:
        sections.append("\n".join(["Webcasts:", *_link_lines(videos)]))
    if links:
        sections.append("\n".join(["Links:", *_link_lines(links)]))
    return sections


def timing_json(timing: Timing, pid: int | None, when: datetime | None) -> dict[str, Any]:
    """start/end/all_day/precision as /<kind>.json shows them (as the calendar does)."""
    if timing.all_day:
        start, end = timing.start.isoformat(), timing.end.isoformat()
    else:
        start = timing.start_utc.strftime("%Y-%m-%dT%H:%M:%SZ")
        end = timing.end_utc.strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "start": start,
        "end": end,
        "all_day": timing.all_day,
        "precision": {"id": pid, "level": LEVELS[timing.level],
                      "words": period_words(pid, when) if when else None},
    }


def sequence_number(last_updated: datetime | None) -> int:
    """SEQUENCE that grows with last_updated (seconds since 2000, fits in 32 bits)."""
    if last_updated is None:
        return 0
    return max(0, int((last_updated - _SEQUENCE_EPOCH).total_seconds()))


def _geo(launches: Iterable[Mapping[str, Any]]) -> tuple[float, float] | None:
    for launch in launches:
        found = coordinates(launch.get("pad"))
        if found is not None:
            return found
    return None


def item_id(obj: Mapping[str, Any]) -> str:
    """The LL2 id as text; MalformedItem when missing or not an id."""
    key = item_key(obj.get("id"))
    if key is None:
        raise MalformedItem(f"LL2 object without a usable id: {excerpt(repr(obj.get('id')))}")
    return key


def event_summary(event: Mapping[str, Any], timing: Timing) -> str:
    """The title: the event name, with the date's uncertainty in words."""
    name = _text(event.get("name")) or f"Space event {item_id(event)}"
    return f"{name} ({timing.label})" if timing.label else name


def event_to_vevent(event: Mapping[str, Any], options: MappingOptions) -> icalendar.Event:
    """One LL2 Event (2.2.0 or 2.3.0 shape) as a VEVENT."""
    ident = item_id(event)
    timing = event_timing(event, options)
    launches = _launches(event)
    tentative = timing.level > LEVEL["hour"] or any(map(launch_unconfirmed, launches))
    return _vevent(
        uid=f"ll2-event-{ident}@{options.uid_domain}",
        summary=event_summary(event, timing),
        timing=timing,
        obj=event,
        description=event_description(event),
        location=_text(event.get("location")),
        geo=_geo(launches),
        category=_named(event.get("type")),
        url=primary_url(webcasts(event), info_links(event)),
        tentative=tentative,
        alarms=options.alarms,
    )


def _vevent(
    *,
    uid: str,
    summary: str,
    timing: Timing,
    obj: Mapping[str, Any],
    description: str,
    location: str,
    geo: tuple[float, float] | None,
    category: str,
    url: str,
    tentative: bool,
    alarms: tuple[int, ...] = (),
) -> icalendar.Event:
    stamp = parse_datetime(obj.get("last_updated"))
    vevent = icalendar.Event()
    vevent.add("uid", uid)
    vevent.add("dtstamp", stamp or FALLBACK_STAMP)
    if stamp is not None:
        vevent.add("last-modified", stamp)
    vevent.add("sequence", sequence_number(stamp))
    vevent.add("summary", summary)
    vevent.add("dtstart", timing.start)
    vevent.add("dtend", timing.end)
    vevent.add("status", "TENTATIVE" if tentative else "CONFIRMED")
    vevent.add("transp", "TRANSPARENT")
    vevent.add("description", description)
    if location:
        vevent.add("location", location)
    if geo is not None:
        vevent.add("geo", geo)
    if category:
        vevent.add("categories", [category])
    if url:
        vevent.add("url", url)
    picture = image_url(obj)
    if picture:
        vevent.add("image", picture, parameters={"VALUE": "URI"})
    if not timing.all_day:
        # reminders only where there is a time to be reminded of
        for minutes in alarms:
            alarm = icalendar.Alarm()
            alarm.add("action", "DISPLAY")
            alarm.add("description", summary)
            alarm.add("trigger", timedelta(minutes=-minutes))
            vevent.add_component(alarm)
    return vevent


# LL2 launch status ids
GO, TBD, SUCCESS, FAILURE, HOLD, IN_FLIGHT, PARTIAL_FAILURE, TBC = 1, 2, 3, 4, 5, 6, 7, 8
_OUTCOME_MARK = {SUCCESS: " ✓", FAILURE: " ✗ failure", PARTIAL_FAILURE: " ✗ partial failure"}


@dataclass(frozen=True)
class RelatedEvent:
    """An LL2 Event that names a launch (a docking after it, a press conference before)."""

    name: str
    when: str
    url: str


def launch_timing(launch: Mapping[str, Any], options: MappingOptions) -> Timing:
    """A launch's timing: the window for exact NETs, the precision's period otherwise."""
    net = parse_datetime(launch.get("net"))
    if net is None:
        raise MalformedItem(f"launch {launch.get('id')!r} has no usable net")
    pid = precision_id(launch.get("net_precision"))
    if precision_level(pid) > LEVEL["hour"]:
        return item_timing(net, pid, None, options)
    start = parse_datetime(launch.get("window_start")) or net
    end = parse_datetime(launch.get("window_end"))
    length = end - start if end is not None and end > start else None
    return item_timing(start, pid, length, options)


def _status_id(launch: Mapping[str, Any]) -> int | None:
    status = launch.get("status")
    return precision_id(status) if isinstance(status, Mapping) else None


def launch_summary(launch: Mapping[str, Any], timing: Timing) -> str:
    """The title: "Rocket | Mission", the outcome or hold, and the date's uncertainty."""
    name = _text(launch.get("name")) or f"Launch {item_id(launch)}"
    status = _status_id(launch)
    if status == HOLD:
        name = f"HOLD: {name}"
    name += _OUTCOME_MARK.get(status, "") if status is not None else ""
    if status == IN_FLIGHT:
        name += " (in flight)"
    if timing.label:
        return f"{name} ({timing.label})"
    if status in (TBD, TBC):
        return f"{name} ({'TBD' if status == TBD else 'TBC'})"
    return name


def launch_mission(launch: Mapping[str, Any]) -> Mapping[str, Any]:
    """The launch's mission object, or an empty mapping."""
    mission = launch.get("mission")
    return mission if isinstance(mission, Mapping) else {}


def launch_configuration(launch: Mapping[str, Any]) -> Mapping[str, Any]:
    """The launch's rocket configuration object, or an empty mapping."""
    rocket = launch.get("rocket")
    config = rocket.get("configuration") if isinstance(rocket, Mapping) else None
    return config if isinstance(config, Mapping) else {}


def launch_pad(launch: Mapping[str, Any]) -> Mapping[str, Any]:
    """The launch's pad object, or an empty mapping."""
    pad = launch.get("pad")
    return pad if isinstance(pad, Mapping) else {}


def launch_place(launch: Mapping[str, Any]) -> str:
    """"Pad, Location" as far as LL2 names them."""
    pad = launch_pad(launch)
    location = pad.get("location")
    return ", ".join(p for p in (_named(pad), _named(location)) if p)


def launch_description(launch: Mapping[str, Any], related: Sequence[RelatedEvent]) -> str:
    """Plain-text DESCRIPTION of a launch."""
    sections: list[str] = []
    mission = launch_mission(launch)
    text = _paragraphs(mission.get("description"))
    if text:
        sections.append(text)
    facts = []
    status = launch.get("status")
    if isinstance(status, Mapping) and _named(status):
        facts.append("Status: " + _named(status))
    provider = _named(launch.get("launch_service_provider"))
    if provider:
        facts.append("Provider: " + provider)
    config = launch_configuration(launch)
    rocket = _text(config.get("full_name")) or _named(config)
    if rocket:
        facts.append("Rocket: " + rocket)
    place = launch_place(launch)
    if place:
        facts.append("Pad: " + place)
    orbit = mission.get("orbit")
    if isinstance(orbit, Mapping) and _named(orbit):
        abbrev = _text(orbit.get("abbrev"))
        facts.append("Orbit: " + _named(orbit) + (f" ({abbrev})" if abbrev else ""))
    net = parse_datetime(launch.get("net"))
    if net is not None:
        facts.append("NET: " + period_words(precision_id(launch.get("net_precision")), net))
    probability = launch.get("probability")
    if isinstance(probability, int) and not isinstance(probability, bool) and probability >= 0:
        facts.append(f"Launch weather probability: {probability}%")
    weather = _text(launch.get("weather_concerns"))
    if weather:
        facts.append("Weather concerns: " + weather)
    if _status_id(launch) == HOLD and _text(launch.get("holdreason")):
        facts.append("Hold reason: " + _text(launch.get("holdreason")))
    if _text(launch.get("failreason")):
        facts.append("Failure reason: " + _text(launch.get("failreason")))
    if facts:
        sections.append("\n".join(facts))
    sections.extend(_link_sections(webcasts(launch), launch_links(launch)))
    if related:
        sections.append("\n".join(
            ["Related events:", *(f"- {r.name} ({r.when})" + (f": {r.url}" if r.url else "")
                                  for r in related)]
        ))
    url = web_url(launch.get("url"))
    if url:
        sections.append("LL2: " + url)
    sections.append(ATTRIBUTION)
    return "\n\n".join(sections)


def launch_links(launch: Mapping[str, Any]) -> list[Link]:
    """Info links of the launch, then of its mission."""
    links = info_links(launch)
    seen = {link.url for link in links}
    for link in info_links(launch_mission(launch)):
        if link.url not in seen:
            links.append(link)
            seen.add(link.url)
    return links


def launch_to_vevent(
    launch: Mapping[str, Any], options: MappingOptions, related: Sequence[RelatedEvent] = ()
) -> icalendar.Event:
    """One LL2 Launch (2.2.0 or 2.3.0 shape) as a VEVENT."""
    ident = item_id(launch)
    timing = launch_timing(launch, options)
    return _vevent(
        uid=f"ll2-launch-{ident}@{options.uid_domain}",
        summary=launch_summary(launch, timing),
        timing=timing,
        obj=launch,
        description=launch_description(launch, related),
        location=launch_place(launch),
        geo=coordinates(launch_pad(launch)),
        category="Launch",
        url=primary_url(webcasts(launch), launch_links(launch)),
        tentative=timing.level > LEVEL["hour"] or launch_unconfirmed(launch),
        alarms=options.alarms,
    )
