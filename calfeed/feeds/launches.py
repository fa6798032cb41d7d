"""The launches feed: every LL2 rocket launch at /launches.ics, kept current through scrubs.

A launch is timed by its window when LL2 knows the NET to the hour or better (by the NET
itself when the window does not hold it or is a day or more), by the period of its NET
otherwise; its title carries the outcome or a hold; its description the launch's facts,
webcasts and links (its own and its mission's), and the LL2 Events that name it (a
docking after it, a press conference before), which the events dataset supplies.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar

import icalendar

from calfeed.dataset import Snapshot
from calfeed.feeds import Entry, Facts, FeedKind, links_json, register
from calfeed.precision import LEVEL, Timing, item_timing, period_words, precision_level
from calfeed.query import MAX_LIST_VALUES, Param, flag_value, id_list, word_list
from calfeed.readers import (
    FAILURE,
    HOLD,
    IN_FLIGHT,
    MAX_LISTED,
    PARTIAL_FAILURE,
    SUCCESS,
    TBC,
    TBD,
    Link,
    MalformedItem,
    coordinates,
    families,
    image_url,
    info_links,
    is_crewed,
    item_id,
    launch_configuration,
    launch_facts,
    launch_mission,
    launch_pad,
    launch_place,
    launch_unconfirmed,
    named_ids,
    object_name,
    paragraphs,
    parse_datetime,
    precision_id,
    primary_url,
    status_id,
    text,
    web_url,
    webcasts,
)
from calfeed.sanitize import excerpt, item_key
from calfeed.vevent import ATTRIBUTION, MappingOptions, VEventFields, build, link_sections

log = logging.getLogger("calfeed.feeds")

_OUTCOME_MARK = {SUCCESS: " ✓", FAILURE: " ✗ failure", PARTIAL_FAILURE: " ✗ partial failure"}
# events read for the related events between two steps (a few milliseconds)
_CONTEXT_STEP = 100


def crewed_choice(values: list[str]) -> frozenset[str] | None:
    """true/false (also 1/0, yes/no): launches with or without people aboard."""
    if len(values) == 1 and not values[0].strip():
        return None
    return frozenset({"true" if flag_value(values) else "false"})


@dataclass(frozen=True)
class RelatedEvent:
    """An LL2 Event that names a launch (a docking after it, a press conference before)."""

    name: str
    when: str  # its date in words, at its precision
    url: str
    at: datetime  # its date, what they are listed by


# the longest window an entry is timed by. A launch window is instantaneous to a few hours
# (the longest in the real LL2 samples is 4 hours); a day or more is a window_end left
# behind or mistyped, and would show the launch as under way for all of it (years, for
# some), kept by past_days and by trimming all that time
MAX_WINDOW = timedelta(hours=24)
# windows already logged as ignored: the timing is read at every index and every build
# of an entry, and each bad window should be one log line, not one per read
_IGNORED_LOGGED = 1024


def launch_window(launch: Mapping[str, Any], net: datetime) -> tuple[datetime, timedelta | None]:
    """Where a launch known to the hour or better starts, and for how long (None: the
    default duration): its window when the NET lies in it and it is no longer than
    MAX_WINDOW, else its NET. LL2 moves the NET at a scrub and the window not always,
    and the description says the NET: the entry is never on a day the NET contradicts."""
    raw_start, raw_end = launch.get("window_start"), launch.get("window_end")
    if raw_start is None and raw_end is None:
        return net, None
    start, end = parse_datetime(raw_start), parse_datetime(raw_end)
    if start is None or end is None:
        reason = "not two timestamps"
    elif not start <= net <= end:
        reason = "the NET is outside it"
    elif end - start > MAX_WINDOW:
        reason = f"longer than {MAX_WINDOW.total_seconds() / 3600:.0f} hours"
    else:
        return start, (end - start) or None
    _log_ignored_window(excerpt(repr(launch.get("id"))), start, end, net, reason)
    return net, None


@functools.lru_cache(maxsize=_IGNORED_LOGGED)
def _log_ignored_window(ident: str, start: datetime | None, end: datetime | None,
                        net: datetime, reason: str) -> None:
    # (cached by the window and the NET: see _IGNORED_LOGGED; a moved one is logged anew)
    log.warning("window=ignored kind=launches id=%s start=%s end=%s reason=%r: timed by "
                "its NET", ident, start and start.isoformat(), end and end.isoformat(),
                reason)


def launch_timing(launch: Mapping[str, Any], options: MappingOptions) -> Timing:
    """A launch's timing: the window for exact NETs (where it holds the NET, see
    launch_window), the precision's period otherwise."""
    net = parse_datetime(launch.get("net"))
    if net is None:
        raise MalformedItem(f"launch {launch.get('id')!r} has no usable net")
    pid = precision_id(launch, "net")
    if precision_level(pid) > LEVEL["hour"]:
        return item_timing(net, pid, None, options.default_duration)
    start, length = launch_window(launch, net)
    return item_timing(start, pid, length, options.default_duration)


