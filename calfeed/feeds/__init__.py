"""Feed kinds: what a feed's query means and how its items become VEVENTs.

Each kind is one module that declares its parameters, how an LL2 item is
indexed (its timing) and filtered (its facts: facets, their names, searchable text,
read when first asked) and which mapping function renders it. The server, CLI and
renderer find kinds in `FEED_KINDS`.
"""

from __future__ import annotations

import logging
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any, ClassVar, NamedTuple

import icalendar

from calfeed.dataset import Snapshot
from calfeed.precision import LEVEL, LEVELS, Timing, made, period_words, precision_level
from calfeed.query import Param, Query, common_params, ordering
from calfeed.readers import (
    Link,
    item_id,
    named_ids,
    parse_datetime,
    precision_id,
    primary_url,
)
from calfeed.sanitize import error_words, excerpt
from calfeed.steps import all_at_once, slices
from calfeed.vevent import MappingOptions

log = logging.getLogger("calfeed.feeds")

# entries read for the page's choices between two steps (a few milliseconds)
_CHOICES_STEP = 2000
# the longest calendar name (X-WR-CALNAME, the file name, the page's title)
MAX_NAME = 200


class Facts(NamedTuple):
    """What filters, calendar names and the page read of an item (`FeedKind.facts`)."""

    # facet name -> the values this item has (type ids, agency ids, …)
    facets: Mapping[str, frozenset[Any]]
    # facet name -> value -> a name for people (for calendar titles)
    labels: Mapping[str, Mapping[Any, str]]
    search_text: str


NO_FACTS = Facts({}, {}, "")


@dataclass(frozen=True)
class Entry:
    """An LL2 item indexed for filtering; built once per item version."""

    ident: str
    # (id, last_updated, edit): a new version of the item gets new bytes; `edit` counts
    # the changes the renderer found while last_updated stayed (see Renderer._index)
    version: tuple[str, str, int]
    timing: Timing
    item: Mapping[str, Any] = field(repr=False)
    # the kind that reads the item's facts (see `facts`)
    kind: FeedKind = field(repr=False, compare=False)

    @cached_property
    def facts(self) -> Facts:
        """The item's facets, labels and search text, read when first asked rather than
        when the item is indexed: they were a third of indexing it, and a plain feed asks
        none of them (it is chosen by time alone), so a large dataset's first feed need
        not wait for them. Any fault of the untrusted item leaves it without facts (one
        log line): it then matches no filter, and is still on unfiltered feeds."""
        try:
            return self.kind.facts(self.item)
        except Exception as error:  # untrusted data: any fault, not just the expected
            log.warning("facts=unreadable kind=%s id=%s reason=%r", self.kind.name,
                        excerpt(repr(self.ident)), error_words(error))
            return NO_FACTS

    @property
    def labels(self) -> Mapping[str, Mapping[Any, str]]:
        """facet name -> value -> a name for people (for calendar titles)."""
        return self.facts.labels

    @cached_property
    def updated(self) -> datetime | None:
        """When LL2 last changed the item (read once per entry: filters and orderings ask
        for it on every body they assemble)."""
        return parse_datetime(self.item.get("last_updated"))


