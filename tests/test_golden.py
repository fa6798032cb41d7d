"""Golden feeds: each LL2 fixture in tests/data maps to the .ics beside it, byte for byte.

Set CALFEED_UPDATE_GOLDEN=1 to rewrite the .ics files after an intended change,
then read the diff before committing it.
"""

from __future__ import annotations

import asyncio
import os
import pathlib
import shutil
import subprocess

import pytest

from calfeed.cli import build_feed
from calfeed.dataset import load_items
from calfeed.feeds import FEED_KINDS
from calfeed.settings import Settings
from tests.helpers import NOW
from tests.ics_helpers import read_feed

DATA = pathlib.Path(__file__).parent / "data"
FIXTURES = sorted(p.stem for p in DATA.glob("*.json"))
ICS_CHECK = (
    pathlib.Path(__file__).resolve().parents[2] / "shared" / "tools" / "ics-check" / "ics-check"
)
GOLDEN_QUERY = [("precision", "any"), ("past_days", "30")]
# the goldens do not follow calfeed's version: a release must not rewrite every one of them
GOLDEN_PRODID = "-//calfeed//calfeed 0.1.0//EN"


@pytest.fixture(autouse=True)
def pinned_prodid(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("calfeed.render.PRODID", GOLDEN_PRODID)


def render_fixture(stem: str) -> bytes:
    """The feed calfeed builds from a fixture, with everything included.

    Fixtures named launches-* are LL2 launches; the others are LL2 events.
    """
    items = load_items(DATA / f"{stem}.json")
    kind = FEED_KINDS["launches" if stem.startswith("launches-") else "events"]
    return asyncio.run(build_feed(Settings(), kind, GOLDEN_QUERY, items, NOW))


@pytest.mark.parametrize("stem", FIXTURES)
def test_fixture_matches_golden_ics(stem: str) -> None:
    body = render_fixture(stem)
    golden = DATA / f"{stem}.ics"
    if os.environ.get("CALFEED_UPDATE_GOLDEN") == "1":
        golden.write_bytes(body)
    assert golden.exists(), f"no golden file {golden.name}; run with CALFEED_UPDATE_GOLDEN=1"
    assert body == golden.read_bytes()


@pytest.mark.parametrize("stem", FIXTURES)
def test_golden_feed_parses_in_icalendar_and_strict_ical(stem: str) -> None:
    body = render_fixture(stem)
    events = read_feed(body)
    assert len({str(e["UID"]) for e in events}) == len(events)


def test_rendering_is_byte_stable() -> None:
    assert render_fixture("shape-2.3.0") == render_fixture("shape-2.3.0")


# CI sets this: there a missing checker fails the run instead of skipping the test
REQUIRE_ICS_CHECK = os.environ.get("CALFEED_REQUIRE_ICS_CHECK") == "1"


@pytest.mark.slow  # 15 parsers and clients, a few seconds per fixture
@pytest.mark.parametrize("stem", FIXTURES)
def test_golden_feed_passes_ics_check(stem: str, tmp_path: pathlib.Path) -> None:
    missing = None
    if not ICS_CHECK.exists() or shutil.which("node") is None:
        missing = "../shared/tools/ics-check is not there"
    else:
        state = subprocess.run([str(ICS_CHECK), "--list"], capture_output=True, text=True)
        if "not installed" in state.stdout:
            missing = "ics-check's checkers are not all installed (run its install.sh)"
    if missing:
        if REQUIRE_ICS_CHECK:
            pytest.fail(missing)
        pytest.skip(missing)
    path = tmp_path / f"{stem}.ics"
    path.write_bytes(render_fixture(stem))
    expected = str(len(read_feed(path.read_bytes())))
    result = subprocess.run(
        [str(ICS_CHECK), str(path), "-q", "--expect-events", expected],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("alarms", [(30,), (60, 10), (1440, 120, 5)])
@pytest.mark.parametrize("stem", FIXTURES)
def test_spliced_reminders_are_the_bytes_a_full_render_gives(
    stem: str, alarms: tuple[int, ...]
) -> None:
    from dataclasses import replace

    from calfeed.dataset import Snapshot
    from calfeed.render import Renderer

    kind = FEED_KINDS["launches" if stem.startswith("launches-") else "events"]
    snapshot = Snapshot(tuple(load_items(DATA / f"{stem}.json")), NOW, 1)
    renderer = Renderer(Settings(), lambda: NOW)
    _, context = renderer.context(kind, {kind.name: snapshot})
    options = replace(renderer.options, alarms=alarms)
    compared = 0
    for entry in renderer.entries(kind, snapshot):
        renderer.block(kind, entry, renderer.options, context)  # the cached block first
        spliced = renderer.block(kind, entry, options, context)
        try:
            full = kind.to_vevent(entry.item, options, context).to_ical()
        except Exception:
            assert spliced is None
            continue
        assert spliced == full, entry.ident
        compared += 1
    assert compared or stem == "empty"
