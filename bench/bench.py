"""calfeed benchmarks, each a ratio against a baseline measured in the same run.

(a) rendering: a cold feed render (map + serialise every VEVENT) against re-assembling
    the same feed from cached VEVENT blocks, per event, at 100/1000/5000 events;
(b) serving: requests/second of a cached /events.ics against a minimal aiohttp app that
    returns the same bytes (plain, gzip with pre-compressed bytes, and the 304 path),
    load from wrk in a separate process on loopback, bounded in time;
(n) serialising: the same VEVENTs (1,000 events) to bytes by `ical_text.component_bytes`
    against icalendar's own `to_ical`, alternated, per event.

Run: .venv/bin/python bench/bench.py [--seconds 4] [--skip-http]
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import pathlib
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import web

from calfeed.dataset import Snapshot
from calfeed.feeds import FEED_KINDS
from calfeed.ical_text import component_bytes
from calfeed.query import parse_query
from calfeed.render import Renderer
from calfeed.server import create_app
from calfeed.settings import Settings, settings_from_env

NOW = datetime(2026, 11, 29, 12, tzinfo=UTC)


def synthetic_events(count: int) -> list[dict[str, Any]]:
    """LL2-shaped events with realistic text sizes, spread over the coming year."""
    events = []
    for i in range(count):
        when = NOW + timedelta(hours=7 * i)
        events.append({
            "id": i + 1,
            "name": f"Bench event {i + 1}: Progress MS-{i % 90} docking, Poisk module",
            "type": {"id": i % 30, "name": f"Type {i % 30}"},
            "description": "The cargo spacecraft docks autonomously; " * 6,
            "location": "International Space Station",
            "date": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "date_precision": {"id": [1, 5, 7, 11][i % 4], "name": "P"},
            "duration": "PT1H" if i % 3 else None,
            "last_updated": "2026-11-20T10:00:00Z",
            "webcast_live": False,
            "image": {"image_url": f"https://img.example/{i}.jpg"},
            "agencies": [{"id": 44, "name": "NASA", "abbrev": "NASA"}],
            "program": [{"id": 17, "name": "ISS"}],
            "launches": [{"id": f"l{i}", "name": f"Soyuz | Progress {i}",
                          "url": f"https://ll.example/launches/l{i}/",
                          "net": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
                          "status": {"id": 1, "name": "Go for Launch", "abbrev": "Go"}}],
            "vid_urls": [{"priority": 10, "publisher": "NASA", "title": "Coverage",
                          "url": f"https://video.example/{i}", "live": False}],
            "info_urls": [],
        })
    return events


def bench_render(sizes: list[int]) -> list[dict[str, Any]]:
    """Per-event cost of a cold render vs re-assembly from cached blocks."""
    kind = FEED_KINDS["events"]
    settings = Settings(max_feed_bytes=10**9)
    query = parse_query(kind.params(30), [("precision", "any"), ("past_days", "30")])
    rows = []
    for size in sizes:
        snapshot = Snapshot(tuple(synthetic_events(size)), NOW, 1)
        repeats = max(1, 2000 // size)
        start = time.perf_counter()
        for _ in range(repeats):
            renderer = Renderer(settings, lambda: NOW)
            body = asyncio.run(renderer.render(kind, query, snapshot)).body
        cold = (time.perf_counter() - start) / repeats / size
        start = time.perf_counter()
        warm_repeats = repeats * 10
        for _ in range(warm_repeats):
            renderer._bodies.clear()  # force re-assembly; the VEVENT blocks stay cached
            assert asyncio.run(renderer.render(kind, query, snapshot)).body == body
        warm = (time.perf_counter() - start) / warm_repeats / size
        rows.append({"events": size, "cold_us_per_event": cold * 1e6,
                     "reassembly_us_per_event": warm * 1e6, "ratio": cold / warm,
                     "feed_bytes": len(body)})
    return rows


def bench_serialise(size: int, rounds: int = 5) -> dict[str, Any]:
    """Per-event cost of serialising VEVENTs: calfeed's folding against icalendar's."""
    kind = FEED_KINDS["events"]
    renderer = Renderer(Settings(), lambda: NOW)
    vevents = [kind.to_vevent(item, renderer.options, {}) for item in synthetic_events(size)]
    ours: list[float] = []
    theirs: list[float] = []
    for _ in range(rounds):
        start = time.perf_counter()
        made = [component_bytes(vevent) for vevent in vevents]
        ours.append((time.perf_counter() - start) / size)
        start = time.perf_counter()
        expected = [vevent.to_ical() for vevent in vevents]
        theirs.append((time.perf_counter() - start) / size)
        assert made == expected
    ratios = sorted(a / b for a, b in zip(ours, theirs, strict=True))
    return {"events": size, "ical_text_us_per_event": sorted(ours)[rounds // 2] * 1e6,
            "icalendar_us_per_event": sorted(theirs)[rounds // 2] * 1e6,
            "ratio": ratios[rounds // 2], "ratios": ratios}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def serve_calfeed(port: int, count: int) -> None:
    """Child process: calfeed with a synthetic dataset."""
    # CALFEED_* variables apply (loop_bench.py sets cache_bytes so)
    settings = settings_from_env(max_feed_bytes=10**9)
    app = create_app(settings, items={"events": synthetic_events(count)})
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def minimal_app(body: bytes) -> web.Application:
    """The least an aiohttp app can do to return the same bytes (pre-compressed for gzip)."""
    compressed = gzip.compress(body, mtime=0)

    async def handle(request: web.Request) -> web.Response:
        if "gzip" in request.headers.get("Accept-Encoding", ""):
            return web.Response(body=compressed, headers={"Content-Encoding": "gzip"},
                                content_type="text/calendar")
        return web.Response(body=body, content_type="text/calendar")

    app = web.Application()
    app.router.add_get("/events.ics", handle)
    return app


def serve_baseline(port: int, body_path: str) -> None:
    """Child process: the minimal app serving the bytes in a file."""
    app = minimal_app(Path(body_path).read_bytes())
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def _start(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, __file__, *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _wait_ready(url: str) -> bytes:
    for _ in range(200):
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                data: bytes = response.read()
                return data
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not come up")


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used (Linux /proc)."""
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    """The pids of a process's children (Linux /proc): a supervisor's workers, nginx's."""
    path = pathlib.Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in path.read_text().split()] if path.exists() else []


