"""The aiohttp app: thin handlers over datasets, feed kinds and the renderer."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import json
import logging
import sys
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp_jinja2
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from cachetools import LRUCache
from multidict import CIMultiDict
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from calfeed import __version__
from calfeed.assets import asset_response, load_assets
from calfeed.collector import collector_paused
from calfeed.coordinator import Coordinator
from calfeed.dataset import Dataset
from calfeed.exceptions import (
    BadRequest,
    CalfeedError,
    InvalidParameter,
    NotFound,
    RepeatedParameter,
    UpstreamError,
)
from calfeed.feeds import DEFAULT_KIND, FEED_KINDS, FeedKind, order_entries
from calfeed.links import canonical_query, feed_links
from calfeed.ll2 import ll2_session
from calfeed.metrics import CONTENT_TYPE, CalfeedCollector, Counts, exposition, registry_for
from calfeed.negotiation import accepts_gzip, copy_is_current, gzip_etag
from calfeed.page import page_context, template_options
from calfeed.query import Query, parse_query
from calfeed.render import RenderedFeed, Renderer, feed_bytes
from calfeed.sanitize import error_words, excerpt, safe_base
from calfeed.settings import Settings
from calfeed.shared_budget import SharedBudget
from calfeed.shared_store import SharedStore
from calfeed.sources import open_syncer
from calfeed.store import Store
from calfeed.sync import Sleep, Syncer

log = logging.getLogger("calfeed.server")
STATIC = Path(__file__).parent / "static"

Now = Callable[[], datetime]

SETTINGS = web.AppKey("settings", Settings)
NOW: web.AppKey[Now] = web.AppKey("now")
RENDERER = web.AppKey("renderer", Renderer)
# set when the app starts, inside the cleanup context that owns the client session
SYNCER = web.AppKey("syncer", Syncer)
STORE = web.AppKey("store", Store)
# with a Redis URL: this process's part in the shared service (absent otherwise)
COORDINATOR = web.AppKey("coordinator", Coordinator)
METRICS = web.AppKey("metrics", CollectorRegistry)
# on a request: the store's generation its feed was made from
GENERATION_MADE = web.RequestKey("generation_made", int)


# the system clock; the one place calfeed reads it (a partial: no Python frame per call)
utc_now: Now = functools.partial(datetime.now, UTC)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error_boundary(handler: Handler, counts: Counts | None = None, route: str = "") -> Handler:
    """A route that turns CalfeedErrors into plain-text answers, anything unexpected into a
    500 without traceback, and counts its answers by status (for /metrics). Every calfeed
    route is registered through it.

    A wrapper per route rather than an aiohttp middleware: with any middleware aiohttp
    builds a chain of extra coroutines for every request, about 7% of a cached feed
    request (bench/request_cost.py), and every subscriber's poll is such a request.
    """

    requests = counts.requests if counts is not None else defaultdict(int)

    @functools.wraps(handler)
    async def guarded(request: web.Request) -> web.StreamResponse:
        try:
            response = await handler(request)
        except CalfeedError as error:
            response = error_response(error)
        except web.HTTPException as error:
            requests[route, error.status] += 1
            raise
        except Exception:
            log.exception("error=unhandled path=%s", request.path)
            response = web.Response(status=500, text="internal error\n")
        requests[route, response.status] += 1
        return response

    return guarded


def error_response(error: CalfeedError) -> web.Response:
    """The one shape every calfeed error has over HTTP: status, one line of text, headers.
    Any origin may read it, as it may the feeds and the JSON: a page on another site that
    builds a feed URL is told which parameter is wrong, not a CORS failure."""
    return web.Response(
        status=error.status, text=error.message + "\n",
        headers={**error.headers(), "Access-Control-Allow-Origin": "*"},
        content_type="text/plain", charset="utf-8",
    )


class OneLineLog(logging.LoggerAdapter[logging.Logger]):
    """aiohttp's protocol logger, with a bad request (a request line over 8 KB, a broken
    header) as one line instead of a traceback: anyone can send those, as often as they
    like. Anything else aiohttp reports keeps its traceback."""

    def exception(self, msg: object, *args: object, **kwargs: Any) -> None:
        """Log an exception: the client's fault in one line, ours in full."""
        error = kwargs.get("exc_info")
        if not isinstance(error, BaseException):
            error = sys.exc_info()[1]
        if isinstance(error, HttpProcessingError):
            kwargs.pop("exc_info", None)
            # the client's bytes go in as an argument, repr'd: never into the format
            # string (a "%s" there would break the record) and never as a line break
            detail = excerpt(f"{type(error).__name__}: {error.message}", 200)
            self.warning(f"{msg} (%r)", *args, detail, **kwargs)
        else:
            super().exception(msg, *args, **kwargs)


