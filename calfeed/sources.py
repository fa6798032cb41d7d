"""Where each feed kind's dataset comes from: LL2, bundled demo data, or given items."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from importlib import resources
from typing import Any

import aiohttp

from calfeed.dataset import Dataset, Fetch, items_from_json, shift_dates
from calfeed.feeds import FEED_KINDS, FeedKind
from calfeed.ll2 import LL2Client
from calfeed.settings import Settings

Now = Callable[[], datetime]


def demo_items(kind_name: str, now: datetime) -> list[Mapping[str, Any]]:
    """A feed kind's bundled sample data (data/demo-<kind>.json), moved so its anchor is today."""
    path = resources.files("calfeed").joinpath("data", f"demo-{kind_name}.json")
    if not path.is_file():
        return []
    data = json.loads(path.read_text("utf-8"))
    anchor = datetime.fromisoformat(data["calfeed_demo_anchor"].replace("Z", "+00:00"))
    days = (now.date() - anchor.date()).days
    return [shift_dates(item, days) for item in items_from_json(data)]


def _from_ll2(client: LL2Client, kind: FeedKind, max_past_days: int, now: Now) -> Fetch:
    async def fetch() -> Sequence[Mapping[str, Any]]:
        since = now() - timedelta(days=max_past_days)
        return await client.upcoming_and_recent(kind.resource, kind.date_field, since)

    return fetch


def _fixed(items: Sequence[Mapping[str, Any]]) -> Fetch:
    async def fetch() -> Sequence[Mapping[str, Any]]:
        return items

    return fetch


def ll2_client(settings: Settings, session: aiohttp.ClientSession, now: Now) -> LL2Client:
    """An LL2 client configured from the settings."""
    return LL2Client(
        session, settings.upstream, token=settings.ll2_token, max_pages=settings.max_pages,
        connect_timeout=settings.connect_timeout, read_timeout=settings.read_timeout, now=now,
    )


def open_datasets(
    settings: Settings,
    now: Now,
    *,
    session: aiohttp.ClientSession | None = None,
    items: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
) -> dict[str, Dataset]:
    """One dataset per feed kind, fed by given items, the demo data, or LL2."""
    if items is not None:
        fetches = {name: _fixed(kind_items) for name, kind_items in items.items()}
    elif settings.demo:
        fetches = {name: _fixed(demo_items(name, now())) for name in FEED_KINDS}
    else:
        if session is None:
            raise ValueError("fetching from LL2 needs a client session")
        client = ll2_client(settings, session, now)
        fetches = {
            name: _from_ll2(client, kind, settings.max_past_days, now)
            for name, kind in FEED_KINDS.items()
        }
    return {
        name: Dataset(fetch, ttl=settings.cache_ttl, retry_backoff=settings.retry_backoff, now=now)
        for name, fetch in fetches.items()
    }
