"""The events feed: LL2 Events (dockings, EVAs, flybys, …) at /events.ics."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import icalendar

from calfeed.feeds import Entry, Facts, FeedKind, links_json, register
from calfeed.mapping import event_summary, event_timing, event_to_vevent
from calfeed.precision import Timing
from calfeed.query import MAX_LIST_VALUES, Param, id_list
from calfeed.readers import info_links, item_id, named_ids, text, webcasts
from calfeed.vevent import MappingOptions


class EventsFeed(FeedKind):
    """LL2 Events."""

    name = "events"
    title = "Space events"
    noun = "events"
    noun_one = "event"
    resource = "events"
    resource_220 = "event"
    date_field = "date"
    abbreviated: ClassVar[Mapping[str, str]] = {"agency": "agencies"}
    reference_paths: ClassVar[Mapping[str, tuple[str, str]]] = {
        "type": ("config/event_types", "config/eventtype"),
    }
    filters = (
        Param(
            "type", "LL2 event type ids (e.g. 2 Docking, 8 Spacecraft Undocking)",
            "LL2 event type ids: whole numbers, comma-separated or repeated",
            id_list, aliases=("type__ids",), facet="type", example="type=2,8",
            title="Event types", max_values=MAX_LIST_VALUES,
        ),
        Param(
            "agency", "LL2 agency ids; matches the event's agencies",
            "LL2 agency ids: whole numbers, comma-separated or repeated",
            id_list, aliases=("agency__ids",), facet="agency", example="agency=27",
            title="Agencies", max_values=MAX_LIST_VALUES,
        ),
        Param(
            "program", "LL2 program ids; matches the event's programs",
            "LL2 program ids: whole numbers, comma-separated or repeated",
            id_list, aliases=("program__ids",), facet="program", example="program=17",
            title="Programs", max_values=MAX_LIST_VALUES,
        ),
    )

    def timing(self, item: Mapping[str, Any], options: MappingOptions) -> Timing:
        """An LL2 Event's date, its precision and duration."""
        return event_timing(item, options)

    def facts(self, item: Mapping[str, Any]) -> Facts:
        """An event's type, agencies, programs and name."""
        types = named_ids(item.get("type"))
        agencies = named_ids(item.get("agencies"), prefer_abbrev=True)
        programs = named_ids(item.get("program"))
        return Facts(
            facets={
                "type": frozenset(types), "agency": frozenset(agencies),
                "program": frozenset(programs),
            },
            labels={"type": types, "agency": agencies, "program": programs},
            search_text=text(item.get("name")).casefold(),
        )

    def to_vevent(
        self, item: Mapping[str, Any], options: MappingOptions, context: Mapping[str, Any]
    ) -> icalendar.Event:
        """An LL2 Event as a VEVENT."""
        return event_to_vevent(item, options)

    def to_json(self, entry: Entry) -> dict[str, Any]:
        """An event as the calendar shows it, with its links."""
        item, timing = entry.item, entry.timing
        type_names = entry.labels.get("type", {})
        return {
            "id": item_id(item),
            "name": text(item.get("name")),
            "title": event_summary(item, timing),
            "type": [{"id": k, "name": v} for k, v in type_names.items()],
            # what the page's preview shows beside the title
            "tags": list(type_names.values()),
            **self.timing_json(entry),
            "location": text(item.get("location")),
            **links_json(webcasts(item), info_links(item)),
            "agencies": [{"id": k, "name": v} for k, v in entry.labels.get("agency", {}).items()],
            "programs": [{"id": k, "name": v}
                         for k, v in entry.labels.get("program", {}).items()],
        }


register(EventsFeed())
