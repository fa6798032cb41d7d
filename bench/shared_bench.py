"""Several processes as one service: what a second worker, /metrics counting and the
shared dataset cost or gain, each against a baseline measured in the same run.

(e) requests/second of `calfeed serve --workers 2` against `--workers 1` (cached gzip
    feed, and 304s), under wrk from a separate process; alternated, median pair;
(f) what counting for /metrics adds to a cached feed request: the request served
    in-process (bench/request_cost.py's raw-bytes transport) against the two dict
    increments the request path does for it, timed in the same run;
(g) time from the leader's sync to every one of three processes serving the new data:
    the leader's ETag changing against the last follower's, five changes upstream.

Run: .venv/bin/python bench/shared_bench.py   (needs wrk and redis-server from Debian)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import pathlib
import shutil
import statistics
import subprocess
import sys
import time
import timeit
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer

# run as a script: bench.py and request_cost.py beside it are first on sys.path; the
# repository (for the tests' fake LL2 and Redis server) after them
sys.path.append(str(pathlib.Path(__file__).resolve().parents[1]))

from request_cost import _request, push

from bench import _children, _cpu_seconds, _free_port, _wait_ready, _wrk
from calfeed.server import SYNCER, create_app
from calfeed.settings import Settings
from tests.fake_ll2 import FakeLL2
from tests.helpers import make_event
from tests.redis_server import RedisServer

FEED = "/events.ics?precision=any"


def _serve(redis: RedisServer, prefix: str, workers: int, *flags: str) -> tuple[
        subprocess.Popen[bytes], int]:
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "calfeed", "serve", "--port", str(port),
         "--redis-url", redis.url, "--redis-prefix", prefix, "--workers", str(workers),
         *flags],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    return process, port


def _tree_cpu(pid: int) -> float:
    """CPU seconds of a process and its children (the workers of a supervisor)."""
    return _cpu_seconds(pid) + sum(_cpu_seconds(child) for child in _children(pid))


def bench_workers(redis: RedisServer, seconds: int, rounds: int) -> list[dict[str, Any]]:
    """(e) one worker against two, the same demo data, the same cached URL."""
    one, one_port = _serve(redis, "bench1", 1, "--demo")
    two, two_port = _serve(redis, "bench2", 2, "--demo")
    try:
        urls = {n: f"http://127.0.0.1:{p}{FEED}" for n, p in ((1, one_port), (2, two_port))}
        for url in urls.values():
            _wait_ready(url)
        time.sleep(1)  # both workers of the second up and loaded
        # two wrk threads and 64 connections: enough to keep two workers busy
        load: dict[str, Any] = {"threads": 2, "connections": 64, "cpu": _tree_cpu}
        rows = []
        for label, headers in (("gzip", {"Accept-Encoding": "gzip"}),
                               ("304", {"If-None-Match": "*"})):
            pairs = []
            for _ in range(rounds):
                single, _ = _wrk(urls[1], seconds, headers, one.pid, **load)
                double, _ = _wrk(urls[2], seconds, headers, two.pid, **load)
                pairs.append((double / single, single, double))
            ratio, single, double = sorted(pairs)[len(pairs) // 2]
            rows.append({"case": label, "one_worker_rps": single, "two_workers_rps": double,
                         "ratio": ratio, "ratios": sorted(p[0] for p in pairs)})
        return rows
    finally:
        for process in (one, two):
            process.terminate()
            process.wait(15)


async def bench_counting(requests: int, rounds: int) -> dict[str, Any]:
    """(f) a cached feed request against what counting it costs."""
    app = create_app(Settings(demo=True), background=False)
    raw = _request(FEED.encode(), b"Accept-Encoding: gzip\r\n")
    runner = aiohttp.web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await app[SYNCER].tick()
        await push(app, raw, 10)  # prepared once
        per_request = []
        for _ in range(rounds):
            began = time.perf_counter()
            await push(app, raw, requests)
            per_request.append((time.perf_counter() - began) / requests)
    finally:
        await runner.cleanup()
    # exactly what the request path does for /metrics: two increments of a
    # defaultdict(int), one by (route, status), one by (kind, "hit")
    routes: defaultdict[tuple[str, int], int] = defaultdict(int)
    cache: defaultdict[tuple[str, str], int] = defaultdict(int)
    route, hit = "/events.ics", ("events", "hit")

    def count() -> None:
        routes[route, 200] += 1
        cache[hit] += 1

    counting = min(timeit.repeat(count, number=200_000, repeat=rounds)) / 200_000
    request = statistics.median(per_request)
    return {"request_us": request * 1e6, "counting_us": counting * 1e6,
            "share": counting / request,
            "without_counting_vs_with": (request - counting) / request}


async def bench_propagation(redis: RedisServer, changes: int) -> dict[str, Any]:
    """(g) the leader's new data, served by every process: how long after the leader."""
    soon = datetime.now(UTC) + timedelta(days=2)
    fake = FakeLL2(upcoming=[
        make_event(i, (soon + timedelta(hours=i)).strftime("%Y-%m-%dT%H:%M:%SZ"))
        for i in range(1, 200)])
    # a key's limit: a change fetch every second needs more than 15 calls an hour
    fake.reported_limit = 5000
    server = TestServer(fake.app())
    await server.start_server()
    flags = ("--upstream", str(server.make_url("/2.3.0")), "--budget", "5000",
             "--incremental-interval", "1", "--state-dir", "/tmp/calfeed-bench-state")
    processes = [_serve(redis, "bench3", 1, *flags) for _ in range(3)]
    delays = []
    try:
        async with aiohttp.ClientSession() as session:
            urls = [f"http://127.0.0.1:{port}" for _, port in processes]
            roles = await _until_all_ok(session, urls)
            leader = roles.index("leader")
            for change in range(changes):
                etags = [await _etag(session, url) for url in urls]
                fake.upcoming[change] = make_event(
                    change + 1, (soon + timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    last_updated=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
                seen: dict[int, float] = {}
                while len(seen) < len(urls):
                    for index, url in enumerate(urls):
                        if index not in seen and await _etag(session, url) != etags[index]:
                            seen[index] = time.monotonic()
                    await asyncio.sleep(0.01)
                delays.append(max(seen.values()) - seen[leader])
    finally:
        for process, _ in processes:
            process.terminate()
            process.wait(15)
        await server.close()
    return {"changes": changes, "median_s": statistics.median(delays),
            "max_s": max(delays), "round_s": 1.0}


async def _etag(session: aiohttp.ClientSession, url: str) -> str:
    async with session.get(url + "/events.ics") as response:
        return response.headers.get("ETag", "")


async def _until_all_ok(session: aiohttp.ClientSession, urls: list[str]) -> list[str]:
    for _ in range(300):
        roles = []
        try:
            for url in urls:
                async with session.get(url + "/healthz") as response:
                    report = await response.json()
                    if report["status"] != "ok":
                        break
                    roles.append(report["shared"]["role"])
        except aiohttp.ClientError:
            pass
        if len(roles) == len(urls) and roles.count("leader") == 1:
            return roles
        await asyncio.sleep(0.1)
    raise RuntimeError("the three processes did not come up")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    for tool in ("wrk", "redis-server"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is not installed (apt-get install {tool})")
    redis = RedisServer()
    redis.start()
    try:
        results: dict[str, Any] = {}
        print("(e) workers …", file=sys.stderr, flush=True)
        results["workers"] = bench_workers(redis, args.seconds, args.rounds)
        print("(f) counting …", file=sys.stderr, flush=True)
        results["counting"] = asyncio.run(bench_counting(20_000, args.rounds))
        print("(g) propagation …", file=sys.stderr, flush=True)
        results["propagation"] = asyncio.run(
            asyncio.wait_for(bench_propagation(redis, 5), 300))
    finally:
        redis.stop()
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
