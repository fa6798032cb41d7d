"""GET /metrics: what an operator graphs, read back with Prometheus' own parser."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient
from prometheus_client.parser import text_string_to_metric_families

from tests.fake_ll2 import FakeLL2
from tests.helpers import Clock, later, make_event
from tests.redis_server import needs_redis
from tests.test_shared import coordinator_of, rounds


async def scrape(client: TestClient[Any, Any]) -> dict[tuple[str, tuple[tuple[str, str], ...]],
                                                      float]:
    """Every sample of /metrics, by name and labels."""
    response = await client.get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    samples = {}
    for family in text_string_to_metric_families(await response.text()):
        for sample in family.samples:
            samples[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    return samples


async def test_metrics_count_requests_cache_upstream_budget_and_age(
    fake: FakeLL2, calfeed: Any, clock: Clock
) -> None:
    fake.clock = clock
    fake.upcoming = [make_event(i, "2026-12-10T10:00:00Z") for i in range(1, 5)]
    client = await calfeed()
    for _ in range(3):
        assert (await client.get("/events.ics")).status == 200
    assert (await client.get("/events.ics?type=nothing")).status == 400
    assert (await client.get("/nowhere")).status == 404
    await later(client, clock, 120)
    samples = await scrape(client)
    assert samples["calfeed_requests_total", (("route", "/events.ics"), ("status", "200"))] == 3
    assert samples["calfeed_requests_total", (("route", "/events.ics"), ("status", "400"))] == 1
    assert samples["calfeed_requests_total", (("route", "other"), ("status", "404"))] == 1
    # the first request prepared the feed, the next two were answered from it
    assert samples["calfeed_feed_cache_total", (("kind", "events"), ("result", "miss"))] == 1
    assert samples["calfeed_feed_cache_total", (("kind", "events"), ("result", "hit"))] == 2
    sent = len(fake.counted_calls())
    assert samples["calfeed_upstream_calls_total", (("result", "ok"),)] == sent
    assert samples["calfeed_budget_used", ()] == sent
    assert samples["calfeed_budget_left", ()] == samples["calfeed_budget_limit", ()] - sent
    assert samples["calfeed_data_age_seconds", (("kind", "events"),)] == 120
    assert samples["calfeed_leader", ()] == 1
    # a failed call is counted as such
    fake.fail_status, fake.fail_times = 502, -1  # every list fails from now on
    await later(client, clock, 3600)
    samples = await scrape(client)
    assert samples["calfeed_upstream_calls_total", (("result", "error"),)] >= 1
    # the scrape itself is counted, in the next one
    assert samples["calfeed_requests_total", (("route", "/metrics"), ("status", "200"))] == 1


@needs_redis
async def test_metrics_say_leader_or_follower_and_the_services_generation(
    fake: FakeLL2, instances: Any
) -> None:
    fake.upcoming = [make_event(1, "2026-12-10T10:00:00Z")]
    a, b = await instances(), await instances()
    await rounds(a, b)
    first, second = await scrape(a), await scrape(b)
    assert (first["calfeed_leader", ()], second["calfeed_leader", ()]) == (1, 0)
    assert first["calfeed_generation", ()] == second["calfeed_generation", ()] > 0
    assert first["calfeed_generation", ()] == coordinator_of(b).generation
    assert second["calfeed_redis_up", ()] == 1
    # the budget is the service's, on the follower too
    assert second["calfeed_budget_used", ()] == first["calfeed_budget_used", ()] > 0
    # the follower sent nothing upstream
    assert ("calfeed_upstream_calls_total", (("result", "ok"),)) not in second
