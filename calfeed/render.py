"""Feed bodies: VEVENTs serialised once per item version, bodies assembled and cached.

What the renderer keeps, by what, and until when:

| cache            | key                                   | dropped when                      |
|------------------|---------------------------------------|-----------------------------------|
| `_entries`       | ItemVersion (kind, id, last_updated)  | the version leaves its dataset,   |
|                  |                                       | or its item changes all the same  |
| `_json`          | ItemVersion                           | the version leaves its dataset    |
| `_blocks`        | BlockKey                              | the version leaves its dataset,   |
|                  |                                       | or its context (related events)   |
|                  |                                       | no longer holds                   |
| `_alarm_texts`   | (summary, reminders)                  | least recently used past 8 MB     |
| `_indexed`       | kind                                  | the kind's next generation        |
| `_labels`        | kind                                  | the kind's next generation        |
| `_contexts`      | kind                                  | the next generation of a dataset  |
|                  |                                       | the kind needs                    |
| `_choices`       | kind                                  | the kind's next generation or     |
|                  |                                       | reference lists                   |
| `_bodies`        | BodyKey                               | the kind's next generation, or    |
|                  |                                       | least recently used past          |
|                  |                                       | body_cache_size bodies or         |
|                  |                                       | cache_bytes bytes                 |
| `_history`       | (kind, the query's hash)              | least recently used past          |
|                  |                                       | 4 x body_cache_size               |

Outside it: the server's prepared responses (per kind, by raw query string and
encoding, dropped when the store's generation moves, or the oldest past body_cache_size
entries or the kind's share of cache_bytes), its parsed
queries (by raw query string, least recently used past 1,024, strings of at most 256
characters), and the syncer's exact
times of each kind's items (per kind, replaced at the kind's next generation).
"""

from __future__ import annotations

import asyncio
import bisect
import functools
import hashlib
import heapq
import itertools
import json
import logging
import re
import zlib
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any, NamedTuple, TypeVar

import icalendar
from cachetools import LRUCache

from calfeed import __version__
from calfeed.collector import collector_paused
from calfeed.dataset import Snapshot
from calfeed.feeds import Entry, FeedKind, known_labels
from calfeed.ical_text import component_bytes
from calfeed.query import Query, parse_query
from calfeed.sanitize import error_words, excerpt, item_key
from calfeed.settings import Settings
from calfeed.steps import all_at_once, in_turns, slices
from calfeed.vevent import ATTRIBUTION, MappingOptions, alarm

log = logging.getLogger("calfeed.render")

PRODID = f"-//calfeed//calfeed {__version__}//EN"
FOOTER = b"END:VCALENDAR\r\n"
# RFC 5545 wants at least one component; an empty feed carries the zone its events use.
EMPTY_FEED_COMPONENT = (
    b"BEGIN:VTIMEZONE\r\nTZID:UTC\r\nBEGIN:STANDARD\r\nDTSTART:19700101T000000\r\n"
    b"TZOFFSETFROM:+0000\r\nTZOFFSETTO:+0000\r\nTZNAME:UTC\r\nEND:STANDARD\r\n"
    b"END:VTIMEZONE\r\n"
)
# the bytes of VALARM texts kept at most (one per event title and set of reminders: a
# title can be a thousand characters, written once per reminder), the DESCRIPTION lines
# they are made of (one per title: more than a feed holds), TRIGGER lines (one per
# minutes) and each feed's last ETag and Last-Modified, per body the cache holds (README,
# Memory)
ALARM_TEXT_BYTES = 8 * 2**20
DESCRIPTION_LINES = 2048
TRIGGER_LINES = 1024
HISTORY_PER_BODY = 4
# what is done between two chances for other requests, each a millisecond or few: new
# items indexed, indexed entries read (a query chooses from them, their names are
# gathered), VEVENTs serialised (at 20, a request waited 35 ms behind a render, for the
# several turns of the loop it takes), items made JSON
_INDEX_SLICE = 50
_ENTRIES_SLICE = 2000
# entries whose facts are read (and their names known) between two steps
_FACTS_SLICE = 500
_SERIALISE_SLICE = 5
_JSON_SLICE = 50
T = TypeVar("T")
K = TypeVar("K")
# the distance to now of what is under way (one object for all of them: the order reads
# a distance for every entry it passes)
_LASTING = timedelta(0)
END_VEVENT = b"END:VEVENT\r\n"
# bytes gzipped between two chances for other requests (a millisecond or two)
_GZIP_SLICE = 64 * 1024
# a gzip member (header and trailer), as Content-Encoding: gzip wants
_GZIP_WBITS = 16 + zlib.MAX_WBITS
# bodies depend on "now" (past_days, trimming): they are made for the start of a time slot
# this long, the same slot in every process at the same moment, and reassembled in the next
SLOT = timedelta(minutes=5)
_NEVER = datetime.max.replace(tzinfo=UTC)


