"""JSON written and read in steps, for the datasets' state (the state folder, Redis).

`json.dumps` and `json.loads` are one C call each, holding the GIL from start to end: in
a thread they stop the event loop all the same (0.4 s and 0.8 s for 50,000 events). Here
the first few levels of the document are walked in Python and a long list among them is
written and read an element at a time, each element (and anything deeper) whole by
json's C code, with a step between slices, so that the loop answers requests meanwhile
(`steps`). The text is json.dumps's to the byte, and what is read is equal to what
json.loads reads, its keys shared as json.loads shares them (property tests hold both).
A text may also be read in pieces, as it is inflated, through a window (`loading`'s
`more`): a large document is then never one string in memory.
"""

from __future__ import annotations

import json
import re
from collections.abc import Generator, Iterable, Iterator
from typing import Any

from calfeed.steps import slices

# list elements between two steps: a few milliseconds of LL2 items either way (200 took
# 10-11 ms on a slower machine of this project's kind)
_SLICE = 100
# levels walked in Python, at most (a dataset's state, in the state folder or Redis,
# has its items at the fifth: envelope, state, parts, a part, its items); what lies
# deeper goes to json whole, as deep as json goes. (An element of a list is always
# whole: an item's own objects are never walked in Python.)
_STEPPED_LEVELS = 32

_SPACE = re.compile(r"[ \t\n\r]*")
_BLANKS = frozenset(" \t\n\r")


def dumping(value: Any) -> Generator[None, None, list[str]]:
    """The pieces of json.dumps(value) (joined, the same text), yielding between slices
    of its long lists; the errors json.dumps raises (TypeError; ValueError for a cycle,
    RecursionError for one within the first levels)."""
    pieces: list[str] = []
    yield from _dump(value, pieces, 0)
    return pieces


def _dump(value: Any, pieces: list[str], level: int) -> Generator[None]:
    if level >= _STEPPED_LEVELS:
        pieces.append(json.dumps(value))
    elif isinstance(value, dict):
        pieces.append("{")
        for index, (key, item) in enumerate(value.items()):
            pieces.append(", " if index else "")
            # (json's own conversion of a key that is not text: 1 -> "1", None -> "null")
            pieces.append(json.dumps(key) if isinstance(key, str)
                          else json.dumps({key: 0})[1:-4])
            pieces.append(": ")
            yield from _dump(item, pieces, level + 1)
        pieces.append("}")
    elif isinstance(value, list | tuple):
        pieces.append("[")
        # (a piece per slice: a writer or compressor then takes a few hundred KB at a time)
        for index, part in enumerate(slices(value, _SLICE)):
            if index:
                pieces.append(", ")
                yield
            pieces.append(", ".join([json.dumps(item) for item in part]))
        pieces.append("]")
    else:
        pieces.append(json.dumps(value))


# characters kept ahead of the reading in a document read in pieces (`loading`'s `more`):
# every mark of JSON's structure is read within them; a value longer is read by growing
# the window until it is whole
_AHEAD = 1 << 16
# what must follow a value read from a window that is not the whole rest of the text:
# the tail of a number cut at the window's end ("e+" of "1e+5") is never longer, nor is
# what the separator's quick path looks at (at least 3: see `whole`)
_SLACK = 64
# a fault json finds this near the window's end may be the cut's, not the text's: a
# literal cut ("nul" of "null", "-Infinity" the longest) or an escape ("\\ud800\\udc" of
# a surrogate pair) is reported where it begins
_NEAR_CUT = 16


