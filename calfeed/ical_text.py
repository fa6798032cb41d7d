"""Components as the bytes icalendar writes for them, folded without its loop per character.

icalendar folds each content line one character at a time, encoding each to count its
octets: a quarter of the time to serialise a VEVENT. Here the lines are icalendar's own
(`Component.content_lines`), folded by its rule: a segment holds at most 74 octets, a
continuation starts with a space, and a backslash or caret that would end a segment
starts the next one instead (since icalendar 7.3: for clients that read an escape cut
in two wrongly; one character is carried, so a `\\\\` at the limit is still cut, as
icalendar cuts it). The line is cut as UTF-8 octets, at the last character boundary within
a segment's 74: no loop over its characters.

`tests/test_properties.py` holds `folded` to icalendar's folding of any text, and the
golden fixtures hold whole feeds to their expected bytes.
"""

from __future__ import annotations

import icalendar

# a segment ends before the character that would make it this many octets
_LIMIT = 75
_FOLD = b"\r\n "
# what icalendar carries to the next segment rather than end one with (a backslash, a
# caret)
_ESCAPES = frozenset(b"\\^")


def folded(line: str) -> bytes:
    """One content line, encoded and folded as icalendar folds it."""
    octets = line.encode()
    if len(octets) < _LIMIT:
        return octets
    parts = []
    start = 0
    while len(octets) - start >= _LIMIT:
        end = start + _LIMIT - 1
        while octets[end] & 0xC0 == 0x80:  # (within a character: before it, then)
            end -= 1
        if octets[end - 1] in _ESCAPES:
            end -= 1
        parts.append(octets[start:end])
        start = end
    parts.append(octets[start:])
    return _FOLD.join(parts)


def component_bytes(component: icalendar.cal.Component) -> bytes:
    """What `component.to_ical()` gives, with the folding above."""
    return b"\r\n".join(folded(line) for line in component.content_lines() if line) + b"\r\n"