@dataclass(frozen=True)
class RenderedFeed:
    """A feed body in both encodings, with what HTTP caching needs."""

    body: bytes
    gzipped: bytes
    etag: str
    last_modified: datetime
    # Last-Modified as an HTTP date, formatted once per body rather than per request
    last_modified_http: str
    name: str
    filename: str
    count: int
    matching: int
    # the entries in the body, in calendar order (for /events.json and the page preview)
    included: tuple[Entry, ...] = ()
    # the body depends on "now" (past_days, trimming): assemble it again after this
    fresh_until: datetime = _NEVER


_ALARM_OPEN = b"BEGIN:VALARM\r\nACTION:DISPLAY\r\n"
_ALARM_CLOSE = b"END:VALARM\r\n"


@functools.lru_cache(maxsize=DESCRIPTION_LINES)
def _description_line(summary: str) -> bytes:
    """A VALARM's DESCRIPTION line as icalendar writes it, between ACTION and TRIGGER
    (the order it writes alarm()'s properties in); empty if it writes them otherwise."""
    component = alarm(summary, 0)
    del component["trigger"]
    text = component_bytes(component)
    if not (text.startswith(_ALARM_OPEN) and text.endswith(_ALARM_CLOSE)):
        return b""  # (another order: the caller serialises the VALARMs whole)
    return text[len(_ALARM_OPEN):-len(_ALARM_CLOSE)]


def _alarm_text_size(text: bytes) -> int:
    # (the bytes object and the cache's entry for it, besides its text)
    return len(text) + 150


@functools.lru_cache(maxsize=TRIGGER_LINES)
def _trigger_line(minutes: int) -> bytes:
    text = component_bytes(alarm("", minutes))
    start = text.find(b"TRIGGER:")
    if start < 0 or not text.endswith(b"\r\n" + _ALARM_CLOSE):
        return b""
    return text[start:text.index(b"\r\n", start) + 2]


def feed_bytes(feed: RenderedFeed) -> int:
    """What a rendered feed holds in memory, near enough: both encodings of its body."""
    return len(feed.body) + len(feed.gzipped)


def _gzipping(body: bytes) -> Generator[None, None, bytes]:
    """The body gzipped at level 9 (once per body, so the time goes on the smallest
    transfer), in steps of a slice: the same bytes as one call (zlib's output does not
    depend on how its input is cut), with no thread. A thread would wait for the GIL for
    as long as the loop is busy (the loop lets go of it at every turn, for too short a
    time for a waiting thread to take it: hundreds of milliseconds while another feed
    renders)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, _GZIP_WBITS)
    parts = []
    for part in slices(memoryview(body), _GZIP_SLICE):
        parts.append(packer.compress(part))
        yield
    parts.append(packer.flush())
    return b"".join(parts)


def time_slot(now: datetime) -> datetime:
    """The start of the time slot `now` is in: what a body is made for."""
    step = SLOT.total_seconds()
    return datetime.fromtimestamp(now.timestamp() // step * step, UTC)


def calendar_header(name: str, description: str, refresh: timedelta) -> bytes:
    """VCALENDAR properties up to (not including) the first component."""
    calendar = icalendar.Calendar()
    calendar.add("version", "2.0")
    calendar.add("prodid", PRODID)
    calendar.add("calscale", "GREGORIAN")
    calendar.add("name", icalendar.vText(name))
    calendar.add("x-wr-calname", icalendar.vText(name))
    calendar.add("description", icalendar.vText(description))
    calendar.add("x-wr-caldesc", icalendar.vText(description))
    calendar.add("refresh-interval", refresh, parameters={"VALUE": "DURATION"})
    calendar.add("x-published-ttl", icalendar.vDuration(refresh))
    text = component_bytes(calendar)
    assert text.endswith(FOOTER)
    return text[: -len(FOOTER)]


def feed_filename(name: str) -> str:
    """A file name for a downloaded feed, from its calendar name."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.casefold()).strip("-")
    return (slug[:80].rstrip("-") or "calfeed") + ".ics"


class ItemVersion(NamedTuple):
    """One version of one LL2 item: what its index entry, JSON and VEVENT are cached by."""

    kind: str
    ident: str
    updated: str  # last_updated as LL2 wrote it
    # the changes found while last_updated stayed the same: LL2 moves an event's when the
    # event is edited, not when a launch it names slips, changes status or is renamed,
    # and an item may have no last_updated at all (0: none; the key `_entries` looks
    # items up by)
    edit: int = 0


class Unusable(NamedTuple):
    """An item version that cannot be indexed (kept, so it is not tried again)."""

    item: Mapping[str, Any]


# a kind's index: (generation, its entries in calendar order)
Indexed = tuple[int, list[Entry]]


class BlockKey(NamedTuple):
    """What a VEVENT's bytes depend on besides the item: what the kind takes from other
    datasets for it (a launch's related events). Reminders are not in it: they are
    spliced into the block (see Renderer.block)."""

    item: ItemVersion
    context: Any


class Block(NamedTuple):
    """A serialised VEVENT without reminders, and its SUMMARY (what reminders say)."""

    text: bytes
    summary: str


class BodyKey(NamedTuple):
    """What a feed body depends on: the kind's data, the query, and the other datasets."""

    kind: str
    generation: int
    query: tuple[tuple[str, Any], ...]
    others: tuple[int, ...]