def launch_summary(launch: Mapping[str, Any], timing: Timing) -> str:
    """The title: "Rocket | Mission", the outcome or hold, and the date's uncertainty."""
    name = text(launch.get("name")) or f"Launch {item_id(launch)}"
    status = status_id(launch)
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


def launch_webcasts(launch: Mapping[str, Any]) -> list[Link]:
    """Webcasts of the launch, then of its mission (where a normal-mode 2.3.0 launch has
    them: see readers.webcasts)."""
    return webcasts(launch, launch_mission(launch))


def launch_links(launch: Mapping[str, Any]) -> list[Link]:
    """Info links of the launch, then of its mission."""
    return info_links(launch, launch_mission(launch))


def launch_description(launch: Mapping[str, Any], related: Sequence[RelatedEvent]) -> str:
    """Plain-text DESCRIPTION of a launch."""
    sections: list[str] = []
    about = paragraphs(launch_mission(launch).get("description"))
    if about:
        sections.append(about)
    facts = launch_facts(launch)
    lines = [f"{label}: {value}" for label, value in (
        ("Status", facts.status), ("Provider", facts.provider), ("Rocket", facts.rocket),
        ("Pad", facts.pad), ("Orbit", facts.orbit), ("NET", facts.net),
    ) if value]
    probability = launch.get("probability")
    if isinstance(probability, int) and not isinstance(probability, bool) \
            and 0 <= probability <= 100:
        lines.append(f"Launch weather probability: {probability}%")
    weather = text(launch.get("weather_concerns"))
    if weather:
        lines.append("Weather concerns: " + weather)
    if status_id(launch) == HOLD and text(launch.get("holdreason")):
        lines.append("Hold reason: " + text(launch.get("holdreason")))
    if text(launch.get("failreason")):
        lines.append("Failure reason: " + text(launch.get("failreason")))
    if lines:
        sections.append("\n".join(lines))
    sections.extend(link_sections(launch_webcasts(launch), launch_links(launch)))
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


def launch_fields(
    launch: Mapping[str, Any], options: MappingOptions, related: Sequence[RelatedEvent] = ()
) -> VEventFields:
    """What the calendar entry of an LL2 Launch (2.2.0 or 2.3.0 shape) shows."""
    ident = item_id(launch)
    timing = launch_timing(launch, options)
    return VEventFields(
        uid=f"ll2-launch-{ident}@{options.uid_domain}",
        summary=launch_summary(launch, timing),
        timing=timing,
        description=launch_description(launch, related),
        updated=parse_datetime(launch.get("last_updated")),
        tentative=timing.level > LEVEL["hour"] or launch_unconfirmed(launch),
        location=launch_place(launch),
        geo=coordinates(launch_pad(launch)),
        category="Launch",
        url=primary_url(launch_webcasts(launch), launch_links(launch)),
        image=image_url(launch),
    )


