"""The one dataset every feed reads: when to fetch, and what to keep when fetching fails."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from calfeed.exceptions import InputError, NoDataYet, UpstreamError, UpstreamThrottled

log = logging.getLogger("calfeed.dataset")

Now = Callable[[], datetime]
# Fetches the whole dataset: every item, as LL2 dicts.
Fetch = Callable[[], Awaitable[Sequence[Mapping[str, Any]]]]


@dataclass(frozen=True)
class Snapshot:
    """A fetched dataset; a new generation whenever a fetch succeeds."""

    items: tuple[Mapping[str, Any], ...]
    fetched_at: datetime
    generation: int


class Dataset:
    """Fetches on demand when stale, at most once at a time, and keeps the last good data."""

    def __init__(self, fetch: Fetch, *, ttl: float, retry_backoff: float, now: Now) -> None:
        self._fetch = fetch
        self._now = now
        self._retry_backoff = retry_backoff
        self._ttl = timedelta(seconds=ttl)
        # until when the snapshot counts as fresh, on the injected clock
        self._fresh_until: datetime | None = None
        self._lock = asyncio.Lock()
        self._snapshot: Snapshot | None = None
        self._not_before: datetime | None = None
        self.last_error: str | None = None
        self.last_error_at: datetime | None = None
        self.fetches = 0

    @property
    def snapshot(self) -> Snapshot | None:
        """The last good dataset, however old."""
        return self._snapshot

    def fresh(self, now: datetime) -> Snapshot | None:
        """The snapshot if it is still fresh at `now`; the request path's fast check."""
        if self._fresh_until is not None and now < self._fresh_until:
            return self._snapshot
        return None

    async def get(self) -> Snapshot:
        """A snapshot: fresh if upstream allows, else the last good one; NoDataYet if none."""
        if self.fresh(self._now()) is not None and self._snapshot is not None:
            return self._snapshot
        if self._lock.locked() and self._snapshot is not None:
            # a refresh is under way: answer now from what we have
            return self._snapshot
        async with self._lock:
            if self.fresh(self._now()) is not None and self._snapshot is not None:
                return self._snapshot
            now = self._now()
            if self._not_before is not None and now < self._not_before:
                return self._stale_or_raise((self._not_before - now).total_seconds())
            try:
                self.fetches += 1
                items = await self._fetch()
            except UpstreamError as error:
                wait = max(error.retry_after or 0.0, self._retry_backoff)
                if isinstance(error, UpstreamThrottled) and error.retry_after:
                    wait = max(error.retry_after, 1.0)
                self._not_before = self._now() + timedelta(seconds=wait)
                self.last_error = error.message
                self.last_error_at = self._now()
                log.warning("dataset=fetch-failed error=%r retry_in=%.0f", error.message, wait)
                return self._stale_or_raise(wait)
            generation = self._snapshot.generation + 1 if self._snapshot else 1
            self._snapshot = Snapshot(tuple(items), self._now(), generation)
            self._fresh_until = self._snapshot.fetched_at + self._ttl
            self._not_before = None
            log.info("dataset=fetched items=%d generation=%d", len(items), generation)
            return self._snapshot

    def _stale_or_raise(self, retry_after: float) -> Snapshot:
        if self._snapshot is not None:
            return self._snapshot
        raise NoDataYet(
            f"no event data yet: {self.last_error or 'upstream not reachable'}", retry_after
        )

    def health(self) -> dict[str, Any]:
        """Age, size and last error, for /healthz."""
        now = self._now()
        snap = self._snapshot
        return {
            "items": len(snap.items) if snap else 0,
            "fetched_at": snap.fetched_at.isoformat() if snap else None,
            "age_seconds": round((now - snap.fetched_at).total_seconds()) if snap else None,
            "generation": snap.generation if snap else 0,
            "last_error": self.last_error,
            "last_error_age_seconds": (
                round((now - self.last_error_at).total_seconds()) if self.last_error_at else None
            ),
        }


def items_from_json(data: Any) -> list[Mapping[str, Any]]:
    """LL2 items from a list page {"results": [...]}, a bare list, or one object."""
    if isinstance(data, dict) and isinstance(data.get("results"), list):
        data = data["results"]
    elif isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        raise InputError("expected an LL2 list page, a list of objects, or one object")
    return [item for item in data if isinstance(item, dict)]


def load_items(path: Path) -> list[Mapping[str, Any]]:
    """LL2 items from a JSON file (see items_from_json)."""
    try:
        return items_from_json(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError) as error:
        raise InputError(f"cannot read LL2 JSON from {path}: {error}") from None


def shift_dates(item: Mapping[str, Any], days: int) -> dict[str, Any]:
    """A copy of an LL2 item with its own and its launches' dates moved by whole days."""
    moved: dict[str, Any] = dict(item)
    for key in ("date", "net", "window_start", "window_end"):
        value = moved.get(key)
        if isinstance(value, str):
            try:
                when = datetime.fromisoformat(value.replace("Z", "+00:00"))
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