class ShownItem(NamedTuple):
    """An item as /<kind>.json and the page preview show it."""

    data: Mapping[str, Any]
    # `data` as JSON text, spliced into answers as it is
    text: bytes


def skip(kind: FeedKind, ident: Any, error: Exception) -> None:
    """An LL2 item that cannot be indexed, mapped or shown: one log line, and the feed goes
    on without it. Any exception counts, not just the expected MalformedItem: the item is
    untrusted data, and one bad item must never take a feed down."""
    log.warning("skip=%s id=%s reason=%r", kind.name, excerpt(repr(ident)),
                error_words(error))


def _in_calendar_order(entries: list[Entry]) -> Generator[None, None, list[Entry]]:
    """The entries sorted by `calendar_order`, yielding between slices: each slice sorted
    on its own (its keys made once), then one sort over the sorted runs, which merges them
    (no key to call, and the position breaks ties as a stable sort would): of 50,000
    entries in no order, the longest piece 19 ms rather than one sort's 64 ms."""
    keyed: list[tuple[datetime, str, int]] = []
    for part in slices(entries, _ENTRIES_SLICE):
        first = len(keyed)  # (the part's place in `entries`)
        keyed += sorted((*calendar_order(entry), first + offset)
                        for offset, entry in enumerate(part))
        yield
    keyed.sort()
    yield
    ordered: list[Entry] = []
    for run in slices(keyed, _ENTRIES_SLICE):
        ordered += [entries[position] for _, _, position in run]
        yield
    return ordered


def _dropping(cache: dict[K, Any], stale: Callable[[K], bool]) -> Iterator[None]:
    """Drop the keys of `cache` that are stale, yielding after every slice of them."""
    for keys in slices(list(cache), _ENTRIES_SLICE):
        for key in keys:
            if stale(key):
                # (pop: a request served between two slices may have dropped it already)
                cache.pop(key, None)
        yield


def _data_time(snapshot: Snapshot, others: Mapping[str, Snapshot | None]) -> datetime:
    """When the data a body is made of last changed: its kind's, or a dataset its
    entries draw on (a launch's related events), whichever changed last."""
    return max([snapshot.fetched_at, *(other.fetched_at for other in others.values() if other)])


def _generations(others: Mapping[str, Snapshot | None]) -> tuple[int, ...]:
    """The other datasets' generations: what a context (and a body using it) depends on."""
    return tuple(s.generation if s else 0 for s in others.values())


def _needed(
    kind: FeedKind, snapshots: Mapping[str, Snapshot | None] | None,
) -> dict[str, Snapshot | None]:
    """Of the datasets given, those the kind's VEVENTs draw on (`needs`): a body and a
    context depend on these alone. (The server gives every dataset: an events feed keyed
    by the launches' generation too was made again at each launches sync, and its blocks
    were checked against a context it does not have, 60 ms at 50,000 events.)"""
    return {name: (snapshots or {}).get(name) for name in kind.needs}


def _choosing(
    kind: FeedKind, entries: list[Entry], query: Query, now: datetime
) -> Generator[None, None, tuple[list[Entry], Iterator[Entry]]]:
    """The entries a query selects, in calendar order, and the same nearest to now first,
    in steps of a slice (rather than in a thread: a thread competes with the loop for the
    GIL, and waits for it for as long as the loop is busy; see `_gzipping`)."""
    chosen: list[Entry] = []
    for part in slices(entries, _ENTRIES_SLICE):
        # (a slice of the calendar order: chosen in order, the parts join in order)
        chosen += kind.select(part, query, now)
        yield
    return chosen, nearest_first(chosen, now)


def calendar_order(entry: Entry) -> tuple[datetime, str]:
    """How entries are kept (by the index) and shown: by start, then by id."""
    return entry.timing.start_utc, entry.ident


def _start(entry: Entry) -> datetime:
    return entry.timing.start_utc


def _since_end(entry: Entry, now: datetime) -> timedelta:
    # what has begun: nothing while it lasts, else the time since it ended
    end = entry.timing.end_utc
    return _LASTING if end > now else now - end


def nearest_first(chosen: list[Entry], now: datetime) -> Iterator[Entry]:
    """Given entries in calendar order, yields them lazily nearest to now first (ties in
    calendar order): what the body holds when it is trimmed.

    What has not begun is already in that order (its distance is the time to its start,
    and no item ends before it starts), so only what has begun is sorted and the rest is
    merged in as the body takes entries: the order costs what the body uses, not what
    the dataset holds."""
    begun = bisect.bisect_right(chosen, now, key=_start)
    past = sorted(chosen[:begun], key=lambda entry: _since_end(entry, now))
    return heapq.merge(
        # (a tie goes to the first list, as a stable sort of all of them would have it)
        past, itertools.islice(chosen, begun, None),
        key=lambda entry: (_since_end(entry, now) if entry.timing.start_utc <= now
                           else entry.timing.start_utc - now))