def launch_to_vevent(
    launch: Mapping[str, Any], options: MappingOptions, related: Sequence[RelatedEvent] = ()
) -> icalendar.Event:
    """One LL2 Launch (2.2.0 or 2.3.0 shape) as a VEVENT."""
    return build(launch_fields(launch, options, related), options.alarms)


class LaunchesFeed(FeedKind):
    """LL2 Launches."""

    name = "launches"
    title = "Rocket launches"
    noun = "launches"
    noun_one = "launch"
    resource = "launches"
    resource_220 = "launch"
    date_field = "net"
    # related events: the events that name a launch go into its description
    needs = ("events",)
    abbreviated: ClassVar[Mapping[str, str]] = {"provider": "launch_service_provider"}
    # normal mode has pad, location, rocket configuration, mission, provider and status;
    # a detailed page of 100 is about 3 MB
    mode = "normal"
    # several hundred upcoming launches are several pages: the full list every 3 hours,
    # changes in between through last_updated__gte
    full_refresh_every = 3
    filters = (
        Param("provider", "launch service provider (LL2 agency ids)",
              "LL2 agency ids: whole numbers, comma-separated or repeated", id_list,
              aliases=("lsp__id", "lsp__ids"), facet="provider", example="provider=121",
              title="Launch providers", max_values=MAX_LIST_VALUES),
        Param("rocket", "rocket (LL2 launcher configuration ids)",
              "LL2 launcher configuration ids: whole numbers, comma-separated or repeated",
              id_list, aliases=("rocket__configuration__id",), facet="rocket",
              example="rocket=164", title="Rockets", max_values=MAX_LIST_VALUES),
        Param("family", "rocket family names, case-insensitive (Falcon, Long March, …)",
              "family names, comma-separated or repeated", word_list, facet="family",
              example="family=falcon", title="Rocket families",
              max_values=MAX_LIST_VALUES),
        Param("location", "launch site (LL2 location ids)",
              "LL2 location ids: whole numbers, comma-separated or repeated", id_list,
              aliases=("pad__location", "location__ids"), facet="location",
              example="location=12", title="Launch sites", max_values=MAX_LIST_VALUES),
        Param("pad", "launch pad (LL2 pad ids)",
              "LL2 pad ids: whole numbers, comma-separated or repeated", id_list,
              aliases=("pad__ids",), facet="pad", example="pad=87", title="Pads",
              max_values=MAX_LIST_VALUES),
        Param("program", "LL2 program ids", "LL2 program ids: whole numbers, comma-separated "
              "or repeated", id_list, aliases=("program__ids",), facet="program",
              example="program=17", title="Programs", max_values=MAX_LIST_VALUES),
        Param("status", "launch status ids (1 Go, 2 TBD, 3 Success, 4 Failure, 5 Hold, "
              "6 In Flight, 7 Partial Failure, 8 TBC)",
              "LL2 launch status ids: whole numbers, comma-separated or repeated", id_list,
              aliases=("status__ids",), facet="status", example="status=1,8",
              title="Launch status", max_values=MAX_LIST_VALUES),
        Param("crewed", "only launches with (true) or without (false) people aboard",
              "true or false", crewed_choice, aliases=("is_crewed",), facet="crewed",
              example="crewed=true", title="People aboard",
              options=(("", "Any"), ("true", "Crewed"), ("false", "Uncrewed"))),
        Param("orbit", "target orbit abbreviations (LEO, GTO, SSO, …), case-insensitive",
              "orbit abbreviations, comma-separated or repeated", word_list, facet="orbit",
              example="orbit=leo,gto", title="Orbits", max_values=MAX_LIST_VALUES),
    )

    def timing(self, item: Mapping[str, Any], options: MappingOptions) -> Timing:
        """An LL2 Launch's NET, its precision, and its window."""
        return launch_timing(item, options)

    def facts(self, item: Mapping[str, Any]) -> Facts:
        """A launch's provider, rocket, family, site, pad, status, crew and orbit."""
        pad = launch_pad(item)
        config = launch_configuration(item)
        mission = launch_mission(item)
        orbit = mission.get("orbit")
        orbit = orbit if isinstance(orbit, Mapping) else {}
        orbit_abbrev = text(orbit.get("abbrev"))
        labels: dict[str, dict[Any, str]] = {
            "provider": named_ids(item.get("launch_service_provider"), prefer_abbrev=True),
            "rocket": named_ids(config),
            "family": families(item),
            "location": named_ids(pad.get("location")),
            "pad": named_ids(pad),
            "program": named_ids(item.get("program")),
            "status": named_ids(item.get("status")),
            "crewed": {"true": "Crewed"} if is_crewed(item) else {"false": "Uncrewed"},
            "orbit": ({orbit_abbrev.casefold(): f"{orbit_abbrev} ({object_name(orbit)})"}
                      if orbit_abbrev else {}),
        }
        words = [text(item.get("name")), text(mission.get("name")),
                 object_name(item.get("launch_service_provider"))]
        return Facts(
            facets={facet: frozenset(names) for facet, names in labels.items()},
            labels=labels,
            search_text=" ".join(w for w in words if w).casefold(),
        )

    def context_steps(
        self, snapshots: Mapping[str, Snapshot | None],
    ) -> Generator[None, None, Mapping[str, Any]]:
        """Events that name each launch, by launch id."""
        events = snapshots.get("events")
        related: dict[str, list[RelatedEvent]] = {}
        for count, event in enumerate(events.items if events else (), 1):
            if count % _CONTEXT_STEP == 0:
                yield
            when = parse_datetime(event.get("date"))
            name = text(event.get("name"))
            if when is None or not name:
                continue
            url = primary_url(webcasts(event), info_links(event)) or web_url(event.get("url"))
            words = period_words(precision_id(event, "date"), when)
            launches = event.get("launches")
            for launch in launches if isinstance(launches, list) else []:
                key = item_key(launch.get("id")) if isinstance(launch, Mapping) else None
                if key is not None:
                    related.setdefault(key, []).append(RelatedEvent(name, words, url, when))
        # by date (then name and link: an order of their own, not the snapshot's, which
        # moves with every full refresh and would change an unchanged launch's bytes);
        # the first MAX_LISTED, as for an event's own lists
        return {key: tuple(sorted(value, key=lambda r: (r.at, r.name, r.url))[:MAX_LISTED])
                for key, value in related.items()}

    def context_key(self, item: Mapping[str, Any], context: Mapping[str, Any]) -> Any:
        """The related events of this launch."""
        return context.get(item_key(item.get("id")) or "", ())

    def to_vevent(
        self, item: Mapping[str, Any], options: MappingOptions, context: Mapping[str, Any]
    ) -> icalendar.Event:
        """An LL2 Launch as a VEVENT, with the events that name it."""
        return launch_to_vevent(item, options, self.context_key(item, context))

    def to_json(self, entry: Entry) -> dict[str, Any]:
        """A launch as the calendar shows it, with its links."""
        item, timing = entry.item, entry.timing
        labels = entry.labels

        def named(facet: str) -> list[dict[str, Any]]:
            return [{"id": k, "name": v} for k, v in labels.get(facet, {}).items()]

        return {
            "id": entry.ident,
            "name": text(item.get("name")),
            "title": launch_summary(item, timing),
            # what the page's preview shows beside the title
            "tags": [name for name in labels.get("status", {}).values()],
            "status": named("status"),
            # as the description names it: the full name, the abbreviation beside it
            "provider": [
                {"id": ident, "name": full, "abbrev": labels.get("provider", {}).get(ident)}
                for ident, full in named_ids(item.get("launch_service_provider")).items()
            ],
            "rocket": named("rocket"),
            "pad": launch_place(item),
            # (None when the facts could not be read: unknown, not "uncrewed")
            "crewed": "true" in labels["crewed"] if labels.get("crewed") else None,
            "orbit": next(iter(labels.get("orbit", {}).values()), None),
            **self.timing_json(entry),
            **links_json(launch_webcasts(item), launch_links(item)),
        }


register(LaunchesFeed())
