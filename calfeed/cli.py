"""The `calfeed` command: `serve` runs the server, `build` writes one feed."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import multiprocessing
import signal
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from aiohttp import web

from calfeed import __version__
from calfeed.coordinator import ROUND_SECONDS
from calfeed.dataset import items_from_json, load_items
from calfeed.exceptions import (
    CalfeedError,
    InputError,
    NoDataYet,
    ServeError,
    SettingsError,
)
from calfeed.feeds import DEFAULT_KIND, FEED_KINDS, FeedKind
from calfeed.ll2 import ll2_session
from calfeed.query import parse_query
from calfeed.readers import parse_datetime
from calfeed.render import Renderer
from calfeed.server import create_app, utc_now
from calfeed.settings import Settings, add_settings_arguments, settings_from_args
from calfeed.sources import open_syncer

SERVE_SETTINGS = None  # every setting is a serve flag
BUILD_SETTINGS = [
    "upstream", "ll2_token", "budget", "budget_reserve", "max_past_days", "connect_timeout",
    "read_timeout", "max_pages", "max_response_bytes", "default_duration", "uid_domain",
    "refresh_interval", "max_feed_bytes", "demo",
]
# Filter flags are declared before the settings are read, so their parameters are built
# with no upper bound on past_days; the values are parsed again with the real bound.
_UNBOUNDED_PAST_DAYS = 10**6


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="calfeed", description="Launch Library 2 space events as iCalendar feeds."
    )
    parser.add_argument("--version", action="version", version=f"calfeed {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every upstream call")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the feed server")
    add_settings_arguments(serve, SERVE_SETTINGS)

    build = commands.add_parser("build", help="write one feed to a file")
    build.add_argument("--feed", choices=sorted(FEED_KINDS), default=DEFAULT_KIND,
                       help=f"which feed kind (default {DEFAULT_KIND})")
    build.add_argument("-o", "--output", default="-", help="file to write; - for stdout")
    build.add_argument("--input", help="read LL2 JSON from this file (- for stdin) instead of LL2")
    build.add_argument("--now", help="ISO 8601 time to treat as now (past_days, the "
                       "nearest-first order; from LL2, also which past items are fetched)")
    seen: set[str] = set()
    for kind in FEED_KINDS.values():
        for param in kind.params(_UNBOUNDED_PAST_DAYS):
            if param.name in seen or not param.in_body:
                continue
            seen.add(param.name)
            build.add_argument(param.flag, dest=f"param_{param.name}", action="append",
                               metavar="VALUE", help=f"{param.help} ({param.example})")
    add_settings_arguments(build, BUILD_SETTINGS)
    return parser


def query_pairs(kind: FeedKind, args: argparse.Namespace) -> list[tuple[str, str]]:
    """The build flags as URL-style (name, value) pairs, parsed like a feed URL."""
    pairs: list[tuple[str, str]] = []
    known = {param.name for param in kind.params(_UNBOUNDED_PAST_DAYS)}
    for name, values in vars(args).items():
        if not name.startswith("param_") or values is None:
            continue
        param_name = name.removeprefix("param_")
        if param_name not in known:
            flag = "--" + param_name.replace("_", "-")
            owners = [other.name for other in FEED_KINDS.values()
                      if any(p.name == param_name for p in other.filters)]
            hint = f"; it filters --feed {' or '.join(owners)}" if owners else ""
            raise InputError(f"{flag} is not a filter of the {kind.name} feed{hint}")
        pairs.extend((param_name, value) for value in values)
    return pairs


def _check_items(kind: FeedKind, items: Sequence[Mapping[str, Any]], source: str) -> None:
    """Refuse input with nothing the feed can use, naming the feed it seems to be for."""
    if not items or any(kind.usable(item) for item in items):
        return  # an empty list is an empty calendar; some usable items make a feed
    others = [other for other in FEED_KINDS.values()
              if other is not kind and any(other.usable(item) for item in items)]
    where = "stdin" if source == "-" else source
    hint = (f"; they look like {others[0].noun}: add --feed {others[0].name}" if others
            else " (an LL2 list page, a list of LL2 objects, or one object)")
    raise InputError(f"none of the {len(items)} items in {where} is an LL2 {kind.noun_one}"
                     f"{hint}")


def _read_input(path: str) -> list[Mapping[str, Any]]:
    if path == "-":
        try:
            return items_from_json(json.load(sys.stdin))
        except RecursionError:  # (JSON nested deeper than Python's parser goes)
            raise InputError("cannot read LL2 JSON from stdin: nested too deep") from None
        except ValueError as error:
            raise InputError(f"cannot read LL2 JSON from stdin: {error}") from None
    return load_items(Path(path))


async def build_feed(
    settings: Settings, kind: FeedKind, pairs: Sequence[tuple[str, str]],
    items: Sequence[Mapping[str, Any]] | None, now: datetime,
) -> bytes:
    """One feed's bytes, from given items or from LL2 (one dataset fetch)."""
    query = parse_query(kind.params(settings.max_past_days), pairs)

    def clock() -> datetime:
        return now

    async with ll2_session() as session:
        # only the datasets this feed is made of, and no reference lists (those name the
        # page's choices, which a file does not show)
        syncer = open_syncer(
            settings, clock, session=session,
            items=None if items is None else {kind.name: items}, persist=False,
            kinds=(kind.name, *kind.needs), reference=False,
        )
        await syncer.tick()
        snapshots = syncer.store.snapshots()
        snapshot = snapshots[kind.name]
        if snapshot is None:
            raise NoDataYet(f"no {kind.name} data: {syncer.last_error or 'nothing fetched'}")
        missing = [f"{name} {part}" for name, dataset in syncer.datasets.items()
                   for part in ("upcoming", "past") if dataset.parts[part].full_at is None]
        if syncer.failures or missing:
            # a file is written once: better none than one without, say, related events
            reason = syncer.last_error or "LL2's request budget has no room for them now"
            raise NoDataYet(f"could not fetch all the {kind.name} feed needs "
                            f"({', '.join(missing) or 'a list'}): {reason}")
    return (await Renderer(settings, clock).render(kind, query, snapshot, now, snapshots)).body


