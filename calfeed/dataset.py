"""The datasets every feed reads: items by id, per LL2 list, with their sync times."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from calfeed.exceptions import InputError
from calfeed.readers import parse_datetime
from calfeed.sanitize import MAX_DEPTH, item_key, too_deep
from calfeed.steps import all_at_once, slices

log = logging.getLogger("calfeed.dataset")



@dataclass(frozen=True)
class Snapshot:
    """A fetched dataset; a new generation (the store's) whenever its items change. Its
    items have an id each, and no two the same (a dataset holds them by id)."""

    items: tuple[Mapping[str, Any], ...]
    fetched_at: datetime
    generation: int


class Part:
    """One list of a dataset (LL2's upcoming or previous items) and when it was synced."""

    def __init__(self) -> None:
        self.items: dict[str, Mapping[str, Any]] = {}
        # last successful sync of any kind, and of the whole list
        self.synced_at: datetime | None = None
        self.full_at: datetime | None = None
        # id -> how many lists in a row, each moved while it was read, went without the
        # item (kept in the state, so that a restart or a new leader goes on counting)
        self.missed: dict[str, int] = {}
        # where the next fetch of changes starts, when the last one moved while it was
        # read (what it missed may have changed before it); None: from synced_at
        self.changes_from: datetime | None = None

    def to_state(self) -> dict[str, Any]:
        """JSON-ready form for the state file."""
        return {
            "synced_at": self.synced_at.isoformat() if self.synced_at else None,
            "full_at": self.full_at.isoformat() if self.full_at else None,
            "changes_from": self.changes_from.isoformat() if self.changes_from else None,
            "missed": dict(self.missed),
            "items": list(self.items.values()),
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Part:
        """A part restored from the state file; ValueError/TypeError if malformed."""
        return all_at_once(cls.reading_state(state))

    @classmethod
    def reading_state(
        cls, state: Mapping[str, Any], held: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> Generator[None, None, Part]:
        """`from_state`, yielding between slices of its items. An item equal to one of
        `held` (the part's items so far) is the held object: a follower reads every item
        anew at each change, and would otherwise hold two copies of each unchanged one
        until the old snapshot goes (the renderer then knows it unchanged at a glance)."""
        held = held or {}
        part = cls()
        for name in ("synced_at", "full_at"):
            value = state.get(name)
            if value is not None:
                setattr(part, name, aware(value))
        items = state.get("items", [])
        if not isinstance(items, list):
            raise TypeError("items is not a list")
        if part.full_at is not None and part.synced_at is None:
            # (every sync sets synced_at, a whole list's full_at too: what plans the next
            # incremental fetch must be there)
            raise ValueError("a list synced whole that was never synced")
        for chunk in slices(items, _COMPARE_SLICE):
            for item in chunk:
                if isinstance(item, dict) and (key := item_key(item.get("id"))) is not None:
                    before = held.get(key)
                    part.items[key] = before if before is not None and before == item else item
            yield
        # (what a state older than these, or one edited by hand, gives is no reason to
        # refuse the rest: only what fits is kept)
        since = state.get("changes_from")
        with contextlib.suppress(ValueError, TypeError):
            when = aware(since) if since is not None else None
            if when is not None and part.synced_at is not None and when <= part.synced_at:
                part.changes_from = when
        missed = state.get("missed")
        if isinstance(missed, dict):
            part.missed = {key: times for key, times in missed.items()
                           if key in part.items and type(times) is int and times > 0}
        return part


PARTS = ("upcoming", "past")
# lists in a row, each moved while read, that went without an item before it is dropped:
# an item moved across a page boundary is missed by one read, seldom by the next ones
# too, while one deleted at LL2 is missed by all (and a list that moves at every read,
# as an order with ties may, would otherwise hold it for ever)
SHIFTED_MISSES = 3
# items read or compared between two steps (a few milliseconds)
_COMPARE_SLICE = 2000


def _differ(
    fresh: Mapping[str, Mapping[str, Any]], held: Mapping[str, Mapping[str, Any]],
) -> Generator[None, None, bool]:
    """Whether two lists by id differ (`fresh != held`), compared a slice at a time."""
    if fresh.keys() != held.keys():
        return True
    for keys in slices(list(fresh), _COMPARE_SLICE):
        # (the same object is the same item: what the syncer found unchanged, it hands
        # back as the one held)
        if any(fresh[key] is not held[key] and fresh[key] != held[key] for key in keys):
            return True
        yield
    return False


def _joined(parts: Mapping[str, Part]) -> dict[str, Mapping[str, Any]]:
    """Both lists as one, by id. An item in both (gone past, and not yet out of the
    upcoming list: a full refresh failed, or its list moved while read) is the copy LL2
    edited last; the upcoming one where that cannot be told."""
    merged = dict(parts["past"].items)
    for key, item in parts["upcoming"].items.items():
        other = merged.get(key)
        if other is None or not _edited_later(other, item):
            merged[key] = item
    return merged


def _edited_later(one: Mapping[str, Any], other: Mapping[str, Any]) -> bool:
    """Whether LL2's last_updated of `one` is later than that of `other` (False where
    either is missing or no time)."""
    mine, theirs = parse_datetime(one.get("last_updated")), parse_datetime(
        other.get("last_updated"))
    return mine is not None and theirs is not None and mine > theirs


_LONG_AGO = datetime.min.replace(tzinfo=UTC)


def aware(value: Any) -> datetime:
    """A stored time, with its zone; ValueError for anything else (a time without a zone
    would break every comparison with now)."""
    when = datetime.fromisoformat(str(value))
    if when.tzinfo is None:
        raise ValueError(f"time without a zone: {str(value)[:40]!r}")
    return when


class Dataset:
    """A feed kind's items: LL2's upcoming list plus its recent past, merged by id."""

    def __init__(self, name: str, next_generation: Callable[[], int]) -> None:
        self.name = name
        self.parts: dict[str, Part] = {}
        self._snapshot: Snapshot | None = None
        # the store's generation counter: whenever the snapshot changes (new items, or a
        # reset to empty) it takes the next number, shared by every dataset
        self._next_generation = next_generation
        # facet -> id -> name, from LL2's reference lists (e.g. every event type)
        self.reference: dict[str, dict[int, str]] = {}
        self.reference_at: datetime | None = None
        self.reset()

    def reset(self) -> None:
        """Back to empty (e.g. after a state file turned out to be unusable)."""
        self.parts = {part: Part() for part in PARTS}
        self._snapshot = None
        self._next_generation()
        self.reference = {}
        self.reference_at = None

    def set_reference(self, reference: Mapping[str, Mapping[int, str]], now: datetime) -> None:
        """Replace the reference lists."""
        self.reference = {facet: dict(names) for facet, names in reference.items()}
        self.reference_at = now

    @property
    def snapshot(self) -> Snapshot | None:
        """The current items, or None before the first successful sync."""
        return self._snapshot

    @property
    def has_data(self) -> bool:
        """Whether any sync (or the state file) has given us data."""
        return any(part.full_at is not None for part in self.parts.values())

    def replace(self, part: str, items: Sequence[Mapping[str, Any]], now: datetime) -> None:
        """A complete fresh list: items no longer in it are dropped."""
        all_at_once(self.replacing(part, items, now))

    def replacing(
        self, part: str, items: Sequence[Mapping[str, Any]], now: datetime,
    ) -> Generator[None]:
        """`replace`, yielding between slices of the items it reads and compares (a list
        of 50,000 held and fetched again, all equal, took 74 ms to compare in one piece).
        Nothing changes before the last step."""
        target = self.parts[part]
        fresh: dict[str, Mapping[str, Any]] = {}
        for chunk in slices(items, _COMPARE_SLICE):
            for item in chunk:
                if (key := item_key(item.get("id"))) is not None:
                    fresh[key] = item
            yield
        changed = yield from _differ(fresh, target.items)
        if self.parts.get(part) is not target:
            return  # (the state was loaded anew meanwhile: this list is of older data)
        target.items = fresh
        target.missed = {}
        target.changes_from = None  # (the whole list holds every change)
        target.synced_at = target.full_at = now
        self._publish(changed, now)

    def merge(
        self, part: str, items: Sequence[Mapping[str, Any]], now: datetime, *,
        unread: int | None = None, changes_from: datetime | None = None,
    ) -> int:
        """Changed items only: update or add by id, keep the rest; `changes_from`: the
        fetch of changes they came from moved while it was read, and the next is to ask
        from then (None: from now). `unread` given: the list as a full refresh read it,
        but for that many items LL2 counted that moved out of reach while it was read
        (see UpstreamShifted). The next full refresh is planned from now all the same.
        Where the list lacks more held items than that, some left LL2: each item lacking
        is counted, and one that SHIFTED_MISSES such lists in a row lacked is dropped (an
        item that moved is seldom missed by every one). Returns how many were dropped."""
        target = self.parts[part]
        changed = False
        seen: set[str] = set()
        for item in items:
            key = item_key(item.get("id"))
            if key is None:
                continue
            seen.add(key)
            if target.items.get(key) != item:
                target.items[key] = item
                changed = True
        target.synced_at = now
        # (after a full refresh, even one that moved, every item but those moved out of
        # reach read as it stands: the fetches of changes ask from now on again, not
        # from ever further back)
        target.changes_from = changes_from if unread is None else None
        dropped = 0
        if unread is not None:
            target.full_at = now
            lacking = [key for key in target.items if key not in seen]
            # (no more lacking than moved out of reach: nothing need have left, and the
            # counts stay as they were for what still lacks)
            left = max(0, len(lacking) - unread)  # (at least this many left LL2)
            more = 1 if left else 0
            missed = {key: times for key in lacking
                      if (times := target.missed.get(key, 0) + more)}
            # no more dropped than can have left: those lacked longest (one lacked as
            # long that only moved stays, and goes at the next whole list if it left)
            due = sorted((key for key, times in missed.items() if times >= SHIFTED_MISSES),
                         key=lambda key: -missed[key])
            for key in due[:left]:
                del target.items[key], missed[key]
                dropped += 1
            target.missed = missed
            changed = changed or bool(dropped)
        self._publish(changed, now)
        return dropped

    def _publish(self, changed: bool, now: datetime) -> None:
        if not self.has_data:
            return
        if changed or self._snapshot is None:
            merged = _joined(self.parts)
            # Last-Modified comes from here, in whole seconds: each new snapshot is at least
            # a second newer than the one before, so a changed body always looks newer
            stamp = now.replace(microsecond=0)
            if self._snapshot is not None and stamp <= self._snapshot.fetched_at:
                stamp = self._snapshot.fetched_at + timedelta(seconds=1)
            self._snapshot = Snapshot(tuple(merged.values()), stamp, self._next_generation())

    def age(self, part: str, now: datetime) -> float | None:
        """Seconds since a part was last synced."""
        synced = self.parts[part].synced_at
        return None if synced is None else (now - synced).total_seconds()

    def to_state(self) -> dict[str, Any]:
        """JSON-ready form for the state file."""
        return {
            "parts": {name: part.to_state() for name, part in self.parts.items()},
            "reference": {facet: {str(k): v for k, v in names.items()}
                          for facet, names in self.reference.items()},
            "reference_at": self.reference_at.isoformat() if self.reference_at else None,
            # when the items last changed: what Last-Modified says, wherever they are served
            "published_at": (self._snapshot.fetched_at.isoformat()
                             if self._snapshot else None),
        }

    def holds_newer_than(self, state: Mapping[str, Any]) -> bool:
        """Whether this dataset holds newer data than a saved state: items published
        later, or as late and synced since. A shared store brought back from an older
        copy (Redis restarted from its last snapshot, a backup) must not take the
        processes back, nor make the leader fetch again what it had; ValueError, TypeError
        or KeyError if the state is malformed."""
        if self._snapshot is None:
            return False
        published = state.get("published_at")
        synced = [aware(part["synced_at"]) for part in dict(state["parts"]).values()
                  if part.get("synced_at")]
        theirs = (aware(published) if published else _LONG_AGO, max(synced, default=_LONG_AGO))
        mine = (self._snapshot.fetched_at,
                max((p.synced_at for p in self.parts.values() if p.synced_at),
                    default=_LONG_AGO))
        return mine > theirs

    def load_state(self, state: Mapping[str, Any]) -> None:
        """Restore from the state file or the shared store; ValueError/TypeError/KeyError
        if malformed. A state whose items were published at the time the current snapshot
        was (the same data, synced again since) updates the sync times only: caches and
        the generation stay."""
        all_at_once(self.loading_state(state))

    def loading_state(self, state: Mapping[str, Any]) -> Generator[None]:
        """`load_state`, yielding between slices of the items it reads (a follower's new
        data of 50,000 events took 17 ms in one piece); nothing changes before the last
        step."""
        parts: dict[str, Part] = {}
        for name in PARTS:
            parts[name] = yield from Part.reading_state(state["parts"][name],
                                                        self.parts[name].items)
        reference = {
            str(facet): {int(k): str(v) for k, v in names.items()}
            for facet, names in dict(state.get("reference") or {}).items()
        }
        reference_at = state.get("reference_at")
        published = state.get("published_at")
        published_at = aware(published) if published else None
        self.parts = parts
        self.reference = reference
        self.reference_at = aware(reference_at) if reference_at else None
        if published_at is not None and self._snapshot is not None and (
                self._snapshot.fetched_at == published_at):
            return
        fetched = published_at or max(
            (p.synced_at for p in parts.values() if p.synced_at), default=None)
        if fetched is not None and self.has_data:
            merged = _joined(parts)
            self._snapshot = Snapshot(tuple(merged.values()), fetched.replace(microsecond=0),
                                      self._next_generation())


def items_from_json(data: Any) -> list[Mapping[str, Any]]:
    """LL2 items from a list page {"results": [...]}, a bare list, or one object."""
    if isinstance(data, dict) and isinstance(data.get("results"), list):
        data = data["results"]
    elif isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        raise InputError("expected an LL2 list page, a list of objects, or one object")
    objects = [item for item in data if isinstance(item, dict)]
    if data and not objects:
        raise InputError("expected LL2 objects, found none among the "
                         f"{len(data)} entries of the list")
    if len(objects) < len(data):
        log.warning("skip=input count=%d reason='not a JSON object'", len(data) - len(objects))
    # (as from LL2: nothing real nests this deep, and comparing or saving it could
    # exhaust the recursion limit)
    items: list[Mapping[str, Any]] = [item for item in objects if not too_deep(item)]
    if len(items) < len(objects):
        log.warning("skip=input count=%d reason='nested more than %d levels'",
                    len(objects) - len(items), MAX_DEPTH)
    return items


def load_items(path: Path) -> list[Mapping[str, Any]]:
    """LL2 items from a JSON file (see items_from_json)."""
    try:
        return items_from_json(json.loads(path.read_text(encoding="utf-8")))
    except RecursionError:  # (JSON nested deeper than Python's parser goes)
        raise InputError(f"cannot read LL2 JSON from {path}: nested too deep") from None
    except (OSError, ValueError) as error:
        raise InputError(f"cannot read LL2 JSON from {path}: {error}") from None


def shift_dates(item: Mapping[str, Any], days: int) -> dict[str, Any]:
    """A copy of an LL2 item with its own and its launches' dates moved by whole days."""
    moved: dict[str, Any] = dict(item)
    for key in ("date", "net", "window_start", "window_end"):
        value = moved.get(key)
        if isinstance(value, str):
            try:
                when = datetime.fromisoformat(value)
            except ValueError:
                continue
            moved[key] = (when + timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")
    launches = moved.get("launches")
    if isinstance(launches, list):
        moved["launches"] = [
            shift_dates(launch, days) if isinstance(launch, Mapping) else launch
            for launch in launches
        ]
    return moved
