"""JSON in steps (calfeed/json_steps.py) is json's to the byte, and lets the loop run: so
do the state folder's and the shared store's datasets, which it writes and reads."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import pathlib
import zlib
from collections.abc import Callable, Iterator
from typing import Any, TypeVar
from unittest import mock

import pytest
from hypothesis import given
from hypothesis import strategies as st

from calfeed.json_steps import dumping, loading
from calfeed.shared_store import decode, encode
from calfeed.state import StateStore
from calfeed.steps import all_at_once, in_turns
from tests.helpers import counting_turns, make_event

T = TypeVar("T")

SCALARS = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
           | st.text())
VALUES = st.recursive(
    SCALARS,
    lambda inner: (st.lists(inner, max_size=300)
                   | st.dictionaries(st.text() | st.integers() | st.booleans(), inner,
                                     max_size=8)
                   | st.tuples(inner, inner)),
    max_leaves=600,
)


@given(VALUES)
def test_the_text_written_in_steps_is_json_dumps(value: Any) -> None:
    assert "".join(all_at_once(dumping(value))) == json.dumps(value)


@given(VALUES)
def test_what_is_read_in_steps_is_json_loads(value: Any) -> None:
    text = json.dumps(value)
    assert all_at_once(loading(text)) == json.loads(text)
    assert all_at_once(loading(text.encode("ascii"))) == json.loads(text)
    spaced = json.dumps(value, indent=1, separators=(" , ", " : "))
    assert all_at_once(loading(f" \n{spaced}\t\r\n")) == json.loads(text)


def _cut(text: str, cuts: list[int]) -> list[str]:
    """The text in pieces, cut where `cuts` say (any of them, in any order)."""
    at = sorted({cut % (len(text) + 1) for cut in cuts})
    return [text[start:end] for start, end in zip([0, *at], [*at, len(text)], strict=True)]


@contextlib.contextmanager
def _small_window() -> Iterator[None]:
    # (a window of a few characters, so that every mark and value crosses its edge; the
    # slack still longer than any number's cut tail)
    from calfeed import json_steps

    with mock.patch.object(json_steps, "_AHEAD", 3), mock.patch.object(json_steps, "_SLACK", 3):
        yield


@given(VALUES, st.lists(st.integers(0, 10**6), max_size=40), st.booleans())
def test_what_is_read_in_pieces_is_json_loads(value: Any, cuts: list[int], spaced: bool) -> None:
    text = (json.dumps(value, indent=1, separators=(" , ", " : ")) if spaced
            else json.dumps(value))
    pieces = _cut(f" {text} " if spaced else text, cuts)
    with _small_window():
        assert all_at_once(loading(pieces[0], pieces[1:])) == json.loads(text)


# what a cut may split: numbers and their tails, literals, escapes and surrogate pairs,
# the separator's quick path, runs of blanks; and the same, broken
TRICKY = [
    '[1e5, -1, 1.5, 123, 1E+5, 1e-5, 0.25e-3]', '[true, false, null, NaN, -Infinity]',
    '{"\\u1234": "\\ud800\\udc00", "a\\nb": "\\"\\\\"}', '[1,     2 , 3,\n\t4]',
    '{"a": {"b": [[], {}, [1, {"c": "d"}]]}}', '  "text"  ', '[1e, 2]', '[1.]', '[tru]',
    '{"a" 1}', '[1 2]', '"\\ud800\\u12"', '[1,]', '{"a": 1,}', '[1] x', '[-]',
    '["\x01"]', '[1, 2', '\ufeff[1]',
]


@pytest.mark.parametrize("text", TRICKY)
def test_every_cut_of_tricky_text_reads_as_json_loads(text: str) -> None:
    try:
        expected: Any = json.dumps(json.loads(text))
    except ValueError:
        expected = ValueError
    for first in range(len(text) + 1):
        for second in range(first, len(text) + 1, 3):
            pieces = _cut(text, [first, second])
            with _small_window():
                try:
                    found: Any = json.dumps(all_at_once(loading(pieces[0], pieces[1:])))
                except ValueError:
                    found = ValueError
            assert found == expected, (pieces, found, expected)


def test_a_fault_early_in_pieces_is_found_without_reading_the_rest() -> None:
    # (a corrupt shared dataset must not be made one string on the way to its refusal)
    from calfeed import json_steps

    text = '[{"a": x}, ' + ", ".join(['{"a": 1}'] * 20_000) + "]"
    pieces = [text[at:at + 1000] for at in range(0, len(text), 1000)]
    windows: list[int] = []
    ahead = json_steps._Reader._ahead

    def noting(reader: Any, at: int, need: int | None = None) -> int:
        moved = ahead(reader, at, need)
        windows.append(len(reader.text))
        return moved

    with (mock.patch.object(json_steps._Reader, "_ahead", noting),
          mock.patch.object(json_steps, "_AHEAD", 100),
          pytest.raises(ValueError, match="Expecting value")):
        all_at_once(loading(pieces[0], pieces[1:]))
    assert max(windows) <= 2000, max(windows)


# text made of JSON's own pieces, mostly not JSON
JSONISH = st.lists(st.sampled_from(
    ['{', '}', '[', ']', ',', ':', ' ', '\n', '"a"', '"', '1', '-', '2.5e3', 'true',
     'null', 'NaN', 'Infinity', '\\', 'x', '\ufeff', '"\\u12"']), max_size=30).map("".join)


@given(JSONISH, st.lists(st.integers(0, 10**6), max_size=10))
def test_text_json_refuses_is_refused_and_the_rest_read_alike(
    text: str, cuts: list[int],
) -> None:
    pieces = _cut(text, cuts)
    try:
        expected = json.loads(text)
    except ValueError:
        with pytest.raises(ValueError):
            all_at_once(loading(text))
        with _small_window(), pytest.raises(ValueError):
            all_at_once(loading(pieces[0], pieces[1:]))
        return
    found = all_at_once(loading(text))
    with _small_window():
        in_pieces = all_at_once(loading(pieces[0], pieces[1:]))
    # (NaN is not equal to itself: compared as text)
    assert json.dumps(found) == json.dumps(expected) == json.dumps(in_pieces)
    assert not isinstance(found, float) or math.isnan(found) == math.isnan(expected)


def test_keys_that_are_not_text_are_written_as_json_writes_them() -> None:
    value = {1: "a", 2.5: "b", False: "c", None: "d", "e": {3: []}}
    assert "".join(all_at_once(dumping(value))) == json.dumps(value)
    with pytest.raises(TypeError):
        all_at_once(dumping({(1, 2): "a tuple key"}))
    with pytest.raises(TypeError):
        all_at_once(dumping({"items": [object()]}))


def test_nesting_too_deep_is_a_recursion_error_not_a_crash() -> None:
    with pytest.raises(RecursionError):
        all_at_once(loading('{"a":' * 100_000 + "1" + "}" * 100_000))


async def test_a_long_list_is_written_and_read_with_turns_for_others() -> None:
    state = {"parts": {"upcoming": {"items": [make_event(i) for i in range(2_000)]}}}
    async with counting_turns() as turns:
        pieces = await in_turns(dumping(state))
    assert turns[0] >= 9, turns  # (2,000 items in slices of 200)
    text = "".join(pieces)
    async with counting_turns() as turns:
        read = await in_turns(loading(text))
    assert turns[0] >= 9, turns
    assert read == json.loads(text) == json.loads(json.dumps(state))


async def _at_once(func: Callable[..., T], /, *args: Any) -> T:
    """asyncio.to_thread's stand-in: the call made there and then, so that the turns the
    loop gets are the slices' own (waiting for a thread gives it hundreds)."""
    return func(*args)