class FeedKind:
    """Base of every feed kind; subclasses fill in the item-specific parts."""

    name: str = ""
    title: str = ""
    noun: str = "items"
    noun_one: str = "item"  # one of them ("1 launch")
    # LL2 list resource (2.3.0 plural name) and the date field its `__gte` filter takes
    resource: str = ""
    resource_220: str = ""  # the same list's name in 2.2.0
    date_field: str = ""
    # 2.3.0 list mode: "detailed" carries nested objects that "normal" leaves out
    mode: str = "detailed"
    # the full list is refreshed every this many full_refresh_intervals (long lists cost more)
    full_refresh_every: int = 1
    # the other kinds whose datasets this kind's entries draw on (see context())
    needs: tuple[str, ...] = ()
    # facet -> the item key of its LL2 objects, for facets labelled by abbreviation (in
    # calendar names, where space is short): the page shows their full names first
    abbreviated: ClassVar[Mapping[str, str]] = {}
    # facet -> (2.3.0 path, 2.2.0 path) of an LL2 list naming all its values, synced daily
    reference_paths: ClassVar[Mapping[str, tuple[str, str]]] = {}
    # the kind's own filters; search, past_days, precision and download follow them
    filters: tuple[Param, ...] = ()

    def params(self, max_past_days: int) -> list[Param]:
        """Every query parameter of this feed, in canonical order."""
        fields = (self.date_field, "last_updated")
        order = Param(
            "ordering", "the order of /<kind>.json's list, as LL2 names it (- for descending)",
            "one of " + ", ".join(f"{f}, -{f}" for f in fields), ordering(fields),
            example="ordering=-last_updated", in_body=False, json_only=True,
        )
        return [*self.filters, *common_params(max_past_days), order]

    def entry(self, item: Mapping[str, Any], options: MappingOptions) -> Entry:
        """Index one LL2 item by its id and date (its facts are read when first asked);
        raises MalformedItem (a ValueError) for unusable ones."""
        ident = item_id(item)
        # (made without Entry's __init__: see `made`)
        return made(Entry, ident=ident, version=(ident, str(item.get("last_updated")), 0),
                    timing=self.timing(item, options), item=item, kind=self)

    def timing(self, item: Mapping[str, Any], options: MappingOptions) -> Timing:
        """When an item happens, as a calendar shows it; MalformedItem without a usable
        date."""
        raise NotImplementedError

    def facts(self, item: Mapping[str, Any]) -> Facts:
        """An item's facets, their labels and its search text (read when first asked:
        see Entry.facts)."""
        raise NotImplementedError

    def reads_facts(self, query: Query) -> bool:
        """Whether a query's feed reads its entries' facts (filters by a facet or
        searches), and so their known labels for its name."""
        return bool(query["search"]) or any(
            param.facet and query[param.name] for param in self.filters)

    def usable(self, item: Mapping[str, Any]) -> bool:
        """Whether an item can be placed on a calendar at all (it has an id and a date)
        and filtered (its facts can be read: a new version that breaks them must not
        replace the last good one, see sync._usable)."""
        try:
            self.entry(item, MappingOptions())
            self.facts(item)
        except Exception:  # untrusted data: any fault makes it unusable
            return False
        return True

    def to_vevent(
        self, item: Mapping[str, Any], options: MappingOptions, context: Mapping[str, Any]
    ) -> icalendar.Event:
        """Map one LL2 item to a VEVENT (context: what context() found for all items)."""
        raise NotImplementedError

    def context(self, snapshots: Mapping[str, Snapshot | None]) -> Mapping[str, Any]:
        """What this kind's VEVENTs take from the datasets (of every kind), made at once
        (a kind defines `context_steps`, which the server drives)."""
        return all_at_once(self.context_steps(snapshots))

    def context_steps(
        self, snapshots: Mapping[str, Snapshot | None],
    ) -> Generator[None, None, Mapping[str, Any]]:
        """`context`, made in steps: it yields between slices of the items it reads (tens
        of thousands of events for the launches), so that the event loop can answer other
        requests meanwhile; none by default."""
        yield from ()  # (no steps, but a generator all the same)
        return {}

    def context_key(self, item: Mapping[str, Any], context: Mapping[str, Any]) -> Any:
        """The part of the context an item's VEVENT depends on (for its cache key)."""
        return None

    def to_json(self, entry: Entry) -> dict[str, Any]:
        """An entry as /<kind>.json shows it: what the calendar shows, plus links."""
        raise NotImplementedError

    def choices(
        self, entries: Sequence[Entry], labels: Mapping[str, Mapping[Any, str]],
        reference: Mapping[str, Mapping[int, str]],
    ) -> dict[str, list[tuple[Any, str]]]:
        """For each id filter, the (value, label) pairs a person can pick from; `labels`
        are the entries' own (known_labels, made once per generation)."""
        return all_at_once(self.choices_steps(entries, labels, reference))

    def choices_steps(
        self, entries: Sequence[Entry], labels: Mapping[str, Mapping[Any, str]],
        reference: Mapping[str, Mapping[int, str]],
    ) -> Generator[None, None, dict[str, list[tuple[Any, str]]]]:
        """`choices`, made in steps of a few thousand entries (the full names of abbreviated
        facets are read from every item: 60 ms over 50,000 events in one piece)."""
        found: dict[str, dict[Any, str]] = {facet: dict(names) for facet, names in labels.items()}
        for facet, names in reference.items():
            if names:
                found[facet] = {**found.get(facet, {}), **names}
        for facet, key in self.abbreviated.items():
            full: dict[int, str] = {}
            for part in slices(entries, _CHOICES_STEP):
                for entry in part:
                    full.update(named_ids(entry.item.get(key)))
                yield
            found[facet] = {
                ident: _full_first(full.get(ident, abbrev), abbrev)
                for ident, abbrev in found.get(facet, {}).items()
            }
        return {
            facet: sorted(names.items(), key=lambda pair: pair[1].casefold())
            for facet, names in found.items()
        }

    def hot_time(self, item: Mapping[str, Any]) -> datetime | None:
        """When an item happens (its date_field), if LL2 knows it to the hour or better.

        Items happening soon make the syncer fetch changes more often.
        """
        if precision_level(self._precision(item)) > LEVEL["hour"]:
            return None
        return parse_datetime(item.get(self.date_field))

    def timing_json(self, entry: Entry) -> dict[str, Any]:
        """start/end/all_day/precision of an entry as /<kind>.json shows them (as the
        calendar does)."""
        timing, pid = entry.timing, self._precision(entry.item)
        when = parse_datetime(entry.item.get(self.date_field))
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
                          "words": period_words(pid, when) if when else None,
                          # what the title says of the date's uncertainty, if anything
                          "label": timing.label},
        }

    def _precision(self, item: Mapping[str, Any]) -> int | None:
        # LL2 names the precision after the date it qualifies: date_precision, net_precision
        return precision_id(item, self.date_field)

    def select(self, entries: Sequence[Entry], query: Query, now: datetime) -> list[Entry]:
        """The entries a query asks for, in the order given: calendar order, as the
        renderer's index keeps them (`calendar_order`)."""
        facet_filters = [
            (param.facet, query[param.name])
            for param in self.filters
            if param.facet and query[param.name]
        ]
        search = query["search"].casefold() if query["search"] else None
        since, until = query["last_updated__gte"], query["last_updated__lte"]
        oldest_end = now - timedelta(days=query["past_days"])
        coarsest = LEVEL[query["precision"]]
        reads_facts = self.reads_facts(query)
        chosen = [
            entry
            for entry in entries
            if entry.timing.level <= coarsest
            and entry.timing.end_utc > oldest_end
            # (the facts read once per entry, not once per property: the hot loop)
            and (not reads_facts or _has_facts(entry.facts, search, facet_filters))
            and (since is until is None or _changed_between(entry, since, until))
        ]
        return chosen

    def describe(self, query: Query, known: Mapping[str, Mapping[Any, str]]) -> str:
        """A calendar name from the filters, using names found in the data (known_labels)."""
        parts = []
        for param in self.filters:
            wanted = query[param.name]
            if param.facet and wanted:
                names = known.get(param.facet, {})
                parts.append(", ".join(
                    names.get(value, f"{param.name} {value}") for value in sorted(wanted)
                ))
        if query["search"]:
            parts.append(f"“{query['search']}”")
        name = f"{self.title}: {' · '.join(parts)}" if parts else self.title
        # (a hundred chosen values of long LL2 names would be tens of KB of a feed's header:
        # a calendar shows the first few words of a name anyway)
        return name if len(name) <= MAX_NAME else name[:MAX_NAME - 1].rstrip() + "…"


