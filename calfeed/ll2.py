"""Launch Library 2 HTTP client: URLs per API version, pagination, token, failures.

Returns plain dicts or raises an UpstreamError subclass; knows nothing of calendars, nor
of when or how often to ask: before each request it awaits the `permit` its caller
passes (the syncer's budget), and a 429 comes back as UpstreamThrottled for the caller
to act on.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
from yarl import URL

from calfeed.budget import MAX_BLOCK
from calfeed.exceptions import (
    UpstreamBadResponse,
    UpstreamError,
    UpstreamIncomplete,
    UpstreamServerError,
    UpstreamShifted,
    UpstreamThrottled,
    UpstreamUnreachable,
)
from calfeed.sanitize import item_key, too_deep

log = logging.getLogger("calfeed.ll2")

# awaited before each request: the caller's say on whether it may go out
Permit = Callable[[], Awaitable[None]]
_REDIRECTS = {301, 302, 303, 307, 308}
_MAX_REDIRECTS = 5
_CHUNK = 64 * 1024
# LL2's next links carry our few parameters and an offset: a few hundred characters
_MAX_NEXT_LENGTH = 4096
_VERSION_IN_PATH = re.compile(r"/(\d+)\.(\d+)\.(\d+)/?$")
_THROTTLE_DETAIL = re.compile(r"available in (\d+(?:\.\d+)?) second", re.IGNORECASE)


async def _free() -> None:
    """The permit of what LL2 does not count (/api-throttle/)."""


def same_origin(url: URL, origin: URL) -> bool:
    """Whether a URL is on the given origin: same scheme, host and port."""
    return (url.scheme, url.host, url.port) == (origin.scheme, origin.host, origin.port)


def api_version(base_url: str) -> tuple[int, int, int]:
    """The LL2 version named at the end of a base URL; 2.3.0 when none is named."""
    match = _VERSION_IN_PATH.search(URL(base_url).path)
    if not match:
        return (2, 3, 0)
    return (int(match[1]), int(match[2]), int(match[3]))


def retry_after_seconds(headers: Mapping[str, str], body: str, now: datetime) -> float | None:
    """Seconds to wait after a 429: Retry-After (seconds or date), else DRF's detail text;
    at most MAX_BLOCK."""
    found = _retry_after(headers, body, now)
    return None if found is None else min(found, MAX_BLOCK.total_seconds())


def _retry_after(headers: Mapping[str, str], body: str, now: datetime) -> float | None:
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


def ll2_session() -> aiohttp.ClientSession:
    """The session LL2 is asked through.

    aiohttp sends an idempotent request again, on its own, when the connection drops
    before an answer. LL2 may have counted the first, and the second goes out under the
    same permit: a request the budget never granted (over an hour of dropped connections,
    26 requests reached LL2 for 13 permits). Here a dropped connection is a failed
    request, for the syncer to retry under a permit of its own."""
    session = aiohttp.ClientSession()
    # (no public switch for it: aiohttp's own test client turns it off the same way)
    session._retry_connection = False
    return session


class LL2Client:
    """Talks to one LL2 base URL with one aiohttp session (see `ll2_session`)."""

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
        max_response_bytes: int = 20_000_000,
        now: Callable[[], datetime],
    ) -> None:
        self._session = session
        self.base_url = base_url.rstrip("/")
        self._max_bytes = max_response_bytes
        self.api_version = api_version(self.base_url)
        self._now = now
        self._token = token
        self._page_limit = page_limit
        self._max_pages = max_pages
        # a whole response within connect + read time: a server that drips a byte now and
        # then must not hold a fetch (and the sync behind it) open for ever
        self._timeout = aiohttp.ClientTimeout(
            total=connect_timeout + read_timeout, sock_connect=connect_timeout,
            connect=connect_timeout, sock_read=read_timeout,
        )

    def list_url(
        self, resource: tuple[str, str], which: str = "", mode: str | None = None
    ) -> tuple[str, dict[str, str]]:
        """URL and base parameters of an LL2 list: resource is its (2.3.0, 2.2.0) path,
        `which` a sub-list (upcoming, previous), `mode` 2.3.0's level of detail."""
        params = {"limit": str(self._page_limit)}
        if self.api_version >= (2, 3, 0):
            path = resource[0]
            if mode:
                params["mode"] = mode
        else:
            path = resource[1]
        return f"{self.base_url}/{path}/" + (f"{which}/" if which else ""), params

    @property
    def _origin(self) -> URL:
        """LL2's origin: the token, redirects and `next` links are for it only."""
        return URL(self.base_url).origin()

    def _headers(self, url: URL) -> dict[str, str]:
        headers = {"Accept": "application/json", "User-Agent": "calfeed"}
        if self._token and same_origin(url, self._origin):
            headers["Authorization"] = f"Token {self._token}"
        return headers

    async def _fetch(
        self, url: str, params: Mapping[str, str] | None, permit: Permit
    ) -> tuple[int, str, dict[str, str]]:
        """One GET, following redirects only within LL2's origin, the body read up to
        max_response_bytes. Every request, a redirect's included, takes a permit first:
        LL2 counts each one against the hour's budget."""
        target = URL(url)
        if params:
            target = target.update_query(params)
        for _ in range(_MAX_REDIRECTS + 1):
            if not same_origin(target, self._origin):
                log.warning("upstream=foreign-origin url=%s", target)
                raise UpstreamBadResponse(
                    f"LL2 pointed calfeed at another site ({target.origin()})"
                )
            # (outside the try below: the budget's own troubles are not LL2's)
            await permit()
            try:
                async with self._session.get(
                    target, headers=self._headers(target), timeout=self._timeout,
                    allow_redirects=False,
                ) as response:
                    location = response.headers.get("Location")
                    if response.status in _REDIRECTS and location:
                        target = target.join(URL(location))
                        continue
                    body = await self._read_body(response, target)
                    return response.status, body, dict(response.headers)
            except aiohttp.ConnectionTimeoutError:
                log.warning("upstream=unreachable url=%s error='connect timeout'", url)
                raise UpstreamUnreachable(f"cannot reach LL2 at {self._origin.host}",
                                          reached=False) from None
            except TimeoutError:
                log.warning("upstream=timeout url=%s", url)
                raise UpstreamUnreachable(f"LL2 did not answer in time ({url})") from None
            except aiohttp.ClientConnectorError as error:
                # the client's own words (DNS, refused, no route) go to the log, not users
                log.warning("upstream=unreachable url=%s error=%r", url, str(error))
                raise UpstreamUnreachable(f"cannot reach LL2 at {self._origin.host}",
                                          reached=False) from None
            except aiohttp.ClientError as error:
                log.warning("upstream=unreachable url=%s error=%r", url, str(error))
                raise UpstreamUnreachable(f"LL2 broke off the connection ({url})") from None
        raise UpstreamBadResponse(f"LL2 redirected more than {_MAX_REDIRECTS} times")

    async def _read_body(self, response: aiohttp.ClientResponse, url: URL) -> str:
        """The body as text, or UpstreamBadResponse once it passes max_response_bytes."""
        limit = self._max_bytes
        declared = response.content_length
        if declared is not None and declared > limit:
            log.warning("upstream=too-large url=%s declared=%d limit=%d", url, declared, limit)
            raise UpstreamBadResponse(f"LL2 sent more than {limit} bytes for {url}")
        # read in chunks (after any gzip is undone) so that a huge answer costs no more
        # memory than the limit
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.content.iter_chunked(_CHUNK):
            size += len(chunk)
            if size > limit:
                log.warning("upstream=too-large url=%s read=%d limit=%d", url, size, limit)
                raise UpstreamBadResponse(f"LL2 sent more than {limit} bytes for {url}")
            chunks.append(chunk)
        # LL2 sends JSON (UTF-8); a proxy's error page may name no charset at all
        return b"".join(chunks).decode(response.charset or "utf-8", errors="replace")

    async def _get_page(
        self, url: str, params: Mapping[str, str] | None, permit: Permit
    ) -> dict[str, Any]:
        # ms= is LL2's time; the budget's permits (Redis round trips, for a shared one)
        # are permit_ms=
        permitting = 0.0

        async def timed_permit() -> None:
            nonlocal permitting
            began = time.monotonic()
            try:
                await permit()
            finally:
                permitting += time.monotonic() - began

        started = time.monotonic()
        status, body, response_headers = await self._fetch(url, params, timed_permit)
        log.info(
            "upstream=get url=%s params=%s status=%d bytes=%d ms=%d permit_ms=%d",
            url, "&".join(f"{k}={v}" for k, v in (params or {}).items()) or "-", status,
            len(body), (time.monotonic() - started - permitting) * 1000, permitting * 1000,
        )
        if status == 429:
            # a Retry-After may be an HTTP date: read against the injected clock
            throttled_for = retry_after_seconds(response_headers, body, self._now())
            raise UpstreamThrottled(
                f"LL2 throttled calfeed; next request allowed in {int(throttled_for or 0)} s",
                throttled_for,
            )
        if status != 200:
            raise UpstreamServerError(f"LL2 answered HTTP {status} for {url}")
        try:
            page = json.loads(body)
        except (ValueError, RecursionError):
            # RecursionError: JSON nested deeper than Python's parser goes
            raise UpstreamBadResponse(f"LL2 sent invalid JSON for {url}") from None
        if not isinstance(page, dict) or not isinstance(page.get("results"), list):
            raise UpstreamBadResponse(f"LL2 sent a page without a results list for {url}")
        following = page.get("next")
        if following is not None and not isinstance(following, str):
            raise UpstreamBadResponse(f"LL2 sent a page whose next link is no link for {url}")
        count = page.get("count")
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            # without the list's size there is no telling a whole list from a cut one
            raise UpstreamBadResponse(f"LL2 sent a page without a count for {url}")
        return page

    async def list_all(
        self, url: str, params: Mapping[str, str], permit: Permit
    ) -> list[dict[str, Any]]:
        """Every item of a paginated list, following `next`, de-duplicated by id; `permit`
        is awaited before each page (it raises to stop the list).

        Raises UpstreamIncomplete when the list cannot be had whole (a `next` that loops,
        repeats a page, leaves LL2's origin, or goes past max_pages): a partial list would
        make the syncer drop the items it lacks. Items without a usable id are skipped.
        """
        items: dict[str, dict[str, Any]] = {}
        seen_urls: set[str] = set()
        next_url: str | None = url
        next_params: Mapping[str, str] | None = params
        pages = 0
        expected = received = unnamed = 0
        while next_url:
            if len(next_url) > _MAX_NEXT_LENGTH:
                raise self._incomplete("bad-next", url, "a next link that is far too long")
            try:
                # yarl drops tabs and newlines and quotes the rest: safe to log and to send
                target = URL(next_url)
                next_url = str(target)
            except ValueError:
                raise self._incomplete("bad-next", url, "a next link that is no URL") from None
            page_key = str(target.with_query(next_params)) if next_params else next_url
            if page_key in seen_urls:
                raise self._incomplete("next-loop", url, "a next link that loops")
            seen_urls.add(page_key)
            if pages >= self._max_pages:
                raise self._incomplete("too-many-pages", url, f"more than {pages} pages")
            if not same_origin(target, self._origin):
                # the token must not go there, and the rest of the list is not there
                raise self._incomplete("foreign-next", url, "a next link to another site")
            page = await self._get_page(next_url, next_params, permit)
            if pages == 0:
                expected = page["count"]
            pages += 1
            before = len(items)
            skipped: dict[str, int] = {}
            for item in page["results"]:
                key = item_key(item.get("id")) if isinstance(item, dict) else None
                if key is None:
                    skipped["no-id"] = skipped.get("no-id", 0) + 1
                    continue
                if too_deep(item):
                    skipped["too-deep"] = skipped.get("too-deep", 0) + 1
                    # its id alone: the list still has it, so the syncer keeps the last
                    # good version (an edit never makes an event vanish), and no deeper
                    # look at it (comparing or saving it could exhaust the recursion limit)
                    item = {"id": item.get("id")}
                items.setdefault(key, item)
            for reason, count in skipped.items():
                log.warning("upstream=skip-item reason=%s count=%d url=%s", reason, count,
                            next_url)
            received += len(page["results"])
            unnamed += skipped.get("no-id", 0)
            usable = len(page["results"]) - skipped.get("no-id", 0)
            following = page.get("next")
            next_url = following if isinstance(following, str) and following else None
            if usable and len(items) == before and next_url:
                # a page of nothing new that links on: a next link pointing backwards, not
                # more data. (The last page may hold nothing new: an order with ties, paged
                # differently at each read, can bring a row read already onto it; the
                # counts below then tell whether the list arrived whole.)
                raise self._incomplete("page-repeats", url, "a page that repeats")
            next_params = None  # LL2's next link carries every parameter
        if received and not items:
            # every row unusable is a broken answer, not a list that is empty now
            raise UpstreamBadResponse(f"LL2 sent a list with no usable item for {url}")
        if received < expected:
            # the pages ended early: a lost `next`, or an item removed while the list was
            # read, which shifts a later one out of reach
            raise self._incomplete("short", url, f"{received} of {expected} items")
        if len(items) + unnamed < expected:
            # as many rows as LL2 counted, but some twice: an item that moved to a later
            # page while the list was read (a launch put back), shifting another one back
            # over a page boundary, unread. (A repeat from an item added is no loss: the
            # rows are then one more than the count.)
            log.warning("upstream=incomplete reason=shifted url=%s", url)
            raise UpstreamShifted(
                f"LL2's list moved while it was read ({len(items) + unnamed} different of "
                f"{expected} items) for {url}", list(items.values()),
                expected - len(items) - unnamed)
        return list(items.values())

    @staticmethod
    def _incomplete(reason: str, url: str, words: str) -> UpstreamIncomplete:
        log.warning("upstream=incomplete reason=%s url=%s", reason, url)
        return UpstreamIncomplete(f"LL2's list did not arrive whole ({words}) for {url}")

    async def throttle_state(self) -> dict[str, Any] | None:
        """LL2's view of our usage (/api-throttle/, which does not count); None on failure."""
        url = f"{self.base_url}/api-throttle/"
        try:
            status, body, _ = await self._fetch(url, None, _free)
            state = json.loads(body) if status == 200 else None
        except (UpstreamError, ValueError, RecursionError):
            state = None
        log.info("upstream=throttle-state url=%s state=%s", url, state)
        return state if isinstance(state, dict) else None

    async def list_since(
        self, resource: tuple[str, str], which: str, filters: Mapping[str, str],
        mode: str, permit: Permit,
    ) -> list[dict[str, Any]]:
        """Every item of an upcoming/previous list with extra LL2 filters."""
        url, params = self.list_url(resource, which, mode)
        params.update(filters)
        return await self.list_all(url, params, permit)
