"""Work in steps: long passes over a dataset written once, as generators that yield
between slices, and run either at once (tests, tools, the CLI) or with a turn of the
event loop for other requests between two steps (the server).

A generator rather than a coroutine, so that the pure code (feed kinds, the index) need
not know about the loop; and slices rather than threads, since a thread waits for the
GIL for as long as the loop is busy (docs/performance.md, (h)).
"""

from __future__ import annotations

import asyncio
from collections.abc import Generator, Iterator, Sequence
from typing import TypeVar, cast

T = TypeVar("T")
S = TypeVar("S", bound=Sequence[object])


def slices(items: S, size: int) -> Iterator[S]:
    """`items` cut into consecutive slices of `size` (the last one shorter)."""
    for start in range(0, len(items), size):
        yield cast(S, items[start:start + size])


def all_at_once(steps: Generator[None, None, T]) -> T:
    """What a generator of steps makes, run to its end without a pause."""
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return cast(T, done.value)


async def in_turns(steps: Generator[None, None, T]) -> T:
    """What a generator of steps makes, with a turn of the loop for other requests
    between two of its steps."""
    found: list[T] = []

    def run() -> Generator[None]:
        found.append((yield from steps))

    running = run()
    try:
        for _ in running:
            await asyncio.sleep(0)
    finally:
        # a cancelled caller closes the steps at once (their own `finally`s run: the
        # collector back on, say), not whenever the paused generator is freed
        running.close()
    return found[0]
