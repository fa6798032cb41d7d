"""What a request's headers say it takes: gzip or not, and whether the copy it holds is
current (its ETags). Feeds and the page's static files answer alike."""

from __future__ import annotations

import functools
from collections.abc import Sequence


@functools.lru_cache(maxsize=256)
def accepts_gzip(accept_encoding: str) -> bool:
    """Whether an Accept-Encoding header allows gzip (clients send few distinct ones)."""
    for part in accept_encoding.split(","):
        coding, _, params = part.strip().partition(";")
        if coding.strip().lower() in {"gzip", "x-gzip"}:
            return params.replace(" ", "").lower() not in {"q=0", "q=0.0", "q=0.00", "q=0.000"}
    return False


def etag_matches(header: str, tags: Sequence[str]) -> bool:
    """Whether an If-None-Match header names one of `tags` (weakly compared, as RFC 9110
    has it for If-None-Match), or is `*`."""
    for candidate in header.split(","):
        candidate = candidate.strip()
        if candidate == "*":
            return True
        if candidate.startswith("W/"):
            candidate = candidate[2:]
        if candidate in tags:
            return True
    return False


def gzip_etag(etag: str) -> str:
    """The ETag of a body's gzipped form: another representation, another strong tag."""
    return etag[:-1] + '-gz"'
