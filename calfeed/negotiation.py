"""What a request's headers say it takes: gzip or not, and whether the copy it holds is
current (its ETags). Feeds and the page's static files answer alike."""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from multidict import CIMultiDictProxy

# distinct Accept-Encoding headers kept read (README, Memory)
ENCODINGS_READ = 256


@functools.lru_cache(maxsize=ENCODINGS_READ)
def accepts_gzip(accept_encoding: str) -> bool:
    """Whether an Accept-Encoding header allows gzip (clients send few distinct ones):
    named, without a weight of 0 (RFC 9110 §12.4.2: "0", "0.", "0.000", spaces or tabs
    around the ";"; a weight that is no number is read as 1, as most servers read it)."""
    for part in accept_encoding.split(","):
        coding, *params = part.split(";")
        if coding.strip(" \t").lower() in {"gzip", "x-gzip"}:
            return not any(_refuses(param) for param in params)
    return False


def _refuses(param: str) -> bool:
    name, _, value = param.strip(" \t").partition("=")
    return name.strip(" \t").lower() == "q" and bool(_ZERO.fullmatch(value.strip(" \t")))


# a q-value of zero, as RFC 9110 spells it
_ZERO = re.compile(r"0(\.0{0,3})?")


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


def copy_is_current(
    headers: CIMultiDictProxy[str], etag: str, last_modified: datetime | None = None,
    now: datetime | None = None,
) -> bool:
    """Whether the client's copy of the representation tagged `etag` is current (RFC 9110
    §13.2.2): If-None-Match, every line of it, wins over If-Modified-Since. The ETag is
    this representation's alone: a 304 for the other encoding's tag would carry a tag the
    client's cache has nothing stored under. If-Modified-Since counts only as one valid
    date no later than `now` (a list of dates, or one in the future, says nothing: a client
    sending its own clock's time, running ahead, would get 304s for changes it missed)."""
    tags = headers.getall("If-None-Match", [])
    if tags:
        return etag_matches(", ".join(tags), (etag,))
    if last_modified is None or now is None:
        return False
    dates = headers.getall("If-Modified-Since", [])
    # (an HTTP date has one comma at most: "Fri, 04 Dec 2026 …")
    if len(dates) != 1 or dates[0].count(",") > 1:
        return False
    try:
        since = parsedate_to_datetime(dates[0])
    # (OverflowError: a year or hour of twenty digits, which any stranger can send)
    except (TypeError, ValueError, IndexError, OverflowError):
        return False
    if since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    # (our own Last-Modified may be a second or two ahead of the clock: each new snapshot
    # is dated a second after the one before, and a client rightly echoes it)
    return since <= max(now, last_modified) and last_modified <= since