async def cors_preflight(request: web.Request) -> web.Response:
    """OPTIONS on a feed or its JSON: what a page on another site may ask before fetching.

    Nothing is credentialed (no cookies, no auth), so any origin, and any header, may.
    """
    return web.Response(status=204, headers={
        "Access-Control-Allow-Origin": "*",
        "Access-Control-Allow-Methods": "GET, HEAD, OPTIONS",
        "Access-Control-Allow-Headers": "*",
        "Access-Control-Max-Age": "86400",
    })


# distinct query strings kept parsed, per feed kind, and the longest kept (README,
# Memory): what a parse makes grows with the string (a hundred ids, a set and a tuple of
# them), and 4,096 strangers' strings of 8 KB held 35 MB per kind; a subscriber's URL is
# short (Google takes 256 characters in all), and a longer one is parsed anew each time
PARSED_QUERIES = 1024
PARSED_QUERY_CHARS = 256


class QueryReader:
    """A feed kind's parameters, and its URL queries parsed once per distinct string."""

    def __init__(self, kind: FeedKind, max_past_days: int) -> None:
        self.params = kind.params(max_past_days)
        # subscribers repeat the same URLs
        self._parsed: LRUCache[str, Query] = LRUCache(maxsize=PARSED_QUERIES)

    def __call__(self, request: web.Request) -> Query:
        # (by the query as sent: decoded, "%2526" and "%26" read alike, and whichever came
        # first would have answered for both)
        raw = request.rel_url.raw_query_string
        query = self._parsed.get(raw)
        if query is None:
            query = parse_query(self.params, request.query.items())
            if len(raw) <= PARSED_QUERY_CHARS:
                self._parsed[raw] = query
        return query


@dataclass(frozen=True, slots=True)
class PreparedFeed:
    """A rendered feed as one encoding's response: headers built once, not per request."""

    generation: int
    feed: RenderedFeed
    body: bytes
    headers: CIMultiDict[str]
    not_modified_headers: CIMultiDict[str]
    etag: str  # this encoding's


# feed kind -> its prepared responses (see feed_handler)
PREPARED = web.AppKey("prepared", dict[str, dict[tuple[str, bool], PreparedFeed]])


def prepare_feed(
    feed: RenderedFeed, generation: int, *, gzip: bool, download: bool, refresh: int
) -> PreparedFeed:
    """The response headers of a feed in one encoding (all but the per-second data age)."""
    etag = feed.etag
    not_modified = CIMultiDict({
        "ETag": gzip_etag(etag) if gzip else etag,
        "Last-Modified": feed.last_modified_http,
        "Cache-Control": f"public, max-age={refresh}",
        "Vary": "Accept-Encoding",
        "Access-Control-Allow-Origin": "*",
    })
    headers = not_modified.copy()
    headers["Content-Type"] = "text/calendar; charset=utf-8"
    if download:
        headers["Content-Disposition"] = f'attachment; filename="{feed.filename}"'
    if gzip:
        headers["Content-Encoding"] = "gzip"
    return PreparedFeed(
        generation=generation, feed=feed,
        body=feed.gzipped if gzip else feed.body, headers=headers,
        not_modified_headers=not_modified, etag=not_modified["ETag"],
    )


