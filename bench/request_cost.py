"""CPU instructions per cached feed request, calfeed against the minimal aiohttp app.

The wrk figures in bench.py move with whatever else the machine runs; instruction counts
do not. Each case serves N requests in-process (raw HTTP bytes into aiohttp's protocol, a
transport that discards what is written, so no sockets and no kernel time) under
valgrind's callgrind, once with A and once with B requests; (count_B - count_A) / (B - A)
is the cost of one request with start-up cancelled out.

Run: .venv/bin/python bench/request_cost.py   (needs valgrind: apt-get install valgrind)
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aiohttp import web

# bench.py beside this script (its folder is first on sys.path when run as a script)
from bench import synthetic_events
from calfeed.server import SYNCER, create_app
from calfeed.settings import Settings

FEED = b"/events.ics?precision=any"
CASES = {
    # name: (app, path, extra request headers)
    "baseline gzip": ("baseline", b"/events.ics", b"Accept-Encoding: gzip\r\n"),
    "calfeed gzip": ("calfeed", FEED, b"Accept-Encoding: gzip\r\n"),
    "baseline plain": ("baseline", b"/events.ics", b""),
    "calfeed plain": ("calfeed", FEED, b""),
    "calfeed 304": ("calfeed", FEED, b"If-None-Match: *\r\n"),
}


class DiscardingTransport(asyncio.Transport):
    """Counts the responses aiohttp writes and drops the bytes."""

    def __init__(self) -> None:
        super().__init__()
        self.responses = 0
        self.done: asyncio.Future[None] | None = None
        self.want = 0

    def write(self, data: Any) -> None:
        if bytes(data[:9]) == b"HTTP/1.1 ":
            self.responses += 1
            if self.responses == self.want and self.done is not None:
                self.done.set_result(None)

    def writelines(self, list_of_data: Iterable[Any]) -> None:
        for data in list_of_data:
            self.write(data)

    def is_closing(self) -> bool:
        return False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 1), "sockname": ("127.0.0.1", 2)}.get(name, default)

    def close(self) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0


async def serve(case: str, count: int, events: int) -> None:
    """Build both apps, then push `count` requests of one case through aiohttp."""
    calfeed = create_app(Settings(max_feed_bytes=10**9),
                         items={"events": synthetic_events(events)}, background=False)
    runners = [web.AppRunner(calfeed, access_log=None)]
    await runners[0].setup()
    await calfeed[SYNCER][0].tick()
    # the baseline returns calfeed's own bytes, pre-compressed (as bench.py does)
    body = await _first_body(calfeed)
    compressed = gzip.compress(body, mtime=0)

    async def minimal(request: web.Request) -> web.Response:
        if "gzip" in request.headers.get("Accept-Encoding", ""):
            return web.Response(body=compressed, headers={"Content-Encoding": "gzip"},
                                content_type="text/calendar")
        return web.Response(body=body, content_type="text/calendar")

    baseline = web.Application()
    baseline.router.add_get("/events.ics", minimal)
    runners.append(web.AppRunner(baseline, access_log=None))
    await runners[1].setup()
    which, path, headers = CASES[case]
    app = calfeed if which == "calfeed" else baseline
    raw = b"GET " + path + b" HTTP/1.1\r\nHost: bench\r\n" + headers + b"\r\n"
    protocol = app._make_handler(access_log=None)()
    transport = DiscardingTransport()
    protocol.connection_made(transport)
    transport.want = count
    transport.done = asyncio.get_running_loop().create_future()
    for _ in range(count):
        protocol.data_received(raw)
        await asyncio.sleep(0)  # one request at a time, as a polling client sends them
    await transport.done
    for runner in runners:
        await runner.cleanup()


async def _first_body(app: web.Application) -> bytes:
    """The feed body calfeed serves for FEED (through the same protocol path)."""
    chunks: list[bytes] = []

    class Collect(DiscardingTransport):
        def write(self, data: Any) -> None:
            chunks.append(bytes(data))
            super().write(data)

    protocol = app._make_handler(access_log=None)()
    transport = Collect()
    protocol.connection_made(transport)
    transport.want = 1
    transport.done = asyncio.get_running_loop().create_future()
    protocol.data_received(b"GET " + FEED + b" HTTP/1.1\r\nHost: bench\r\n\r\n")
    await transport.done
    response = b"".join(chunks)
    return response.split(b"\r\n\r\n", 1)[1]


def instructions(case: str, count: int, events: int) -> int:
    """Instructions callgrind counts for a whole run of one case."""
    result = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable,
         __file__, "--serve", case, str(count), "--events", str(events)],
        capture_output=True, text=True, check=True,
    )
    match = re.search(r"Collected : (\d+)", result.stderr)
    if not match:
        raise RuntimeError(result.stderr[-2000:])
    return int(match[1])


def main() -> None:
    """Measure every case and print instructions per request with ratios."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--short", type=int, default=300, help="requests in the short run")
    parser.add_argument("--long", type=int, default=1300, help="requests in the long run")
    parser.add_argument("--serve", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve(args.serve[0], int(args.serve[1]), args.events))
        return
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")
    runs = [(case, count) for case in CASES for count in (args.short, args.long)]
    with ThreadPoolExecutor(max_workers=2) as pool:
        counts = dict(zip(runs, pool.map(lambda r: instructions(*r, args.events), runs),
                          strict=True))
    per_request = {case: (counts[case, args.long] - counts[case, args.short])
                   / (args.long - args.short) for case in CASES}
    print(f"instructions per request, {args.events} events, in-process, callgrind")
    print(f"{'case':<16} {'instructions':>13} {'baseline/calfeed':>17}")
    for case, cost in per_request.items():
        base = per_request["baseline plain" if "plain" in case or "304" in case
                           else "baseline gzip"]
        ratio = "" if case.startswith("baseline") else f"{base / cost:.2f}"
        print(f"{case:<16} {cost:>13,.0f} {ratio:>17}")


if __name__ == "__main__":
    main()
