"""The rules for untrusted text and links, each written once.

LL2 is crowd-edited and query strings come from anyone. Whatever they say passes through
one of these functions before it reaches a calendar, a JSON answer, a page or a log:

- `clean_text` and `clean_paragraphs`: LL2 text without control characters (strict
  iCalendar parsers reject them, and a lone CR or a NUL breaks some clients), on one line
  or with its line breaks made plain newlines, and of a bounded length;
- `has_control`: whether a value a client sent carries one (such a value is refused);
- `safe_url`: a link as a browser would read it, kept only when it is http or https;
- `safe_base`: the scheme and host a request came to, as the base of the links calfeed
  prints, if they are a web scheme and a host name;
- `item_key`: an LL2 id as the text calfeed keys items by, if it is one;
- `too_deep`: whether JSON nests deeper than any real LL2 item (such an item is skipped:
  comparing or saving it could exhaust Python's recursion limit);
- `excerpt`: a short prefix of untrusted text for error messages and logs, and
  `error_words` an exception's, for the one log line a fault gets.

Escaping for HTML is not here: the page's templates autoescape and its script builds the
DOM with textContent, so there is no hand-written escaping to forget.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

# Unicode that is never text to show: lone surrogates (JSON can carry "\ud800"; no UTF-8
# encoder takes them); the bidirectional embeddings, overrides and isolates, and the
# marks (LRM, RLM, ALM), that make a title read other than it is written; and the 66
# noncharacters (U+FDD0-U+FDEF, and the last two code points of every plane), which
# Unicode reserves for a program's own use: no text means one (U+FFFE is a byte order
# mark read the wrong way round)
_NONCHARACTERS = "\ufdd0-\ufdef" + "".join(
    chr(plane + 0xFFFE) + chr(plane + 0xFFFF) for plane in range(0, 0x110000, 0x10000))
_NOT_TEXT = "\ud800-\udfff\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c" + _NONCHARACTERS
# C0 controls but tab and newline, DEL, the C1 block, and the above: nothing a calendar
# should show
_CONTROL = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f{_NOT_TEXT}]")
# every control character and line break, tab and newline included: none belongs in a
# query value
_ANY_CONTROL = re.compile(f"[\x00-\x1f\x7f-\x9f\u2028\u2029{_NOT_TEXT}]")
# line breaks other than LF (CR, CRLF, NEL, LINE/PARAGRAPH SEPARATOR): some parsers split
# lines at them, so they become the newline every client understands
_LINE_BREAK = re.compile("\r\n?|[\x85\u2028\u2029]")
_SPACES = re.compile("[\t\n]+")
# what a browser's URL parser strips from the ends, and removes anywhere (WHATWG URL §4.4)
_URL_ENDS = "".join(chr(c) for c in range(0x21))
_URL_REMOVED = re.compile("[\t\n\r]")
# characters that are never part of a URL we hand out (they would need escaping and only
# turn up in garbage or in attempts to break out of an attribute)
_URL_UNSAFE = re.compile(rf"[\s\x00-\x20\x7f-\x9f<>\"{{}}|\\^`{_NOT_TEXT}]")
SAFE_SCHEMES = ("http", "https")
# longer links are not links people click; browsers cap at 2 MB, calendars far lower
MAX_URL_LENGTH = 2048


# the most of one LL2 text calfeed shows: a line (a name, a place) and a text of several
# (a description). LL2's longest are a few hundred and about 1,400 characters; a crowd
# edit of a megabyte would fill a feed's 1 MB by itself, and the JSON and page with it.
MAX_LINE = 1000
MAX_PARAGRAPHS = 20_000


def _bounded(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"


def clean_paragraphs(value: Any) -> str:
    """LL2 text of several lines (a description): stripped, line breaks as LF, no control
    characters, at most MAX_PARAGRAPHS characters ("" if not text)."""
    if not isinstance(value, str):
        return ""
    if value.isprintable():
        # the common case: nothing to replace (isprintable is False for any control char)
        return _bounded(value.strip(), MAX_PARAGRAPHS)
    return _bounded(_CONTROL.sub("", _LINE_BREAK.sub("\n", value)).strip(), MAX_PARAGRAPHS)


def clean_text(value: Any) -> str:
    """LL2 text of one line (a name, a place): as clean_paragraphs, with line breaks and
    tabs as spaces, since titles and locations with a line break are dropped by some
    clients, and at most MAX_LINE characters ("" if not text)."""
    if not isinstance(value, str):
        return ""
    if value.isprintable():
        return _bounded(value.strip(), MAX_LINE)
    return _bounded(_SPACES.sub(" ", clean_paragraphs(value)), MAX_LINE)


def has_control(value: str) -> bool:
    """Whether client input carries a control character (tab and newline included)."""
    return not value.isprintable() and _ANY_CONTROL.search(value) is not None


def safe_url(value: Any) -> str:
    """An http(s) URL as a browser would read it, else "".

    The browser first strips control characters and spaces from both ends and drops tabs
    and newlines anywhere, so "java\\tscript:" is "javascript:" to it; the scheme is then
    read without regard to case. The check is made on that form, and that form is what
    calfeed hands out, so what was checked is what a client follows.
    """
    if not isinstance(value, str):
        return ""
    text = _URL_REMOVED.sub("", value.strip(_URL_ENDS))
    if not text or len(text) > MAX_URL_LENGTH or _URL_UNSAFE.search(text):
        return ""
    try:
        parts = urlsplit(text)
        # reading the port validates it (a non-number or one past 65535 raises)
        parts.port  # noqa: B018 - accessed for its check, see above
    except ValueError:
        return ""
    if parts.scheme.lower() not in SAFE_SCHEMES or not parts.hostname:
        return ""
    # only the scheme is normalised: the rest stays exactly as LL2 wrote it
    return parts.scheme.lower() + text[len(parts.scheme):]


# a DNS name or IPv4 address, or an IPv6 one in brackets, with an optional port
_HOST = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}"
    r"[A-Za-z0-9])?\.?(?::[0-9]{1,5})?|\[[0-9A-Fa-f:.]{2,45}\](?::[0-9]{1,5})?"
)


def safe_base(scheme: str, host: str) -> str | None:
    """"scheme://host" for links, or None when either is not what a browser sent (a Host
    or X-Forwarded-* header is whatever the client wrote)."""
    if scheme.lower() not in SAFE_SCHEMES or len(host) > 260 or not _HOST.fullmatch(host):
        return None
    _, colon, port = host.rpartition(":")
    if colon and not port.endswith("]") and int(port) > 65535:
        return None  # (no such port: a link to it is none)
    return f"{scheme.lower()}://{host}"


# LL2 ids are whole numbers (events) or UUIDs (launches); the id ends up in every UID
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")


def item_key(value: Any) -> str | None:
    """An LL2 id (a whole number, or a short word such as a UUID) as text; None otherwise.

    Anything else (a list, an object, markup, a megabyte of text) makes the item unusable:
    its id would go into a UID, a URL and a cache key.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value) if 0 <= value < 2**63 else None
    if isinstance(value, str) and _ID.fullmatch(value.strip()):
        return value.strip()
    return None


# a detailed LL2 launch nests about eight levels deep
MAX_DEPTH = 32


def too_deep(value: Any, limit: int = MAX_DEPTH) -> bool:
    """Whether parsed JSON nests more than `limit` lists/objects deep (without recursing)."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth >= limit:
            return True
        stack.extend((child, depth + 1) for child in children
                     if isinstance(child, dict | list))
    return False


def error_words(error: BaseException) -> str:
    """An exception in one short line for a log ("RecursionError: maximum …"): its text may
    hold a stranger's data, so it is cut like any other."""
    return excerpt(f"{type(error).__name__}: {error}", 200)


def excerpt(value: str, limit: int = 40) -> str:
    """At most `limit` characters of untrusted text, for a message that shows it with
    repr() (which writes control characters as escapes)."""
    return value[:limit] + ("…" if len(value) > limit else "")
