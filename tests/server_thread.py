"""calfeed on a loopback port in a thread of its own, for clients that are not asyncio:
a browser, or property tests that send thousands of raw requests."""

from __future__ import annotations

import asyncio
import tempfile
import threading
from typing import Any

from aiohttp import web

from calfeed.server import create_app
from calfeed.settings import Settings
from tests.helpers import NOW


class ServerThread:
    """calfeed on a loopback port, in its own thread and event loop."""

    def __init__(self, items: dict[str, list[Any]] | None, **settings: Any) -> None:
        """Serve `items` per feed kind, or (None) read LL2 as `settings` say."""
        self.items = items
        self.settings = settings
        self.loop = asyncio.new_event_loop()
        self.port = 0
        self.ready = threading.Event()
        self.runner: web.AppRunner | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._start())
        self.ready.set()
        self.loop.run_forever()

    async def _start(self) -> None:
        state = tempfile.mkdtemp()
        app = create_app(Settings(state_dir=state, **self.settings), now=lambda: NOW,
                         items=self.items, background=False)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def start(self) -> str:
        self.thread.start()
        self.ready.wait(20)
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        assert self.runner is not None
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(20)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(20)
        self.loop.close()
