"""The README's deployment, run: Debian's nginx with deploy/nginx.conf (TLS, a
self-signed certificate made here) in front of two calfeed processes on one Redis."""

from __future__ import annotations

import asyncio
import os
import pathlib
import shutil
import signal
import ssl
import subprocess
from collections.abc import AsyncIterator

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.fake_ll2 import FakeLL2
from tests.processes import Calfeed, Start, all_ok, until
from tests.redis_server import free_port, needs_redis

HAVE_NGINX = shutil.which("nginx") is not None and shutil.which("openssl") is not None
if not HAVE_NGINX and os.environ.get("CALFEED_REQUIRE_NGINX") == "1":
    raise RuntimeError("CALFEED_REQUIRE_NGINX=1 but nginx (or openssl) is not installed")

pytestmark = [needs_redis, pytest.mark.slow,
              pytest.mark.skipif(not HAVE_NGINX, reason="Debian nginx is not installed")]

SAMPLE = pathlib.Path(__file__).parents[1] / "deploy" / "nginx.conf"


class Nginx:
    """nginx on free loopback ports with the sample config, its own prefix and pid."""

    def __init__(self, folder: pathlib.Path, backends: list[int]) -> None:
        self.folder = folder
        self.https_port, self.http_port = free_port(), free_port()
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
             "-subj", "/CN=localhost", "-keyout", str(folder / "privkey.pem"),
             "-out", str(folder / "fullchain.pem")],
            check=True, capture_output=True,
        )
        sample = SAMPLE.read_text()
        # only addresses and paths change; every directive of the sample is kept
        replacements = {
            "listen 443 ssl;": f"listen 127.0.0.1:{self.https_port} ssl;",
            "listen 80;": f"listen 127.0.0.1:{self.http_port};",
            "server 127.0.0.1:8081 ": f"server 127.0.0.1:{backends[0]} ",
            "server 127.0.0.1:8082 ": f"server 127.0.0.1:{backends[1]} ",
            "/etc/ssl/calfeed/": f"{folder}/",
        }
        for old, new in replacements.items():
            assert old in sample, old
            sample = sample.replace(old, new)
        (folder / "calfeed.conf").write_text(sample)
        temp = folder / "temp"
        temp.mkdir()
        (folder / "nginx.conf").write_text(f"""
daemon off;
worker_processes 1;
pid {folder}/nginx.pid;
error_log {folder}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log {folder}/access.log;
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
    include {folder}/calfeed.conf;
}}
""")
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            "nginx", "-p", str(self.folder), "-c", str(self.folder / "nginx.conf"),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )

        async def listening() -> bool:
            assert self.process is not None
            if self.process.returncode is not None:
                assert self.process.stderr is not None
                raise AssertionError((await self.process.stderr.read()).decode())
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.https_port)
            except OSError:
                return False
            writer.close()
            return True

        await until(listening, 10)

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGQUIT)
            await asyncio.wait_for(self.process.wait(), 10)


@pytest.fixture
async def deployment(
    upstream: FakeLL2, serve: Start, tmp_path: pathlib.Path
) -> AsyncIterator[tuple[Nginx, list[Calfeed]]]:
    first, second = await serve("--trust-proxy"), await serve("--trust-proxy")
    nginx = Nginx(tmp_path, [first.port, second.port])
    await nginx.start()
    yield nginx, [first, second]
    await nginx.stop()


async def served(instance: Calfeed) -> dict[str, float]:
    """An instance's /events.ics answers by status, from its own /metrics."""
    async with aiohttp.ClientSession() as session, session.get(
            f"{instance.url}/metrics") as response:
        text = await response.text()
    counts = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if (sample.name == "calfeed_requests_total"
                    and sample.labels["route"] == "/events.ics"):
                counts[sample.labels["status"]] = sample.value
    return counts


async def test_polls_through_nginx_are_revalidated_whichever_instance_answers(
    deployment: tuple[Nginx, list[Calfeed]],
) -> None:
    nginx, instances = deployment
    await until(lambda: all_ok(instances), 10)
    trust = ssl.create_default_context(cafile=str(nginx.folder / "fullchain.pem"))
    url = f"https://localhost:{nginx.https_port}/events.ics?past_days=3"
    # a fresh connection per poll, as a calendar service's are hours apart
    async with aiohttp.ClientSession() as session:
        async with session.get(url, ssl=trust, headers={"Connection": "close"}) as first:
            assert first.status == 200
            body = await first.read()
            etag = first.headers["ETag"]
            assert first.headers["Content-Encoding"] == "gzip"
            assert first.headers["Cache-Control"] == "public, max-age=3600"
            assert first.headers["Vary"] == "Accept-Encoding"
        assert b"BEGIN:VEVENT" in body
        statuses = []
        for _ in range(6):
            async with session.get(url, ssl=trust, headers={
                "If-None-Match": etag, "Connection": "close"}) as again:
                statuses.append(again.status)
                assert again.headers["ETag"] == etag
        assert statuses == [304] * 6
        # plain http is sent to https (Outlook.com takes only https feeds)
        async with session.get(f"http://127.0.0.1:{nginx.http_port}/events.ics",
                               allow_redirects=False) as plain:
            assert plain.status == 301
            assert plain.headers["Location"].startswith("https://")
        # /metrics stays inside; /healthz comes through for a monitor
        async with session.get(f"https://localhost:{nginx.https_port}/metrics",
                               ssl=trust) as hidden:
            assert hidden.status == 404
        async with session.get(f"https://localhost:{nginx.https_port}/healthz",
                               ssl=trust) as checked:
            assert (await checked.json())["status"] == "ok"
    # both instances answered polls, and each gave 304s for an ETag it may never have sent
    counts = [await served(instance) for instance in instances]
    assert all(c.get("304", 0) >= 2 for c in counts), counts
    assert sum(c.get("200", 0) for c in counts) == 1

    # one instance goes down: nginx sends polls to the other, still 304
    instances[0].process.kill()
    await instances[0].process.wait()
    async with aiohttp.ClientSession() as session:
        for _ in range(3):
            async with session.get(url, ssl=trust, headers={
                "If-None-Match": etag, "Connection": "close"}) as poll:
                assert poll.status == 304
