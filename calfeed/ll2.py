"""Launch Library 2 HTTP client: URLs per API version, pagination, token, failures.

Returns plain dicts or raises an UpstreamError subclass; knows nothing of calendars.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
from yarl import URL

from calfeed.budget import Budget
from calfeed.exceptions import (
    BudgetExhausted,
    UpstreamBadResponse,
    UpstreamServerError,
    UpstreamThrottled,
    UpstreamUnreachable,
)

log = logging.getLogger("calfeed.ll2")

_VERSION_IN_PATH = re.compile(r"/(\d+)\.(\d+)\.(\d+)/?$")
_THROTTLE_DETAIL = re.compile(r"available in (\d+(?:\.\d+)?) second", re.IGNORECASE)


def api_version(base_url: str) -> tuple[int, int, int]:
    """The LL2 version named at the end of a base URL; 2.3.0 when none is named."""
    match = _VERSION_IN_PATH.search(URL(base_url).path)
    if not match:
        return (2, 3, 0)
    return (int(match[1]), int(match[2]), int(match[3]))


def retry_after_seconds(headers: Mapping[str, str], body: str, now: datetime) -> float | None:
    """Seconds to wait after a 429: Retry-After (seconds or date), else DRF's detail text."""
    raw = headers.get("Retry-After", "").strip()
    if raw:
        if raw.isdigit():
            return float(raw)
        try:
            when = parsedate_to_datetime(raw)
        except (TypeError, ValueError, IndexError):
            when = None
        if when is not None:
            if when.tzinfo is None:
                when = when.replace(tzinfo=UTC)
            return max(0.0, (when - now).total_seconds())
    match = _THROTTLE_DETAIL.search(body)
    if match:
        return float(match[1])
    return None


