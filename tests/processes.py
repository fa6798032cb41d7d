"""Real `calfeed serve` processes for the tests: started on free ports, asked over HTTP."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import aiohttp

# the leader lease of the test processes: a take-over is quick to see
LEASE = 3.0


def iso(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


class Calfeed:
    """One `calfeed serve` process."""

    def __init__(self, process: asyncio.subprocess.Process, port: int) -> None:
        self.process = process
        self.port = port
        self.url = f"http://127.0.0.1:{port}"


Start = Callable[..., Any]


async def health(calfeed: Calfeed, wait: float = 5) -> dict[str, Any]:
    """/healthz of a process, retried until it answers (within `wait` seconds)."""
    deadline = time.monotonic() + wait
    while True:
        try:
            async with aiohttp.ClientSession() as session, session.get(
                f"{calfeed.url}/healthz", headers={"Connection": "close"},
                timeout=aiohttp.ClientTimeout(total=2),
            ) as response:
                report: dict[str, Any] = await response.json()
                return report
        except (aiohttp.ClientError, TimeoutError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)


async def feed(calfeed: Calfeed) -> bytes:
    async with aiohttp.ClientSession() as session, session.get(
        f"{calfeed.url}/events.ics", timeout=aiohttp.ClientTimeout(total=5)
    ) as response:
        assert response.status == 200
        return await response.read()


async def until(check: Callable[[], Any], seconds: float) -> float:
    """Wait until an async check is true; how long it took (fails after `seconds`)."""
    began = time.monotonic()
    while not await check():
        assert time.monotonic() - began < seconds, f"not within {seconds} s"
        await asyncio.sleep(0.2)
    return time.monotonic() - began


async def all_ok(processes: list[Calfeed]) -> bool:
    """Whether every process's /healthz says "ok" (it has fresh data)."""
    for process in processes:
        if (await health(process))["status"] != "ok":
            return False
    return True