def _wrk(
    url: str, seconds: int, headers: dict[str, str], pid: int, *, threads: int = 1,
    connections: int = 32, cpu: Callable[[int], float] = _cpu_seconds,
) -> tuple[float, float]:
    """(requests/second, server CPU µs per request) under wrk load."""
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s"]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    before = cpu(pid)
    output = subprocess.run([*command, url], capture_output=True, text=True,
                            timeout=seconds + 30).stdout
    used = cpu(pid) - before
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    total = re.search(r"(\d+) requests in", output)
    if not rate or not total:
        raise RuntimeError(output)
    return float(rate[1]), used / int(total[1]) * 1e6


def bench_http(seconds: int, count: int, rounds: int = 3) -> list[dict[str, Any]]:
    """Requests/second of calfeed vs the minimal app, same bytes, same run."""
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    calfeed_port, baseline_port = _free_port(), _free_port()
    feed_url = f"http://127.0.0.1:{calfeed_port}/events.ics?precision=any"
    calfeed = _start("--serve-calfeed", str(calfeed_port), str(count))
    try:
        body = _wait_ready(feed_url)
        with urllib.request.urlopen(feed_url) as response:
            etag = response.headers["ETag"]
        with tempfile.NamedTemporaryFile(suffix=".ics", delete=False) as handle:
            handle.write(body)
        baseline = _start("--serve-baseline", str(baseline_port), handle.name)
        try:
            base_url = f"http://127.0.0.1:{baseline_port}/events.ics"
            assert _wait_ready(base_url) == body
            rows = []
            # (name, baseline request headers, calfeed request headers)
            cases: tuple[tuple[str, dict[str, str], dict[str, str]], ...] = (
                ("plain", {}, {}),
                ("gzip", {"Accept-Encoding": "gzip"}, {"Accept-Encoding": "gzip"}),
                ("304 (vs plain baseline)", {}, {"If-None-Match": etag}),
            )
            for label, base_headers, our_headers in cases:
                # alternate the two servers and keep the median pair: the machine's speed
                # drifts over minutes, and a ratio taken from back-to-back runs cancels it
                pairs = []
                for _ in range(rounds):
                    base, base_cpu = _wrk(base_url, seconds, base_headers, baseline.pid)
                    ours, our_cpu = _wrk(feed_url, seconds, our_headers, calfeed.pid)
                    pairs.append((ours / base, base, ours, base_cpu, our_cpu))
                ratio, base, ours, base_cpu, our_cpu = sorted(pairs)[len(pairs) // 2]
                rows.append({"case": label, "baseline_rps": base, "calfeed_rps": ours,
                             "ratio": ratio, "baseline_cpu_us": base_cpu,
                             "calfeed_cpu_us": our_cpu, "cpu_ratio": base_cpu / our_cpu,
                             "ratios": sorted(p[0] for p in pairs)})
            rows.append({"feed_bytes": len(body), "events": count})
            return rows
        finally:
            baseline.terminate()
            baseline.wait()
            os.unlink(handle.name)
    finally:
        calfeed.terminate()
        calfeed.wait()


def main() -> None:
    """Run the benchmarks and print a table (and JSON with --json)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=4, help="wrk duration per run")
    parser.add_argument("--http-events", type=int, default=1000)
    parser.add_argument("--skip-http", action="store_true")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--serve-calfeed", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--serve-baseline", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_calfeed:
        serve_calfeed(int(args.serve_calfeed[0]), int(args.serve_calfeed[1]))
        return
    if args.serve_baseline:
        serve_baseline(int(args.serve_baseline[0]), args.serve_baseline[1])
        return
    results: dict[str, Any] = {"render": bench_render([100, 1000, 5000])}
    print("(a) render: cold vs re-assembly from cached VEVENT blocks")
    print(f"{'events':>7} {'cold µs/ev':>11} {'reassembly µs/ev':>17} {'ratio':>7}")
    for row in results["render"]:
        print(f"{row['events']:>7} {row['cold_us_per_event']:>11.1f} "
              f"{row['reassembly_us_per_event']:>17.2f} {row['ratio']:>6.0f}x")
    results["serialise"] = serialised = bench_serialise(1000)
    print("(n) serialise: ical_text.component_bytes vs icalendar's to_ical, median of 5")
    print(f"{'events':>7} {'ical_text µs/ev':>16} {'icalendar µs/ev':>16} {'ratio':>6}")
    print(f"{serialised['events']:>7} {serialised['ical_text_us_per_event']:>16.1f} "
          f"{serialised['icalendar_us_per_event']:>16.1f} {serialised['ratio']:>6.2f}")
    if not args.skip_http:
        results["http"] = bench_http(args.seconds, args.http_events)
        print(f"(b) HTTP, {args.http_events} events, wrk -t1 -c32 -d{args.seconds}s, "
              "median of 3 alternating pairs (all pair ratios in brackets)")
        print(f"{'case':<24} {'baseline rps':>13} {'calfeed rps':>12} {'ratio':>6} "
              f"{'base CPU µs/req':>16} {'calfeed CPU µs/req':>19} {'CPU ratio':>10}")
        for row in results["http"]:
            if "case" in row:
                print(f"{row['case']:<24} {row['baseline_rps']:>13.0f} "
                      f"{row['calfeed_rps']:>12.0f} {row['ratio']:>6.2f} "
                      f"{row['baseline_cpu_us']:>16.1f} {row['calfeed_cpu_us']:>19.1f} "
                      f"{row['cpu_ratio']:>10.2f}  "
                      f"[{', '.join(f'{r:.2f}' for r in row['ratios'])}]")
    if args.json:
        print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
