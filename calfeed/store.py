"""The datasets every feed reads, and the one number that says they changed.

Each feed kind has a dataset (dataset.py); the store holds them all and hands out one
generation number that moves whenever any of them publishes new items or is reset.
That number is the one change signal downstream: rendered bodies, prepared responses
and the renderer's warm-up all key on it (and, with several processes, it is what a
follower watches for).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from calfeed.dataset import Dataset, Snapshot


class Store:
    """The datasets of the feed kinds, by name, with one generation across them."""

    def __init__(self, names: Iterable[str]) -> None:
        self.generation = 0
        # one event per waiting task, set when the generation moves
        self._waiters: set[asyncio.Event] = set()
        self.datasets = {name: Dataset(name, self.next_generation) for name in names}

    def next_generation(self) -> int:
        """A new generation (a dataset changed): its number; waiters are woken."""
        self.generation += 1
        for waiter in self._waiters:
            waiter.set()
        return self.generation

    async def wait_for_change(self, seen: int) -> int:
        """Wait until the generation is past `seen`; the generation then."""
        while self.generation <= seen:
            moved = asyncio.Event()
            self._waiters.add(moved)
            try:
                await moved.wait()
            finally:
                self._waiters.discard(moved)
        return self.generation

    def snapshots(self) -> dict[str, Snapshot | None]:
        """Every dataset's current snapshot (for what one kind links to in another)."""
        return {name: dataset.snapshot for name, dataset in self.datasets.items()}

