"""Clients as a stranger on the internet can be: over-long request lines, stalled
headers, cross-site pages asking first. Each costs calfeed one log line at most."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import pytest

from tests.fake_ll2 import FakeLL2
from tests.helpers import make_event


@pytest.fixture
def some(fake: FakeLL2) -> FakeLL2:
    fake.upcoming = [make_event(1)]
    return fake


async def raw_exchange(client: Any, data: bytes, wait: float = 5.0) -> bytes:
    """Send bytes on a fresh connection; everything the server sent until it closed."""
    reader, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(data)
    await writer.drain()
    try:
        return await asyncio.wait_for(reader.read(), wait)
    finally:
        writer.close()


async def test_over_long_request_line_is_400_and_one_log_line(
    some: FakeLL2, calfeed: Any, caplog: pytest.LogCaptureFixture
) -> None:
    client = await calfeed()
    with caplog.at_level(logging.DEBUG):
        for _ in range(3):
            answer = await raw_exchange(
                client, b"GET /events.ics?search=" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
            assert answer.split(b"\r\n")[0].endswith(b" 400 Bad Request")
        header = await raw_exchange(
            client, b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 9000 + b"\r\n\r\n")
        assert header.split(b"\r\n")[0].endswith(b" 400 Bad Request")
    bad = [r for r in caplog.records if r.name == "calfeed.http"]
    assert len(bad) == 4, [r.getMessage() for r in bad]
    for record in bad:
        assert record.exc_info is None and record.levelno == logging.WARNING
        assert "\n" not in record.getMessage() and len(record.getMessage()) < 400
    assert not any(r.exc_info for r in caplog.records)


async def test_stalled_request_headers_are_dropped(some: FakeLL2, calfeed: Any) -> None:
    client = await calfeed(idle_timeout=1.0)
    started = time.monotonic()
    # half a request, and then nothing: the server closes the connection by itself
    answer = await raw_exchange(client, b"GET /events.ics HTTP/1.1\r\nHost: x\r\nX-A: ",
                                wait=10)
    assert answer == b""
    assert 0.5 < time.monotonic() - started < 8
    # a whole request is still answered
    assert (await client.get("/healthz")).status in (200, 503)


async def test_trickled_headers_are_dropped_too(some: FakeLL2, calfeed: Any) -> None:
    client = await calfeed(idle_timeout=1.0)
    reader, writer = await asyncio.open_connection(client.host, client.port)
    started = time.monotonic()
    closed_after = None
    try:
        for byte in b"GET /events.ics HTTP/1.1\r\nHost: x\r\n" + b"X-Slow: " + b"z" * 100:
            writer.write(bytes([byte]))
            await asyncio.sleep(0.05)
            if writer.transport.is_closing() or reader.at_eof():
                closed_after = time.monotonic() - started
                break
            try:
                if await asyncio.wait_for(reader.read(1), 0.001) == b"":
                    closed_after = time.monotonic() - started
                    break
            except TimeoutError:
                pass
    finally:
        writer.close()
    assert closed_after is not None and closed_after < 4


@pytest.mark.parametrize("path", ["/events.json", "/launches.json", "/events.ics",
                                  "/launches.ics"])
async def test_cors_preflight_is_answered(some: FakeLL2, calfeed: Any, path: str) -> None:
    client = await calfeed()
    response = await client.options(path, headers={
        "Origin": "https://fan-site.example",
        "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "if-none-match",
    })
    assert response.status == 204
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "GET" in response.headers["Access-Control-Allow-Methods"]
    assert response.headers["Access-Control-Allow-Headers"] == "*"
    # and the GET it was asked for carries the same permission
    data = await client.get(path, headers={"Origin": "https://fan-site.example"})
    assert data.headers["Access-Control-Allow-Origin"] == "*"


async def test_a_hostile_header_is_one_plain_log_line(
    some: FakeLL2, calfeed: Any, caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    client = await calfeed()
    with caplog.at_level(logging.DEBUG):
        answer = await raw_exchange(
            client, b"GET / HTTP/1.1\r\nHost: x\r\nX: a\x01%s%d\r\n\r\n")
    assert answer.split(b"\r\n")[0].endswith(b" 400 Bad Request")
    bad = [r for r in caplog.records if r.name == "calfeed.http"]
    assert len(bad) == 1
    message = bad[0].getMessage()  # formats without error: the bytes were an argument
    assert "\n" not in message and "\x01" not in message
    assert "Logging error" not in capsys.readouterr().err
