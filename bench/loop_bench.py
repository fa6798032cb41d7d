"""Fast at every size: each figure a ratio against a baseline measured in the same run.

(h) loop responsiveness: latencies of a static file, of /healthz and of a round trip
    through the thread pool while a new version of a dataset of 10,000 events (--events)
    is indexed and rendered cold, and of the cached /events.ics and /healthz while a new
    URL over it renders cold, each asked for by a client of its own, against the same
    requests idle (p50, p99); and the longest stall of the loop meanwhile (a heartbeat
    task that wakes every millisecond);
(i) time to the first feed (index + the plain feed) at 1,000 / 10,000 / 50,000 events,
    as a ratio to 1,000;
(j) a new `alarm=` value against an ordinary filter miss, 1,000 events;
(k) memory: RSS after many distinct feed URLs with large bodies, against cache_bytes;
(m) the loop's longest stall while a dataset of 10,000 events (--events) is saved to the
    state folder and encoded and decoded for the shared store, against the same done with
    json in a thread, as before.

Run: .venv/bin/python bench/loop_bench.py   (about three minutes)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
from aiohttp.test_utils import TestClient, TestServer

from bench import NOW, _free_port, _wait_ready, synthetic_events

sys.path.append(str(pathlib.Path(__file__).resolve().parents[1]))

from calfeed.dataset import Snapshot
from calfeed.feeds import FEED_KINDS
from calfeed.query import parse_query
from calfeed.render import Renderer
from calfeed.server import SYNCER, create_app
from calfeed.settings import Settings
from calfeed.shared_store import decode, encode
from calfeed.state import StateStore, write_atomically

EVENTS = FEED_KINDS["events"]
STATIC = "/static/calfeed.css"
# not a path: a call that returns at once, handed to the default thread pool
THREAD = "thread pool round trip"
LAUNCH = {"id": "l-1", "name": "Falcon 9 | Crew-13", "net": "2026-12-02T14:00:00Z",
          "net_precision": {"id": 1}, "last_updated": "2026-11-01T00:00:00Z"}


def _percentile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def _latencies(client: TestClient[Any, Any], path: str, until: asyncio.Task[Any] | None,
                     count: int) -> list[float]:
    samples: list[float] = []
    while (until is None and len(samples) < count) or (until is not None and not until.done()):
        began = time.perf_counter()
        if path == THREAD:
            # what any work handed to a thread waits for before it can begin
            await asyncio.get_running_loop().run_in_executor(None, time.perf_counter)
        else:
            response = await client.get(path)
            await response.read()
        samples.append(time.perf_counter() - began)
    return samples


def _rows(idle: dict[str, list[float]], during: dict[str, list[float]]) -> dict[str, Any]:
    return {path: {
        "idle_p50_ms": _percentile(idle[path], 0.5) * 1e3,
        "idle_p99_ms": _percentile(idle[path], 0.99) * 1e3,
        "render_p50_ms": _percentile(during[path], 0.5) * 1e3,
        "render_p99_ms": _percentile(during[path], 0.99) * 1e3,
        "p99_ratio": _percentile(during[path], 0.99) / _percentile(idle[path], 0.99),
        "requests_during_render": len(during[path]),
    } for path in during}


async def _during(client: TestClient[Any, Any], cold_path: str,
                  paths: tuple[str, ...]) -> tuple[float, float, dict[str, list[float]]]:
    """Seconds a cold request takes, the longest stall of the loop from just before it
    until it is answered (a heartbeat task that wakes every millisecond), and the
    latencies of `paths` while it runs: each asked for again and again by a client of its
    own, as independent clients would."""
    async with _heartbeat() as stalls:
        # (when it is answered, not when the round of other requests under way ends)
        answered: list[float] = []

        async def request() -> aiohttp.ClientResponse:
            response = await client.get(cold_path)
            answered.append(time.perf_counter())
            return response

        began = time.perf_counter()
        cold = asyncio.create_task(request())
        during = dict(zip(paths, await asyncio.gather(
            *(_latencies(client, path, cold, 0) for path in paths)), strict=True))
        (await cold).release()
    return answered[0] - began, max(stalls), during


async def _settled() -> bool:
    """Until the loop is idle (no stall over 2 ms for a fifth of a second, at most ten
    seconds): what a baseline is taken on. Whether it was (the results say so)."""
    for _ in range(50):
        async with _heartbeat() as stalls:
            await asyncio.sleep(0.2)
        if max(stalls) < 0.002:
            return True
    return False


@contextlib.asynccontextmanager
async def _heartbeat() -> AsyncIterator[list[float]]:
    """[the gaps between the turns of a task that wakes every millisecond]: the loop's
    stalls while the block runs."""
    stalls: list[float] = []

    async def beat() -> None:
        last = time.perf_counter()
        while True:
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            stalls.append(now - last)
            last = now

    task = asyncio.create_task(beat())
    # (the heartbeat under way, and what the bench set going just before, e.g. new data's
    # warm-up, begun)
    await asyncio.sleep(0.01)
    try:
        yield stalls
    finally:
        task.cancel()


async def bench_responsiveness(events: int) -> dict[str, Any]:
    """(h) a static file and /healthz, idle and while a new version of `events` events is
    indexed and rendered cold; then the cached /events.ics and /healthz, idle and while a
    new URL over the indexed events renders cold (most of its VEVENTs not serialised yet)."""
    app = create_app(Settings(), now=lambda: NOW, background=False,
                     items={"events": synthetic_events(events), "launches": [LAUNCH]})
    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        # the sync publishes the data; the warm-up's render would start at once, so the
        # idle baseline is taken on a server whose events are rendered already
        await app[SYNCER].tick()
        await (await client.get("/events.ics")).read()
        await (await client.get("/launches.ics")).read()
        settled = await _settled()
        # (every feed depends on the data's generation, so none stays cached across new
        # data: what must stay prompt is everything else, here /healthz and a static file)
        idle = {path: await _latencies(client, path, None, 300)
                for path in (STATIC, "/healthz", THREAD)}
        # cold: every event in a new version (as after a big LL2 edit), then a filtered
        # feed of them; the heartbeat starts after the bench's own set-up
        app[SYNCER].store.datasets["events"].merge(
            "upcoming", [dict(e, last_updated="2026-11-28T10:00:00Z")
                         for e in synthetic_events(events)], NOW)
        render_seconds, stall, during = await _during(
            client, "/events.ics?precision=any&type=3", (STATIC, "/healthz", THREAD))
        new_data = {"events": events, "cold_render_s": render_seconds,
                    "longest_stall_ms": stall * 1e3, **_rows(idle, during)}
        # the new data's plain feed is cached now; a new URL of a third of the types, its
        # body nearest to now first, mostly beyond the plain feed's VEVENTs
        # (and the warm-up done: it makes the launches' feed too, whose launches are
        # matched against the new events)
        await (await client.get("/events.ics")).read()
        await (await client.get("/launches.ics")).read()
        # (the requests answered, the warm-up may still be dropping the old versions)
        settled = await _settled() and settled
        idle["/events.ics"] = await _latencies(client, "/events.ics", None, 300)
        render_seconds, stall, during = await _during(
            client, "/events.ics?precision=any&type=1,2,4,5,6,7,8,9,10,11",
            ("/events.ics", "/healthz"))
        new_url = {"cold_render_s": render_seconds, "longest_stall_ms": stall * 1e3,
                   **_rows(idle, during)}
        return {"new_data": new_data, "new_url": new_url, "idle_baselines_settled": settled}
    finally:
        await client.close()


async def first_feed(events: int) -> dict[str, Any]:
    """(i) seconds from a new snapshot to a feed, as the server makes them: on a fresh
    renderer, to its plain feed (`cold`: index + feed, what the warm-up does when data
    first arrives after a start); then the same for the next snapshot with a tenth of its
    items edited (`next_generation_tenth_edited`: only those are indexed again); the index
    alone on another fresh renderer (`index_alone`); and, on that indexed snapshot with no
    VEVENT serialised yet, to a new URL's trimmed feed (`new_url`: `?precision=any`, the
    whole dataset matching; what a subscriber's first poll of a new URL costs after the
    warm-up)."""
    snapshot = Snapshot(tuple(synthetic_events(events)), NOW, 1)
    # the server freezes long-lived data out of the collector's sight at every change
    gc.collect()
    gc.freeze()
    try:
        renderer = Renderer(Settings(), lambda: NOW)
        began = time.perf_counter()
        plain = await renderer.render(EVENTS, parse_query(EVENTS.params(30), []), snapshot, NOW)
        cold = time.perf_counter() - began
        # the next sync's snapshot, a tenth of the items edited since
        edited = Snapshot(tuple(dict(item, last_updated="2026-12-01T00:00:00Z")
                                if i % 10 == 0 else item
                                for i, item in enumerate(snapshot.items)), NOW, 2)
        # (as the server does after a warm-up and at each data change)
        gc.freeze()
        began = time.perf_counter()
        await renderer.render(EVENTS, parse_query(EVENTS.params(30), []), edited, NOW)
        next_generation = time.perf_counter() - began
        renderer = Renderer(Settings(), lambda: NOW)
        began = time.perf_counter()
        await renderer.index(EVENTS, snapshot)
        index = time.perf_counter() - began
        gc.freeze()
        began = time.perf_counter()
        every = await renderer.render(
            EVENTS, parse_query(EVENTS.params(30), [("precision", "any")]), snapshot, NOW)
        new_url = time.perf_counter() - began
    finally:
        gc.unfreeze()
    return {"cold": cold, "cold_body": [plain.count, plain.matching, len(plain.body)],
            "next_generation_tenth_edited": next_generation, "index_alone": index,
            "new_url": new_url, "new_url_body": [every.count, every.matching, len(every.body)]}


async def bench_alarm(events: int, rounds: int) -> dict[str, Any]:
    """(j) a new alarm= value vs a new filter, both on warm blocks."""
    snapshot = Snapshot(tuple(synthetic_events(events)), NOW, 1)
    renderer = Renderer(Settings(max_feed_bytes=10**9), lambda: NOW)
    params = EVENTS.params(30)
    await renderer.render(EVENTS, parse_query(params, [("precision", "any")]), snapshot, NOW)
    alarm, miss = [], []
    for value in range(1, rounds + 1):
        began = time.perf_counter()
        await renderer.render(EVENTS, parse_query(params, [
            ("precision", "any"), ("alarm", str(value))]), snapshot, NOW)
        alarm.append(time.perf_counter() - began)
        began = time.perf_counter()
        await renderer.render(EVENTS, parse_query(params, [
            ("precision", "any"), ("past_days", str(value % 30))]), snapshot, NOW)
        miss.append(time.perf_counter() - began)
    return {"events": events, "alarm_ms": statistics.median(alarm) * 1e3,
            "filter_miss_ms": statistics.median(miss) * 1e3,
            "ratio": statistics.median(alarm) / statistics.median(miss)}


async def bench_state(events: int, folder: pathlib.Path) -> dict[str, Any]:
    """(m) the loop's longest stall while a dataset of `events` events is saved to the
    state folder, and encoded and decoded for the shared store, as calfeed does it (its
    JSON in slices on the loop, the rest in a thread) and, for the baseline, as it did
    before (json.dumps/json.loads in a thread, which holds the GIL throughout)."""
    state = {"parts": {"upcoming": {"synced_at": None, "full_at": None,
                                    "items": synthetic_events(events)}}}
    folder_store = StateStore(folder)
    blob = await encode("events", state)
    envelope = {"format": 1, "kind": "events", "state": state}
    cases: dict[str, Callable[[], Awaitable[Any]]] = {
        "state_save": lambda: folder_store.save_in_turns("dataset-events", state),
        # (as save was before: json.dumps in a thread, one C call holding the GIL; save
        # itself now writes in slices too, and a thread running it lets the loop in)
        "state_save_before": lambda: asyncio.to_thread(
            lambda: write_atomically(folder_store.path("dataset-events"), json.dumps(
                {"format": StateStore.FORMAT, "state": state}).encode("ascii"))),
        "shared_encode": lambda: encode("events", state),
        "shared_encode_before": lambda: asyncio.to_thread(
            lambda: zlib.compress(json.dumps(envelope).encode("ascii"), 6)),
        "shared_decode": lambda: decode("events", blob),
        "shared_decode_before": lambda: asyncio.to_thread(
            lambda: json.loads(zlib.decompress(blob))),
    }
    found: dict[str, Any] = {"events": events}
    for name, work in cases.items():
        async with _heartbeat() as stalls:
            began = time.perf_counter()
            # (kept past the heartbeat: a decoded dataset freed at once is the bench's own
            # doing, tens of milliseconds at 50,000 events; a follower keeps what it reads)
            made = await work()
            took = time.perf_counter() - began
        del made
        found[name] = {"seconds": took, "longest_stall_ms": max(stalls) * 1e3}
    for name in ("state_save", "shared_encode", "shared_decode"):
        found[f"{name}_stall_ratio_to_before"] = (
            found[name]["longest_stall_ms"] / found[f"{name}_before"]["longest_stall_ms"])
    return found


def _rss(pid: int) -> int:
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


async def bench_memory(urls: int, cache_bytes: int) -> dict[str, Any]:
    """(k) the server's RSS (a process of its own) after `urls` distinct feed URLs, each a
    large body of its own (subsets of event types, 1,000 events), against cache_bytes."""
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, str(pathlib.Path(__file__).with_name("bench.py")),
         "--serve-calfeed", str(port), "1000"],
        env={**os.environ, "CALFEED_CACHE_BYTES": str(cache_bytes)},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}/events.ics?precision=any"
        _wait_ready(base)
        before = _rss(server.pid)
        largest = 0
        async with aiohttp.ClientSession() as session:
            for index in range(urls):
                types = [str(t) for t in range(30)
                         if (index >> (t % 20)) & 1 or t == index % 30]
                query = "&".join(f"type={t}" for t in types)
                async with session.get(f"{base}&{query}", headers={
                        "Accept-Encoding": "gzip"}, auto_decompress=False) as response:
                    largest = max(largest, len(await response.read()))
        after = _rss(server.pid)
        return {"urls": urls, "cache_bytes": cache_bytes, "rss_before": before,
                "rss_after": after, "growth_over_cache_bytes": (after - before) / cache_bytes,
                "largest_gzipped_body": largest}
    finally:
        server.terminate()
        server.wait()


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {}
    if "h" in args.only:
        print("(h) responsiveness …", file=sys.stderr, flush=True)
        results["responsiveness"] = await bench_responsiveness(args.events)
    if "i" in args.only:
        print("(i) first feed …", file=sys.stderr, flush=True)
        feeds = {n: await first_feed(n) for n in (1_000, 10_000, 50_000)}
        results["first_feed"] = {
            "by_events": feeds,
            **{f"{case}_ratio_{n}_to_1000": feeds[n][case] / feeds[1_000][case]
               for case in ("cold", "new_url") for n in (10_000, 50_000)},
            # (the same per event in the body: the plain feed holds 750 events at 1,000,
            # 1,019 once trimmed at 1 MB)
            **{f"cold_per_body_event_ratio_{n}_to_1000":
               feeds[n]["cold"] / feeds[n]["cold_body"][0]
               / (feeds[1_000]["cold"] / feeds[1_000]["cold_body"][0])
               for n in (10_000, 50_000)},
        }
    if "j" in args.only:
        print("(j) alarm …", file=sys.stderr, flush=True)
        results["alarm"] = await bench_alarm(1_000, 15)
    if "k" in args.only:
        print("(k) memory …", file=sys.stderr, flush=True)
        results["memory"] = await bench_memory(args.urls, 16_000_000)
    if "m" in args.only:
        print("(m) state …", file=sys.stderr, flush=True)
        with tempfile.TemporaryDirectory() as folder:
            results["state"] = await bench_state(args.events, pathlib.Path(folder))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--urls", type=int, default=5_000)
    parser.add_argument("--events", type=int, default=10_000,
                        help="events in the datasets of (h) and (m) (default: 10,000)")
    parser.add_argument("--only", default="hijkm",
                        help="the figures to measure, by letter (default: hijkm, all)")
    print(json.dumps(asyncio.run(main_async(parser.parse_args())), indent=2, default=str))


if __name__ == "__main__":
    main()