def feed_handler(
    kind: FeedKind, read: QueryReader, prepared: dict[tuple[str, bool], PreparedFeed],
    max_prepared: int, now: Now, counts: Counts, max_bytes: int,
) -> Callable[[web.Request], Awaitable[web.Response]]:
    """GET/HEAD /<kind>.ics; `prepared` holds responses by (raw query string, gzip).

    Subscribers repeat the same URLs, so the common request is one lookup. Entries go
    when the store's generation moves, the oldest when there are more than max_prepared
    or their bodies pass max_bytes.
    """
    # bytes of the bodies in `prepared`
    held = [0]

    async def prepare(request: web.Request, key: tuple[str, bool]) -> PreparedFeed:
        query = read(request)
        refuse_json_only(kind, read, query)
        feed, _, _ = await _rendered(request, kind, query)
        generation = request[GENERATION_MADE]
        entry = prepare_feed(
            feed, generation, gzip=key[1], download=bool(query["download"]),
            refresh=request.app[SETTINGS].refresh_interval,
        )
        if generation != request.app[STORE].generation:
            # made from data replaced while it rendered: served once, and the entries of
            # the newer data, which other requests prepared meanwhile, stay
            return entry
        if any(p.generation != generation for p in prepared.values()):
            prepared.clear()
            held[0] = 0
        # what an entry keeps alive is its feed, both encodings (the renderer may have let
        # that go already): counted whole
        if (old := prepared.pop(key, None)) is not None:
            held[0] -= feed_bytes(old.feed)
        while prepared and (len(prepared) >= max_prepared
                            or held[0] + feed_bytes(entry.feed) > max_bytes):
            held[0] -= feed_bytes(prepared.pop(next(iter(prepared))).feed)
        prepared[key] = entry
        held[0] += feed_bytes(entry.feed)
        return entry

    cache = counts.feed_cache
    hit, miss = (kind.name, "hit"), (kind.name, "miss")

    async def handle(request: web.Request) -> web.Response:
        # the path every subscriber's poll takes: kept to a few lookups (see bench/)
        headers = request.headers
        key = (request.rel_url.raw_query_string,
               accepts_gzip(headers.get("Accept-Encoding", "")))
        store = request.app[STORE]
        at = now()
        entry = prepared.get(key)
        if (entry is None or entry.generation != store.generation
                or at >= entry.feed.fresh_until):
            entry = await prepare(request, key)
            cache[miss] += 1
        else:
            cache[hit] += 1
        if (
            "If-None-Match" in headers or "If-Modified-Since" in headers
        ) and copy_is_current(headers, entry.etag, entry.feed.last_modified, at):
            response = web.Response(status=304, headers=entry.not_modified_headers)
        else:
            response = web.Response(body=entry.body, headers=entry.headers)
        response.headers["X-Calfeed-Data-Age"] = str(_data_age(store.datasets[kind.name], at))
        return response

    return handle


def refuse_json_only(kind: FeedKind, read: QueryReader, query: Query) -> None:
    """A feed given what only its JSON takes (ordering) says why, rather than ignoring it."""
    for param in read.params:
        if param.json_only and query[param.name] != param.default:
            raise BadRequest(
                f"parameter {param.name!r} applies to /{kind.name}.json only: calendar apps "
                f"order a feed's entries themselves")


def _data_age(dataset: Dataset, now: datetime) -> int:
    """Seconds since the dataset's upcoming list was last synced."""
    age = dataset.age("upcoming", now)
    return 0 if age is None else max(0, round(age))


async def healthz(request: web.Request) -> web.Response:
    """Dataset ages, next fetch, budget and last error; 503 when data is missing or stale."""
    syncer = request.app[SYNCER]
    settings = request.app[SETTINGS]
    now = request.app[NOW]()
    report: dict[str, Any] = {"version": __version__, "demo": settings.demo,
                              **(await syncer.health())}
    coordinator = request.app.get(COORDINATOR)
    if coordinator is not None:
        report["shared"] = coordinator.health()
    ages = [d.age("upcoming", now) for d in syncer.datasets.values()]
    if any(age is None for age in ages):
        report["status"] = "no-data"
    elif any(age is not None and age > settings.stale_after for age in ages):
        report["status"] = "stale"
    else:
        report["status"] = "ok"
    return web.json_response(report, status=200 if report["status"] == "ok" else 503)


