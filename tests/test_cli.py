"""The `calfeed` command: build from files, stdin or LL2; serve --demo; settings."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
import os
import pathlib
import socket
import sys
import urllib.request
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from calfeed.cli import main
from calfeed.exceptions import SettingsError
from calfeed.settings import Settings, settings_from_env
from tests.fake_ll2 import FakeLL2
from tests.helpers import NOW, README, make_event, readme_words
from tests.ics_helpers import read_feed, summaries, uids

DATA = pathlib.Path(__file__).parent / "data"
DEMO = pathlib.Path(__file__).parents[1] / "calfeed" / "data" / "demo-events.json"


def test_build_from_file_with_filters(tmp_path: pathlib.Path) -> None:
    out = tmp_path / "feed.ics"
    code = main(["build", "--input", str(DATA / "shape-2.2.0.json"), "--type", "4",
                 "--now", "2026-11-29T00:00:00Z", "-o", str(out)])
    assert code == 0
    assert summaries(out.read_bytes()) == ["Dragon CRS-35 Berthing"]


def test_build_flags_match_url_parameters(tmp_path: pathlib.Path) -> None:
    out = tmp_path / "feed.ics"
    main(["build", "--input", str(DATA / "precision-every-id.json"), "--precision", "quarter",
          "--past-days", "0", "--search", "quarter", "--now", "2026-11-29T00:00:00Z",
          "-o", str(out)])
    # Q4 2026 is still running on Nov 29; the year, half and decade events are too coarse
    assert summaries(out.read_bytes()) == [
        "Quarter 4 (date not at quarter end) (Q4 2026)", "Quarter 1 (Q1 2027)",
        "Quarter 2 (Q2 2027)", "Quarter 3 (Q3 2027)",
    ]


def test_now_decides_what_is_past(tmp_path: pathlib.Path) -> None:
    out = tmp_path / "feed.ics"
    main(["build", "--input", str(DATA / "durations.json"), "--past-days", "0",
          "--now", "2026-12-08T10:30:00Z", "-o", str(out)])
    # the 10:00-11:00 event is under way, so it stays; the one before it has ended
    assert summaries(out.read_bytes())[:2] == [
        "Unparseable duration", "Duration on a day-precision event is ignored (time TBD)",
    ]


def test_bad_filter_value_exits_2_naming_it(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["build", "--input", str(DATA / "empty.json"), "--type", "docking"])
    assert code == 2
    assert "invalid value 'docking' for parameter 'type'" in capsys.readouterr().err


def test_missing_input_file_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["build", "--input", "/nonexistent/events.json"])
    assert code == 2
    assert "cannot read LL2 JSON from /nonexistent/events.json" in capsys.readouterr().err


def test_input_nested_too_deep_exits_2_or_is_skipped(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    # deeper than Python's JSON parser goes: bad input, not a traceback
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 5000 + "]" * 5000)
    assert main(["build", "--input", str(deep)]) == 2
    assert "nested too deep" in capsys.readouterr().err
    monkeypatch.setattr(sys, "stdin", io.StringIO("[" * 5000 + "]" * 5000))
    assert main(["build", "--input", "-"]) == 2
    # deeper than any real item, as from LL2: that item is skipped, the rest built
    nested: Any = "bottom"
    for _ in range(40):
        nested = {"deeper": nested}
    mixed = tmp_path / "mixed.json"
    mixed.write_text(json.dumps([make_event(1, "2026-12-01T10:00:00Z"),
                                 make_event(2, "2026-12-02T10:00:00Z", description=nested)]))
    out = tmp_path / "feed.ics"
    assert main(["build", "--input", str(mixed), "--now", "2026-11-29T12:00:00Z",
                 "-o", str(out)]) == 0
    assert uids(out.read_bytes()) == ["ll2-event-1@calfeed"]
    assert any("nested more than 32 levels" in r.getMessage() for r in caplog.records)


def test_an_output_that_cannot_be_written_exits_2(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str],
) -> None:
    for target in (tmp_path / "no-such-folder" / "feed.ics", tmp_path):
        assert main(["build", "--demo", "-o", str(target)]) == 2
        error = capsys.readouterr().err
        assert f"cannot write the feed to {target}" in error and "Traceback" not in error
    assert not (tmp_path / "no-such-folder").exists()


def test_bad_now_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["build", "--input", str(DATA / "empty.json"), "--now", "yesterday"]) == 2
    assert "--now" in capsys.readouterr().err


async def run_cli(*args: str, stdin: bytes = b"") -> tuple[int, bytes, bytes]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "calfeed", *args,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(stdin), timeout=60)
    assert process.returncode is not None
    return process.returncode, out, err


async def test_build_reads_stdin_a_bare_list_or_one_event() -> None:
    one = make_event(1, "2030-01-01T10:00:00Z", name="Only one")
    for payload in (one, [one], {"results": [one]}):
        code, out, err = await run_cli("build", "--input", "-", stdin=json.dumps(payload).encode())
        assert code == 0, err
        assert summaries(out) == ["Only one"]


async def test_build_from_upstream(fake: FakeLL2, fake_server: TestServer) -> None:
    fake.upcoming = [make_event(1, "2030-01-01T10:00:00Z", name="From the fake LL2")]
    code, out, err = await run_cli(
        "build", "--upstream", str(fake_server.make_url("/2.3.0")), "-o", "-"
    )
    assert code == 0, err
    assert summaries(out) == ["From the fake LL2"]
    assert len(fake.list_calls()) == 2
    # an events feed needs the events and nothing else: no launches, no event-type list
    assert sorted(c.path for c in fake.counted_calls()) == [
        "/2.3.0/events/previous/", "/2.3.0/events/upcoming/",
    ]


async def test_build_with_upstream_down_exits_3(fake: FakeLL2, fake_server: TestServer) -> None:
    fake.fail_times = -1
    code, _, err = await run_cli("build", "--upstream", str(fake_server.make_url("/2.3.0")))
    assert code == 3
    assert b"HTTP 500" in err and b"Traceback" not in err


async def test_serve_demo_serves_every_precision_offline(tmp_path: pathlib.Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "CALFEED_PORT": str(port)}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "calfeed", "serve", "--demo", env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        body = b""
        for _ in range(100):
            try:
                body = await asyncio.to_thread(_fetch, f"http://127.0.0.1:{port}/events.ics?precision=any")
                break
            except OSError:
                await asyncio.sleep(0.1)
        demo = json.loads(DEMO.read_text())
        assert len(read_feed(body)) >= len(demo["results"]) - 2
        precisions = {
            (e["date_precision"] or {}).get("id") for e in demo["results"]
        }
        assert precisions >= {None, *range(17)}
    finally:
        process.terminate()
        await process.wait()


def _fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=5) as response:
        data: bytes = response.read()
        return data


def test_demo_data_builds_with_every_event(tmp_path: pathlib.Path) -> None:
    out = tmp_path / "demo.ics"
    assert main(["build", "--input", str(DEMO), "--precision", "any", "--past-days", "30",
                 "--now", "2026-11-29T00:00:00Z", "-o", str(out)]) == 0
    demo = json.loads(DEMO.read_text())
    assert len(uids(out.read_bytes())) == len(demo["results"])


def test_settings_from_environment_and_flags() -> None:
    settings = settings_from_env({"CALFEED_PORT": "9000", "CALFEED_DEMO": "yes",
                                  "CALFEED_UPSTREAM": "https://lldev.thespacedevs.com/2.3.0"})
    assert settings.port == 9000 and settings.demo is True
    assert settings.upstream == "https://lldev.thespacedevs.com/2.3.0"
    assert settings_from_env({"CALFEED_PORT": "9000"}, port=9100).port == 9100
    assert Settings().max_past_days == 30
    assert Settings().hourly_budget == 13  # 15 an hour without a key, 2 kept back
    assert Settings(ll2_token="k").hourly_budget == 298
    assert Settings(budget=50, budget_reserve=5).hourly_budget == 45


def test_bad_setting_is_a_clear_error() -> None:
    with pytest.raises(SettingsError, match="CALFEED_PORT: 'eighty' is not a valid int"):
        settings_from_env({"CALFEED_PORT": "eighty"})


def test_bad_setting_flag_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["build", "--input", str(DATA / "empty.json"), "--max-past-days", "many"]) == 2
    assert "--max-past-days: 'many' is not a valid int" in capsys.readouterr().err


@pytest.mark.parametrize(("flag", "value", "words"), [
    # (0 spun the sync loop at full CPU; 0 cached bodies made every feed a 500; a NaN
    # lease let no process lead; a port past 65535 was a traceback)
    ("--incremental-interval", "0", "at least 1"),
    ("--past-refresh-interval", "0", "at least 1"),
    ("--body-cache-size", "0", "at least 1"),
    ("--refresh-interval", "-5", "at least 1"),
    ("--max-past-days", "-1", "at least 0"),
    ("--leader-lease", "nan", "at least 0.001"),
    ("--read-timeout", "inf", "at least 0.001"),
    ("--port", "70000", "at most 65535"),
    # (past these, the dates calfeed computes leave the calendar: OverflowError)
    ("--max-past-days", "1000000000", "at most 36600"),
    ("--hot-window", "100000000000000", "at most 31622400"),
    ("--default-duration", "40000000", "at most 31622400"),
    # (an empty feed, its header with the longest name, must fit)
    ("--max-feed-bytes", "2000", "at least 8192"),
    ("--redis-url", "http://x", "not a redis://, rediss:// or unix:// URL"),
])
def test_a_setting_out_of_its_range_exits_2_naming_it(
    capsys: pytest.CaptureFixture[str], flag: str, value: str, words: str,
) -> None:
    assert main(["serve", "--demo", flag, value]) == 2
    error = capsys.readouterr().err
    variable = "CALFEED_" + flag[2:].replace("-", "_").upper()
    assert f"{flag} ({variable})" in error and words in error and "Traceback" not in error
    with pytest.raises(SettingsError, match=words.replace(".", r"\.")):
        settings_from_env({variable: value})


def test_the_longest_default_duration_is_the_longest_an_event_lasts() -> None:
    from calfeed.readers import MAX_DURATION
    from calfeed.settings import MAX_DURATION_SECONDS

    assert MAX_DURATION.total_seconds() == MAX_DURATION_SECONDS


def test_a_host_that_is_no_host_name_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--demo", "--host", "bad..host", "--port", "0"]) == 2
    assert "not a host name" in capsys.readouterr().err


def test_help_lists_filters_and_settings(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["build", "--help"])
    text: Any = capsys.readouterr().out
    for flag in ("--type", "--agency", "--program", "--search", "--past-days", "--precision",
                 "--input", "--now", "--upstream", "CALFEED_LL2_TOKEN"):
        assert flag in text


def test_readme_documents_every_setting_and_parameter() -> None:
    from calfeed.feeds import FEED_KINDS
    from calfeed.settings import A_YEAR, Settings, range_words, settings_table

    readme = README.read_text()
    for flag, variable, _, _ in settings_table():
        assert f"`{flag}`" in readme and f"`{variable}`" in readme
    # the table's ranges are the code's, and what the text says of them
    rows = {line.split(" | ")[0].strip("| `"): line.split(" | ")
            for line in readme.splitlines() if line.startswith("| `--")}
    for f in dataclasses.fields(Settings):
        row = rows["--" + f.name.replace("_", "-")]
        assert len(row) == 5 and row[3] == range_words(f.name), (f.name, row)
        # and the defaults
        default = getattr(Settings(), f.name)
        if isinstance(default, bool):
            assert row[2] == ("on" if default else "off"), (f.name, row)
        elif default == "":
            assert row[2].startswith("empty" if f.name != "state_dir"
                                     else "`$XDG_DATA_HOME/calfeed`"), (f.name, row)
        else:
            assert row[2] == f"`{default}`", (f.name, row)
    assert A_YEAR == 366 * 86400 == 31622400
    defaults = Settings()
    for words in (f"`retry_backoff` ({defaults.retry_backoff} s)",
                  f"`max_backoff` ({defaults.max_backoff // 60} min)",
                  f"`stale_after` ({defaults.stale_after // 3600} h)"):
        assert words in readme_words(), words
    from calfeed.sync import CLOCK_SLACK

    assert (f"a sync time or a retry more than {CLOCK_SLACK.seconds // 60} minutes ahead"
            in readme_words("Upstream budget, freshness and failures"))
    from calfeed.coordinator import ROUND_SECONDS

    assert (f"with `--redis-url`, at least {3 * ROUND_SECONDS:g} s: three of the lease's "
            "rounds") in rows["--leader-lease"][4]
    assert "longer than 366 days, 31622400 s" in readme_words()
    from calfeed.dataset import SHIFTED_MISSES

    moving = readme_words().split("**A list that moves while it is read.**", 1)[1]
    assert SHIFTED_MISSES == 3 and "goes once three such lists in a row lacked it" in moving
    for kind in FEED_KINDS.values():
        assert f"/{kind.name}.ics" in readme
        for param in kind.params(30):
            assert f"`{param.name}`" in readme
            for alias in param.aliases:
                assert f"`{alias}`" in readme


async def test_readme_names_the_fields_of_each_json_list(tmp_path: pathlib.Path) -> None:
    import re

    from aiohttp.test_utils import TestClient, TestServer

    from calfeed.server import create_app
    from calfeed.settings import Settings

    said = readme_words().split("`GET /events.json` takes the same parameters", 1)[1].split(
        "(`tags`:", 1)[0]
    settings = Settings(demo=True, state_dir=str(tmp_path))
    async with TestClient(TestServer(create_app(settings, background=False))) as client:
        for kind in ("events", "launches"):
            data = await (await client.get(f"/{kind}.json?precision=any")).json()
            listed = re.search(rf'"{kind}": \[\{{([^}}]*)\}}\]', said)
            assert listed and re.findall(r'"(\w+)"', listed[1]) == list(data[kind][0]), kind
            if kind == "events":  # (the list's envelope, said once)
                envelope = ", ".join(f'"{key}"' for key in data if key != kind)
                assert f"`{{{envelope}, \"events\": [" in said


def test_readme_page_numbers_are_the_codes() -> None:
    from calfeed.links import MAX_FEED_URL
    from calfeed.page import FOLD_AFTER

    page = readme_words("The subscribe page")
    assert f"list of more than {FOLD_AFTER} has a search box and starts folded" in page
    assert f"exceed the {MAX_FEED_URL} characters Google Calendar accepts" in page


def test_readme_memory_bounds_are_the_codes() -> None:
    import inspect

    from aiohttp.web_protocol import RequestHandler

    from calfeed.negotiation import ENCODINGS_READ
    from calfeed.readers import DURATION_CHARS, DURATIONS_READ
    from calfeed.render import (
        ALARM_TEXT_BYTES,
        DESCRIPTION_LINES,
        HISTORY_PER_BODY,
        TRIGGER_LINES,
    )
    from calfeed.server import PARSED_QUERIES, PARSED_QUERY_CHARS
    from calfeed.settings import Settings

    header = inspect.signature(RequestHandler.__init__).parameters["max_field_size"].default

    memory = readme_words("Memory")
    settings = Settings()
    times = "\N{MULTIPLICATION SIGN}"  # (as the README writes it)
    for fact in (
        f"at most `body_cache_size` ({settings.body_cache_size}) and `cache_bytes` "
        f"({settings.cache_bytes // 10**6} MB,",
        f"parsed queries ({PARSED_QUERIES:,} per kind, of at most {PARSED_QUERY_CHARS} "
        "characters each,",
        f"VALARM texts ({ALARM_TEXT_BYTES // 2**20} MB of them, one per title",
        f"({DESCRIPTION_LINES:,} titles' DESCRIPTION lines, {TRIGGER_LINES:,} TRIGGER lines)",
        f"({HISTORY_PER_BODY} {times} `body_cache_size`, "
        f"{HISTORY_PER_BODY * settings.body_cache_size:,},",
        f"about 2 {times} {settings.cache_bytes // 10**6} MB of bodies",
        f"`Accept-Encoding` headers read ({ENCODINGS_READ}, each at most a header's "
        f"{header // 1000} KB)",
        f"durations read ({DURATIONS_READ:,} texts of at most {DURATION_CHARS} characters)",
    ):
        assert fact in memory, fact


@pytest.mark.parametrize("kind", ["events", "launches"])
def test_the_parsed_queries_strangers_can_make_take_what_the_readme_says(kind: str) -> None:
    # the costliest queries kept: as long as kept, nearly all of it ids (a set and a
    # sorted tuple of them per query), each distinct
    import re
    import tracemalloc

    from yarl import URL

    from calfeed.feeds import FEED_KINDS
    from calfeed.server import PARSED_QUERIES, PARSED_QUERY_CHARS, QueryReader

    said = re.search(r"at most about (\d+) MB per kind", readme_words("Memory"))
    assert said is not None
    reader = QueryReader(FEED_KINDS[kind], 30)
    facet = "type" if kind == "events" else "provider"
    ids = ",".join(str(i) for i in range(100))
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for n in range(PARSED_QUERIES + 100):
            raw = f"{facet}={ids}"[:PARSED_QUERY_CHARS - 40].rstrip(",")
            raw += f"&alarm=1,2,3,4&search={n:010d}&utm_x="
            raw += "y" * (PARSED_QUERY_CHARS - len(raw))
            url = URL(f"/{kind}.ics?{raw}", encoded=True)
            reader(type("Request", (), {"rel_url": url, "query": url.query})())
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert held <= int(said[1]) * 10**6, held


def test_the_reminders_strangers_can_make_take_what_the_readme_says() -> None:
    # titles of the longest (a thousand characters, written once per reminder) and every
    # set of four reminders a stranger cares to ask for: more than the caches keep
    import re
    import tracemalloc

    from calfeed import render
    from calfeed.render import DESCRIPTION_LINES, Renderer
    from calfeed.settings import Settings

    said = re.search(r"at most about (\d+) MB, with titles of the longest, a thousand "
                     "characters", readme_words("Memory"))
    assert said is not None
    renderer = Renderer(Settings(), lambda: NOW)
    render._description_line.cache_clear()
    titles = [(f"{n:05d} " + "Starlink, Group; " * 70)[:1000]
              for n in range(2 * DESCRIPTION_LINES)]
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for n in range(2 * len(titles)):
            renderer._alarms(titles[n % len(titles)], (10080 - n // len(titles), 60, 30, 10))
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
        render._description_line.cache_clear()
    assert held <= int(said[1]) * 10**6, held


def test_readme_security_limits_are_the_codes() -> None:
    import inspect

    from aiohttp.web_protocol import RequestHandler

    from calfeed import page, readers, sanitize
    from calfeed.exceptions import InvalidParameter
    from calfeed.feeds import FEED_KINDS, MAX_NAME
    from calfeed.query import MAX_LIST_VALUES
    from calfeed.settings import Settings

    section = readme_words("Security")  # (the numbers may sit across line breaks)
    alarm = next(p for p in FEED_KINDS["events"].params(30) if p.name == "alarm")
    echo = InvalidParameter("search", "x" * 1000, "text").message
    echoed = len(echo.split("'")[1].rstrip("…"))
    line_limit = inspect.signature(RequestHandler.__init__).parameters["max_line_size"]
    for fact in (
        f"more than {MAX_LIST_VALUES} values in a list parameter ({alarm.max_values} for "
        "`alarm`)",
        f"echoing at most {echoed} characters",
        f"more than {sanitize.MAX_DEPTH} levels deep",
        f"years outside {readers.EARLIEST_YEAR}\u2013{readers.LATEST_YEAR}",
        f"at most {page.PREVIEW_LIMIT} items",
        f"`idle_timeout` ({Settings().idle_timeout:.0f} s)",
        f"over {line_limit.default} bytes",
        f"cuts a line at {sanitize.MAX_LINE:,} characters and a description at "
        f"{sanitize.MAX_PARAGRAPHS:,}",
        f"shown {readers.MAX_LISTED} at most",
        f"a calendar name is at most {MAX_NAME} characters",
    ):
        assert fact in section, fact


async def test_build_that_could_not_fetch_all_it_needs_exits_3(
    fake: FakeLL2, fake_server: TestServer
) -> None:
    fake.launches_upcoming = [{"id": "l-1", "name": "A launch", "net": "2030-01-01T10:00:00Z",
                               "last_updated": "2026-11-01T00:00:00Z"}]
    # the launches arrive, the events that would give them related events do not
    fake.fail_times, fake.fail_only = -1, "/events/"
    code, out, err = await run_cli("build", "--feed", "launches", "--upstream",
                                   str(fake_server.make_url("/2.3.0")))
    assert code == 3 and out == b""
    assert b"HTTP 500" in err and b"Traceback" not in err


@pytest.mark.slow  # maps 5,000 events: a few seconds
async def test_build_of_5000_items_is_trimmed_not_crashed(tmp_path: pathlib.Path) -> None:
    # more items than the hourly budget has pages for once crashed the budget's planner
    page = {"count": 5000, "results": [
        make_event(i, f"2026-12-{i % 28 + 1:02d}T10:00:00Z") for i in range(5000)]}
    source = tmp_path / "5000.json"
    source.write_text(json.dumps(page))
    out = tmp_path / "5000.ics"
    code, _, err = await run_cli("build", "--input", str(source), "--now",
                                 "2026-11-29T12:00:00Z", "-o", str(out))
    assert code == 0, err
    body = out.read_bytes()
    assert len(body) <= 1_000_000
    assert 1000 < len(read_feed(body)) < 5000  # the nearest to now, to the size limit


def test_readme_shared_service_figures_are_the_codes() -> None:
    import re

    from calfeed.coordinator import LOST_WAIT_MOST, ROUND_SECONDS
    from calfeed.render import SLOT
    from calfeed.settings import Settings

    root = pathlib.Path(__file__).parents[1]
    section = readme_words("Several processes as one service")
    assert ROUND_SECONDS == 1.0 and "renewed every second" in section
    assert "Followers look for new data every second" in section
    assert SLOT.total_seconds() == 300 and "five-minute slot" in section
    assert LOST_WAIT_MOST == 300 and "waits doubling up to five minutes" in section
    assert f"`leader_lease`, {Settings().leader_lease:.0f} s" in section
    # the deployment text says what the sample config does
    config = (root / "deploy" / "nginx.conf").read_text()
    timeout = re.findall(r"fail_timeout=(\d+)s", config)
    deployment = readme_words("Deployment")
    assert len(timeout) == 2 and f"skipped for {timeout[0]} s" in deployment
    keepalive = re.findall(r"keepalive_timeout (\d+)s;", config)
    assert keepalive and f"upstream keep-alive of {keepalive[0]} s" in deployment
    assert int(keepalive[0]) < Settings().idle_timeout  # (as the README says it stays)
    assert "return 301 https://" in config and "location = /metrics" in config


@pytest.mark.parametrize(("flags", "says"), [
    (["--workers", "2"], "--workers 2 needs --redis-url (CALFEED_REDIS_URL)"),
    (["--redis-url", "redis://127.0.0.1:1/0", "--leader-lease", "1"],
     "--leader-lease 1 is too short"),
])
def test_serve_refuses_settings_that_cannot_work(
    flags: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["serve", "--demo", *flags]) == 2
    error = capsys.readouterr().err
    assert says in error and "Traceback" not in error
