"""Debian's nginx on free loopback ports, running deploy/nginx.conf as the README shows
it (only listen addresses, upstream ports, certificate and cache paths substituted), with
a self-signed certificate made here: for the deployment test and bench/nginx_bench.py."""

from __future__ import annotations

import asyncio
import pathlib
import signal
import subprocess

from tests.processes import until
from tests.redis_server import free_port

SAMPLE = pathlib.Path(__file__).parents[1] / "deploy" / "nginx.conf"


class Nginx:
    """nginx on free loopback ports with the sample config, its own prefix and pid."""

    def __init__(self, folder: pathlib.Path, backends: list[int], extra: str = "") -> None:
        """The sample in front of `backends` (two ports), with `extra` http-level lines."""
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
            "/var/cache/nginx/calfeed": f"{folder}/cache",
        }
        for old, new in replacements.items():
            assert old in sample, old
            sample = sample.replace(old, new)
        (folder / "calfeed.conf").write_text(sample)
        temp = folder / "temp"
        temp.mkdir()
        (folder / "nginx.conf").write_text(f"""
daemon off;
# the workers write the cache into the test's own (root-only) temporary folder
user root;
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
    {extra}
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