async def test_a_dataset_is_saved_to_the_state_folder_with_turns_for_others(
        tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """(json.dumps in a thread held the GIL throughout: 0.4 s of stopped loop at 50,000
    events.) The file is what `save` writes, and reads back whole."""
    monkeypatch.setattr(asyncio, "to_thread", _at_once)
    state = {"parts": {"upcoming": {"items": [make_event(i) for i in range(2_000)]}}}
    folder = StateStore(tmp_path)
    async with counting_turns() as turns:
        await folder.save_in_turns("dataset-events", state)
    assert turns[0] >= 9, turns
    written = folder.path("dataset-events").read_bytes()
    folder.save("dataset-events", state)
    assert written == folder.path("dataset-events").read_bytes()
    assert folder.load("dataset-events") == json.loads(json.dumps(state))


async def test_a_shared_dataset_is_encoded_and_decoded_with_turns_for_others(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(asyncio, "to_thread", _at_once)
    state = {"parts": {"upcoming": {"items": [make_event(i) for i in range(2_000)]}}}
    async with counting_turns() as turns:
        blob = await encode("events", state)
    assert turns[0] >= 9, turns
    # the stored form is unchanged: zlib over the ASCII JSON of the envelope
    assert zlib.decompress(blob) == json.dumps(
        {"format": 1, "kind": "events", "state": state}).encode("ascii")
    async with counting_turns() as turns:
        decoded = await decode("events", blob)
    assert turns[0] >= 9, turns
    assert decoded == json.loads(json.dumps(state))
    assert await decode("launches", blob) is None  # another kind's
    assert await decode("events", zlib.compress(b'{"format": 1, "kind": "events"')) is None
    assert await decode("events", blob[:-3]) is None  # (cut short: even a valid start)
    assert await decode("events", b"") is None


def test_keys_are_kept_once_as_json_loads_keeps_them() -> None:
    """Read an element at a time, each element held its own copies of its keys (40% more
    memory for a follower's dataset); kept once, as json.loads keeps them."""
    text = json.dumps({"parts": {"upcoming": {"items": [
        make_event(i, agencies=(1, 2)) for i in range(500)]}}})
    read = all_at_once(loading(text))["parts"]["upcoming"]["items"]
    expected = json.loads(text)["parts"]["upcoming"]["items"]
    assert read == expected

    def key_objects(items: list[dict[str, Any]]) -> int:
        found: set[int] = set()

        def walk(value: Any) -> None:
            if isinstance(value, dict):
                found.update(id(key) for key in value)
                for inner in value.values():
                    walk(inner)
            elif isinstance(value, list):
                for inner in value:
                    walk(inner)

        walk(items)
        return len(found)

    assert key_objects(read) == key_objects(expected) < 50


def test_anything_but_text_is_a_type_error_as_in_json() -> None:
    for value in (memoryview(b"[]"), 12, None):
        with pytest.raises(TypeError):
            json.loads(value)  # type: ignore[arg-type]  # (what json itself does)
        with pytest.raises(TypeError):
            all_at_once(loading(value))  # type: ignore[arg-type]  # (the same)
