"""The datasets of a whole service, in Redis: what every process serves from.

Key layout, version 1 (`<prefix>` is the redis_prefix setting; nothing else is written):

| key                              | type   | holds                                          |
|----------------------------------|--------|------------------------------------------------|
| `<prefix>:v1:layout`             | string | `calfeed-shared-1`: whose keys these are       |
| `<prefix>:v1:leader`             | string | the syncing process's token, with the lease    |
|                                  |        | as its expiry                                  |
| `<prefix>:v1:revisions`          | hash   | feed kind -> its dataset's revision, a new     |
|                                  |        | random value at every write                    |
| `<prefix>:v1:generation`         | string | moves whenever any dataset's items change      |
| `<prefix>:v1:dataset:<kind>`     | string | zlib-compressed JSON: `{"format": 1, "kind":`  |
|                                  |        | `..., "state": ...}`, the state is what the    |
|                                  |        | state folder holds (items per list, sync       |
|                                  |        | times, reference lists, when items changed)    |
| `<prefix>:v1:budget:calls`       | zset   | the LL2 calls of the last hour, by time        |
| `<prefix>:v1:budget:blocked-until` | string | LL2's 429: no call before this (epoch s)     |
| `<prefix>:v1:budget:limit`       | string | the limit /api-throttle/ reported, if stricter |

Only the leader writes a dataset, and only while its lease is its own (the check and the
write are one Lua script): a leader that hung and woke after another took over cannot
overwrite newer data. A layout key with another value, or a dataset that does not decode,
is logged and left alone.
"""

from __future__ import annotations

import asyncio
import codecs
import json
import logging
import uuid
import zlib
from collections.abc import Iterable, Iterator
from typing import Any

from redis.asyncio import Redis

from calfeed.collector import collector_paused
from calfeed.json_steps import dumping, loading
from calfeed.sanitize import excerpt
from calfeed.steps import in_turns

log = logging.getLogger("calfeed.shared")

LAYOUT = b"calfeed-shared-1"
VERSION = "v1"
FORMAT = 1
# the largest dataset a process reads or decompresses (a foreign value must not fill
# memory): a detailed launch list of a few hundred launches is some 10 MB of JSON
MAX_DATASET_BYTES = 128 * 1024 * 1024