class LL2Client:
    """Talks to one LL2 base URL with one aiohttp session."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        *,
        token: str = "",
        page_limit: int = 100,
        max_pages: int = 50,
        connect_timeout: float = 10.0,
        read_timeout: float = 30.0,
        now: Callable[[], datetime],
        budget: Budget | None = None,
        reserve: int = 2,
    ) -> None:
        self._session = session
        self.base_url = base_url.rstrip("/")
        self.version = api_version(self.base_url)
        self._token = token
        self._page_limit = page_limit
        self._max_pages = max_pages
        self._timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=connect_timeout, connect=connect_timeout,
            sock_read=read_timeout,
        )
        self._now = now
        # every call goes through the budget; None only for one-off CLI builds
        self.budget = budget
        self._reserve = reserve
        self.requests_made = 0

    def list_url(
        self, resource: tuple[str, str], which: str, mode: str = "detailed"
    ) -> tuple[str, dict[str, str]]:
        """URL and base parameters of an LL2 list: resource is its (2.3.0, 2.2.0) names."""
        params = {"limit": str(self._page_limit)}
        if self.version >= (2, 3, 0):
            params["mode"] = mode
            path = f"{resource[0]}/{which}/"
        else:
            path = f"{resource[1]}/{which}/"
        return f"{self.base_url}/{path}", params

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json", "User-Agent": "calfeed"}
        if self._token:
            headers["Authorization"] = f"Token {self._token}"
        return headers

    async def _fetch(
        self, url: str, params: Mapping[str, str] | None
    ) -> tuple[int, str, dict[str, str]]:
        try:
            async with self._session.get(
                url, params=params, headers=self._headers(), timeout=self._timeout
            ) as response:
                return response.status, await response.text(errors="replace"), dict(
                    response.headers
                )
        except TimeoutError:
            log.warning("upstream=timeout url=%s", url)
            raise UpstreamUnreachable(f"LL2 did not answer in time ({url})") from None
        except aiohttp.ClientError as error:
            log.warning("upstream=unreachable url=%s error=%r", url, str(error))
            raise UpstreamUnreachable(f"cannot reach LL2: {error}") from None

    async def _get_page(self, url: str, params: Mapping[str, str] | None) -> dict[str, Any]:
        now = self._now()
        if self.budget is not None and not self.budget.try_spend(now):
            wait = (self.budget.next_slot(now) - now).total_seconds()
            log.warning("upstream=skipped reason=budget url=%s wait=%.0f", url, wait)
            raise BudgetExhausted(f"request budget used up; next slot in {int(wait)} s", wait)
        self.requests_made += 1
        started = time.monotonic()
        status, body, response_headers = await self._fetch(url, params)
        log.info(
            "upstream=get url=%s params=%s status=%d bytes=%d ms=%d budget_left=%s",
            url, "&".join(f"{k}={v}" for k, v in (params or {}).items()) or "-", status,
            len(body), (time.monotonic() - started) * 1000,
            self.budget.left(self._now()) if self.budget is not None else "-",
        )
        if status == 429:
            throttled_for = retry_after_seconds(response_headers, body, self._now())
            if self.budget is not None:
                self.budget.block(self._now() + timedelta(seconds=throttled_for or 60))
                await self.adopt_throttle_state()
            raise UpstreamThrottled(
                f"LL2 throttled calfeed; next request allowed in {int(throttled_for or 0)} s",
                throttled_for,
            )
        if status != 200:
            raise UpstreamServerError(f"LL2 answered HTTP {status} for {url}")
        try:
            page = json.loads(body)
        except ValueError:
            raise UpstreamBadResponse(f"LL2 sent invalid JSON for {url}") from None
        if not isinstance(page, dict) or not isinstance(page.get("results"), list):
            raise UpstreamBadResponse(f"LL2 sent a page without a results list for {url}")
        return page

    async def list_all(self, url: str, params: Mapping[str, str]) -> list[dict[str, Any]]:
        """Every item of a paginated list, following `next`, de-duplicated by id."""
        items: dict[Any, dict[str, Any]] = {}
        seen_urls: set[str] = set()
        next_url: str | None = url
        next_params: Mapping[str, str] | None = params
        pages = 0
        while next_url:
            page_key = str(URL(next_url).with_query(next_params)) if next_params else next_url
            if page_key in seen_urls:
                log.warning("upstream=next-loop url=%s", next_url)
                break
            seen_urls.add(page_key)
            if pages >= self._max_pages:
                log.warning("upstream=too-many-pages pages=%d url=%s", pages, url)
                break
            page = await self._get_page(next_url, next_params)
            pages += 1
            before = len(items)
            for item in page["results"]:
                if isinstance(item, dict) and "id" in item:
                    items.setdefault(item["id"], item)
                else:
                    log.warning("upstream=skip-item reason=no-id url=%s", next_url)
            if page["results"] and len(items) == before:
                # a page of nothing new: a next link pointing backwards, not more data
                log.warning("upstream=page-repeats url=%s", next_url)
                break
            following = page.get("next")
            next_url = following if isinstance(following, str) and following else None
            next_params = None  # LL2's next link carries every parameter
        return list(items.values())

    async def throttle_state(self) -> dict[str, Any] | None:
        """LL2's view of our usage (/api-throttle/, which does not count); None on failure."""
        url = f"{self.base_url}/api-throttle/"
        try:
            status, body, _ = await self._fetch(url, None)
            state = json.loads(body) if status == 200 else None
        except (UpstreamUnreachable, ValueError):
            state = None
        log.info("upstream=throttle-state url=%s state=%s", url, state)
        return state if isinstance(state, dict) else None

    async def adopt_throttle_state(self) -> None:
        """Make the budget at least as strict as LL2's own count."""
        if self.budget is None:
            return
        state = await self.throttle_state()
        if state is not None:
            self.budget.adopt(state, self._now(), self._reserve)

    async def list_since(
        self, resource: tuple[str, str], which: str, filters: Mapping[str, str],
        mode: str = "detailed",
    ) -> list[dict[str, Any]]:
        """Every item of an upcoming/previous list with extra LL2 filters."""
        url, params = self.list_url(resource, which, mode)
        params.update(filters)
        return await self.list_all(url, params)
