"""How precisely LL2 knows a date, and what that makes of it on a calendar.

LL2 qualifies every date with a precision id (0 Second … 16 Decade). Everything calfeed
does with one — how coarse it counts for the `precision=` filter, the span an all-day
entry covers, the words in a title and a description — is one row of `TABLE` below, so
that a new id or a changed rule is one line, not four if-chains to keep in step.

LL2 puts an imprecise date at the end of its period usually, but not always, so spans
are derived from the id and the date's year, month and day only.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, TypeVar

from dateutil.relativedelta import relativedelta

# Coarseness levels a feed can be limited to, finest first; index = level.
LEVELS: tuple[str, ...] = (
    "minute", "hour", "day", "week", "month", "quarter", "half", "year", "any",
)
LEVEL = {name: index for index, name in enumerate(LEVELS)}

Span = Callable[[date], tuple[date, date]]
Words = Callable[[datetime, date, date], str]
# (made once: a timedelta made with a keyword took 0.6 µs, more than the span around it)
_DAY = timedelta(days=1)
_WEEK = timedelta(days=7)


@dataclass(frozen=True)
class Precision:
    """One LL2 precision id and what it means for a calendar entry."""

    level: int
    # the all-day span [start, end) the date stands for; None for timed entries
    span: Span | None
    # the date in words, from the date and its span ("Q3 2026", "14:00 UTC")
    words: Words
    # the uncertainty shown after a title: a fixed text, the words, or nothing
    label: str | None = None
    label_is_words: bool = False
    label_prefix: str = ""

    def title_label(self, when: datetime) -> str | None:
        """What a title says about the date's uncertainty (None when exact)."""
        if self.label_is_words:
            start, end = self.period(when)
            return self.label_prefix + self.words(when, start, end)
        return self.label

    def period(self, when: datetime) -> tuple[date, date]:
        """The all-day span of a date (for a timed precision, the day it falls on)."""
        day = when.date()
        return self.span(day) if self.span else (day, day + _DAY)


def _add_months(day: date, months: int) -> date:
    if day.day == 1:  # every span's case, in plain arithmetic (relativedelta is slow)
        years, month = divmod(day.month - 1 + months, 12)
        return date(day.year + years, month + 1, 1)
    result: date = day + relativedelta(months=months)
    return result


def _day(day: date) -> tuple[date, date]:
    return day, day + _DAY


def _week(day: date) -> tuple[date, date]:
    monday = day - timedelta(days=day.weekday())
    return monday, monday + _WEEK


def _month(day: date) -> tuple[date, date]:
    first = date(day.year, day.month, 1)  # (a third of the time `replace` takes)
    return first, _add_months(first, 1)


def _months_of_year(first_month: int, months: int) -> Span:
    """A fixed part of the date's year (Q3, H1): LL2 names the part by the id."""

    def span(day: date) -> tuple[date, date]:
        first = date(day.year, first_month, 1)
        return first, _add_months(first, months)

    return span


def _year(day: date) -> tuple[date, date]:
    return date(day.year, 1, 1), date(day.year + 1, 1, 1)


def _fiscal_year(day: date) -> tuple[date, date]:
    # the twelve months ending with the date's month
    end = _add_months(date(day.year, day.month, 1), 1)
    return _add_months(end, -12), end


def _decade(day: date) -> tuple[date, date]:
    first_year = day.year - day.year % 10
    return date(first_year, 1, 1), date(first_year + 10, 1, 1)


def _strftime(pattern: str) -> Words:
    return lambda when, start, end: when.strftime(pattern)


def _month_label(day: date) -> str:
    return day.strftime("%b %Y")


EXACT = Precision(LEVEL["minute"], None, _strftime("%Y-%m-%d %H:%M UTC"))


def _quarter(number: int) -> Precision:
    return Precision(LEVEL["quarter"], _months_of_year(3 * number - 2, 3),
                     lambda when, start, end: f"Q{number} {start.year}", label_is_words=True)


def _half(number: int) -> Precision:
    return Precision(LEVEL["half"], _months_of_year(6 * number - 5, 6),
                     lambda when, start, end: f"H{number} {start.year}", label_is_words=True)


