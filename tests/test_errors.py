"""The one shape every error takes over HTTP, and the pages around the feeds."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from calfeed.exceptions import CalfeedError, InvalidParameter, NoDataYet, UnknownParameter
from calfeed.server import error_boundary, error_response
from tests.fake_ll2 import FakeLL2
from tests.helpers import Clock, make_event


def test_error_shape_is_pinned() -> None:
    response = error_response(InvalidParameter("type", "abc", "LL2 event type ids"))
    assert response.status == 400
    assert response.content_type == "text/plain" and response.charset == "utf-8"
    assert response.text == "invalid value 'abc' for parameter 'type': LL2 event type ids\n"
    unknown = error_response(UnknownParameter("colour", ["type", "agency"]))
    assert unknown.text == "unknown parameter 'colour'; known parameters: type, agency\n"
    unavailable = error_response(NoDataYet("no event data yet: LL2 answered HTTP 500", 61.2))
    assert unavailable.status == 503
    assert unavailable.headers["Retry-After"] == "62"
    # (another site's page may read why, as it may read the feeds)
    assert {r.headers["Access-Control-Allow-Origin"] for r in (response, unavailable)} == {"*"}


async def test_unexpected_exception_is_500_without_traceback() -> None:
    async def broken(request: web.Request) -> web.Response:
        raise RuntimeError("secret internals")

    async def custom(request: web.Request) -> web.Response:
        error = CalfeedError("teapot")
        error.status = 418
        raise error

    app = web.Application()
    app.router.add_get("/broken", error_boundary(broken))
    app.router.add_get("/custom", error_boundary(custom))
    async with TestClient(TestServer(app)) as client:
        response = await client.get("/broken")
        assert response.status == 500
        text = await response.text()
        assert text == "internal error\n"
        response = await client.get("/custom")
        assert (response.status, await response.text()) == (418, "teapot\n")


async def test_healthz_after_failure_without_data(
    fake: FakeLL2, calfeed: Any, clock: Clock
) -> None:
    fake.fail_times = -1
    fake.upcoming = [make_event(1)]
    client = await calfeed()
    await client.get("/events.ics")
    clock.advance(5)
    response = await client.get("/healthz")
    report = await response.json()
    assert response.status == 503 and report["status"] == "no-data"
    assert report["last_error_age_seconds"] == 5
    assert "HTTP 500" in report["last_error"]


def test_every_route_goes_through_the_error_boundary() -> None:
    from calfeed.server import create_app
    from calfeed.settings import Settings

    app = create_app(Settings(), items={"events": [], "launches": []}, background=False)
    routes = [r for r in app.router.routes() if r.resource is not None
              and not isinstance(r.resource, web.StaticResource)]
    assert len(routes) >= 6
    for route in routes:
        # error_boundary wraps with functools.wraps, which leaves __wrapped__
        assert route.resource is not None
        assert hasattr(route.handler, "__wrapped__"), route.resource.canonical
