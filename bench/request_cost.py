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
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aiohttp import web

# bench.py beside this script (its folder is first on sys.path when run as a script)
from bench import minimal_app, synthetic_events
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
    """Counts the responses aiohttp writes; keeps the bytes only when asked to."""

    def __init__(self, want: int, keep: bool = False) -> None:
        super().__init__()
        self.want = want
        self.responses = 0
        self.kept: list[bytes] | None = [] if keep else None
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def write(self, data: Any) -> None:
        if self.kept is not None:
            self.kept.append(bytes(data))
        if bytes(data[:9]) == b"HTTP/1.1 ":
            self.responses += 1
            if self.responses == self.want:
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


async def push(
    app: web.Application, raw: bytes, count: int, keep: bool = False
) -> DiscardingTransport:
    """Send one raw request `count` times on one connection, one at a time as a polling
    client does, and wait for every response."""
    protocol = app._make_handler(access_log=None)()
    transport = DiscardingTransport(count, keep)
    protocol.connection_made(transport)
    for _ in range(count):
        protocol.data_received(raw)
        await asyncio.sleep(0)
    await transport.done
    return transport


def _request(path: bytes, headers: bytes = b"") -> bytes:
    return b"GET " + path + b" HTTP/1.1\r\nHost: bench\r\n" + headers + b"\r\n"


async def serve(case: str, count: int, events: int) -> None:
    """Build both apps, then push `count` requests of one case through aiohttp."""
    calfeed = create_app(Settings(max_feed_bytes=10**9),
                         items={"events": synthetic_events(events)}, background=False)
    runners = [web.AppRunner(calfeed, access_log=None)]
    await runners[0].setup()
    await calfeed[SYNCER].tick()
    # the baseline returns calfeed's own bytes (as in bench.py)
    first = await push(calfeed, _request(FEED), 1, keep=True)
    assert first.kept is not None
    baseline = minimal_app(b"".join(first.kept).split(b"\r\n\r\n", 1)[1])
    runners.append(web.AppRunner(baseline, access_log=None))
    await runners[1].setup()
    which, path, headers = CASES[case]
    await push(calfeed if which == "calfeed" else baseline, _request(path, headers), count)
    for runner in runners:
        await runner.cleanup()


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
        counts = dict(zip(runs, pool.map(lambda r: instructions(r[0], r[1], args.events), runs),
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