# LL2 date_precision id -> what it means. Ids missing here (and null) count as exact.
TABLE: dict[int, Precision] = {
    0: EXACT,  # second
    1: EXACT,  # minute
    2: Precision(LEVEL["hour"], None, _strftime("%Y-%m-%d ~%H:00 UTC"),
                 label="time approximate"),
    3: Precision(LEVEL["day"], _day, _strftime("%Y-%m-%d (morning)"), label="morning"),
    4: Precision(LEVEL["day"], _day, _strftime("%Y-%m-%d (afternoon)"), label="afternoon"),
    5: Precision(LEVEL["day"], _day, _strftime("%Y-%m-%d"), label="time TBD"),
    6: Precision(LEVEL["week"], _week,
                 lambda when, start, end: "week of " + start.strftime("%Y-%m-%d"),
                 label_is_words=True),
    7: Precision(LEVEL["month"], _month, lambda when, start, end: _month_label(start),
                 label_is_words=True, label_prefix="NET "),
    8: _quarter(1), 9: _quarter(2), 10: _quarter(3), 11: _quarter(4),
    12: _half(1), 13: _half(2),
    14: Precision(LEVEL["year"], _year, lambda when, start, end: str(start.year),
                  label_is_words=True),
    15: Precision(LEVEL["any"], _fiscal_year,
                  lambda when, start, end: f"FY {_month_label(start)}-"
                  f"{_month_label(end - _DAY)}", label_is_words=True),
    16: Precision(LEVEL["any"], _decade, lambda when, start, end: f"{start.year}s",
                  label_is_words=True),
}


def precision(pid: int | None) -> Precision:
    """The row of an LL2 precision id; null and unknown ids are exact."""
    return EXACT if pid is None else TABLE.get(pid, EXACT)


def precision_level(pid: int | None) -> int:
    """The coarseness level of an LL2 precision id."""
    return precision(pid).level


def period_words(pid: int | None, when: datetime) -> str:
    """A date as a person reads it at the given LL2 precision ("Q3 2026", "14:00 UTC")."""
    row = precision(pid)
    start, end = row.period(when)
    return row.words(when, start, end)


@dataclass(frozen=True)
class Timing:
    """When an item happens, as a calendar shows it."""

    start: datetime | date
    end: datetime | date
    all_day: bool
    level: int
    # the precision and the date it qualifies, for the label
    row: Precision = field(repr=False)
    when: datetime = field(repr=False)
    # start and end (exclusive, never before the start) as aware UTC datetimes, midnight
    # UTC for all-day: made with the timing, since every query's filter and order read
    # them for every entry (made anew at every read, they took most of the time to order
    # 50,000 entries)
    start_utc: datetime = field(repr=False, compare=False)
    end_utc: datetime = field(repr=False, compare=False)

    @functools.cached_property
    def label(self) -> str | None:
        """The uncertainty in words for the title, None when timed to the minute (made
        when a title asks: the words took a third of the time to index an item, and most
        items are filtered out or trimmed away before any title is made)."""
        return self.row.title_label(self.when)


_SECOND = timedelta(seconds=1)
T = TypeVar("T")


def made(cls: type[T], **fields: Any) -> T:
    """A frozen dataclass from every one of its fields, without its `__init__`, which
    sets each through `object.__setattr__`: 1.2 µs for a Timing against 0.4 µs here, and
    each item indexed makes a Timing and an Entry (a fifth of indexing 50,000 items).
    Only for a class whose `__init__` does nothing more (no defaults left out, no
    `__post_init__`); a test holds it to what `__init__` makes."""
    instance = object.__new__(cls)
    instance.__dict__.update(fields)
    return instance


_MIDNIGHT = time(tzinfo=UTC)


def _as_utc(value: datetime | date) -> datetime:
    if isinstance(value, datetime):
        return value
    # (combined: a fifth of the time the constructor takes, twice per all-day item)
    return datetime.combine(value, _MIDNIGHT)


def item_timing(
    when: datetime, pid: int | None, length: timedelta | None, default_length: timedelta
) -> Timing:
    """Start, end and uncertainty of an LL2 date at a given precision: timed with its
    length (or the default) when known to the hour or better, else its all-day span."""
    row = precision(pid)
    if row.span is None:
        # (a second at least, whatever the default: the nearest-first order relies on no
        # item ending before it starts, and a DTEND must come after its DTSTART)
        length = max(length or default_length, _SECOND)
        until = when + length
        return made(Timing, start=when, end=until, all_day=False, level=row.level, row=row,
                    when=when, start_utc=when, end_utc=until)
    start, end = row.span(when.date())
    return made(Timing, start=start, end=end, all_day=True, level=row.level, row=row,
                when=when, start_utc=_as_utc(start), end_utc=_as_utc(end))
