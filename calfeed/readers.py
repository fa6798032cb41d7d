"""Reading LL2 objects: the one place that knows both API versions' shapes.

LL2 2.2.0 and 2.3.0 name and nest the same facts differently (`video_url` or `vid_urls`,
an image string or an image object, a family string or a list of families, coordinates
as strings or floats), and any field of a crowd-edited object can be missing, null or of
the wrong type. Every reader here takes whatever is there and returns a plain, typed
value; text through `sanitize.clean_text`, links through `sanitize.safe_url`. The mapping
and the feed kinds read LL2 data only through these.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from dateutil.parser import isoparse

from calfeed.precision import period_words
from calfeed.sanitize import clean_paragraphs, clean_text, excerpt, item_key, safe_url

# every LL2 string and link is read through these (see calfeed/sanitize.py)
text = clean_text
paragraphs = clean_paragraphs
web_url = safe_url

# years an LL2 date may have (the first launches were in the 1950s; anything near
# datetime's own limits is garbage, and would overflow once a period is added)
# (from 1001: the span of a date early in 1000, its week or fiscal year, starts in 999,
# which no four-digit DATE holds)
EARLIEST_YEAR, LATEST_YEAR = 1001, 9000
# longer than this is no event's duration (the default duration is used instead)
MAX_DURATION = timedelta(days=366)

# LL2 launch status ids
GO, TBD, SUCCESS, FAILURE, HOLD, IN_FLIGHT, PARTIAL_FAILURE, TBC = 1, 2, 3, 4, 5, 6, 7, 8
_TENTATIVE_LAUNCH_STATUS = {"TBD", "TBC"}


class MalformedItem(ValueError):
    """An LL2 object that cannot become a calendar entry (no id, no usable date)."""


def item_id(obj: Mapping[str, Any]) -> str:
    """The LL2 id as text; MalformedItem when missing or not an id."""
    key = item_key(obj.get("id"))
    if key is None:
        raise MalformedItem(f"LL2 object without a usable id: {excerpt(repr(obj.get('id')))}")
    return key


# 2026-12-01T10:00:00Z or with fractions of a second: UTC, year within the bounds below
_LL2_STAMP = re.compile(r"(?:19[7-9]\d|2[01]\d\d)-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,6})?Z")


def parse_datetime(value: Any) -> datetime | None:
    """An LL2 timestamp as an aware UTC datetime; None when absent or unreadable."""
    if not isinstance(value, str) or not value.strip():
        return None
    if _LL2_STAMP.fullmatch(value):
        # the shape LL2 writes, read by the standard library (a fifth of the time
        # dateutil takes: every item's dates are read when it is indexed). No `replace`
        # where there is no fraction to cut off, and no context manager: each took more
        # than the parsing (1.7 µs in all, 0.5 µs without them)
        try:
            stamp = datetime.fromisoformat(value)
        except ValueError:  # (a month 13, say: dateutil says no too)
            pass
        else:
            return stamp.replace(microsecond=0) if stamp.microsecond else stamp
    try:
        parsed = isoparse(value.strip())
        parsed = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        return None
    # far enough from datetime's limits that periods and durations stay in range
    if not EARLIEST_YEAR <= parsed.year <= LATEST_YEAR:
        return None
    # whole seconds, as iCalendar writes them: a fraction would be cut off the start and
    # the end alike, and an end a fraction after the start would come out the same
    return parsed.replace(microsecond=0)


_ISO_DURATION = re.compile(
    r"^P(?:(?P<weeks>\d+(?:\.\d+)?)W)?(?:(?P<days>\d+(?:\.\d+)?)D)?"
    r"(?:T(?:(?P<hours>\d+(?:\.\d+)?)H)?(?:(?P<minutes>\d+(?:\.\d+)?)M)?"
    r"(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$"
)
_DJANGO_DURATION = re.compile(
    r"^(?:(?P<days>-?\d+) (?:days?, )?)?"
    r"(?P<hours>\d+):(?P<minutes>\d\d):(?P<seconds>\d\d(?:\.\d+)?)$"
)


DURATION_CHARS = 64
# duration texts kept read (README, Memory)
DURATIONS_READ = 4096


def parse_duration(value: Any) -> timedelta | None:
    """ISO 8601 (PT1H30M, P1DT2H) or Django ([D ]HH:MM:SS) duration; None if unusable."""
    if not isinstance(value, str):
        return None
    stripped = value.strip()
    # (no duration LL2 writes is near this long; a stranger's long text is not one either,
    # and stays out of the cache)
    return _duration_text(stripped) if len(stripped) <= DURATION_CHARS else None


@functools.lru_cache(maxsize=DURATIONS_READ)
def _duration_text(stripped: str) -> timedelta | None:
    # (cached: LL2 repeats a few durations across thousands of items, and the two regular
    # expressions took a fifth of the time to index one)
    match = _ISO_DURATION.match(stripped)
    if not match or stripped in {"P", "PT"} or stripped.endswith("T"):
        match = _DJANGO_DURATION.match(stripped)
    if not match:
        return None
    try:
        result = timedelta(**{k: float(v) for k, v in match.groupdict().items() if v})
    except OverflowError:
        return None
    # (under a second is no length: in the whole seconds iCalendar writes, the end would
    # be the start)
    if not timedelta(seconds=1) <= result <= MAX_DURATION:
        return None
    return result


def object_id(obj: Any) -> int | None:
    """The whole-number id of an LL2 object such as a precision or a status (or a bare
    int); None when absent."""
    # (exact-type checks first: JSON gives dicts and ints, and the abstract Mapping check
    # is several times slower; ids are read tens of thousands of times per dataset)
    if type(obj) is dict or isinstance(obj, Mapping):
        obj = obj.get("id")
    if type(obj) is int:
        return obj if 0 <= obj < 2**63 else None
    if isinstance(obj, bool) or not isinstance(obj, int) or not 0 <= obj < 2**63:
        return None
    return obj


def precision_id(obj: Mapping[str, Any], field: str) -> int | None:
    """The precision id LL2 gives a date field: `date_precision`, `net_precision`."""
    return object_id(obj.get(f"{field}_precision"))


def status_id(launch: Mapping[str, Any]) -> int | None:
    """A launch's status id (GO, TBD, …)."""
    status = launch.get("status")
    return object_id(status) if isinstance(status, Mapping) else None


