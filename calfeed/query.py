"""Feed query parameters: declared once, parsed the same way for URLs and CLI flags."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from calfeed.exceptions import InvalidParameter, RepeatedParameter, UnknownParameter
from calfeed.precision import LEVELS
from calfeed.readers import parse_datetime
from calfeed.sanitize import has_control
from calfeed.settings import parse_bool

TRACKING_PREFIXES = ("utm_",)
TRACKING_NAMES = frozenset({"fbclid", "gclid", "mc_cid", "mc_eid"})
# ids or names one list parameter may carry: more than any feed URL Google accepts
MAX_LIST_VALUES = 100


@dataclass(frozen=True)
class Param:
    """One query parameter: how to read it and what it means."""

    name: str
    help: str
    allowed: str
    parse: Callable[[list[str]], Any]
    default: Any = None
    aliases: tuple[str, ...] = ()
    example: str = ""
    # the item facet an id list is matched against (OR within, AND across params)
    facet: str | None = None
    # part of the feed's identity (False for e.g. download, which only changes headers)
    in_body: bool = True
    # what the subscribe page calls the list of choices ("Event types")
    title: str = ""
    # values it takes: 1 for a single value (given twice is an error), more for a list
    # (comma-separated or repeated, counted together)
    max_values: int = 1
    # a fixed set of (value, label) a person picks one of (the page shows radio buttons);
    # empty for a facet whose choices come from the data
    options: tuple[tuple[str, str], ...] = ()
    # only /<kind>.json takes it (the order of a list; a calendar orders entries itself)
    json_only: bool = False

    @property
    def flag(self) -> str:
        """The `calfeed build` flag for this parameter."""
        # last_updated__gte -> --last-updated-gte (LL2's double underscore is one dash)
        return "--" + self.name.replace("__", "_").replace("_", "-")


def _tokens(values: list[str]) -> list[str]:
    return [token.strip() for value in values for token in value.split(",") if token.strip()]


def id_list(values: list[str]) -> frozenset[int] | None:
    """Comma-separated or repeated LL2 ids; empty means no filter."""
    ids = set()
    for token in _tokens(values):
        # LL2 ids fit in 64 bits; a longer run of digits is no id (and int() of thousands
        # of digits is refused by Python itself)
        # (ASCII digits: "²" and "٣" are digits to isdigit(), and no LL2 id)
        if not (token.isascii() and token.isdigit()) or len(token) > 18:
            raise ValueError(token)
        ids.add(int(token))
    return frozenset(ids) or None


def word_list(values: list[str]) -> frozenset[str] | None:
    """Comma-separated or repeated words, compared case-insensitively."""
    return frozenset(token.casefold() for token in _tokens(values)) or None


def single_text(values: list[str]) -> str | None:
    """One free-text value; empty means none."""
    text = values[0].strip() if values else ""
    if len(text) > 200:
        raise ValueError(text[:20] + "…")
    return text or None


def minutes_list(values: list[str]) -> frozenset[int] | None:
    """Reminder times in minutes: whole numbers from 0 to 10080 (a week)."""
    found = id_list(values)
    for minutes in found or ():
        if minutes > 10080:
            raise ValueError(str(minutes))
    return found


def int_range(low: int, high: int) -> Callable[[list[str]], int | None]:
    """A parser for one whole number between low and high; empty means the default."""

    def parse(values: list[str]) -> int | None:
        if len(values) != 1:
            raise ValueError(", ".join(values))
        text = values[0].strip()
        # a number field the visitor cleared: the form without the script sends it empty
        # (the script leaves it out), and it means the default, as search= and alarm= do
        if not text:
            return None
        digits = text.removeprefix("-")
        if (not (digits.isascii() and digits.isdigit()) or len(text) > 18
                or not low <= int(text) <= high):
            raise ValueError(text)
        return int(text)

    return parse


def choice(options: Sequence[str]) -> Callable[[list[str]], str | None]:
    """A parser for one of a fixed set of words; empty means the default."""

    def parse(values: list[str]) -> str | None:
        if len(values) != 1:
            raise ValueError(", ".join(values))
        word = values[0].strip().lower()
        if word and word not in options:
            raise ValueError(values[0])
        return word or None

    return parse


def moment(values: list[str]) -> datetime | None:
    """An ISO 8601 date or date-time (UTC unless it says otherwise); empty means none."""
    text = values[0].strip() if values else ""
    if not text:
        return None
    when = parse_datetime(text)
    if when is None:
        raise ValueError(text)
    return when


def ordering(fields: Sequence[str]) -> Callable[[list[str]], str | None]:
    """A parser for LL2's ordering: one of the fields, "-" before it for descending."""

    def parse(values: list[str]) -> str | None:
        text = values[0].strip() if values else ""
        if text and text.removeprefix("-") not in fields:
            raise ValueError(text)
        return text or None

    return parse


