"""A real redis-server (Debian's) on a free loopback port, persistence off, per test.

The shared-service tests need the real thing: Lua scripts, expiring keys, a server that
goes away and comes back empty. Where redis-server is not installed those tests skip,
except under CALFEED_REQUIRE_REDIS=1 (CI), where the missing server is a failure.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time

import pytest

HAVE_REDIS = shutil.which("redis-server") is not None
if not HAVE_REDIS and os.environ.get("CALFEED_REQUIRE_REDIS") == "1":
    raise RuntimeError("CALFEED_REQUIRE_REDIS=1 but redis-server is not installed")

needs_redis = pytest.mark.skipif(not HAVE_REDIS, reason="Debian redis-server is not installed")


def free_port() -> int:
    """A loopback port nobody listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class RedisServer:
    """redis-server on one port; stop() and start() again keep the port, not the data."""

    def __init__(self) -> None:
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The redis:// URL of the server."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start (empty: nothing is saved between runs) and wait until it answers."""
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--daemonize", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def stop(self) -> None:
        """Stop it (its data goes with it)."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
            self.process = None
