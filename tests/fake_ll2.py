"""A fake Launch Library 2: LL2-shaped pages, pagination, 429, failures, stalls; counts calls."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aiohttp import web


@dataclass
class Call:
    """One request the fake received."""

    path: str
    query: dict[str, str]
    headers: dict[str, str]


@dataclass
class FakeLL2:
    """State of the fake; tests change it between requests."""

    upcoming: list[dict[str, Any]] = field(default_factory=list)
    previous: list[dict[str, Any]] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    # answer the next N list requests with this status (-1: every request)
    fail_status: int = 500
    fail_times: int = 0
    # 429 with Retry-After and DRF's detail text
    throttle_seconds: int = 0
    stall_seconds: float = 0.0
    bad_json: bool = False
    wrong_shape: bool = False
    # largest page served, whatever `limit` asks (LL2 caps at 100)
    max_page: int = 100
    # make `next` point back at the first page (a loop)
    next_loop: bool = False

    def list_calls(self) -> list[Call]:
        """Calls to event list endpoints."""
        return [c for c in self.calls if "/event" in c.path]

    def app(self) -> web.Application:
        """The aiohttp app serving this fake at /2.2.0/... and /2.3.0/..."""
        app = web.Application()
        for version, resource in (("2.3.0", "events"), ("2.2.0", "event")):
            for which in ("upcoming", "previous"):
                app.router.add_get(f"/{version}/{resource}/{which}/", self._list(which))
        app.router.add_get("/{version}/api-throttle/", self._throttle_status)
        return app

    def _list(self, which: str) -> Any:
        async def handle(request: web.Request) -> web.Response:
            self.calls.append(Call(request.path, dict(request.query), dict(request.headers)))
            if self.stall_seconds:
                await asyncio.sleep(self.stall_seconds)
            if self.throttle_seconds:
                return web.json_response(
                    {"detail": "Request was throttled. Expected available in "
                               f"{self.throttle_seconds} seconds."},
                    status=429, headers={"Retry-After": str(self.throttle_seconds)},
                )
            if self.fail_times:
                self.fail_times -= 1 if self.fail_times > 0 else 0
                return web.Response(status=self.fail_status, text="<h1>Server Error</h1>")
            if self.bad_json:
                return web.Response(text="{not json", content_type="application/json")
            if self.wrong_shape:
                return web.json_response({"count": 1, "items": []})
            items = self.upcoming if which == "upcoming" else self.previous
            since = request.query.get("date__gte")
            if since:
                cut = datetime.fromisoformat(since.replace("Z", "+00:00"))
                items = [
                    i for i in items
                    if datetime.fromisoformat(str(i["date"]).replace("Z", "+00:00")) >= cut
                ]
            limit = min(int(request.query.get("limit", "10")), self.max_page)
            offset = int(request.query.get("offset", "0"))
            page = items[offset: offset + limit]
            next_url = None
            if self.next_loop:
                next_url = str(request.url.with_query({**request.query, "offset": "0"}))
            elif offset + limit < len(items):
                next_url = str(request.url.update_query({"offset": str(offset + limit)}))
            body = {"count": len(items), "next": next_url, "previous": None, "results": page}
            return web.Response(text=json.dumps(body), content_type="application/json")

        return handle

    async def _throttle_status(self, request: web.Request) -> web.Response:
        self.calls.append(Call(request.path, dict(request.query), dict(request.headers)))
        return web.json_response({
            "your_request_limit": 15, "limit_frequency_secs": 3600,
            "current_use": len(self.list_calls()), "next_use_secs": self.throttle_seconds,
        })
