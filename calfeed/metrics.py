"""GET /metrics: what an operator graphs, in Prometheus' text format.

A registry per app (prometheus-client), filled at scrape time by one collector. The
request path only adds one to a plain dict entry: every subscriber's poll is counted,
and a prometheus-client Counter takes a lock on every increment (bench/metrics_cost.py
measures what counting costs the cached path). Everything else (budget, data age, role,
generation, upstream calls) is read from the syncer and coordinator when scraped.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import datetime

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from calfeed.coordinator import Coordinator
from calfeed.sync import Syncer

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Counts:
    """What the request path counts: plain integers, read when /metrics is scraped."""

    def __init__(self) -> None:
        # (route, status) -> requests
        self.requests: defaultdict[tuple[str, int], int] = defaultdict(int)
        # (feed kind, "hit" or "miss") -> feed requests answered from a prepared response
        # or not
        self.feed_cache: defaultdict[tuple[str, str], int] = defaultdict(int)


class CalfeedCollector(Collector):
    """Every calfeed metric, made from the app's state at scrape time."""

    def __init__(
        self, counts: Counts, syncer: Callable[[], Syncer],
        coordinator: Callable[[], Coordinator | None], now: Callable[[], datetime],
    ) -> None:
        self.counts = counts
        self._syncer = syncer
        self._coordinator = coordinator
        self._now = now

    def collect(self) -> Iterator[Metric]:
        """The metrics as they stand now."""
        requests = CounterMetricFamily(
            "calfeed_requests", "HTTP requests answered, by route and status",
            labels=["route", "status"])
        for (route, status), count in sorted(self.counts.requests.items()):
            requests.add_metric([route, str(status)], count)
        yield requests
        cache = CounterMetricFamily(
            "calfeed_feed_cache", "feed requests answered from a prepared response (hit) "
            "or rendered or assembled for it (miss)", labels=["kind", "result"])
        for (kind, result), count in sorted(self.counts.feed_cache.items()):
            cache.add_metric([kind, result], count)
        yield cache
        syncer = self._syncer()
        calls = CounterMetricFamily(
            "calfeed_upstream_calls", "requests this process sent to LL2, by outcome",
            labels=["result"])
        for result, count in sorted(syncer.call_results.items()):
            calls.add_metric([result], count)
        yield calls
        view = syncer.budget_view
        yield GaugeMetricFamily("calfeed_budget_limit", "LL2 requests allowed per hour",
                                value=view.limit)
        yield GaugeMetricFamily("calfeed_budget_used",
                                "LL2 requests in the last hour (as the last sync saw it)",
                                value=view.used)
        yield GaugeMetricFamily("calfeed_budget_left",
                                "LL2 requests left in the hour (as the last sync saw it)",
                                value=view.left)
        now = self._now()
        age = GaugeMetricFamily("calfeed_data_age_seconds",
                                "seconds since each kind's upcoming list was synced",
                                labels=["kind"])
        for name, dataset in sorted(syncer.store.datasets.items()):
            seconds = dataset.age("upcoming", now)
            if seconds is not None:
                age.add_metric([name], seconds)
        yield age
        coordinator = self._coordinator()
        leader = coordinator.leader if coordinator else True
        yield GaugeMetricFamily("calfeed_leader",
                                "1 if this process syncs (leads), 0 if it follows",
                                value=1 if leader else 0)
        generation = (coordinator.generation if coordinator
                      else syncer.store.generation)
        yield GaugeMetricFamily("calfeed_generation",
                                "the data's generation (the service's, with Redis)",
                                value=generation)
        if coordinator is not None:
            yield GaugeMetricFamily(
                "calfeed_redis_up", "1 while Redis answers and holds calfeed's data",
                value=1 if coordinator.redis_state == "connected" else 0)


def registry_for(collector: CalfeedCollector) -> CollectorRegistry:
    """A registry of the app's own (none of the process-global default metrics)."""
    registry = CollectorRegistry()
    registry.register(collector)
    return registry


def exposition(registry: CollectorRegistry) -> bytes:
    """The registry in Prometheus' text format."""
    return generate_latest(registry)