def _build(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    kind = FEED_KINDS[args.feed]
    pairs = query_pairs(kind, args)
    now = utc_now()
    if args.now:
        parsed = parse_datetime(args.now)
        if parsed is None:
            raise InputError(f"--now: {args.now!r} is not an ISO 8601 date-time")
        now = parsed
    items = _read_input(args.input) if args.input else None
    if items is not None:
        _check_items(kind, items, args.input)
    body = asyncio.run(build_feed(settings, kind, pairs, items, now))
    if args.output == "-":
        sys.stdout.buffer.write(body)
        sys.stdout.flush()
    else:
        try:
            Path(args.output).write_bytes(body)
        except OSError as error:
            raise InputError(f"cannot write the feed to {args.output}: "
                             f"{error.strerror or error}") from None
    return 0


def _serve(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    if settings.redis_url and settings.leader_lease < 3 * ROUND_SECONDS:
        raise SettingsError(
            f"--leader-lease {settings.leader_lease:g} is too short: the lease is renewed "
            f"every {ROUND_SECONDS:g} s, so it must last at least {3 * ROUND_SECONDS:g} s")
    if settings.workers > 1 and not settings.redis_url:
        raise SettingsError(
            f"--workers {settings.workers} needs --redis-url (CALFEED_REDIS_URL): worker "
            "processes share one dataset, one LL2 budget and one syncer through Redis")
    if settings.demo:
        logging.getLogger("calfeed").warning(
            "demo=on serving bundled sample data, not LL2: every feed is named "
            "'(demo data)'; leave out --demo (and CALFEED_DEMO) for the live data")
    if settings.workers > 1:
        return supervise(settings)
    serve_one(settings, reuse_port=False)
    return 0


def serve_one(settings: Settings, *, reuse_port: bool) -> None:
    """Run one server process until it is stopped."""
    try:
        # (asked before serving: a UnicodeError from the server itself is no host's)
        settings.host.encode("idna")
    except UnicodeError:  # (a --host that is no host name: "bad..host")
        raise ServeError(f"cannot listen on {settings.host!r}: not a host name or address; "
                         "choose another with --host (or CALFEED_HOST)") from None
    try:
        web.run_app(create_app(settings), host=settings.host, port=settings.port,
                    reuse_port=reuse_port or None,
                    print=lambda text: print(text, file=sys.stderr))
    except OSError as error:
        raise ServeError(
            f"cannot listen on {settings.host}:{settings.port}: "
            f"{error.strerror or error}; choose another port with --port "
            "(or CALFEED_PORT)") from None


def _worker(settings: Settings) -> None:
    """A worker process: one server on the shared port; its errors as the CLI says them."""
    _logging(logging.INFO)

    def run() -> int:
        serve_one(settings, reuse_port=True)
        return 0

    sys.exit(_guarded(run))


def supervise(settings: Settings) -> int:
    """`--workers N`: N server processes on one port (SO_REUSEPORT: the kernel spreads
    connections over them). A worker that dies is started again; one that cannot start
    at all (the port is taken, say) stops them all. SIGTERM or Ctrl-C stops every worker."""
    context = multiprocessing.get_context("spawn")
    one = dataclasses.replace(settings, workers=1)
    log = logging.getLogger("calfeed.workers")
    stopping = False

    def stop(signum: int, frame: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    def start() -> tuple[multiprocessing.process.BaseProcess, float]:
        process = context.Process(target=_worker, args=(one,), daemon=True)
        process.start()
        return process, time.monotonic()

    workers = [start() for _ in range(settings.workers)]
    log.info("workers=%d port=%d pids=%s", len(workers), settings.port,
             ",".join(str(p.pid) for p, _ in workers))
    code = 0
    while not stopping:
        time.sleep(0.5)
        for index, (process, started) in enumerate(workers):
            if process.is_alive() or stopping:
                continue
            if time.monotonic() - started < 5 and process.exitcode:
                # it could not even start: starting it again would fail the same way
                log.error("worker=failed pid=%s exit=%s: stopping", process.pid,
                          process.exitcode)
                stopping, code = True, process.exitcode
                break
            log.warning("worker=died pid=%s exit=%s: starting another", process.pid,
                        process.exitcode)
            workers[index] = start()
    for process, _ in workers:
        if process.is_alive():
            process.terminate()
    for process, _ in workers:
        process.join(10)
    return code


def _logging(level: int) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s %(message)s")


def _guarded(run: Callable[[], int]) -> int:
    """The CLI's one boundary: a CalfeedError is one line on stderr and its exit code."""
    try:
        return run()
    except CalfeedError as error:
        print(f"calfeed: {error.message}", file=sys.stderr)
        return error.exit_code


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `calfeed` command."""
    args = _parser().parse_args(argv)
    _logging(logging.INFO if args.verbose or args.command == "serve" else logging.WARNING)
    return _guarded(lambda: _build(args) if args.command == "build" else _serve(args))