# renew the lease if it is ours, take it if it is free: 1 renewed, 2 taken, 0 another's
_LEASE = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end
if not holder then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 2 end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
# a dataset written only by the lease holder, with its revision (a value never used
# before, in any Redis: one that restarted empty, or from an old backup, cannot repeat
# what a follower holds); 0 if the lease is another's
_WRITE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[2], ARGV[2])
redis.call('HSET', KEYS[3], ARGV[3], ARGV[5])
if ARGV[4] == '1' then redis.call('INCR', KEYS[4]) end
return 1
"""


async def encode(kind: str, state: dict[str, Any]) -> bytes:
    """A dataset's state as stored (ASCII JSON: LL2 text may hold lone surrogates): its
    text made with turns for other requests, compressed in a thread, which zlib lets have
    the GIL back (json.dumps in a thread held it throughout: 0.4 s at 50,000 events)."""
    pieces = await in_turns(dumping({"format": FORMAT, "kind": kind, "state": state}))
    return await asyncio.to_thread(_compress, pieces)


def _compress(pieces: list[str]) -> bytes:
    compressor = zlib.compressobj(6)
    packed = [compressor.compress(piece.encode("ascii")) for piece in pieces]
    packed.append(compressor.flush())
    return b"".join(packed)


async def decode(kind: str, blob: bytes) -> dict[str, Any] | None:
    """A stored dataset's state; None (logged) if it is not one calfeed wrote. Inflated
    in a thread, read with turns for other requests (as `encode`)."""
    try:
        chunks = await asyncio.to_thread(_inflate, blob)
        # (new long-lived items: see collector_paused)
        with collector_paused():
            data = await in_turns(loading("", _text_of(chunks)))
    except (zlib.error, ValueError, RecursionError) as error:
        log.warning("shared=ignored key=dataset:%s reason=%r", kind, excerpt(str(error)))
        return None
    if (not isinstance(data, dict) or data.get("format") != FORMAT
            or data.get("kind") != kind or not isinstance(data.get("state"), dict)):
        log.warning("shared=ignored key=dataset:%s reason='not a calfeed dataset'", kind)
        return None
    state: dict[str, Any] = data["state"]
    return state


# bytes inflated at a time: the text is decoded a piece at a time as the reading reaches
# it, never made one string (see json_steps._Reader)
_CHUNK = 1 << 20


def _inflate(blob: bytes) -> list[bytes]:
    """A stored dataset's JSON, inflated in pieces (in a thread: zlib lets go of the GIL
    while it inflates, where making the text of it would not); ValueError past
    MAX_DATASET_BYTES."""
    inflate = zlib.decompressobj()
    chunks: list[bytes] = []
    size, rest = 0, blob
    while True:
        before = len(rest)
        chunk = inflate.decompress(rest, _CHUNK)
        rest = inflate.unconsumed_tail
        size += len(chunk)
        if size > MAX_DATASET_BYTES:
            raise ValueError(f"larger than {MAX_DATASET_BYTES} bytes")
        if chunk:
            chunks.append(chunk)
        elif not rest or len(rest) == before:  # (all read, or nothing more to read)
            if not inflate.eof:  # (cut short: a valid start is no dataset)
                raise ValueError("the compressed text ends early")
            return chunks


def _text_of(chunks: list[bytes]) -> Iterator[str]:
    """The pieces' text, each decoded when asked for and then let go (as json.loads
    reads bytes; a UnicodeDecodeError is a ValueError)."""
    if not chunks:
        return
    # (the encoding from the first four bytes, as json.loads tells it, whatever the pieces)
    head = b"".join(chunks[:4])[:4]
    decoder = codecs.getincrementaldecoder(json.detect_encoding(head))("surrogatepass")
    chunks.reverse()  # (popped from the end, first first)
    while chunks:
        yield decoder.decode(chunks.pop())
    yield decoder.decode(b"", final=True)


class SharedStore:
    """Reads and writes the service's datasets, lease and generation under one prefix."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self.redis = redis
        self.prefix = f"{prefix}:{VERSION}"
        self._layout = f"{self.prefix}:layout"
        self._leader = f"{self.prefix}:leader"
        self._revisions = f"{self.prefix}:revisions"
        self._generation = f"{self.prefix}:generation"
        self._lease = redis.register_script(_LEASE)
        self._release = redis.register_script(_RELEASE)
        self._write = redis.register_script(_WRITE)
        # revisions fields already warned about
        self._warned: set[Any] = set()

    def _dataset(self, kind: str) -> str:
        return f"{self.prefix}:dataset:{kind}"

    async def layout(self) -> str:
        """"ours" (the layout key is calfeed's), "new" (it was missing: an empty or
        restarted Redis; now set), or "foreign" (another value: nothing here is read)."""
        if await self.redis.set(self._layout, LAYOUT, nx=True):
            return "new"
        value = await self.redis.get(self._layout)
        return "ours" if value == LAYOUT else "foreign"

    async def hold_lease(self, token: str, lease_seconds: float) -> int:
        """Renew our lease (1), take a free one (2), or find it another's (0)."""
        return int(await self._lease(
            keys=[self._leader], args=[token, str(max(1, int(lease_seconds * 1000)))]))

    async def release_lease(self, token: str) -> None:
        """Give the lease up (a clean shutdown: another process takes over at once)."""
        await self._release(keys=[self._leader], args=[token])

    async def revisions(self) -> dict[str, str]:
        """Feed kind -> its dataset's revision (a new value whenever it is written)."""
        raw = await self.redis.hgetall(self._revisions)
        found: dict[str, str] = {}
        for key, value in raw.items():
            try:
                name = key.decode("ascii") if isinstance(key, bytes) else key
                found[name] = value.decode("ascii") if isinstance(value, bytes) else value
            except UnicodeDecodeError:
                if key not in self._warned:
                    # once: every process looks every second
                    self._warned.add(key)
                    log.warning("shared=ignored key=revisions field=%r", excerpt(repr(key)))
        return found

    async def missing(self, kinds: Iterable[str]) -> set[str]:
        """Of these kinds, those whose dataset is not in Redis (whatever the revisions
        say: evicted under maxmemory, a partial restore, deleted by hand)."""
        names = list(kinds)
        found = [await self.redis.exists(self._dataset(name)) for name in names]
        return {name for name, there in zip(names, found, strict=True) if not there}

    async def generation(self) -> int:
        """The service's generation: moves whenever any dataset's items change."""
        value = await self.redis.get(self._generation)
        try:
            return int(value or 0)
        except ValueError:
            return 0

    async def read(self, kind: str) -> dict[str, Any] | None:
        """A kind's dataset state, or None if there is none (or none that decodes)."""
        size = await self.redis.strlen(self._dataset(kind))
        if size > MAX_DATASET_BYTES:
            log.warning("shared=ignored key=dataset:%s reason='%d bytes, more than %d'",
                        kind, size, MAX_DATASET_BYTES)
            return None
        blob = await self.redis.get(self._dataset(kind))
        if not isinstance(blob, bytes):
            return None
        return await decode(kind, blob)

    async def write(
        self, kind: str, state: dict[str, Any], token: str, changed: bool
    ) -> str | None:
        """Store a kind's dataset if the lease is `token`'s: its revision, or None."""
        blob = await encode(kind, state)
        revision = uuid.uuid4().hex
        written = int(await self._write(
            keys=[self._leader, self._dataset(kind), self._revisions, self._generation],
            args=[token, blob, kind, "1" if changed else "0", revision],
        ))
        return revision if written else None
