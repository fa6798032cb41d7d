"""The public path: polls through nginx with deploy/nginx.conf's cache against nginx
serving the same gzipped body as a static file (gzip_static), in the same nginx and the
same run, both over https (the deployment's TLS); and calfeed alone against that static
file, both over plain http (calfeed serves no TLS itself), for the record.

`wrk -t1 -c32` from a separate process on
loopback, alternated three times, the median pair kept; CPU per request is that of
nginx's workers plus, where it serves, calfeed's process.

Run: .venv/bin/python bench/nginx_bench.py   (needs wrk and nginx from Debian)
"""

from __future__ import annotations

import asyncio
import json
import pathlib
import ssl
import subprocess
import sys
import tempfile
import urllib.request
from typing import Any

from bench import _children, _cpu_seconds, _free_port, _start, _wait_ready, _wrk

sys.path.append(str(pathlib.Path(__file__).resolve().parents[1]))

from tests.nginx_server import Nginx

FEED = "/events.ics?precision=any"


async def bench(seconds: int = 4, rounds: int = 3, events: int = 1000) -> dict[str, Any]:
    port = _free_port()
    calfeed = _start("--serve-calfeed", str(port), str(events))
    with tempfile.TemporaryDirectory() as folder_name:
        folder = pathlib.Path(folder_name)
        try:
            direct = f"http://127.0.0.1:{port}{FEED}"
            _wait_ready(direct)
            request = urllib.request.Request(direct, headers={"Accept-Encoding": "gzip"})
            with urllib.request.urlopen(request) as response:
                gzipped = response.read()
            (folder / "static").mkdir()
            (folder / "static" / "events.ics").write_bytes(b"")  # gzip_static serves the .gz
            (folder / "static" / "events.ics.gz").write_bytes(gzipped)
            static_port, plain_port = _free_port(), _free_port()
            nginx = Nginx(folder, [port, port], extra=f"""
    server {{
        listen 127.0.0.1:{static_port} ssl;
        listen 127.0.0.1:{plain_port};
        ssl_certificate {folder}/fullchain.pem;
        ssl_certificate_key {folder}/privkey.pem;
        root {folder}/static;
        gzip_static on;
        default_type text/calendar;
        location / {{ add_header Cache-Control "public, max-age=3600"; }}
    }}""")
            await nginx.start()
            try:
                assert nginx.process is not None
                workers = _children(nginx.process.pid)

                def nginx_cpu(_: int) -> float:
                    return sum(_cpu_seconds(w) for w in workers)

                def all_cpu(_: int) -> float:
                    return nginx_cpu(0) + _cpu_seconds(calfeed.pid)

                cached = f"https://localhost:{nginx.https_port}{FEED}"
                static = f"https://localhost:{static_port}/events.ics"
                # calfeed alone speaks plain http: against nginx static without TLS too
                static_plain = f"http://127.0.0.1:{plain_port}/events.ics"
                trust = ssl.create_default_context()
                trust.check_hostname, trust.verify_mode = False, ssl.CERT_NONE
                for url in (cached, static, static_plain):  # the same bytes on all
                    with urllib.request.urlopen(urllib.request.Request(
                            url, headers={"Accept-Encoding": "gzip"}), context=trust) as r:
                        assert r.read() == gzipped, url
                gzip_header = {"Accept-Encoding": "gzip"}
                rows = []
                for label, baseline, url, cpu in (
                        ("nginx cache", static, cached, all_cpu),
                        ("calfeed alone (both plain http)", static_plain, direct, all_cpu)):
                    pairs = []
                    for _ in range(rounds):
                        base, base_cpu = await asyncio.to_thread(
                            _wrk, baseline, seconds, gzip_header, 0, cpu=nginx_cpu)
                        ours, our_cpu = await asyncio.to_thread(
                            _wrk, url, seconds, gzip_header, 0, cpu=cpu)
                        pairs.append((ours / base, base, ours, base_cpu, our_cpu))
                    ratio, base, ours, base_cpu, our_cpu = sorted(pairs)[len(pairs) // 2]
                    rows.append({"case": label, "static_rps": base, "rps": ours,
                                 "ratio": ratio, "ratios": sorted(p[0] for p in pairs),
                                 "static_cpu_us": base_cpu, "cpu_us": our_cpu,
                                 "cpu_ratio": base_cpu / our_cpu})
                return {"events": events, "gzipped_bytes": len(gzipped), "rows": rows}
            finally:
                await nginx.stop()
        finally:
            calfeed.terminate()
            calfeed.wait()


def main() -> None:
    if subprocess.run(["which", "wrk", "nginx"], capture_output=True).returncode:
        raise SystemExit("wrk and nginx are needed (apt-get install wrk nginx)")
    print(json.dumps(asyncio.run(bench()), indent=2))


if __name__ == "__main__":
    main()
