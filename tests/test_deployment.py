"""The README's deployment, run: Debian's nginx with deploy/nginx.conf (TLS, a
self-signed certificate made here) in front of two calfeed processes on one Redis."""

from __future__ import annotations

import asyncio
import gzip
import os
import pathlib
import shutil
import ssl
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.fake_ll2 import FakeLL2
from tests.helpers import make_event
from tests.ics_helpers import by_uid
from tests.nginx_server import Nginx
from tests.processes import Calfeed, Start, all_ok, feed, iso, until
from tests.redis_server import needs_redis

HAVE_NGINX = shutil.which("nginx") is not None and shutil.which("openssl") is not None
if not HAVE_NGINX and os.environ.get("CALFEED_REQUIRE_NGINX") == "1":
    raise RuntimeError("CALFEED_REQUIRE_NGINX=1 but nginx (or openssl) is not installed")

pytestmark = [needs_redis, pytest.mark.slow,
              pytest.mark.skipif(not HAVE_NGINX, reason="Debian nginx is not installed")]

MAX_AGE = 2


@pytest.fixture
async def deployment(
    upstream: FakeLL2, serve: Start, tmp_path: pathlib.Path
) -> AsyncIterator[tuple[Nginx, list[Calfeed]]]:
    # feeds that nginx may cache for MAX_AGE seconds, so the test sees it expire
    flags = ("--trust-proxy", "--refresh-interval", str(MAX_AGE))
    first, second = await serve(*flags), await serve(*flags)
    nginx = Nginx(tmp_path, [first.port, second.port])
    await nginx.start()
    yield nginx, [first, second]
    await nginx.stop()


async def served(instance: Calfeed) -> dict[str, float]:
    """An instance's /events.ics answers by status, from its own /metrics."""
    async with aiohttp.ClientSession() as session, session.get(
            f"{instance.url}/metrics") as response:
        text = await response.text()
    counts = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if (sample.name == "calfeed_requests_total"
                    and sample.labels["route"] == "/events.ics"):
                counts[sample.labels["status"]] = sample.value
    return counts


async def test_polls_are_answered_by_nginx_and_revalidated_by_either_instance(
    deployment: tuple[Nginx, list[Calfeed]], upstream: FakeLL2,
) -> None:
    nginx, instances = deployment
    await until(lambda: all_ok(instances), 10)
    trust = ssl.create_default_context(cafile=str(nginx.folder / "fullchain.pem"))
    url = f"https://localhost:{nginx.https_port}/events.ics?past_days=3"

    async def poll(etag: str | None = None) -> tuple[int, str, str, bytes]:
        # a fresh connection per poll, as a calendar service's are hours apart
        headers = {"Connection": "close", **({"If-None-Match": etag} if etag else {})}
        async with aiohttp.ClientSession() as session, session.get(
                url, ssl=trust, headers=headers) as response:
            return (response.status, response.headers.get("X-Cache-Status", ""),
                    response.headers.get("ETag", ""), await response.read())

    status, cache, etag, body = await poll()
    assert (status, cache) == (200, "MISS")
    assert b"BEGIN:VEVENT" in body
    # the second poll, within max-age, is nginx's alone, with calfeed's headers
    async with aiohttp.ClientSession() as session, session.get(url, ssl=trust) as again:
        assert again.status == 200
        assert again.headers["X-Cache-Status"] == "HIT"
        assert again.headers["ETag"] == etag
        assert again.headers["Content-Encoding"] == "gzip"
        assert again.headers["Cache-Control"] == f"public, max-age={MAX_AGE}"
        assert again.headers["Vary"] == "Accept-Encoding"
        # (but the data's age, which a stored copy would freeze at what it was then)
        assert "X-Calfeed-Data-Age" not in again.headers
        assert await again.read() == body
    assert (await poll(etag))[:2] == (304, "HIT")
    assert sum([(await served(i)).get("200", 0) for i in instances]) == 1
    assert sum([(await served(i)).get("304", 0) for i in instances]) == 0
    # after max-age nginx revalidates with calfeed: one 304 from an instance per expiry,
    # from each instance in turn, whichever gave the ETag
    for _ in range(4):
        await asyncio.sleep(MAX_AGE + 1.5)  # nginx counts in whole seconds
        assert (await poll(etag))[:2] == (304, "REVALIDATED")
        assert (await poll(etag))[:2] == (304, "HIT")
    counts = [await served(instance) for instance in instances]
    assert [c.get("304", 0) for c in counts] == [2, 2], counts

    # a data change reaches the client once max-age has passed
    moved = datetime.now(UTC).replace(microsecond=0) + timedelta(days=9)
    upstream.upcoming[0] = make_event(1, iso(moved), last_updated=iso(datetime.now(UTC)))
    await until(lambda: _all_serve(instances, moved), 15)
    await asyncio.sleep(MAX_AGE + 1.5)  # nginx counts in whole seconds
    status, cache, new_etag, new_body = await poll(etag)
    assert (status, cache) == (200, "EXPIRED")
    assert new_etag != etag
    assert by_uid(gzip.decompress(new_body) if new_body[:2] == b"\x1f\x8b" else new_body)[
        "ll2-event-1@calfeed"].decoded("DTSTART") == moved

    async with aiohttp.ClientSession() as session:
        # plain http is sent to https (Outlook.com takes only https feeds)
        async with session.get(f"http://127.0.0.1:{nginx.http_port}/events.ics",
                               allow_redirects=False) as plain:
            assert plain.status == 301
            assert plain.headers["Location"].startswith("https://")
        # /metrics stays inside; /healthz comes through, never from the cache
        async with session.get(f"https://localhost:{nginx.https_port}/metrics",
                               ssl=trust) as hidden:
            assert hidden.status == 404
        async with session.get(f"https://localhost:{nginx.https_port}/healthz",
                               ssl=trust) as checked:
            assert (await checked.json())["status"] == "ok"
            assert "X-Cache-Status" not in checked.headers

    # one instance goes down: revalidations go to the other, polls still get 304s
    instances[0].process.kill()
    await instances[0].process.wait()
    for _ in range(2):
        await asyncio.sleep(MAX_AGE + 1.5)  # nginx counts in whole seconds
        assert (await poll(new_etag))[:2] == (304, "REVALIDATED")


async def _all_serve(instances: list[Calfeed], moved: datetime) -> bool:
    for instance in instances:
        if by_uid(await feed(instance))["ll2-event-1@calfeed"].decoded("DTSTART") != moved:
            return False
    return True
