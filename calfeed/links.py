"""Feed URLs: canonical queries, and the form each calendar client wants a link in.

static/calfeed.js builds the same URLs in the browser; tests compare the two.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote, urlsplit

from calfeed.feeds import DEFAULT_KIND
from calfeed.query import Param, Query

# Google Calendar rejects subscription URLs longer than this
MAX_FEED_URL = 256
# what encodeURIComponent leaves alone, so Python and the page script agree byte for byte
_SAFE = "!'()*"


def param_text(value: object) -> str:
    """A parameter's value as a URL writes it (a time as LL2's ISO 8601 in UTC)."""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(value)


def canonical_query(params: Sequence[Param], query: Query) -> str:
    """Parameters in declaration order, defaults left out, list values sorted."""
    parts = []
    for param in params:
        if not param.in_body:
            continue
        value = query[param.name]
        if value is None or value == param.default:
            continue
        if isinstance(value, frozenset):
            text = ",".join(quote(str(v), safe=_SAFE) for v in sorted(value))
        else:
            text = quote(param_text(value), safe=_SAFE)
        parts.append(f"{param.name}={text}")
    return "&".join(parts)


@dataclass(frozen=True)
class FeedLinks:
    """Every link the subscribe page offers for one feed."""

    https: str
    webcal: str
    google: str
    outlook: str
    office365: str
    download: str
    page: str
    too_long: bool



def is_local(base: str) -> bool:
    """Whether a base URL names this machine or a private network: calendar services
    (Google's, Outlook.com's) fetch feeds from the internet and cannot reach it."""
    host = (urlsplit(base).hostname or "").rstrip(".").lower()
    if host in {"localhost", ""} or host.endswith(
            (".localhost", ".local", ".internal", ".lan", ".home.arpa")):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return "." not in host  # a bare machine name
    return not address.is_global


def _page_url(base: str, kind_name: str, canonical: str) -> str:
    parts = [p for p in ("" if kind_name == DEFAULT_KIND else f"feed={kind_name}", canonical)
             if p]
    return f"{base}/" + ("?" + "&".join(parts) if parts else "")


def feed_links(base: str, kind_name: str, canonical: str, name: str) -> FeedLinks:
    """The feed's https URL and its form for each client, from a public base URL."""
    base = base.rstrip("/")
    suffix = f"?{canonical}" if canonical else ""
    https = f"{base}/{kind_name}.ics{suffix}"
    webcal = "webcal://" + https.split("://", 1)[1]
    encoded_name = quote(name, safe=_SAFE)
    return FeedLinks(
        https=https,
        webcal=webcal,
        google="https://calendar.google.com/calendar/render?cid=" + quote(webcal, safe=_SAFE),
        outlook="https://outlook.live.com/calendar/0/addfromweb?url="
        + quote(https, safe=_SAFE) + "&name=" + encoded_name,
        office365="https://outlook.office.com/calendar/0/addfromweb?url="
        + quote(https, safe=_SAFE) + "&name=" + encoded_name,
        download=https + ("&" if canonical else "?") + "download=1",
        page=_page_url(base, kind_name, canonical),
        too_long=len(https) > MAX_FEED_URL,
    )