def object_name(obj: Any) -> str:
    """The `name` of an LL2 object, or the text itself when LL2 gives only a name."""
    if isinstance(obj, Mapping):
        return text(obj.get("name"))
    return text(obj)


def named_ids(value: Any, *, prefer_abbrev: bool = False) -> dict[int, str]:
    """{id: name} from an LL2 object or a list of them (abbreviation first if asked)."""
    objects = value if isinstance(value, list) else [value]
    found: dict[int, str] = {}
    for obj in objects:
        if type(obj) is not dict and not isinstance(obj, Mapping):
            continue
        ident = object_id(obj)
        if ident is None:
            continue
        name = text(obj.get("abbrev")) if prefer_abbrev else ""
        found[ident] = name or object_name(obj) or str(ident)
    return found


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0.0
    try:
        return float(value)
    except OverflowError:  # an int of hundreds of digits
        return 0.0


# links of one kind (webcasts, info links), and launches of an event, shown at most: real
# items have a handful; a list of thousands would make one entry larger than a feed
MAX_LISTED = 20


def _ranked_links(value: Any) -> list[Mapping[str, Any]]:
    """LL2 link objects with a usable URL, most important first (higher priority wins),
    the first MAX_LISTED of them."""
    if not isinstance(value, list):
        return []
    links = [v for v in value[:MAX_LISTED * 10]
             if isinstance(v, Mapping) and web_url(v.get("url"))]
    return sorted(links, key=lambda v: -_number(v.get("priority")))[:MAX_LISTED]


@dataclass(frozen=True)
class Link:
    """A URL with the words shown before it."""

    url: str
    label: str
    live: bool = False


def webcasts(obj: Mapping[str, Any], *more: Mapping[str, Any]) -> list[Link]:
    """Webcasts of an LL2 object: vid_urls by priority, then 2.2.0's video_url; then
    those of `more` (a launch's mission) not already listed, the first MAX_LISTED.

    A 2.3.0 launch in normal mode, as the launches feed asks for them, lists its
    webcasts only under its mission, and says only on itself (webcast_live) that one is
    live: the object's flag marks the first webcast, wherever it was listed."""
    found: list[Link] = []
    for source in (obj, *more):
        # 2.2.0's detailed launches call the list vidURLs
        for video in _ranked_links(source.get("vid_urls") or source.get("vidURLs")):
            words = [w for w in (text(video.get("publisher")), text(video.get("title"))) if w]
            found.append(Link(web_url(video["url"]), ": ".join(words) or "Webcast",
                              video.get("live") is True))
        if video_url := web_url(source.get("video_url")):
            found.append(Link(video_url, "Webcast"))
    links = _each_once(found)
    if links and obj.get("webcast_live") is True:
        links[0] = replace(links[0], live=True)
    return links


def info_links(obj: Mapping[str, Any], *more: Mapping[str, Any]) -> list[Link]:
    """News and info links: info_urls by priority, then 2.2.0's news_url; then those of
    `more` (a launch's mission) not already listed, the first MAX_LISTED."""
    found: list[Link] = []
    for source in (obj, *more):
        found += [Link(web_url(info["url"]),
                       text(info.get("title")) or text(info.get("source")) or "Info")
                  for info in _ranked_links(source.get("info_urls") or source.get("infoURLs"))]
        if news_url := web_url(source.get("news_url")):
            found.append(Link(news_url, "News"))
    return _each_once(found)


def _each_once(links: Iterable[Link]) -> list[Link]:
    """The first MAX_LISTED links, each URL once (where it was first listed)."""
    kept: dict[str, Link] = {}
    for link in links:
        kept.setdefault(link.url, link)
    return list(kept.values())[:MAX_LISTED]


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