def _full_first(full: str, abbrev: str) -> str:
    """"SpaceX (SpX)"; just the name when it already says its abbreviation."""
    if full == abbrev or abbrev.casefold() in full.casefold() or full.endswith(")"):
        return full
    return f"{full} ({abbrev})"


def _has_facts(
    facts: Facts, search: str | None, facet_filters: Sequence[tuple[str, Any]],
) -> bool:
    """Whether an entry's facts hold the search text and one of each filter's values."""
    if search is not None and search not in facts.search_text:
        return False
    facets = facts.facets
    return all(facets.get(facet, frozenset()) & want for facet, want in facet_filters)


def _changed_between(entry: Entry, since: datetime | None, until: datetime | None) -> bool:
    updated = entry.updated
    if updated is None:
        return False  # LL2 says nothing of when: no answer to "what changed since"
    return (since is None or updated >= since) and (until is None or updated <= until)


def order_entries(kind: FeedKind, entries: Sequence[Entry], ordering: str) -> list[Entry]:
    """Entries in LL2's `ordering` (the kind's date field or last_updated, "-" descending);
    those without a value go last either way."""
    field_name = ordering.removeprefix("-")
    descending = ordering.startswith("-")

    def value(entry: Entry) -> datetime | None:
        return entry.updated if field_name == "last_updated" else entry.timing.start_utc

    known = [e for e in entries if value(e) is not None]
    known.sort(key=lambda e: (value(e), e.ident), reverse=descending)
    return known + [e for e in entries if value(e) is None]


def links_json(videos: Sequence[Link], infos: Sequence[Link]) -> dict[str, Any]:
    """url/webcasts/links of an item as /<kind>.json shows them."""
    return {
        "url": primary_url(videos, infos) or None,
        "webcasts": [{"url": v.url, "label": v.label, "live": v.live} for v in videos],
        "links": [{"url": i.url, "label": i.label} for i in infos],
    }


def known_labels(
    entries: Sequence[Entry], known: dict[str, dict[Any, str]] | None = None,
) -> dict[str, dict[Any, str]]:
    """facet -> value -> name, over all entries (for calendar names and the page), added
    to `known` if given (so that a long list can be read a slice at a time)."""
    known = {} if known is None else known
    for entry in entries:
        for facet, names in entry.labels.items():
            known.setdefault(facet, {}).update(names)
    return known


FEED_KINDS: dict[str, FeedKind] = {}
# the kind the subscribe page shows without ?feed= (and `calfeed build` makes)
DEFAULT_KIND = "events"


def register(kind: FeedKind) -> FeedKind:
    """Add a feed kind to the registry (its URL is /<name>.ics)."""
    FEED_KINDS[kind.name] = kind
    return kind


def _load_kinds() -> None:
    # imported for their register() side effect; kept at the bottom to avoid a cycle
    from calfeed.feeds import events, launches  # noqa: F401


_load_kinds()
