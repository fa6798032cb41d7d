"""JSON written and read in steps, for the datasets' state (the state folder, Redis).

`json.dumps` and `json.loads` are one C call each, holding the GIL from start to end: in
a thread they stop the event loop all the same (0.4 s and 0.8 s for 50,000 events). Here
a long list is written and read an element at a time, each element still by the C code,
with a step between slices, so that the loop answers requests meanwhile (`steps`). The
text is json.dumps's to the byte, and what is read is json.loads's (a property test
holds both).
"""

from __future__ import annotations

import json
import re
from collections.abc import Generator
from typing import Any

from calfeed.steps import slices

# list elements between two steps: a few milliseconds of LL2 items either way
_SLICE = 200

_DECODER = json.JSONDecoder()
_SPACE = re.compile(r"[ \t\n\r]*")


def dumping(value: Any) -> Generator[None, None, list[str]]:
    """The pieces of json.dumps(value) (joined, the same text), yielding between slices
    of its long lists; the errors json.dumps raises (TypeError, ValueError for a cycle
    within an element; RecursionError for one outside them)."""
    pieces: list[str] = []
    yield from _dump(value, pieces)
    return pieces


def _dump(value: Any, pieces: list[str]) -> Generator[None]:
    if isinstance(value, dict):
        pieces.append("{")
        for index, (key, item) in enumerate(value.items()):
            pieces.append(", " if index else "")
            # (json's own conversion of a key that is not text: 1 -> "1", None -> "null")
            pieces.append(json.dumps(key) if isinstance(key, str)
                          else json.dumps({key: 0})[1:-4])
            pieces.append(": ")
            yield from _dump(item, pieces)
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


def loading(text: str | bytes) -> Generator[None, None, Any]:
    """json.loads(text), yielding between slices of its long lists (each element is read
    whole by json's C scanner); json.JSONDecodeError (a ValueError) where json.loads
    raises one, RecursionError for nesting too deep."""
    if isinstance(text, bytes | bytearray):
        text = text.decode(json.detect_encoding(text), "surrogatepass")
    if text.startswith("\ufeff"):
        raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
    value, end = yield from _value(text, _skip(text, 0))
    end = _skip(text, end)
    if end != len(text):
        raise json.JSONDecodeError("Extra data", text, end)
    return value


def _skip(text: str, at: int) -> int:
    match = _SPACE.match(text, at)
    assert match is not None  # (the pattern matches the empty string)
    return match.end()


def _value(text: str, at: int) -> Generator[None, None, tuple[Any, int]]:
    opening = text[at:at + 1]
    if opening == "{":
        return (yield from _object(text, _skip(text, at + 1)))
    if opening == "[":
        return (yield from _array(text, _skip(text, at + 1)))
    found: tuple[Any, int] = _DECODER.raw_decode(text, at)
    return found


def _array(text: str, at: int) -> Generator[None, None, tuple[list[Any], int]]:
    items: list[Any] = []
    if text[at:at + 1] == "]":
        return items, at + 1
    while True:
        item, at = _DECODER.raw_decode(text, at)
        items.append(item)
        if len(items) % _SLICE == 0:
            yield
        closed, at = _next_member(text, at, "]")
        if closed:
            return items, at


def _object(text: str, at: int) -> Generator[None, None, tuple[dict[str, Any], int]]:
    found: dict[str, Any] = {}
    if text[at:at + 1] == "}":
        return found, at + 1
    while True:
        if text[at:at + 1] != '"':
            raise json.JSONDecodeError(
                "Expecting property name enclosed in double quotes", text, at)
        key, at = _DECODER.raw_decode(text, at)
        at = _skip(text, at)
        if text[at:at + 1] != ":":
            raise json.JSONDecodeError("Expecting ':' delimiter", text, at)
        found[key], at = yield from _value(text, _skip(text, at + 1))
        closed, at = _next_member(text, at, "}")
        if closed:
            return found, at


def _next_member(text: str, at: int, closing: str) -> tuple[bool, int]:
    """After a member of an array or an object: whether `closing` ends it there, and where
    to read on."""
    at = _skip(text, at)
    if text[at:at + 1] == closing:
        return True, at + 1
    if text[at:at + 1] != ",":
        raise json.JSONDecodeError("Expecting ',' delimiter", text, at)
    return False, _skip(text, at + 1)