def flag_value(values: list[str]) -> bool:
    """1/true/yes or 0/false/no, as for boolean settings."""
    if len(values) != 1:
        raise ValueError(", ".join(values))
    return parse_bool(values[0])


def common_params(max_past_days: int) -> list[Param]:
    """Parameters every feed kind has."""
    return [
        Param(
            "search", "case-insensitive text the name must contain",
            "text of at most 200 characters", single_text, example="search=starship",
        ),
        Param(
            "past_days", "days of past items to include",
            f"a whole number from 0 to {max_past_days}", int_range(0, max_past_days),
            default=min(7, max_past_days), example="past_days=0",
        ),
        Param(
            "precision",
            "coarsest date precision to include (minute also includes Second, day includes "
            "Morning/Afternoon, year everything but Fiscal Year and Decade, which only any adds)",
            "one of " + ", ".join(LEVELS), choice(LEVELS), default="month",
            example="precision=day",
        ),
        Param(
            "alarm", "reminders, in minutes before each timed event (off by default: many "
            "clients ignore or strip alarms in subscriptions)",
            "up to four whole numbers of minutes from 0 to 10080, comma-separated or repeated",
            minutes_list, example="alarm=60,10", max_values=4,
        ),
        Param(
            "last_updated__gte", "only items LL2 changed at or after this time (LL2's own "
            "filter: what changed since)", "an ISO 8601 date or date-time", moment,
            example="last_updated__gte=2026-11-01T00:00:00Z",
        ),
        Param(
            "last_updated__lte", "only items LL2 last changed at or before this time",
            "an ISO 8601 date or date-time", moment,
            example="last_updated__lte=2026-11-30",
        ),
        Param(
            "download", "1 to download a file (Content-Disposition: attachment)",
            "1 or 0 (also true/false)", flag_value, default=False, example="download=1",
            in_body=False,
        ),
    ]


@dataclass(frozen=True)
class Query:
    """A parsed feed query: every parameter's value, defaults filled in."""

    values: dict[str, Any] = field(hash=False, compare=False)
    # the values that differ from the defaults, in declaration order: the cache key
    key: tuple[tuple[str, Any], ...]

    def __getitem__(self, name: str) -> Any:
        return self.values[name]


def _check_size(param: Param, given: list[str]) -> None:
    """Refuse control characters, repeats of a single value and over-long lists."""
    for value in given:
        if has_control(value):
            raise InvalidParameter(param.name, value, param.allowed,
                                   reason="control characters are not allowed")
    if param.max_values == 1:
        if len(given) > 1:
            raise RepeatedParameter(param.name, len(given), param.allowed)
        return
    count = len(_tokens(given))
    if count > param.max_values:
        raise InvalidParameter(param.name, given[0], param.allowed,
                               reason=f"{count} values, at most {param.max_values}")


def _is_tracking(name: str) -> bool:
    return name.lower() in TRACKING_NAMES or name.lower().startswith(TRACKING_PREFIXES)


def parse_query(params: Sequence[Param], pairs: Iterable[tuple[str, str]]) -> Query:
    """Read (name, value) pairs into a Query; 400-type errors name what is wrong."""
    by_name: dict[str, Param] = {}
    for param in params:
        by_name[param.name] = param
        for alias in param.aliases:
            by_name[alias] = param
    raw: dict[str, list[str]] = {}
    for name, value in pairs:
        target = by_name.get(name)
        if target is None:
            if _is_tracking(name):
                continue
            raise UnknownParameter(name, [p.name for p in params])
        raw.setdefault(target.name, []).append(value)
    values: dict[str, Any] = {}
    key: list[tuple[str, Any]] = []
    for param in params:
        if param.name not in raw:
            values[param.name] = param.default
            continue
        given = raw[param.name]
        _check_size(param, given)
        try:
            parsed = param.parse(given)
        except ValueError as error:
            # ids nobody knows by heart: say where to find them
            where = ("; the subscribe page at / lists them by name"
                     if param.facet and not param.options else "")
            raise InvalidParameter(param.name, str(error), param.allowed + where) from None
        if parsed is None:
            parsed = param.default
        values[param.name] = parsed
        if param.in_body and parsed != param.default:
            canonical = tuple(sorted(parsed)) if isinstance(parsed, frozenset) else parsed
            key.append((param.name, canonical))
    return Query(values, tuple(key))
