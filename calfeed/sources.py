"""Where datasets come from (LL2, bundled demo data, given items), wired into a Syncer."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

import aiohttp

from calfeed.budget import Budget, LocalBudget
from calfeed.dataset import items_from_json, shift_dates
from calfeed.feeds import FEED_KINDS, FeedKind
from calfeed.ll2 import LL2Client, Permit
from calfeed.sanitize import clean_text
from calfeed.settings import Settings
from calfeed.state import StateStore, default_state_dir
from calfeed.store import Store
from calfeed.sync import Syncer

Now = Callable[[], datetime]
Items = Mapping[str, Sequence[Mapping[str, Any]]]


def _iso(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


class LL2Source:
    """Fetches through the LL2 client; `permit` (the syncer's budget) is awaited before
    every request."""

    def __init__(self, client: LL2Client) -> None:
        self.client = client

    async def upcoming(
        self, kind: FeedKind, updated_since: datetime | None, permit: Permit
    ) -> Sequence[Mapping[str, Any]]:
        """The whole upcoming list, or its items changed since a time (oldest change first)."""
        filters = {}
        if updated_since is not None:
            filters = {"last_updated__gte": _iso(updated_since), "ordering": "last_updated"}
        return await self.client.list_since(
            (kind.resource, kind.resource_220), "upcoming", filters, kind.mode, permit
        )

    async def previous(
        self, kind: FeedKind, since: datetime, permit: Permit
    ) -> Sequence[Mapping[str, Any]]:
        """Past items dated since a time."""
        return await self.client.list_since(
            (kind.resource, kind.resource_220), "previous",
            {f"{kind.date_field}__gte": _iso(since)}, kind.mode, permit,
        )

    async def throttle_state(self) -> dict[str, Any] | None:
        """LL2's /api-throttle/ view of our usage (free: it does not count)."""
        return await self.client.throttle_state()

    async def reference(self, kind: FeedKind, permit: Permit) -> dict[str, dict[int, str]]:
        """LL2's reference lists (e.g. every event type), id -> name."""
        found: dict[str, dict[int, str]] = {}
        for facet, paths in kind.reference_paths.items():
            url, params = self.client.list_url(paths)
            items = await self.client.list_all(url, params, permit)
            found[facet] = {
                i["id"]: clean_text(i["name"]) for i in items
                if isinstance(i.get("id"), int) and not isinstance(i["id"], bool)
                and clean_text(i.get("name"))
            }
        return found


class FixedSource:
    """Serves given items as the upcoming list (demo data, `build --input`)."""

    def __init__(self, items: Items) -> None:
        self.items = items

    async def upcoming(
        self, kind: FeedKind, updated_since: datetime | None, permit: Permit
    ) -> Sequence[Mapping[str, Any]]:
        """Every given item of the kind (fixed data costs no requests: no permit asked)."""
        return self.items.get(kind.name, [])

    async def previous(
        self, kind: FeedKind, since: datetime, permit: Permit
    ) -> Sequence[Mapping[str, Any]]:
        """Nothing: given items all count as the upcoming list."""
        return []

    async def throttle_state(self) -> dict[str, Any] | None:
        """None: fixed data has no upstream to ask."""
        return None

    async def reference(self, kind: FeedKind, permit: Permit) -> dict[str, dict[int, str]]:
        """None: the page falls back to the names found in the data."""
        return {}


def demo_items(kind_name: str, now: datetime) -> list[Mapping[str, Any]]:
    """A feed kind's bundled sample data (data/demo-<kind>.json), moved so its anchor is today."""
    path = resources.files("calfeed").joinpath("data", f"demo-{kind_name}.json")
    if not path.is_file():
        return []
    data = json.loads(path.read_text("utf-8"))
    anchor = datetime.fromisoformat(data["calfeed_demo_anchor"])
    days = (now.date() - anchor.date()).days
    return [shift_dates(item, days) for item in items_from_json(data)]


def ll2_client(settings: Settings, session: aiohttp.ClientSession, now: Now) -> LL2Client:
    """An LL2 client configured from the settings."""
    return LL2Client(
        session, settings.upstream, token=settings.ll2_token, max_pages=settings.max_pages,
        connect_timeout=settings.connect_timeout, read_timeout=settings.read_timeout,
        max_response_bytes=settings.max_response_bytes, now=now,
    )


def open_syncer(
    settings: Settings,
    now: Now,
    *,
    session: aiohttp.ClientSession | None = None,
    items: Items | None = None,
    persist: bool = True,
    kinds: Iterable[str] | None = None,
    reference: bool = True,
    budget: Budget | None = None,
) -> Syncer:
    """The store of every feed kind's dataset and the syncer that fills those of `kinds`
    (all by default), from the settings; `budget` replaces this process's own window
    (with a shared one, the state folder is not used: Redis holds it all)."""
    if budget is None:
        budget = LocalBudget(settings.hourly_budget)
    else:
        persist = False
    source: LL2Source | FixedSource
    state = None
    if items is not None:
        source = FixedSource(items)
    elif settings.demo:
        source = FixedSource({name: demo_items(name, now()) for name in FEED_KINDS})
    else:
        if session is None:
            raise ValueError("fetching from LL2 needs a client session")
        source = LL2Source(ll2_client(settings, session, now))
        if persist:
            state = StateStore(Path(settings.state_dir) if settings.state_dir
                               else default_state_dir())
    store = Store(FEED_KINDS)
    synced = {name: FEED_KINDS[name] for name in (kinds or FEED_KINDS)}
    syncer = Syncer(settings, synced, store, source, budget, now=now, state=state,
                    reference=reference)
    syncer.load()
    return syncer