def in_words(seconds: float | None) -> str:
    """When, said as a page would say it ("in about 3 minutes")."""
    if not seconds or seconds < 90:
        return "in about a minute"
    if seconds < 5400:
        return f"in about {round(seconds / 60)} minutes"
    return f"in about {round(seconds / 3600)} hours"


def public_base(request: web.Request, settings: Settings) -> str:
    """The base URL links are printed with: the setting, else the request (via the proxy
    headers only when trust_proxy is on)."""
    if settings.public_url:
        return settings.public_url.rstrip("/")
    scheme, host = request.scheme, request.host
    if settings.trust_proxy:
        scheme = request.headers.get("X-Forwarded-Proto", scheme).split(",")[0].strip()
        host = request.headers.get("X-Forwarded-Host", host).split(",")[0].strip()
    base = safe_base(scheme, host)
    if base is None:
        raise BadRequest(
            "the request's Host (or X-Forwarded-Proto/-Host) header is not an http(s) "
            "host name; set CALFEED_PUBLIC_URL to print links without it"
        )
    return base


async def _rendered(
    request: web.Request, kind: FeedKind, query: Query
) -> tuple[RenderedFeed, Dataset, datetime]:
    """The feed for a query from the current data (waiting only on a cold server); the
    store's generation it was made from is left in request[GENERATION_MADE]."""
    app = request.app
    store = app[STORE]
    dataset = store.datasets[kind.name]
    snapshot = dataset.snapshot
    if snapshot is None:
        await app[SYNCER].wait_for_data(kind.name)
        snapshot = dataset.snapshot
        assert snapshot is not None
    now = app[NOW]()
    # read before the render, which yields: a change meanwhile must not be stamped on a
    # feed of the older data
    request[GENERATION_MADE] = store.generation
    feed = await app[RENDERER].render(kind, query, snapshot, now, store.snapshots())
    return feed, dataset, now


def json_handler(
    kind: FeedKind, read: QueryReader
) -> Callable[[web.Request], Awaitable[web.Response]]:
    """GET /<kind>.json: the items the same URL's feed contains."""

    async def handle(request: web.Request) -> web.Response:
        query = read(request)
        feed, dataset, now = await _rendered(request, kind, query)
        renderer = request.app[RENDERER]
        links = feed_links(public_base(request, request.app[SETTINGS]), kind.name,
                           canonical_query(read.params, query), feed.name)
        meta = json.dumps({
            "name": feed.name,
            "feed_url": links.https,
            "count": feed.count,
            "matching": feed.matching,
            "data_age_seconds": _data_age(dataset, now),
        })
        # the items are JSON text already (made once per item version): spliced in as the
        # last key rather than parsed and dumped again on every request
        included = (order_entries(kind, feed.included, query["ordering"])
                    if query["ordering"] else feed.included)
        items = b", ".join(shown.text for shown in await renderer.items_json(kind, included))
        body = f"{meta[:-1]}, {json.dumps(kind.noun)}: [".encode() + items + b"]}"
        return web.Response(body=body, content_type="application/json", headers={
            "Access-Control-Allow-Origin": "*",
            "Cache-Control": "public, max-age=60",
        })

    return handle


