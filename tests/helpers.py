"""What many tests share: the test clock, LL2-shaped events, driving the syncer, and the
README's words (tests hold what it says to what the code computes)."""

from __future__ import annotations

import asyncio
import contextlib
import pathlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp.test_utils import TestClient

from calfeed.server import SYNCER
from calfeed.sync import Syncer

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
README = pathlib.Path(__file__).parents[1] / "README.md"


def readme_words(section: str | None = None) -> str:
    """The README's text, or that of its `## section`, every run of whitespace one space
    (what it says, however its lines are wrapped)."""
    text = README.read_text()
    if section is not None:
        text = text.split(f"## {section}", 1)[1].split("\n## ", 1)[0]
    return " ".join(text.split())


class Clock:
    """A clock tests move by hand."""

    def __init__(self, start: datetime = NOW) -> None:
        self.current = start

    def __call__(self) -> datetime:
        return self.current

    def advance(self, seconds: float) -> None:
        self.current += timedelta(seconds=seconds)


def make_event(
    ident: int,
    date: str = "2026-12-01T10:00:00Z",
    *,
    name: str | None = None,
    precision: int | None = 1,
    type_id: int = 2,
    type_name: str = "Docking",
    agencies: tuple[int, ...] = (),
    programs: tuple[int, ...] = (),
    last_updated: str = "2026-11-01T00:00:00Z",
    **extra: Any,
) -> dict[str, Any]:
    """A 2.3.0-shaped LL2 event."""
    event: dict[str, Any] = {
        "id": ident,
        "url": f"https://ll.thespacedevs.com/2.3.0/events/{ident}/",
        "name": name or f"Event {ident}",
        "type": {"id": type_id, "name": type_name},
        "description": f"Description of event {ident}.",
        "location": "International Space Station",
        "date": date,
        "date_precision": None if precision is None else {"id": precision, "name": "P"},
        "duration": None,
        "last_updated": last_updated,
        "webcast_live": False,
        "image": None,
        "agencies": [{"id": a, "name": f"Agency {a}", "abbrev": f"A{a}"} for a in agencies],
        "program": [{"id": p, "name": f"Program {p}"} for p in programs],
        "launches": [],
        "vid_urls": [],
        "info_urls": [],
    }
    event.update(extra)
    return event


def syncer_of(client: TestClient[Any, Any]) -> Syncer:
    """The syncer of a running test app."""
    syncer: Syncer = client.app[SYNCER]
    return syncer


async def sync(client: TestClient[Any, Any]) -> None:
    """Run whatever the scheduler has due now."""
    await syncer_of(client).tick()


async def later(client: TestClient[Any, Any], clock: Clock, seconds: float) -> None:
    """Move the clock on and let the scheduler catch up."""
    clock.advance(seconds)
    await sync(client)


@contextlib.asynccontextmanager
async def counting_turns() -> AsyncIterator[list[int]]:
    """[how many turns of the event loop another task got meanwhile]: what a slow step
    that yields between slices leaves to other requests."""
    turns = [0]

    async def count() -> None:
        while True:
            await asyncio.sleep(0)
            turns[0] += 1

    counter = asyncio.create_task(count())
    await asyncio.sleep(0)  # (the counter starts)
    try:
        yield turns
    finally:
        counter.cancel()
