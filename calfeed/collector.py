"""The cyclic garbage collector kept away from the datasets and what is made of them.

Tens of thousands of long-lived objects (items, their index entries) hold no reference
cycles, so reference counting frees them; a pass of the collector over them finds
nothing, and stops the loop for as long as it walks them. So the collector is off while
they are made, and what was made is frozen out of its sight (`gc.freeze`) when it is on
again. The server also freezes at each data change, and unfreezes for one full pass an
hour (server.warm_on_change), for what else became cyclic garbage meanwhile.

What a freeze takes along that later becomes cyclic garbage (a closed connection's
objects, say, made by a request served while the collector was off) waits for that
hourly pass: a bounded delay, at most an hour's data changes' worth, not a leak.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

_collector_pauses = 0
_collector_was_enabled = False


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """The cyclic garbage collector off while long-lived data is made in steps on the loop
    (the index's entries, a dataset read from the shared store): tens of thousands of new
    objects made it pass over the growing heap again and again (more than half the time
    to index 50,000 items; 0.25 s in one piece while a shared dataset of 50,000 events was
    read). What is made holds no cycles.

    What was made meanwhile is frozen (into the permanent generation, as the server does
    at each data change) before the collector is on again: else its first pass walks all
    of it at once, the loop's longest stall after new data (52 ms at 50,000 items)."""
    global _collector_pauses, _collector_was_enabled
    if _collector_pauses == 0:
        _collector_was_enabled = gc.isenabled()
        gc.disable()
    _collector_pauses += 1
    try:
        yield
    finally:
        _collector_pauses -= 1
        if _collector_pauses == 0 and _collector_was_enabled:
            gc.freeze()
            gc.enable()
