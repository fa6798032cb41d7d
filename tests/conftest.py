"""Shared fixtures: an injected clock, the fake LL2, and calfeed apps wired to it."""

from __future__ import annotations

import os
import pathlib
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import settings as hypothesis_settings

from calfeed.server import SYNCER, create_app
from calfeed.settings import Settings
from calfeed.sync import Syncer

sys.path.insert(0, str(pathlib.Path(__file__).parent))

from fake_ll2 import FakeLL2

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)

# property tests: quick by default, more examples in CI (.ci/run sets the profile);
# no deadline, since a shared 2-core machine makes single examples slow now and then
hypothesis_settings.register_profile("default", max_examples=40, deadline=None)
hypothesis_settings.register_profile("ci", max_examples=250, deadline=None)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


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


@pytest.fixture
def clock() -> Clock:
    """A clock at 2026-11-29 12:00 UTC."""
    return Clock()


@pytest.fixture
def fake() -> FakeLL2:
    """A fake LL2 with no events."""
    return FakeLL2()


@pytest.fixture
async def fake_server(fake: FakeLL2) -> Any:
    """The fake LL2, listening on loopback."""
    server = TestServer(fake.app())
    await server.start_server()
    yield server
    await server.close()


CalfeedClient = Callable[..., Awaitable[TestClient[Any, Any]]]


@pytest.fixture
def state_dir(tmp_path: pathlib.Path) -> pathlib.Path:
    """A fresh state folder."""
    return tmp_path / "state"


@pytest.fixture
async def calfeed(fake_server: TestServer, clock: Clock, state_dir: pathlib.Path) -> Any:
    """A factory: calfeed(**settings) -> test client of an app reading the fake LL2.

    No background sync loop runs: the first request fetches (a cold start), and tests
    move the clock and call `sync(client)` to run what the scheduler would run.
    """
    clients: list[TestClient[Any, Any]] = []

    async def start(version: str = "2.3.0", **overrides: Any) -> TestClient[Any, Any]:
        overrides.setdefault("state_dir", str(state_dir))
        settings = Settings(upstream=str(fake_server.make_url(f"/{version}")), **overrides)
        client = TestClient(TestServer(create_app(settings, now=clock, background=False)))
        await client.start_server()
        clients.append(client)
        return client

    yield start
    for client in clients:
        await client.close()


def syncer_of(client: TestClient[Any, Any]) -> Syncer:
    """The syncer of a running test app."""
    syncer: Syncer = client.app[SYNCER][0]
    return syncer


async def sync(client: TestClient[Any, Any]) -> None:
    """Run whatever the scheduler has due now."""
    await syncer_of(client).tick()


async def later(client: TestClient[Any, Any], clock: Clock, seconds: float) -> None:
    """Move the clock on and let the scheduler catch up."""
    clock.advance(seconds)
    await sync(client)