# a coordinate as 2.2.0 writes it, in text: decimal degrees (float() would also take
# "1_0", "inf" or "1e-7")
_DEGREES = re.compile(r"[-+]?\d{1,3}(?:\.\d{1,20})?")


def _degrees(value: Any) -> float | None:
    if isinstance(value, str):
        return float(value) if _DEGREES.fullmatch(value.strip()) else None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        return float(value)
    except OverflowError:  # an int of hundreds of digits
        return None


def coordinates(pad: Any) -> tuple[float, float] | None:
    """A pad's latitude/longitude (strings in 2.2.0, floats in 2.3.0), if valid, to six
    decimals (10 cm)."""
    if not isinstance(pad, Mapping):
        return None
    lat, lon = _degrees(pad.get("latitude")), _degrees(pad.get("longitude"))
    if lat is None or lon is None or not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return None  # (NaN fails the comparisons too)
    return _plain(lat), _plain(lon)


def _plain(degrees: float) -> float:
    # GEO is a plain decimal (RFC 5545), and a float under 1e-4 prints as "1e-05", which
    # strict parsers drop: such a one (within 11 m of the equator or the meridian) is 0
    degrees = round(degrees, 6)
    return degrees if abs(degrees) >= 1e-4 else 0.0


def _obj(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def event_launches(event: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The launches an LL2 Event names (the first MAX_LISTED)."""
    launches = event.get("launches")
    if not isinstance(launches, list):
        return []
    return [launch for launch in launches if isinstance(launch, Mapping)][:MAX_LISTED]


def launch_mission(launch: Mapping[str, Any]) -> Mapping[str, Any]:
    """The launch's mission object, or an empty mapping."""
    return _obj(launch.get("mission"))


def launch_configuration(launch: Mapping[str, Any]) -> Mapping[str, Any]:
    """The launch's rocket configuration object, or an empty mapping."""
    return _obj(_obj(launch.get("rocket")).get("configuration"))


def launch_pad(launch: Mapping[str, Any]) -> Mapping[str, Any]:
    """The launch's pad object, or an empty mapping."""
    return _obj(launch.get("pad"))


def launch_place(launch: Mapping[str, Any]) -> str:
    """"Pad, Location" as far as LL2 names them."""
    pad = launch_pad(launch)
    return ", ".join(p for p in (object_name(pad), object_name(pad.get("location"))) if p)


def launch_unconfirmed(launch: Mapping[str, Any]) -> bool:
    """Whether a launch's date is still To Be Determined or To Be Confirmed."""
    status = launch.get("status")
    if not isinstance(status, Mapping):
        return False
    abbrev = text(status.get("abbrev")).upper()
    return object_id(status) in (TBD, TBC) or abbrev in _TENTATIVE_LAUNCH_STATUS


@dataclass(frozen=True)
class LaunchFacts:
    """What a description says about a launch ("" where LL2 does not say)."""

    status: str
    provider: str
    rocket: str
    pad: str
    orbit: str
    net: str  # the NET in words at its precision


def launch_facts(launch: Mapping[str, Any]) -> LaunchFacts:
    """The facts of an LL2 launch both descriptions show: an event's linked launches and
    the launches feed's own entries."""
    config = launch_configuration(launch)
    orbit = launch_mission(launch).get("orbit")
    orbit_words = ""
    if isinstance(orbit, Mapping) and object_name(orbit):
        abbrev = text(orbit.get("abbrev"))
        orbit_words = object_name(orbit) + (f" ({abbrev})" if abbrev else "")
    net = parse_datetime(launch.get("net"))
    status = launch.get("status")
    return LaunchFacts(
        status=object_name(status) if isinstance(status, Mapping) else "",
        provider=object_name(launch.get("launch_service_provider")),
        rocket=text(config.get("full_name")) or object_name(config),
        pad=launch_place(launch),
        orbit=orbit_words,
        net=period_words(precision_id(launch, "net"), net) if net is not None else "",
    )


def families(launch: Mapping[str, Any]) -> dict[str, str]:
    """Rocket families, casefolded -> as LL2 writes them (2.3.0 list, 2.2.0 string)."""
    config = launch_configuration(launch)
    found: dict[str, str] = {}
    listed = config.get("families")
    if isinstance(listed, list):
        for family in listed:
            name = object_name(family) if isinstance(family, Mapping) else ""
            if name:
                found[name.casefold()] = name
    for name in text(config.get("family")).split(","):
        if name.strip():
            found[name.strip().casefold()] = name.strip()
    return found


_CREWED_MISSION_TYPES = ("human exploration", "tourism")


def is_crewed(launch: Mapping[str, Any]) -> bool:
    """People aboard: a crew list on the spacecraft, or a human spaceflight mission type."""
    stage = _obj(_obj(launch.get("rocket")).get("spacecraft_stage"))
    crew = stage.get("launch_crew")
    if isinstance(crew, list) and crew:
        return True
    mission_type = launch_mission(launch).get("type")
    return isinstance(mission_type, str) and mission_type.casefold() in _CREWED_MISSION_TYPES