class Renderer:
    """Turns (feed kind, query, snapshot) into a RenderedFeed, caching at every level."""

    def __init__(self, settings: Settings, now: Callable[[], datetime]) -> None:
        self._now = now
        self.options = MappingOptions(
            uid_domain=settings.uid_domain,
            default_duration=timedelta(seconds=settings.default_duration),
        )
        self._refresh = timedelta(seconds=settings.refresh_interval)
        # sample data says so wherever a calendar shows the feed's name
        self._demo_mark = " (demo data)" if settings.demo else ""
        self._max_bytes = settings.max_feed_bytes
        self._max_past_days = settings.max_past_days
        # with a Redis URL, bodies and their validators must not depend on this process
        self._shared = bool(settings.redis_url)
        # the index entry of each item by (kind, id, last_updated): the latest version
        # indexed, usable or not
        self._entries: dict[ItemVersion, Entry | Unusable] = {}
        # numbers the versions found changed while their last_updated stayed
        self._edits = itertools.count(1)
        # VEVENTs without reminders (None: cannot be serialised), following the dataset;
        # a VEVENT with reminders is its block with the VALARMs spliced in, so a new
        # alarm= value costs no mapping or serialising
        self._blocks: dict[BlockKey, Block | None] = {}
        # the VALARM text per (summary, reminders), bounded in bytes (the summary is the
        # block's own string, held there anyway)
        self._alarm_texts: LRUCache[tuple[str, tuple[int, ...]], bytes] = LRUCache(
            maxsize=ALARM_TEXT_BYTES, getsizeof=_alarm_text_size)
        # (what is made, kind) -> the lock that lets one making of it run at a time
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}
        # kind -> (generation, entries)
        self._indexed: dict[str, Indexed] = {}
        # kind -> (generation, the names of every facet value in its entries)
        self._labels: dict[str, tuple[int, dict[str, dict[Any, str]]]] = {}
        self._contexts: dict[str, tuple[tuple[Any, ...], Mapping[str, Any]]] = {}
        # kind -> ((generation, when its reference lists were fetched), the page's choices)
        self._choices: dict[str, tuple[tuple[int, Any], dict[str, list[tuple[Any, str]]]]] = {}
        # rendered feeds; an LRU, oldest first
        self._bodies: dict[BodyKey, RenderedFeed] = {}
        self._max_bodies = settings.body_cache_size
        # ... and at most this many bytes of them (plain and gzipped together)
        self._max_body_bytes = settings.cache_bytes
        self.body_bytes = 0
        # last (etag, Last-Modified) per query, so Last-Modified moves only when the body does
        self._history: LRUCache[tuple[Any, ...], tuple[str, datetime]] = LRUCache(
            maxsize=settings.body_cache_size * HISTORY_PER_BODY
        )
        # the item as /<kind>.json shows it, dict and JSON text (None: cannot be shown)
        self._json: dict[ItemVersion, ShownItem | None] = {}
        self.vevents_serialised = 0
        self.items_shown_as_json = 0

    def entries(self, kind: FeedKind, snapshot: Snapshot) -> list[Entry]:
        """Indexed items of a snapshot, built once per item version; bad items skipped
        (all at once: for tests and tools; the server uses `index`)."""
        return self._index_now(kind, snapshot)[1]

    def _lock(self, what: str, kind: FeedKind) -> asyncio.Lock:
        """One making of a kind's index, names or context at a time: the requests that
        ask meanwhile wait for it, rather than each making the same."""
        return self._locks.setdefault((what, kind.name), asyncio.Lock())

    def _current(
        self, kind: FeedKind, snapshot: Snapshot, *, or_newer: bool = False,
    ) -> Indexed | None:
        """The kind's index if it is of this snapshot (`or_newer`: or of newer data).
        Never an older one: held by a caller while the new one is made, the old entries
        outlived the slices that drop them, all freed at once as it let go (43 ms at
        50,000 in one piece)."""
        indexed = self._indexed.get(kind.name)
        if indexed and (indexed[0] == snapshot.generation
                        or (or_newer and indexed[0] > snapshot.generation)):
            return indexed
        return None

    def _index_now(self, kind: FeedKind, snapshot: Snapshot) -> Indexed:
        if (cached := self._current(kind, snapshot)) is not None:
            return cached
        return all_at_once(self._index(kind, snapshot))

    async def index(self, kind: FeedKind, snapshot: Snapshot) -> Indexed:
        """(generation, entries) of a snapshot, built in slices that let the loop
        answer other requests meanwhile (tens of thousands of new items take seconds to
        index); one fill per kind at a time, the others wait for it.

        A request that began on older data and asks once newer data is indexed gets the
        newer index (fresher, and its body is not kept: see `_superseded`), rather than
        a second fill of data already replaced, whose versions the caches would then
        hold until the next generation."""
        if (cached := self._current(kind, snapshot, or_newer=True)) is not None:
            return cached
        async with self._lock("index", kind):
            if (cached := self._current(kind, snapshot, or_newer=True)) is not None:
                return cached
            # (a cancelled request closes the steps at once: the collector back on)
            return await in_turns(self._index(kind, snapshot))

    def _index(self, kind: FeedKind, snapshot: Snapshot) -> Generator[None, None, Indexed]:
        """A snapshot's index, made yielding after every slice of new items. It becomes
        the kind's index (and what left the dataset is dropped) unless a newer generation
        is indexed already: a request that began on older data and finishes late must
        not undo the newer index and its caches."""
        with collector_paused():
            return (yield from self._index_paused(kind, snapshot))

    def _index_paused(
        self, kind: FeedKind, snapshot: Snapshot,
    ) -> Generator[None, None, Indexed]:
        # the keys `_entries` holds items by, and the versions blocks and JSON are made of
        # (the same for an item not changed under its last_updated)
        live: set[ItemVersion] = set()
        versions: set[ItemVersion] = set()
        entries: list[Entry] = []
        fresh = compared = 0
        for item in snapshot.items:
            # the id as Entry.version has it, so that every cache keys an item alike
            ident = item_key(item.get("id")) or str(item.get("id"))
            key = ItemVersion(kind.name, ident, str(item.get("last_updated")))
            live.add(key)
            known = self._entries.get(key)
            pause, edit = False, 0
            if known is not None and known.item is not item:
                # Another object under the same last_updated: the same item read again (a
                # follower's, a state loaded anew) or one changed all the same. (What the
                # syncer found unchanged it hands on as the object held: no comparison.)
                compared += 1
                pause = compared % _ENTRIES_SLICE == 0
                if known.item != item:
                    known, edit = None, next(self._edits)
            if known is None:
                known = self._indexed_anew(kind, item, key, edit)
                fresh += 1
                pause = fresh % _INDEX_SLICE == 0
            if isinstance(known, Entry):
                entries.append(known)
                versions.add(ItemVersion(kind.name, *known.version) if known.version[2]
                             else key)
            if pause:
                # (what is kept is held here: another index may drop it from the cache)
                yield
        # Kept in calendar order, so that no query sorts the whole dataset again. Each of
        # these steps takes milliseconds over ten thousand entries: one at a time. Nothing
        # is installed before the check below, and no other fill of the kind runs
        # meanwhile (`index` holds the kind's lock), so it still holds then.
        entries = yield from _in_calendar_order(entries)
        indexed: Indexed = (snapshot.generation, entries)
        if self._superseded(kind, snapshot):
            return indexed
        for body_key in [k for k in self._bodies if k.kind == kind.name]:
            self._drop_body(body_key)
        self._indexed[kind.name] = indexed
        self._labels.pop(kind.name, None)
        # Then drop the versions that left the dataset, so memory follows the dataset's
        # size: a slice at a time, each freed as it leaves the cache (with its item, when
        # nothing else holds that). The old index, were it still installed, would hold
        # them all until it went, and free them at once: 43 ms at 50,000 in one piece.
        # (A fill cancelled from here on, which only a shutdown does, leaves the rest of
        # the old versions cached until the kind's next generation drops them.)
        yield from _dropping(self._entries, lambda k: k.kind == kind.name and k not in live)
        yield from _dropping(
            self._blocks, lambda k: k.item.kind == kind.name and k.item not in versions)
        yield from _dropping(self._json, lambda k: k.kind == kind.name and k not in versions)
        return indexed

    def _indexed_anew(
        self, kind: FeedKind, item: Mapping[str, Any], key: ItemVersion, edit: int,
    ) -> Entry | Unusable:
        try:
            entry = kind.entry(item, self.options)
        except Exception as error:  # any fault of the item: see skip()
            skip(kind, item.get("id"), error)
            indexed: Entry | Unusable = Unusable(item)
        else:
            # (a changed version gets caches of its own: a request still serving the
            # older data makes the older one's blocks under the older version)
            indexed = replace(entry, version=(*entry.version[:2], edit)) if edit else entry
        self._entries[key] = indexed
        return indexed

    async def choices(
        self, kind: FeedKind, snapshot: Snapshot, reference: Mapping[str, Mapping[int, str]],
        reference_at: datetime | None,
    ) -> dict[str, list[tuple[Any, str]]]:
        """What the subscribe page offers to tick, made once per generation (and per
        fetch of the reference lists), not on every page view."""
        indexed = await self.index(kind, snapshot)
        key = (indexed[0], reference_at)
        cached = self._choices.get(kind.name)
        if cached is not None and cached[0] == key:
            return cached[1]
        labels = await self.known_labels(kind, indexed)
        made = await in_turns(kind.choices_steps(indexed[1], labels, reference))
        if not self._superseded(kind, snapshot):
            self._choices[kind.name] = (key, made)
        return made

    def _superseded(self, kind: FeedKind, snapshot: Snapshot) -> bool:
        """Whether a newer generation of the kind is indexed already: what a request that
        began on `snapshot` and finishes late makes is served, never installed."""
        current = self._indexed.get(kind.name)
        return current is not None and current[0] > snapshot.generation

    async def items_json(self, kind: FeedKind, entries: Iterable[Entry]) -> list[ShownItem]:
        """`item_json` of each entry that can be shown, yielding to other requests after
        every few made (a thousand of them take tens of milliseconds)."""
        shown: list[ShownItem] = []
        made = self.items_shown_as_json
        for entry in entries:
            item = self.item_json(kind, entry)
            if item is not None:
                shown.append(item)
            if self.items_shown_as_json - made >= _JSON_SLICE:
                made = self.items_shown_as_json
                await asyncio.sleep(0)
        return shown

    def item_json(self, kind: FeedKind, entry: Entry) -> ShownItem | None:
        """An entry as /<kind>.json shows it, as a dict and as JSON text, made once per
        item version (a thousand items take tens of milliseconds to convert); None for an
        item that cannot be shown."""
        key = ItemVersion(kind.name, *entry.version)
        if key not in self._json:
            try:
                shown = kind.to_json(entry)
                self._json[key] = ShownItem(shown, json.dumps(shown).encode())
            except Exception as error:  # any fault of the item: see skip()
                skip(kind, entry.ident, error)
                self._json[key] = None
            self.items_shown_as_json += 1
        return self._json[key]

    def labels(self, kind: FeedKind, snapshot: Snapshot) -> dict[str, dict[Any, str]]:
        """Names of every facet value in a snapshot, built once per generation (all at
        once: for tests and tools; the server uses `known_labels`)."""
        return all_at_once(self._labelling(kind, self._index_now(kind, snapshot)))

    async def known_labels(self, kind: FeedKind, indexed: Indexed) -> dict[str, dict[Any, str]]:
        """Names of every facet value in an index (for calendar names and the page's
        choices), made when first asked, once per generation, a slice at a time: they
        read every entry's facts, which a plain feed needs of none. One making per kind
        at a time, the others wait for it."""
        cached = self._labels.get(kind.name)
        if cached and cached[0] == indexed[0]:
            return cached[1]
        async with self._lock("labels", kind):
            return await in_turns(self._labelling(kind, indexed))

    def _labelling(
        self, kind: FeedKind, indexed: Indexed,
    ) -> Generator[None, None, dict[str, dict[Any, str]]]:
        generation, entries = indexed
        cached = self._labels.get(kind.name)
        if cached and cached[0] == generation:
            return cached[1]
        labels: dict[str, dict[Any, str]] = {}
        # (each entry's facts are made here, tens of thousands of small objects: see
        # collector_paused)
        with collector_paused():
            for part in slices(entries, _FACTS_SLICE):
                known_labels(part, labels)
                yield
        current = self._indexed.get(kind.name)
        if current is None or current[0] <= generation:
            self._labels[kind.name] = (generation, labels)
        return labels

    def options_for(self, query: Query) -> MappingOptions:
        """The mapping options a query asks for (its reminders)."""
        alarms = query.values.get("alarm")
        if not alarms:
            return self.options
        return replace(self.options, alarms=tuple(sorted(alarms, reverse=True)))

    def context(
        self, kind: FeedKind, others: Mapping[str, Snapshot | None] | None
    ) -> tuple[tuple[Any, ...], Mapping[str, Any]]:
        """What a kind takes from the other datasets (e.g. related events), per generation."""
        others = _needed(kind, others)
        if not others:
            return (), {}
        generations = _generations(others)
        cached = self._contexts.get(kind.name)
        if cached is None or cached[0] != generations:
            cached = self._keep_context(kind, generations, kind.context(others))
        return cached

    def _keep_context(
        self, kind: FeedKind, generations: tuple[int, ...], made: Mapping[str, Any]
    ) -> tuple[tuple[int, ...], Mapping[str, Any]]:
        self._contexts[kind.name] = (generations, made)
        self._drop_other_contexts(kind, made)
        return generations, made

    async def context_async(
        self, kind: FeedKind, others: Mapping[str, Snapshot | None] | None
    ) -> tuple[tuple[Any, ...], Mapping[str, Any]]:
        """`context`, made in steps that yield to other requests (a launch's related
        events, looked up in ten thousand events, take tens of milliseconds)."""
        others = _needed(kind, others)
        if not others:
            return (), {}
        generations = _generations(others)
        cached = self._contexts.get(kind.name)
        if cached is not None and cached[0] == generations:
            return cached
        # one making per kind at a time: the requests that arrive meanwhile wait for it
        async with self._lock("context", kind):
            cached = self._contexts.get(kind.name)
            if cached is not None and cached[0] == generations:
                return cached
            made = await in_turns(kind.context_steps(others))
            cached = self._contexts.get(kind.name)
            if cached is not None and any(
                    have > want for have, want in zip(cached[0], generations, strict=True)):
                # a context of newer data is in place: this one serves its own request
                return generations, made
            return self._keep_context(kind, generations, made)

    def _drop_other_contexts(self, kind: FeedKind, context: Mapping[str, Any]) -> None:
        """Forget blocks made with context (related events) that no longer holds."""
        known = self._indexed.get(kind.name)
        if known is None:
            return
        current = {(e.ident, kind.context_key(e.item, context)) for e in known[1]}
        for old in [k for k in self._blocks
                    if k.item.kind == kind.name and (k.item.ident, k.context) not in current]:
            del self._blocks[old]

    async def warm(
        self, kind: FeedKind, snapshot: Snapshot,
        others: Mapping[str, Snapshot | None] | None = None,
    ) -> None:
        """Index a new snapshot and make the kind's plain feed ahead of requests (in
        slices, like every render): the items nearest to now are then serialised, and
        most feeds are those items filtered. Other items are serialised when a feed
        holds them, not before: a large dataset costs what its feeds show. Then the
        entries' facts and known names, which the plain feed did not wait for, ahead of
        the first filtered feed or page view."""
        await self.render(kind, parse_query(kind.params(self._max_past_days), []), snapshot,
                          others=others)
        await self.known_labels(kind, await self.index(kind, snapshot))

    def block(
        self, kind: FeedKind, entry: Entry, options: MappingOptions,
        context: Mapping[str, Any] | None = None, max_bytes: int | None = None,
    ) -> bytes | None:
        """The serialised VEVENT of an entry; None if it cannot be serialised, or is
        larger than `max_bytes` when first serialised (one log line, then none: it is
        never shown)."""
        context = context or {}
        key = BlockKey(ItemVersion(kind.name, *entry.version),
                       kind.context_key(entry.item, context))
        if key in self._blocks:
            block = self._blocks[key]
        else:
            try:
                vevent = kind.to_vevent(entry.item, replace(options, alarms=()), context)
                block = Block(component_bytes(vevent), str(vevent.get("summary", "")))
                self.vevents_serialised += 1
                if max_bytes is not None and len(block.text) > max_bytes:
                    raise ValueError(f"its VEVENT of {len(block.text)} bytes is larger "
                                     "than a feed holds")
            except Exception as error:  # any fault of the item: see skip()
                skip(kind, entry.ident, error)
                block = None
            self._blocks[key] = block
        if block is None:
            return None
        if not options.alarms or entry.timing.all_day:
            # (reminders only where there is a time to be reminded of, as build() does)
            return block.text
        return block.text[: -len(END_VEVENT)] + self._alarms(
            block.summary, options.alarms) + END_VEVENT

    def _alarms(self, summary: str, alarms: tuple[int, ...]) -> bytes:
        """The VALARMs build() nests in a VEVENT, as the bytes it serialises them to.

        Made from lines serialised once each: the DESCRIPTION per title, the TRIGGER per
        minutes (a new alarm= value costs byte joins, not a serialisation per event);
        the test over the golden fixtures holds this to what icalendar writes."""
        key = (summary, alarms)
        text = self._alarm_texts.get(key)
        if text is None:
            said = _description_line(summary)
            trigger = [_trigger_line(minutes) for minutes in alarms]
            if said and all(trigger):
                text = b"".join(_ALARM_OPEN + said + line + _ALARM_CLOSE for line in trigger)
            else:  # icalendar wrote them otherwise than expected: its own bytes, whole
                text = b"".join(component_bytes(alarm(summary, minutes)) for minutes in alarms)
            self._alarm_texts[key] = text
        return text

    async def render(
        self, kind: FeedKind, query: Query, snapshot: Snapshot, now: datetime | None = None,
        others: Mapping[str, Snapshot | None] | None = None,
    ) -> RenderedFeed:
        """The feed for a query, from cache when this dataset generation already made it.

        `others` are the datasets' snapshots (any of them: those in the kind's `needs`
        count), for what a kind links to (related events).
        What is not cached yet is made in slices, so that other requests are answered
        meanwhile, and only for the items the body holds: nearest to now first, until the
        next one would not fit in max_feed_bytes.
        """
        at = now or self._now()
        now = time_slot(at)
        others = _needed(kind, others)
        body_key = BodyKey(kind.name, snapshot.generation, query.key, _generations(others))
        cached = self._bodies.get(body_key)
        if cached is not None and now < cached.fresh_until:
            # most recently used last, so the bound evicts the least used
            del self._bodies[body_key]
            self._bodies[body_key] = cached
            return cached
        _, context = await self.context_async(kind, others)
        indexed = await self.index(kind, snapshot)
        # (the facts made under the collector's pause, before the choosing reads them)
        labels = await self.known_labels(kind, indexed) if kind.reads_facts(query) else {}
        chosen, nearest = await in_turns(_choosing(kind, indexed[1], query, now))
        name = kind.describe(query, labels) + self._demo_mark
        # room for the header as it reads once trimmed (its name can be long: many names
        # chosen, a search), so the whole body stays within max_feed_bytes
        header_room = len(calendar_header(
            name, self._description(kind, len(chosen), len(chosen) + 1), self._refresh))
        # (and for the component an empty feed has instead of VEVENTs)
        kept, failed = await self._fill(
            kind, nearest, self.options_for(query), context,
            self._max_bytes - header_room - len(FOOTER) - len(EMPTY_FEED_COMPONENT))
        blocks = [(entry, kept[entry.ident]) for entry in chosen if entry.ident in kept]
        # (items past the last that fit were not serialised: they count as matching)
        matching = len(chosen) - failed
        description = self._description(kind, len(blocks), matching)
        parts = [calendar_header(name, description, self._refresh)]
        parts.extend(block for _, block in blocks)
        if not blocks:
            parts.append(EMPTY_FEED_COMPONENT)
        parts.append(FOOTER)
        body = b"".join(parts)
        digest = hashlib.sha256(body).hexdigest()[:32]
        etag = f'"{digest}"'
        if cached is not None and cached.etag == etag:
            # only "now" moved and the body came out the same: keep its compressed form
            gzipped = cached.gzipped
        else:
            gzipped = await in_turns(_gzipping(body))
        # (read after the last turn given away: a body of data replaced meanwhile is
        # served once, stamped with its own data's time, and leaves no history that would
        # date it after the newer body)
        superseded = self._superseded(kind, snapshot)
        # (by the query's hash: a query of hundreds of ids is kilobytes, and a thousand
        # strangers' were as many kept; two that collide only share a stamp that moves on)
        last_modified = self._last_modified(
            (kind.name, hash(query.key)), etag, _data_time(snapshot, others), at,
            record=not superseded)
        rendered = RenderedFeed(
            body=body,
            gzipped=gzipped,
            etag=etag,
            last_modified=last_modified,
            last_modified_http=format_datetime(last_modified, usegmt=True),
            name=name,
            filename=feed_filename(name),
            count=len(blocks),
            matching=matching,
            included=tuple(entry for entry, _ in blocks),
            fresh_until=now + SLOT,
        )
        if superseded:
            return rendered  # made from data already replaced: served once, not kept
        self._drop_body(body_key)
        self._bodies[body_key] = rendered
        self.body_bytes += feed_bytes(rendered)
        while self._bodies and (len(self._bodies) > self._max_bodies
                                or self.body_bytes > self._max_body_bytes):
            self._drop_body(next(iter(self._bodies)))
        return rendered

    def _drop_body(self, key: BodyKey) -> None:
        dropped = self._bodies.pop(key, None)
        if dropped is not None:
            self.body_bytes -= feed_bytes(dropped)

    async def _fill(
        self, kind: FeedKind, nearest: Iterable[Entry], options: MappingOptions,
        context: Mapping[str, Any], room: int,
    ) -> tuple[dict[str, bytes], int]:
        """The blocks of the first entries of `nearest` (the chosen ones, nearest to now
        first) that fit in `room` bytes, and how many entries could not be serialised or
        shown. Serialises only those it keeps (and the first that does not fit), yielding
        to other requests every few."""
        kept: dict[str, bytes] = {}
        failed = 0
        made = self.vevents_serialised
        whole = room
        # what no feed can hold, whatever its name: the block is never shown, and said so
        # once (the room of this feed, less for a long name, would leave it out of every
        # feed after)
        never = self._max_bytes - len(FOOTER)
        for entry in nearest:
            # (one larger than a feed holds, were it the next, would end the feed there,
            # and every entry further from now would go with it)
            block = self.block(kind, entry, options, context, max_bytes=never)
            if block is not None and len(block) > whole:  # (so large with its reminders,
                block = None  # or beside this feed's name)
            if block is None:
                failed += 1
                continue
            if len(block) > room:
                break  # the feed holds what is nearest to now, and this is the next
            room -= len(block)
            kept[entry.ident] = block
            if self.vevents_serialised - made >= _SERIALISE_SLICE:
                made = self.vevents_serialised
                await asyncio.sleep(0)
        return kept, failed

    def _description(self, kind: FeedKind, shown: int, matching: int) -> str:
        text = f"{kind.title} from Launch Library 2, by calfeed. {ATTRIBUTION}"
        if self._demo_mark:
            text = ("Demo data: a sample calfeed ships with, not live Launch Library 2 data. "
                    + text)
        if shown < matching:
            text += (
                f" This feed shows the {shown} {kind.noun} nearest to now of {matching} that"
                " match: calendar apps drop feeds over 1 MB. Narrow the filters to see the rest."
            )
        return text

    def _last_modified(
        self, key: tuple[Any, ...], etag: str, data_time: datetime, at: datetime, *,
        record: bool = True,
    ) -> datetime:
        stamp = data_time.replace(microsecond=0)
        if self._shared or not record:
            # several processes: what every one of them computes alike, the data's time
            # (a body changed by the time slot alone keeps it; its ETag does change)
            return stamp
        previous = self._history.get(key)
        if previous is not None and previous[0] == etag:
            return previous[1]
        if previous is None:
            # No history of this feed (a start, or it was evicted): its body may have
            # changed with the time since the data did (past_days, trimming, a related
            # dataset), and a client holding a later stamp than the data's, from before,
            # would get 304s for the change. Now, then: an unneeded 200 at worst, never a
            # wrong 304 (the time slot's start was not enough: a start or an eviction in
            # the slot of an earlier copy gave a changed body that copy's stamp).
            stamp = max(stamp, at.replace(microsecond=0))
        elif stamp <= previous[1]:
            # HTTP dates have whole seconds: a changed body must still look newer
            stamp = previous[1] + timedelta(seconds=1)
        self._history[key] = (etag, stamp)
        return stamp

