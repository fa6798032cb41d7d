"""A fake Launch Library 2: LL2-shaped pages, pagination, 429, failures, stalls; counts calls."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web
from yarl import URL


@dataclass
class Call:
    """One request the fake received."""

    path: str
    query: dict[str, str]
    headers: dict[str, str]
    # on the test's clock, when the fake has one
    at: datetime | None = None


@dataclass
class FakeLL2:
    """State of the fake; tests change it between requests."""

    upcoming: list[dict[str, Any]] = field(default_factory=list)
    previous: list[dict[str, Any]] = field(default_factory=list)
    launches_upcoming: list[dict[str, Any]] = field(default_factory=list)
    launches_previous: list[dict[str, Any]] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    # answer the next N list requests with this status (-1: every request)
    fail_status: int = 500
    fail_times: int = 0
    # fail only the lists whose path contains this ("" = every list)
    fail_only: str = ""
    # 429 with Retry-After and DRF's detail text
    throttle_seconds: int = 0
    stall_seconds: float = 0.0
    # send the page a byte at a time, this many seconds apart (a server that drips)
    drip_seconds: float = 0.0
    bad_json: bool = False
    # close the connection without an answer (what a crashed upstream looks like)
    drop_connection: bool = False
    wrong_shape: bool = False
    # largest page served, whatever `limit` asks (LL2 caps at 100)
    max_page: int = 100
    # make `next` point back at the first page (a loop)
    next_loop: bool = False
    # a second page that repeats the first page's items, with a `next` on from it
    repeat_page: bool = False
    # a page at this offset or later links back to the first page (0 = never)
    loop_back_at: int = 0
    # pages at this offset or later have no `next`, as if the list ended there (0 = never)
    cut_at: int = 0
    # once an event list's first page is served, this changes the list (an edit while the
    # list is read: an item put back, brought forward or added); it is given the list,
    # upcoming or previous, and runs once, or at every read while it returns True (an
    # order LL2 pages otherwise at every read)
    after_first_page: Callable[[list[dict[str, Any]]], bool | None] | None = None
    # `next` links point at this base URL instead (another host or port)
    next_base: str = ""
    # answer list requests with a redirect to this base URL (same path and query)
    redirect_to: str = ""
    # add this many bytes of padding to every list page; chunked: stream it without a
    # Content-Length, as a proxy or a misbehaving upstream would
    pad_bytes: int = 0
    chunked: bool = False
    # send this text as every list page, whatever was asked
    raw_body: str | None = None
    # like LL2: at most this many list calls in any hour of `clock`, then 429 (0 = no limit)
    rate_limit: int = 0
    # what /api-throttle/ reports as your_request_limit (15 without a key, like LL2)
    reported_limit: int = 15
    # what /api-throttle/ reports as current_use instead of the real count
    reported_use: int | None = None
    # answer 429s and /api-throttle/ as a proxy would: an HTML page with no charset
    html_answers: bool = False
    clock: Callable[[], datetime] | None = None
    throttled: int = 0
    event_types: list[dict[str, Any]] = field(default_factory=lambda: [
        {"id": 1, "name": "Docking"}, {"id": 2, "name": "Docking"},
        {"id": 6, "name": "EVA"}, {"id": 8, "name": "Spacecraft Undocking"},
        {"id": 23, "name": "Flyby"}, {"id": 42, "name": "Never seen in the data"},
    ])

    def list_calls(self) -> list[Call]:
        """Calls to event list endpoints."""
        return [c for c in self.calls if "/event" in c.path and "/config/" not in c.path]

    def counted_calls(self) -> list[Call]:
        """Every call LL2 would count (all but /api-throttle/)."""
        return [c for c in self.calls if "api-throttle" not in c.path]

    def most_in_any_hour(self) -> int:
        """The largest number of counted calls in any 60-minute window (needs `clock`)."""
        times = sorted(c.at for c in self.counted_calls() if c.at is not None)
        best = 0
        for i, start in enumerate(times):
            end = start + timedelta(hours=1)
            best = max(best, sum(1 for t in times[i:] if t < end))
        return best

    def _over_rate_limit(self, now: datetime | None) -> bool:
        if not self.rate_limit or now is None:
            return False
        recent = [c for c in self.counted_calls()[:-1]
                  if c.at is not None and c.at > now - timedelta(hours=1)]
        return len(recent) >= self.rate_limit

    def app(self) -> web.Application:
        """The aiohttp app serving this fake at /2.2.0/... and /2.3.0/..."""
        app = web.Application()
        for version, resource in (("2.3.0", "events"), ("2.2.0", "event"),
                                  ("2.3.0", "launches"), ("2.2.0", "launch")):
            for which in ("upcoming", "previous"):
                app.router.add_get(f"/{version}/{resource}/{which}/",
                                   self._list(which, resource.startswith("launch")))
        app.router.add_get("/{version}/api-throttle/", self._throttle_status)
        app.router.add_get("/2.3.0/config/event_types/", self._event_types)
        app.router.add_get("/2.2.0/config/eventtype/", self._event_types)
        return app

    def launch_calls(self) -> list[Call]:
        """Calls to launch list endpoints."""
        return [c for c in self.calls if "/launch" in c.path]

    def _list(self, which: str, launches: bool = False) -> Any:
        async def handle(request: web.Request) -> web.StreamResponse:
            now = self.clock() if self.clock else None
            self.calls.append(Call(request.path, dict(request.query), dict(request.headers), now))
            if self._over_rate_limit(now):
                self.throttled += 1
                return web.json_response(
                    {"detail": "Request was throttled. Expected available in 600 seconds."},
                    status=429,
                )
            if self.redirect_to and "redirected" not in request.query:
                target = URL(self.redirect_to).with_path(request.path).with_query(
                    {**request.query, "redirected": "1"})
                raise web.HTTPFound(str(target))
            if self.stall_seconds:
                await asyncio.sleep(self.stall_seconds)
            if self.raw_body is not None:
                return web.Response(text=self.raw_body, content_type="application/json")
            if self.drop_connection and request.transport is not None:
                request.transport.close()
                return web.Response(status=500)
            if self.throttle_seconds and self.html_answers:
                return web.Response(body=b"<h1>429 Too Many Requests</h1>", status=429,
                                    content_type="text/html",
                                    headers={"Retry-After": str(self.throttle_seconds)})
            if self.throttle_seconds:
                return web.json_response(
                    {"detail": "Request was throttled. Expected available in "
                               f"{self.throttle_seconds} seconds."},
                    status=429, headers={"Retry-After": str(self.throttle_seconds)},
                )
            if self.fail_times and self.fail_only in request.path:
                self.fail_times -= 1 if self.fail_times > 0 else 0
                return web.Response(status=self.fail_status, text="<h1>Server Error</h1>")
            if self.bad_json:
                return web.Response(text="{not json", content_type="application/json")
            if self.wrong_shape:
                return web.json_response({"count": 1, "items": []})
            if launches:
                items = self.launches_upcoming if which == "upcoming" else self.launches_previous
            else:
                items = self.upcoming if which == "upcoming" else self.previous
            for field_name in ("date", "net", "last_updated"):
                since = request.query.get(f"{field_name}__gte")
                if since:
                    cut = _when(since)
                    items = [i for i in items if _when(str(i[field_name])) >= cut]
            if request.query.get("ordering") == "last_updated":
                items = sorted(items, key=lambda i: _when(str(i["last_updated"])))
            limit = min(int(request.query.get("limit", "10")), self.max_page)
            offset = int(request.query.get("offset", "0"))
            page = items[offset: offset + limit]
            next_url = None
            if self.cut_at and offset >= self.cut_at:
                next_url = None
            elif self.loop_back_at and offset >= self.loop_back_at:
                next_url = str(request.url.update_query({"offset": "0"}))
            elif self.next_loop:
                next_url = str(request.url.with_query({**request.query, "offset": "0"}))
            elif self.repeat_page and offset == 0 and "again" not in request.query:
                next_url = str(request.url.update_query({"offset": "0", "again": "1"}))
            elif self.repeat_page and "again" in request.query and offset == 0:
                # (and on from it, as if it were a page further down the list)
                next_url = str(request.url.update_query({"offset": str(limit)}))
            elif offset + limit < len(items):
                next_url = str(request.url.update_query({"offset": str(offset + limit)}))
            if next_url and self.next_base:
                moved = URL(next_url)
                next_url = str(URL(self.next_base).with_path(moved.path).with_query(moved.query))
            body: dict[str, Any] = {"count": len(items), "next": next_url, "previous": None,
                                    "results": page}
            listed = self.upcoming if which == "upcoming" else self.previous
            if (self.after_first_page and offset == 0 and not launches
                    and self.after_first_page(listed) is not True):
                self.after_first_page = None
            if self.pad_bytes:
                body["padding"] = "x" * self.pad_bytes
            text = json.dumps(body)
            if self.drip_seconds:
                stream = web.StreamResponse(headers={"Content-Type": "application/json"})
                stream.enable_chunked_encoding()
                await stream.prepare(request)
                for char in text:
                    await stream.write(char.encode())
                    await asyncio.sleep(self.drip_seconds)
                await stream.write_eof()
                return stream
            if self.chunked:
                stream = web.StreamResponse(headers={"Content-Type": "application/json"})
                stream.enable_chunked_encoding()
                await stream.prepare(request)
                for start in range(0, len(text), 1 << 20):
                    await stream.write(text[start:start + (1 << 20)].encode())
                await stream.write_eof()
                return stream
            return web.Response(text=text, content_type="application/json")

        return handle

    async def _event_types(self, request: web.Request) -> web.Response:
        self.calls.append(Call(request.path, dict(request.query), dict(request.headers),
                               self.clock() if self.clock else None))
        if self.fail_times:
            return web.Response(status=self.fail_status)
        return web.json_response({"count": len(self.event_types), "next": None,
                                  "previous": None, "results": self.event_types})

    async def _throttle_status(self, request: web.Request) -> web.Response:
        now = self.clock() if self.clock else None
        self.calls.append(Call(request.path, dict(request.query), dict(request.headers), now))
        if self.html_answers:
            return web.Response(body=b"<h1>502 Bad Gateway</h1>", status=502,
                                content_type="text/html")
        return web.json_response({
            "your_request_limit": self.reported_limit, "limit_frequency_secs": 3600,
            "current_use": self.reported_use if self.reported_use is not None else len([
                c for c in self.list_calls()
                if now is None or (c.at is not None and c.at > now - timedelta(hours=1))
            ]),
            "next_use_secs": self.throttle_seconds,
        })


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
