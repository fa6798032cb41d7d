"""Upstream cost and feed latency of calfeed's background sync, as ratios within one run.

(c) upstream calls in a simulated day (injected clock, fake LL2 that throttles like LL2)
    at several traffic levels, against the same day with no traffic at all;
(d) feed latency percentiles while a full refresh is running (slow, paginated upstream,
    10% of events changed) against the same requests while idle.

Run: .venv/bin/python bench/sync_bench.py
"""

from __future__ import annotations

import asyncio
import pathlib
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import ClientSession
from aiohttp.test_utils import TestClient, TestServer

# run from the repository root (python -m bench.sync_bench, or with it on sys.path)
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from calfeed.server import SYNCER, create_app
from calfeed.settings import Settings
from tests.fake_ll2 import FakeLL2
from tests.helpers import Clock, make_event

START = datetime(2026, 11, 29, 12, tzinfo=UTC)


def upcoming(count: int, now: datetime) -> list[dict[str, Any]]:
    """LL2-shaped events, one every five hours, with an exact one tomorrow at noon."""
    events = [
        make_event(i, (now + timedelta(hours=5 * i)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                   type_id=i % 20, agencies=(i % 5,), precision=[1, 5, 7][i % 3])
        for i in range(1, count)
    ]
    events.append(make_event(count, (now + timedelta(hours=24)).strftime("%Y-%m-%dT%H:%M:%SZ")))
    return events


async def simulated_day(requests_per_minute: int) -> dict[str, Any]:
    """Upstream calls during 24 simulated hours of steady traffic."""
    clock = Clock(START)
    fake = FakeLL2(upcoming=upcoming(150, START), clock=clock, rate_limit=15)
    async with TestServer(fake.app()) as upstream:
        with tempfile.TemporaryDirectory() as state:
            settings = Settings(upstream=str(upstream.make_url("/2.3.0")), state_dir=state)
            app = create_app(settings, now=clock, background=False)
            async with TestClient(TestServer(app)) as client:
                await client.get("/events.ics")
                for minute in range(24 * 60):
                    clock.advance(60)
                    await app[SYNCER].tick()
                    for n in range(requests_per_minute):
                        type_id = (minute * requests_per_minute + n) % 20
                        await client.get(f"/events.ics?type={type_id}&past_days={n % 8}")
    return {"requests_per_minute": requests_per_minute, "upstream_calls": len(fake.list_calls()),
            "max_in_an_hour": fake.most_in_any_hour(), "throttled": fake.throttled}


def percentiles(samples: list[float]) -> dict[str, float]:
    """p50/p95/p99 in milliseconds."""
    cuts = statistics.quantiles(samples, n=100)
    return {"p50": cuts[49] * 1000, "p95": cuts[94] * 1000, "p99": cuts[98] * 1000}


async def latency_during_sync(events: int, requests: int) -> dict[str, Any]:
    """Feed latency idle vs while a slow, paginated full refresh runs."""
    fake = FakeLL2(upcoming=upcoming(events, datetime.now(UTC)), max_page=100, reported_limit=300)
    urls = [f"/events.ics?type={t}&precision=any&past_days=30" for t in range(20)]
    async with TestServer(fake.app()) as upstream:
        with tempfile.TemporaryDirectory() as state:
            # a budget as with an API key: the refresh below must be allowed to run
            settings = Settings(upstream=str(upstream.make_url("/2.3.0")), state_dir=state,
                                budget=300)
            app = create_app(settings, background=False)
            async with TestServer(app) as server, ClientSession() as http:
                base = str(server.make_url(""))

                async def timed(url: str) -> float:
                    started = time.perf_counter()
                    async with http.get(base + url) as response:
                        await response.read()
                        assert response.status == 200
                    return time.perf_counter() - started

                for url in urls:  # warm: every feed rendered once
                    await timed(url)
                idle = [await timed(urls[i % len(urls)]) for i in range(requests)]
                # a full refresh due now, against a slow upstream, with 10% of events changed
                syncer = app[SYNCER]
                part = syncer.datasets["events"].parts["upcoming"]
                part.full_at = datetime.now(UTC) - timedelta(hours=2)
                for event in fake.upcoming[::10]:
                    event["last_updated"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
                fake.stall_seconds = 0.3
                refresh = asyncio.create_task(syncer.tick())
                during: list[float] = []
                while not refresh.done() or len(during) < requests // 4:
                    during.append(await timed(urls[len(during) % len(urls)]))
                await refresh
                assert syncer.runs[-1][2] == "full", "the refresh did not run"
    idle_p, during_p = percentiles(idle), percentiles(during)
    return {"events": events, "idle_ms": idle_p, "during_sync_ms": during_p,
            "ratio": {k: during_p[k] / idle_p[k] for k in idle_p},
            "samples": {"idle": len(idle), "during": len(during)}}


async def main() -> None:
    """Run both benchmarks and print their tables."""
    print("(c) upstream calls in one simulated day (150 events, one launch-day spell)")
    print(f"{'req/min':>8} {'calls/day':>10} {'max in 1 h':>11} {'429s':>5} {'vs no traffic':>14}")
    base = None
    for level in (0, 1, 10, 40):
        row = await simulated_day(level)
        base = base or row["upstream_calls"]
        print(f"{level:>8} {row['upstream_calls']:>10} {row['max_in_an_hour']:>11} "
              f"{row['throttled']:>5} {row['upstream_calls'] / base:>13.2f}x")
    row = await latency_during_sync(1000, 400)
    print(f"(d) feed latency, {row['events']} events, idle vs during a full refresh "
          f"({row['samples']['during']} requests during it)")
    for key in ("p50", "p95", "p99"):
        print(f"  {key}: idle {row['idle_ms'][key]:.2f} ms, during sync "
              f"{row['during_sync_ms'][key]:.2f} ms, ratio {row['ratio'][key]:.2f}")


if __name__ == "__main__":
    asyncio.run(main())