async def subscribe_page(request: web.Request) -> web.Response:
    """GET /: the feed builder, rendered for the query in the URL."""
    settings = request.app[SETTINGS]
    allowed = "one of " + ", ".join(FEED_KINDS)
    chosen = request.query.getall("feed", [DEFAULT_KIND])
    if len(chosen) > 1:
        raise RepeatedParameter("feed", len(chosen), allowed)
    kind = FEED_KINDS.get(chosen[0])
    if kind is None:
        raise InvalidParameter("feed", chosen[0], allowed)
    params = kind.params(settings.max_past_days)
    error = None
    status = 200
    pairs = [(k, v) for k, v in request.query.items() if k != "feed"]
    try:
        query = parse_query(params, pairs)
    except BadRequest as problem:
        error, status = problem.message, 400
        query = parse_query(params, [])
    events: list[Mapping[str, Any]] = []
    matching = 0
    name = kind.describe(query, {})
    # None until the data is here: then nothing can be said of what it holds
    choices: Mapping[str, Sequence[tuple[Any, str]]] | None = None
    try:
        feed, dataset, _ = await _rendered(request, kind, query)
    except UpstreamError as problem:
        # visitors of a public page need to know when to look again, not LL2's troubles
        # (those are in the log and /healthz)
        error = error or (f"The {kind.noun_one} data is not available yet; calfeed will try "
                          f"again {in_words(problem.retry_after)}.")
    else:
        renderer = request.app[RENDERER]
        events = [shown.data for shown in await renderer.items_json(kind, feed.included)]
        matching, name = feed.matching, feed.name
        snapshot = dataset.snapshot
        assert snapshot is not None
        choices = await renderer.choices(kind, snapshot, dataset.reference,
                                         dataset.reference_at)
    base = public_base(request, settings)
    links = feed_links(base, kind.name, canonical_query(params, query), name)
    context = page_context(
        env=aiohttp_jinja2.get_env(request.app), params=params, query=query,
        choices=choices, links=links, name=name, events=events, matching=matching,
        base=base, kind_name=kind.name, noun=kind.noun, noun_one=kind.noun_one,
        kinds=[(k.name, k.title) for k in FEED_KINDS.values()],
        max_past_days=settings.max_past_days, demo=settings.demo, error=error,
    )
    return aiohttp_jinja2.render_template("page.html", request, context, status=status)


async def metrics(request: web.Request) -> web.Response:
    """GET /metrics: Prometheus' text format, from this app's own registry."""
    return web.Response(body=exposition(request.app[METRICS]), headers={
        "Content-Type": CONTENT_TYPE, "Cache-Control": "no-store"})


async def not_found(request: web.Request) -> web.Response:
    """Any other path: what calfeed does serve, so a mistyped feed URL can be put right."""
    served = ", ".join(f"/{kind.name}.ics, /{kind.name}.json" for kind in FEED_KINDS.values())
    raise NotFound(f"calfeed has no page {excerpt(request.path)!r}. It serves / (the "
                   f"subscribe page, which builds feed URLs), {served}, /healthz and "
                   "/metrics")


# seconds between the cyclic collector's deliberate full passes (see warm_on_change)
FULL_COLLECTION_INTERVAL = 3600.0


async def warm_on_change(renderer: Renderer, store: Store) -> None:
    """Index and serialise new data as soon as the store's generation moves, so that
    requests find it ready (the renderer yields to them while it works)."""
    seen = store.generation
    # kind -> the generations of what its blocks are made from, when it was last warmed
    warmed: dict[str, tuple[int, ...]] = {}
    loop = asyncio.get_running_loop()
    collected = loop.time()
    while True:
        seen = await store.wait_for_change(seen)
        # The datasets and what is made from them live long: out of the cyclic collector's
        # sight, or each full pass walks them all, and over tens of thousands of items one
        # pass stops the loop for a tenth of a second. (They hold no reference cycles, so
        # what goes is still freed, by reference counting.) What else was alive at a
        # freeze and later became cyclic garbage (a closed connection's objects) only a
        # full pass frees: one an hour, on purpose, rather than one at every change.
        if loop.time() - collected > FULL_COLLECTION_INTERVAL:
            gc.unfreeze()
            gc.collect()
            collected = loop.time()
        gc.freeze()
        snapshots = store.snapshots()
        for kind in FEED_KINDS.values():
            snapshot = snapshots.get(kind.name)
            inputs = tuple(s.generation if (s := snapshots.get(name)) else 0
                           for name in (kind.name, *kind.needs))
            if snapshot is None or warmed.get(kind.name) == inputs:
                continue  # nothing it is made of moved (another kind's data did)
            warmed[kind.name] = inputs
            try:
                # the collector stays off until what the warm-up made is frozen (as the
                # pause ends): back on in between, its first pass went over all of that
                # at once (a tenth of a second's stall at 50,000 items)
                with collector_paused():
                    await renderer.warm(kind, snapshot, snapshots)
            except Exception as error:
                # warming is only a head start: requests render what it did not
                log.warning("warm=failed kind=%s error=%r", kind.name,
                            error_words(error))


