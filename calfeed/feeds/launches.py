"""The launches feed: every LL2 rocket launch at /launches.ics, kept current through scrubs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import icalendar

from calfeed.dataset import Snapshot
from calfeed.feeds import Entry, FeedKind, links_json, register
from calfeed.mapping import (
    MappingOptions,
    RelatedEvent,
    info_links,
    item_id,
    launch_configuration,
    launch_links,
    launch_mission,
    launch_pad,
    launch_place,
    launch_summary,
    launch_timing,
    launch_to_vevent,
    named_ids,
    object_name,
    parse_datetime,
    period_words,
    precision_id,
    primary_url,
    webcasts,
)
from calfeed.query import MAX_LIST_VALUES, Param, flag_value, id_list, word_list
from calfeed.sanitize import clean_text, item_key, safe_url

_CREWED_MISSION_TYPES = ("human exploration", "tourism")


def crewed_choice(values: list[str]) -> frozenset[str] | None:
    """true/false (also 1/0, yes/no): launches with or without people aboard."""
    if len(values) == 1 and not values[0].strip():
        return None
    return frozenset({"true" if flag_value(values) else "false"})


def _obj(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def families(launch: Mapping[str, Any]) -> dict[str, str]:
    """Rocket families, casefolded -> as LL2 writes them (2.3.0 list, 2.2.0 string)."""
    config = launch_configuration(launch)
    found: dict[str, str] = {}
    listed = config.get("families")
    if isinstance(listed, list):
        for family in listed:
            name = object_name(family)
            if name:
                found[name.casefold()] = name
    single = clean_text(config.get("family"))
    for name in single.split(","):
        if name.strip():
            found[name.strip().casefold()] = name.strip()
    return found


def is_crewed(launch: Mapping[str, Any]) -> bool:
    """People aboard: a crew list on the spacecraft, or a human spaceflight mission type."""
    stage = _obj(_obj(launch.get("rocket")).get("spacecraft_stage"))
    crew = stage.get("launch_crew")
    if isinstance(crew, list) and crew:
        return True
    mission_type = launch_mission(launch).get("type")
    return isinstance(mission_type, str) and mission_type.casefold() in _CREWED_MISSION_TYPES


class LaunchesFeed(FeedKind):
    """LL2 Launches."""

    name = "launches"
    title = "Rocket launches"
    noun = "launches"
    resource = "launches"
    resource_220 = "launch"
    date_field = "net"
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
              example="crewed=true", title="People aboard"),
        Param("orbit", "target orbit abbreviations (LEO, GTO, SSO, …), case-insensitive",
              "orbit abbreviations, comma-separated or repeated", word_list, facet="orbit",
              example="orbit=leo,gto", title="Orbits", max_values=MAX_LIST_VALUES),
    )

    def entry(self, item: Mapping[str, Any], options: MappingOptions) -> Entry:
        """Index an LL2 Launch by provider, rocket, family, site, pad, status, crew, orbit."""
        ident = item_id(item)
        pad = launch_pad(item)
        config = launch_configuration(item)
        mission = launch_mission(item)
        orbit = _obj(mission.get("orbit"))
        orbit_abbrev = clean_text(orbit.get("abbrev"))
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
        words = [clean_text(item.get("name")), clean_text(mission.get("name")),
                 object_name(item.get("launch_service_provider"))]
        return Entry(
            ident=ident,
            version=(ident, str(item.get("last_updated"))),
            timing=launch_timing(item, options),
            facets={facet: frozenset(names) for facet, names in labels.items()},
            labels=labels,
            search_text=" ".join(w for w in words if w).casefold(),
            item=item,
        )

    def context(self, snapshots: Mapping[str, Snapshot | None]) -> Mapping[str, Any]:
        """Events that name each launch, by launch id."""
        events = snapshots.get("events")
        related: dict[str, list[RelatedEvent]] = {}
        for event in events.items if events else ():
            when = parse_datetime(event.get("date"))
            name = clean_text(event.get("name"))
            if when is None or not name:
                continue
            url = primary_url(webcasts(event), info_links(event)) or safe_url(event.get("url"))
            words = period_words(precision_id(event.get("date_precision")), when)
            launches = event.get("launches")
            for launch in launches if isinstance(launches, list) else []:
                key = item_key(launch.get("id")) if isinstance(launch, Mapping) else None
                if key is not None:
                    related.setdefault(key, []).append(RelatedEvent(name, words, url))
        return {key: tuple(sorted(value, key=lambda r: r.when)) for key, value in
                related.items()}

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
            "name": clean_text(item.get("name")),
            "title": launch_summary(item, timing),
            "type": named("status"),
            "status": named("status"),
            "provider": named("provider"),
            "rocket": named("rocket"),
            "pad": launch_place(item),
            "crewed": "true" in labels.get("crewed", {}),
            "orbit": next(iter(labels.get("orbit", {}).values()), None),
            **self.timing_json(entry),
            **links_json(webcasts(item), launch_links(item)),
        }


register(LaunchesFeed())