class _Reader:
    """One document's reading: its text, and its keys, each kept once (json.loads keeps
    one string per distinct key; read an element at a time, each element would hold its
    own copies: 40% more memory for a follower's dataset).

    The text may come in pieces (`more`): then it is read through a window, what is read
    is dropped from it, and the document never lies in memory as one string (making one
    of 54 MB, a follower's 50,000 events, stopped the loop for 25-35 ms, the pages of a
    new allocation faulted in under the GIL). Positions are the window's."""

    def __init__(self, text: str, more: Iterator[str] | None = None) -> None:
        self.text = text
        self._more = more
        self.keys: dict[str, str] = {}
        self.decoder = json.JSONDecoder(object_pairs_hook=self._object_of)

    def _ahead(self, at: int, need: int | None = None) -> int:
        """The window holding at least `need` (_AHEAD) characters from `at` (all there
        are, when fewer), from `at` on; where `at` is in it."""
        need = max(_AHEAD, 1) if need is None else need
        if self._more is None or len(self.text) - at >= need:
            return at
        pieces, have = [self.text[at:]], len(self.text) - at
        while have < need:
            piece = next(self._more, None)
            if piece is None:
                self._more = None  # (the rest of the text is in the window)
                break
            pieces.append(piece)
            have += len(piece)
        self.text = "".join(pieces)
        return 0

    def _object_of(self, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        # (a loop, not a comprehension: a third of the hook's time in 3.11, once per
        # object of every item)
        found: dict[str, Any] = {}
        keep = self.keys.setdefault
        for key, value in pairs:
            found[keep(key, key)] = value
        return found

    def skip(self, at: int) -> int:
        while True:
            at = self._ahead(at)
            match = _SPACE.match(self.text, at)
            assert match is not None  # (the pattern matches the empty string)
            at = match.end()
            if at < len(self.text) or self._more is None:
                return at

    def whole(self, at: int) -> tuple[Any, int]:
        need, slack = max(_AHEAD, 1), max(_SLACK, 3)
        while True:
            at = self._ahead(at, need)
            try:
                found: tuple[Any, int] = self.decoder.raw_decode(self.text, at)
            except json.JSONDecodeError as error:
                # (a fault the window's end may have made: where it ends, or a string
                # it cut; any other is the text's own, found without reading on)
                if self._more is None or not (
                        error.pos + _NEAR_CUT > len(self.text)
                        or error.msg.startswith("Unterminated string")):
                    raise
            else:
                if self._more is None or found[1] + slack <= len(self.text):
                    return found
            need = 2 * max(need, len(self.text) - at)  # (cut at the window's end)

    def value(self, at: int, level: int) -> Generator[None, None, tuple[Any, int]]:
        opening = self.text[at:at + 1]
        if level < _STEPPED_LEVELS and opening == "{":
            return (yield from self._object(self.skip(at + 1), level))
        if level < _STEPPED_LEVELS and opening == "[":
            return (yield from self._array(self.skip(at + 1)))
        return self.whole(at)

    def _array(self, at: int) -> Generator[None, None, tuple[list[Any], int]]:
        items: list[Any] = []
        if self.text[at:at + 1] == "]":
            return items, at + 1
        whole = self.whole
        while True:
            item, at = whole(at)
            items.append(item)
            if len(items) % _SLICE == 0:
                yield
            text = self.text  # (the window `whole` read from: at least _SLACK ahead)
            if text.startswith(", ", at) and text[at + 2:at + 3] not in _BLANKS:
                at += 2  # (json.dumps's own separator: no pattern to match)
                continue
            closed, at = self._next_member(at, "]")
            if closed:
                return items, at

    def _object(self, at: int, level: int) -> Generator[None, None, tuple[dict[str, Any], int]]:
        found: dict[str, Any] = {}
        if self.text[at:at + 1] == "}":
            return found, at + 1
        while True:
            if self.text[at:at + 1] != '"':
                raise json.JSONDecodeError(
                    "Expecting property name enclosed in double quotes", self.text, at)
            key, at = self.whole(at)
            at = self.skip(at)
            if self.text[at:at + 1] != ":":
                raise json.JSONDecodeError("Expecting ':' delimiter", self.text, at)
            value, at = yield from self.value(self.skip(at + 1), level + 1)
            found[self.keys.setdefault(key, key)] = value
            closed, at = self._next_member(at, "}")
            if closed:
                return found, at

    def _next_member(self, at: int, closing: str) -> tuple[bool, int]:
        """After a member of an array or an object: whether `closing` ends it there, and
        where to read on."""
        at = self.skip(at)
        if self.text[at:at + 1] == closing:
            return True, at + 1
        if self.text[at:at + 1] != ",":
            raise json.JSONDecodeError("Expecting ',' delimiter", self.text, at)
        return False, self.skip(at + 1)


def loading(
    text: str | bytes | bytearray, more: Iterable[str] | None = None,
) -> Generator[None, None, Any]:
    """json.loads(text + "".join(more)), yielding between slices of its long lists (each
    element read whole by json's C scanner); json.JSONDecodeError (a ValueError) where
    json.loads raises one (its words and positions may differ), TypeError for what is not
    text, RecursionError for nesting deeper than json reads. `more`, the rest of the text
    in pieces, is read as the reading reaches it (see _Reader)."""
    if isinstance(text, bytes | bytearray):
        text = text.decode(json.detect_encoding(text), "surrogatepass")
    elif not isinstance(text, str):
        raise TypeError(f"the JSON object must be str, bytes or bytearray, "
                        f"not {type(text).__name__}")
    reader = _Reader(text, None if more is None else iter(more))
    # (the first character, wherever the pieces put it)
    first = reader._ahead(0, 1)
    if reader.text[first:first + 1] == "\ufeff":
        raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)",
                                   reader.text, 0)
    value, end = yield from reader.value(reader.skip(0), 0)
    end = reader.skip(end)
    if end != len(reader.text):
        raise json.JSONDecodeError("Extra data", reader.text, end)
    return value