def shared_redis(settings: Settings) -> Redis:
    """The Redis client of a shared service: short timeouts, so that Redis trouble is
    noticed in a round or two rather than hanging one."""
    return Redis.from_url(
        settings.redis_url, socket_timeout=2.0, socket_connect_timeout=2.0,
        health_check_interval=10,
    )


def create_app(
    settings: Settings,
    *,
    now: Now = utc_now,
    items: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
    background: bool = True,
    sleep: Sleep = asyncio.sleep,
) -> web.Application:
    """The calfeed web app; `items` replaces LL2 with fixed data per feed kind.

    With background=False no sync loop runs (tests drive `app[SYNCER].tick()`).
    """
    app = web.Application(handler_args={
        # a connection gets this long to send a whole request (headers that trickle in
        # or stall, one byte at a time, are dropped), and as long to stay idle between
        "keepalive_timeout": settings.idle_timeout,
        "logger": OneLineLog(logging.getLogger("calfeed.http")),
    })
    aiohttp_jinja2.setup(app, **template_options())
    app[SETTINGS] = settings
    app[NOW] = now
    app[RENDERER] = Renderer(settings, now)
    prepared: dict[str, dict[tuple[str, bool], PreparedFeed]] = {
        kind.name: {} for kind in FEED_KINDS.values()
    }
    app[PREPARED] = prepared
    counts = Counts()
    app[METRICS] = registry_for(CalfeedCollector(
        counts, lambda: app[SYNCER], lambda: app.get(COORDINATOR), now))

    async def upstream(app: web.Application) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            session = await stack.enter_async_context(ll2_session())
            coordinator = None
            if settings.redis_url:
                redis = shared_redis(settings)
                stack.push_async_callback(redis.aclose)
                shared = SharedStore(redis, settings.redis_prefix)
                # (under the store's versioned prefix: one place knows the layout version)
                budget = SharedBudget(redis, shared.prefix, settings.hourly_budget)
                syncer = open_syncer(settings, now, session=session, items=items,
                                     budget=budget)
                coordinator = Coordinator(shared, syncer, lease=settings.leader_lease, now=now)
                app[COORDINATOR] = coordinator
                # a process that joins serves what the service holds at once
                try:
                    await coordinator.step()
                except Exception as error:  # the rounds go on; serving starts regardless
                    log.warning("shared=first-round-failed error=%r", error_words(error))
                stack.push_async_callback(coordinator.close)
            else:
                syncer = open_syncer(settings, now, session=session, items=items)
            # (pushed after the coordinator's: a first sync in flight stops before the
            # lease is given up and the session closed)
            stack.push_async_callback(syncer.close)
            app[SYNCER] = syncer
            app[STORE] = syncer.store
            tasks = [asyncio.create_task(warm_on_change(app[RENDERER], syncer.store))]
            if background:
                tasks.append(asyncio.create_task(
                    coordinator.run_forever(sleep) if coordinator
                    else syncer.run_forever(sleep)))
            yield
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    app.cleanup_ctx.append(upstream)
    for kind in FEED_KINDS.values():
        read = QueryReader(kind, settings.max_past_days)
        ics, js = f"/{kind.name}.ics", f"/{kind.name}.json"
        app.router.add_get(ics, error_boundary(feed_handler(
            kind, read, prepared[kind.name], settings.body_cache_size, now, counts,
            # the kinds share the byte budget of prepared responses
            settings.cache_bytes // len(FEED_KINDS),
        ), counts, ics))
        app.router.add_get(js, error_boundary(json_handler(kind, read), counts, js))
        for path in (ics, js):
            app.router.add_route("OPTIONS", path, error_boundary(cors_preflight, counts, path))
    app.router.add_get("/healthz", error_boundary(healthz, counts, "/healthz"))
    app.router.add_get("/metrics", error_boundary(metrics, counts, "/metrics"))
    app.router.add_get("/", error_boundary(subscribe_page, counts, "/"))
    assets = load_assets(STATIC)

    async def static(request: web.Request) -> web.StreamResponse:
        return asset_response(request, assets) or await not_found(request)

    app.router.add_get("/static/{name}", error_boundary(static, counts, "/static"))
    # last: whatever no route above serves
    app.router.add_get("/{path:.*}", error_boundary(not_found, counts, "other"))
    return app
