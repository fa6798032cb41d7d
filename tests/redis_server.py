"""A real redis-server (Debian's) on a free loopback port, persistence off, per test.

The shared-service tests need the real thing: Lua scripts, expiring keys, a server that
goes away and comes back empty. Where redis-server is not installed those tests skip,
except under CALFEED_REQUIRE_REDIS=1 (CI), where the missing server is a failure.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import socket
import ssl
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
    """redis-server on one port; stop() and start() again keep the port, not the data.

    With `tls` (a folder for a self-signed certificate) it speaks TLS only: rediss://.
    """

    def __init__(self, tls: pathlib.Path | None = None) -> None:
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.tls = tls
        if tls is not None:
            subprocess.run(
                ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                 "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                 "-keyout", str(tls / "redis.key"), "-out", str(tls / "redis.crt")],
                check=True, capture_output=True,
            )

    @property
    def url(self) -> str:
        """The redis:// (or rediss://, trusting its own certificate) URL of the server."""
        if self.tls is not None:
            return f"rediss://127.0.0.1:{self.port}/0?ssl_ca_certs={self.tls / 'redis.crt'}"
        return f"redis://127.0.0.1:{self.port}/0"

    def _flags(self) -> list[str]:
        if self.tls is None:
            return ["--port", str(self.port)]
        return ["--port", "0", "--tls-port", str(self.port),
                "--tls-cert-file", str(self.tls / "redis.crt"),
                "--tls-key-file", str(self.tls / "redis.key"),
                "--tls-ca-cert-file", str(self.tls / "redis.crt"), "--tls-auth-clients", "no"]

    def _pong(self) -> bool:
        with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as raw:
            if self.tls is None:
                raw.sendall(b"PING\r\n")
                return raw.recv(16).startswith(b"+PONG")
            context = ssl.create_default_context(cafile=str(self.tls / "redis.crt"))
            with context.wrap_socket(raw, server_hostname="127.0.0.1") as conn:
                conn.sendall(b"PING\r\n")
                return conn.recv(16).startswith(b"+PONG")

    def start(self) -> None:
        """Start (empty: nothing is saved between runs) and wait until it answers."""
        self.process = subprocess.Popen(
            ["redis-server", *self._flags(), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--daemonize", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if self._pong():
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
