"""Shared fixtures: an injected clock, the fake LL2, and calfeed apps wired to it."""

from __future__ import annotations

import asyncio
import gc
import os
import pathlib
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import settings as hypothesis_settings

from calfeed.server import create_app
from calfeed.settings import Settings
from tests.fake_ll2 import FakeLL2
from tests.helpers import Clock, make_event
from tests.processes import LEASE, Calfeed, Start, health, iso
from tests.redis_server import RedisServer, free_port

# property tests: quick by default, more examples in CI (.ci/run sets the profile);
# no deadline, since a shared 2-core machine makes single examples slow now and then
hypothesis_settings.register_profile("default", max_examples=40, deadline=None)
hypothesis_settings.register_profile("ci", max_examples=250, deadline=None)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


@pytest.fixture(autouse=True)
def _collector_unfrozen() -> Iterator[None]:
    """After each test, what an index or a warm-up froze (calfeed.collector) is back in
    the collector's sight: the suite is one process, whose server never runs its hourly
    full pass, and a cycle frozen in one test (an unclosed resource's, say) would never
    be collected, nor its warning raised, in any."""
    yield
    gc.unfreeze()


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
async def calfeed(fake: FakeLL2, fake_server: TestServer, clock: Clock,
                  state_dir: pathlib.Path) -> Any:
    """A factory: calfeed(**settings) -> test client of an app reading the fake LL2.

    No background sync loop runs: the first request fetches (a cold start), and tests
    move the clock and call `sync(client)` to run what the scheduler would run. The fake
    keeps the same time (its /api-throttle/ counts the last hour of it, as LL2 does).
    """
    fake.clock = fake.clock or clock
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


@pytest.fixture
def redis_server() -> Any:
    """A real, empty redis-server on a free port (the test may stop and start it)."""
    server = RedisServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def instances(calfeed: Any, redis_server: Any) -> Any:
    """A factory: instances(**settings) -> a test client of another calfeed process on the
    one Redis and the one fake LL2 (no background loops: tests run the rounds)."""

    async def start(**overrides: Any) -> TestClient[Any, Any]:
        client: TestClient[Any, Any] = await calfeed(redis_url=redis_server.url, **overrides)
        return client

    return start


@pytest.fixture
async def serve(
    fake_server: TestServer, redis_server: RedisServer, tmp_path: Any
) -> AsyncIterator[Start]:
    """A factory: await serve(*flags) -> a running calfeed process on a free port."""
    started: list[Calfeed] = []

    async def start(*flags: str) -> Calfeed:
        port = free_port()
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "calfeed", "serve", "--port", str(port),
            "--upstream", str(fake_server.make_url("/2.3.0")),
            "--redis-url", redis_server.url, "--leader-lease", str(LEASE),
            "--budget", "500", "--incremental-interval", "2", "--hot-interval", "60",
            "--state-dir", str(tmp_path / f"state-{port}"), *flags,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )
        calfeed = Calfeed(process, port)
        started.append(calfeed)
        await health(calfeed, wait=20)
        return calfeed

    yield start
    for calfeed in started:
        if calfeed.process.returncode is None:
            calfeed.process.send_signal(signal.SIGCONT)
            calfeed.process.terminate()
            try:
                await asyncio.wait_for(calfeed.process.wait(), 10)
            except TimeoutError:
                calfeed.process.kill()
                await calfeed.process.wait()


@pytest.fixture
def upstream(fake: FakeLL2) -> FakeLL2:
    """The fake LL2 with events from two days on, on the real clock (for real processes)."""
    soon = datetime.now(UTC) + timedelta(days=2)
    fake.upcoming = [make_event(i, iso(soon + timedelta(hours=i))) for i in range(1, 40)]
    # as with an API key: the processes' change fetches every 2 s need more than 15 an hour
    fake.reported_limit = 500
    return fake
