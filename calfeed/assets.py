"""The subscribe page's static files (style, script, icon), held in memory.

aiohttp's own static route opens, stats and closes each file in the thread pool, and a
thread waits for the GIL for as long as the event loop is busy: while a large feed was
rendered, a stylesheet took hundreds of milliseconds. These few small files are read
once at start and answered from memory, gzipped when the client takes it, revalidated
by ETag (`no-cache`: their URLs carry no version, so a new release reaches a browser at
its next page view).
"""

from __future__ import annotations

import gzip
import hashlib
import mimetypes
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from calfeed.negotiation import accepts_gzip, copy_is_current, gzip_etag

# what a browser is told of each kind of file (mimetypes' answers vary by platform)
_TYPES = {".css": "text/css", ".js": "text/javascript", ".svg": "image/svg+xml"}


@dataclass(frozen=True)
class Asset:
    """One static file as served, in both encodings."""

    body: bytes
    gzipped: bytes
    content_type: str
    etag: str


def load_assets(folder: Path) -> dict[str, Asset]:
    """Every file in `folder`, by name."""
    assets = {}
    for path in sorted(folder.iterdir()):
        if not path.is_file():
            continue
        body = path.read_bytes()
        assets[path.name] = Asset(
            body=body,
            gzipped=gzip.compress(body, compresslevel=9, mtime=0),
            content_type=(_TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0]
                          or "application/octet-stream"),
            etag=f'"{hashlib.sha256(body).hexdigest()[:32]}"',
        )
    return assets


def asset_response(request: web.Request, assets: Mapping[str, Asset]) -> web.Response | None:
    """The answer for /static/{name}, or None when there is no such file."""
    asset = assets.get(request.match_info.get("name", ""))
    if asset is None:
        return None
    gzipped = accepts_gzip(request.headers.get("Accept-Encoding", ""))
    etag = gzip_etag(asset.etag) if gzipped else asset.etag
    headers = {"ETag": etag, "Cache-Control": "no-cache", "Vary": "Accept-Encoding"}
    if copy_is_current(request.headers, etag):
        return web.Response(status=304, headers=headers)
    if gzipped:
        headers["Content-Encoding"] = "gzip"
    return web.Response(
        body=asset.gzipped if gzipped else asset.body, headers=headers,
        content_type=asset.content_type,
        charset="utf-8" if asset.content_type.startswith("text/") else None)
