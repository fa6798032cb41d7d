"""The subscribe page in a real headless Chromium (Debian's chromium + chromedriver).

The tests start the browser themselves; calfeed runs in a thread with fixed data.
Screenshots land in test-artifacts/ (desktop and phone width).
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import shutil
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlsplit

import pytest

from tests.helpers import make_event
from tests.ics_helpers import read_feed, uids
from tests.server_thread import ServerThread

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
ARTIFACTS = pathlib.Path(__file__).resolve().parents[1] / "test-artifacts"
DOCS = pathlib.Path(__file__).resolve().parents[1] / "docs"
HAVE_BROWSER = os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)

if not HAVE_BROWSER and os.environ.get("CALFEED_REQUIRE_BROWSER") == "1":
    raise RuntimeError("CALFEED_REQUIRE_BROWSER=1 but chromium/chromedriver are not installed")

pytestmark = [pytest.mark.skipif(not HAVE_BROWSER, reason="Debian chromium is not installed"),
              pytest.mark.slow]

EVENTS = [
    make_event(1, "2026-12-01T10:00:00Z", name="Progress MS-36 Docking", type_id=2,
               agencies=(63,), programs=(17,),
               vid_urls=[{"priority": 10, "publisher": "NASA", "title": "Coverage",
                          "url": "https://plus.nasa.gov/progress", "live": False}]),
    make_event(2, "2026-12-02T12:30:00Z", name="US Spacewalk 95", type_id=6, type_name="EVA",
               agencies=(44,), programs=(17,)),
    make_event(3, "2026-12-03T15:00:00Z", name="Crew-13 Docking", type_id=2,
               agencies=(44, 121), programs=(17,)),
    make_event(4, "2026-12-31T00:00:00Z", name="Juice flyby", type_id=23, type_name="Flyby",
               agencies=(27,), precision=7),
    make_event(5, "2026-12-05T00:00:00Z", name="Starliner docking", type_id=2,
               agencies=(44, 80), precision=5),
]


LAUNCHES = json.loads(
    (pathlib.Path(__file__).parent / "data" / "launches-2.3.0.json").read_text())["results"]


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    server = ServerThread({"events": EVENTS, "launches": LAUNCHES})
    url = server.start()
    yield url
    server.stop()


def make_driver(javascript: bool = True) -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--window-size=1280,1600",
                 f"--user-data-dir={tempfile.mkdtemp()}"):
        options.add_argument(flag)
    if not javascript:
        options.add_experimental_option(
            "prefs", {"profile.managed_default_content_settings.javascript": 2}
        )
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


@pytest.fixture
def browser() -> Iterator[Any]:
    driver = make_driver()
    yield driver
    driver.quit()


def wait_for(condition: Any, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the page")
        time.sleep(0.05)


def fetch(url: str) -> tuple[bytes, Any]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read(), response.headers


def open_page(driver: Any, url: str) -> None:
    driver.get(url)
    wait_for(lambda: "js" in driver.execute_script(
        "return document.documentElement.className"))


def tap(driver: Any, element: Any) -> None:
    """Click an element the way a person does: scrolled to the middle of the screen first
    (the page's sticky bar covers the bottom edge, where WebDriver would leave it)."""
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
    element.click()


def check(driver: Any, name: str, value: int) -> None:
    from selenium.webdriver.common.by import By

    tap(driver, driver.find_element(By.CSS_SELECTOR, f'input[name="{name}"][value="{value}"]'))


def text_of(driver: Any, element_id: str) -> str:
    from selenium.webdriver.common.by import By

    return str(driver.find_element(By.ID, element_id).text)


def preview_ids(driver: Any) -> list[str]:
    # one script call: the list is re-rendered as responses arrive, so no element handles
    ids: list[str] = driver.execute_script(
        "return Array.from(document.querySelectorAll('#events li'), li => li.dataset.id)")
    return ids


def test_page_loads_without_errors_or_foreign_requests(browser: Any, base_url: str) -> None:
    from selenium.webdriver.common.by import By

    open_page(browser, base_url + "/")
    assert [e for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []
    hosts = set()
    for entry in browser.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            url = message["params"]["request"]["url"]
            if url.startswith(("http:", "https:", "ws:", "wss:")):  # not chrome:// or data:
                hosts.add(urlsplit(url).netloc)
    assert hosts == {urlsplit(base_url).netloc}
    # served at 127.0.0.1: the page says Google and Outlook.com cannot reach it
    assert browser.find_element(By.ID, "local-url").is_displayed()
    ARTIFACTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "subscribe-page-desktop.png"))


def test_the_readme_picture_is_the_demo_page_whole(browser: Any) -> None:
    """What `calfeed serve --demo` shows at a public address, top to bottom: the README's
    picture comes from here (CALFEED_UPDATE_SCREENSHOTS=1), so it shows the page as it
    is, with the names a user meets rather than the other tests' made-up ones."""
    from selenium.webdriver.common.by import By

    server = ServerThread(None, demo=True, public_url="https://calfeed.example.org")
    url = server.start()
    try:
        browser.set_window_size(375, 800)
        open_page(browser, url + "/")
        wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "#timeline .track"))
        # a phone has room for fewer month names: none runs into another
        assert misplaced_ticks(browser) == []
        browser.set_window_size(1280, 1600)
        # and a desktop's timeline names every month again
        wait_for(lambda: all(browser.execute_script(
            "return Array.from(document.querySelectorAll('#timeline .tick'), t => t.textContent)")))
        assert browser.find_element(By.CSS_SELECTOR, ".demo").is_displayed()
        # at a public address the page has no "only reachable here" warning
        assert not [e for e in browser.find_elements(By.ID, "local-url") if e.is_displayed()]
        assert "SpaceX" in browser.find_element(By.TAG_NAME, "form").text
        # the demo's items reach the timeline's right edge: no month name spills there
        assert misplaced_ticks(browser) == []
        height = browser.execute_script("return document.documentElement.scrollHeight")
        browser.set_window_size(1280, height + 150)
        ARTIFACTS.mkdir(exist_ok=True)
        browser.save_screenshot(str(ARTIFACTS / "readme-picture.png"))
        if os.environ.get("CALFEED_UPDATE_SCREENSHOTS") == "1":
            browser.save_screenshot(str(DOCS / "subscribe-page.png"))
    finally:
        server.stop()


def test_choices_update_url_preview_and_links(browser: Any, base_url: str) -> None:
    open_page(browser, base_url + "/")
    check(browser, "type", 2)
    check(browser, "agency", 44)
    expected = f"{base_url}/events.ics?type=2&agency=44"
    wait_for(lambda: text_of(browser, "feed-url") == expected)
    wait_for(lambda: text_of(browser, "feed-name") == "Space events: Docking · A44")
    body, _ = fetch(expected)
    feed_ids = [uid.split("-")[2].split("@")[0] for uid in uids(body)]
    wait_for(lambda: preview_ids(browser) == feed_ids)
    assert feed_ids == ["3", "5"]  # NASA's dockings, the timed one and the all-day one
    assert text_of(browser, "count") == "2 events in this feed"
    assert browser.current_url == f"{base_url}/?type=2&agency=44"

    from selenium.webdriver.common.by import By

    def href(element_id: str) -> str:
        return str(browser.find_element(By.ID, element_id).get_attribute("href"))

    webcal = "webcal://" + expected.split("://", 1)[1]
    name = quote("Space events: Docking · A44", safe="!'()*")
    assert href("link-apple") == webcal
    assert href("link-google") == (
        "https://calendar.google.com/calendar/render?cid=" + quote(webcal, safe="!'()*"))
    assert href("link-outlook") == ("https://outlook.live.com/calendar/0/addfromweb?url="
                                    + quote(expected, safe="!'()*") + "&name=" + name)
    assert href("link-office365") == ("https://outlook.office.com/calendar/0/addfromweb?url="
                                      + quote(expected, safe="!'()*") + "&name=" + name)
    assert href("link-download") == expected + "&download=1"
    embed = browser.find_element(By.ID, "embed").get_attribute("value")
    assert f'href="{base_url}/?type=2&amp;agency=44"' in embed

    # the download link gives a valid calendar file with a name
    body, headers = fetch(href("link-download"))
    assert [str(e["SUMMARY"]) for e in read_feed(body)] == [
        "Crew-13 Docking", "Starliner docking (time TBD)",
    ]
    assert headers["Content-Disposition"].startswith("attachment; filename=")

    # and the copy button says so
    browser.find_element(By.ID, "copy").click()
    wait_for(lambda: text_of(browser, "copy-status") != "")


def test_search_precision_and_past_days(browser: Any, base_url: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    open_page(browser, base_url + "/")
    Select(browser.find_element(By.ID, "precision")).select_by_value("day")
    search = browser.find_element(By.ID, "search")
    search.send_keys("dock")
    expected = f"{base_url}/events.ics?search=dock&precision=day"
    wait_for(lambda: text_of(browser, "feed-url") == expected)
    body, _ = fetch(expected)
    feed_ids = [uid.split("-")[2].split("@")[0] for uid in uids(body)]
    wait_for(lambda: preview_ids(browser) == feed_ids)
    assert feed_ids == ["1", "3", "5"]


def test_without_javascript_the_form_gives_the_same_url(base_url: str) -> None:
    from selenium.webdriver.common.by import By

    driver = make_driver(javascript=False)
    try:
        driver.get(base_url + "/")
        check(driver, "type", 2)
        check(driver, "agency", 44)
        tap(driver, driver.find_element(By.ID, "update"))
        wait_for(lambda: "type=2" in driver.current_url)
        assert text_of(driver, "feed-url") == f"{base_url}/events.ics?type=2&agency=44"
        assert preview_ids(driver) == ["3", "5"]
        assert driver.find_element(By.CSS_SELECTOR, 'input[name="type"][value="2"]'
                                   ).is_selected()
    finally:
        driver.quit()


def test_without_javascript_a_cleared_past_days_is_the_default(base_url: str) -> None:
    from selenium.webdriver.common.by import By

    driver = make_driver(javascript=False)
    try:
        driver.get(base_url + "/?type=2")
        driver.find_element(By.ID, "past_days").clear()
        tap(driver, driver.find_element(By.ID, "update"))
        wait_for(lambda: "past_days=" in driver.current_url)  # (sent empty)
        assert not driver.find_elements(By.CSS_SELECTOR, "main > .error")
        assert text_of(driver, "feed-url") == f"{base_url}/events.ics?type=2"
        assert driver.find_element(By.ID, "past_days").get_attribute("value") == "7"
    finally:
        driver.quit()


def test_phone_width_has_no_horizontal_scrolling(browser: Any, base_url: str) -> None:
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": 375, "height": 812, "deviceScaleFactor": 2, "mobile": True,
    })
    open_page(browser, base_url + "/?type=2,6,23&agency=27,44,63,121&alarm=10,60")
    width = browser.execute_script("return document.documentElement.scrollWidth")
    assert width <= 375
    ARTIFACTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "subscribe-page-phone.png"))


def test_long_feed_url_is_flagged(browser: Any, base_url: str) -> None:
    from selenium.webdriver.common.by import By

    open_page(browser, base_url + "/")
    assert not browser.find_element(By.ID, "too-long").is_displayed()
    for type_id in (2, 6, 23):
        check(browser, "type", type_id)
    for agency in (27, 44):
        check(browser, "agency", agency)
    browser.find_element(By.ID, "search").send_keys("a" * 200)
    wait_for(lambda: browser.find_element(By.ID, "too-long").is_displayed())
    assert "Google Calendar accepts at most 256" in text_of(browser, "too-long")


def test_every_control_has_a_name_and_works_from_the_keyboard(
    browser: Any, base_url: str
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    open_page(browser, base_url + "/")
    unnamed = browser.execute_script("""
        return Array.from(document.querySelectorAll('input, select, textarea, button'))
          .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')
                       && !e.textContent.trim())
          .map(e => e.outerHTML);
    """)
    assert unnamed == []
    box = browser.find_element(By.CSS_SELECTOR, 'input[name="type"][value="6"]')
    box.send_keys(Keys.SPACE)  # keyboard, not a click
    wait_for(lambda: text_of(browser, "feed-url").endswith("/events.ics?type=6"))
    assert browser.execute_script("return document.documentElement.lang") == "en"


def test_launches_page_filters_by_name(browser: Any, base_url: str) -> None:
    from selenium.webdriver.common.by import By

    open_page(browser, base_url + "/?feed=launches")
    assert "Rocket launches" in browser.find_element(By.ID, "feed-name").text
    # providers, families and sites are offered by name
    labels = browser.execute_script(
        "return Array.from(document.querySelectorAll('.choice'), l => l.textContent.trim())")
    assert any(label.startswith("SpaceX (SpX)") for label in labels)
    assert any(label.startswith("Long March") for label in labels)
    assert any(label.startswith("Kennedy Space Center") for label in labels)
    tap(browser, browser.find_element(By.CSS_SELECTOR,
                                      'input[name="family"][value="long march"]'))
    tap(browser, browser.find_element(By.CSS_SELECTOR, 'input[name="crewed"][value="false"]'))
    expected = f"{base_url}/launches.ics?family=long%20march&crewed=false"
    wait_for(lambda: text_of(browser, "feed-url") == expected)
    body, _ = fetch(expected)
    wanted = [uid.split("@")[0].removeprefix("ll2-launch-") for uid in uids(body)]
    assert wanted
    wait_for(lambda: browser.current_url
             == f"{base_url}/?feed=launches&family=long%20march&crewed=false")
    wait_for(lambda: preview_ids(browser) == wanted)


# -- hostile LL2 data: markup in every name, unsafe links in every link field -----------

HOSTILE = {
    kind: json.loads((pathlib.Path(__file__).parent / "data" / f"{stem}.json").read_text())[
        "results"]
    for kind, stem in (("events", "hostile"), ("launches", "launches-hostile"))
}
MARKUP = '"><img src=x onerror=alert(1)>'


@pytest.fixture(scope="module")
def hostile_url() -> Iterator[str]:
    # items as LL2 sent them, less those without a usable id (the LL2 client drops those)
    from calfeed.sanitize import item_key

    server = ServerThread({kind: [i for i in items if item_key(i.get("id"))]
                           for kind, items in HOSTILE.items()})
    url = server.start()
    yield url
    server.stop()


def trap_scripts(driver: Any) -> None:
    """Record any alert() a page runs, and any element that a data value turned into."""
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": """
        window.__alerts = [];
        window.alert = (message) => window.__alerts.push(String(message));
    """})


def injected(driver: Any) -> dict[str, Any]:
    result: dict[str, Any] = driver.execute_script("""
        return {
          alerts: window.__alerts || [],
          images: document.querySelectorAll('img').length,
          scripts: Array.from(document.scripts, s => s.src || s.id),
          handlers: Array.from(document.querySelectorAll('*')).filter(
            e => Array.from(e.attributes).some(a => a.name.startsWith('on'))).length,
          hrefs: Array.from(document.querySelectorAll('a[href]'), a => a.href),
        };
    """)
    return result


def assert_nothing_injected(driver: Any, base: str) -> None:
    found = injected(driver)
    assert found["alerts"] == []
    assert found["images"] == 0
    assert found["handlers"] == 0
    assert found["scripts"] == ["calfeed-config", base + "/static/calfeed.js"]
    for href in found["hrefs"]:
        assert href.startswith(("https://", "http://", "webcal://")), href


@pytest.mark.parametrize("width", [1280, 390], ids=["desktop", "phone"])
def test_hostile_names_stay_text_on_the_launches_page(
    browser: Any, hostile_url: str, width: int
) -> None:
    browser.set_window_size(width, 1000)
    trap_scripts(browser)
    open_page(browser, hostile_url + "/?feed=launches&precision=any&past_days=30")
    assert_nothing_injected(browser, hostile_url)
    labels = browser.execute_script(
        "return Array.from(document.querySelectorAll('.choice'), l => l.textContent)")
    assert any(MARKUP in label for label in labels)
    titles = browser.execute_script(
        "return Array.from(document.querySelectorAll('#events .title'), t => t.textContent)")
    assert MARKUP in titles
    # a choice makes the script redraw the preview, the name and the embed snippet
    box = browser.execute_script(
        "return Array.from(document.querySelectorAll('input[name=family]'))"
        ".find(box => box.value === arguments[0])", MARKUP.casefold())
    tap(browser, box)
    wait_for(lambda: "family=" in text_of(browser, "feed-url"))
    wait_for(lambda: MARKUP in text_of(browser, "feed-name"))
    wait_for(lambda: len(preview_ids(browser)) == 5)
    assert_nothing_injected(browser, hostile_url)
    assert MARKUP in browser.execute_script(
        "return Array.from(document.querySelectorAll('#events .title'), t => t.textContent)"
        ".join(' ')")
    snippet = browser.execute_script("""
        const doc = new DOMParser().parseFromString(
            document.getElementById('embed').value, 'text/html');
        return Array.from(doc.body.querySelectorAll('*'), e => e.tagName + ' ' +
            Array.from(e.attributes, a => a.name).join(','));
    """)
    assert snippet == ["A href,style"]
    ARTIFACTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / f"hostile-launches-{width}.png"))


def test_hostile_names_stay_text_on_the_events_page(browser: Any, hostile_url: str) -> None:
    from selenium.webdriver.common.by import By

    trap_scripts(browser)
    open_page(browser, hostile_url + "/?precision=any&past_days=30")
    assert_nothing_injected(browser, hostile_url)
    tap(browser, browser.find_element(By.CSS_SELECTOR, 'input[name="type"][value="900"]'))
    wait_for(lambda: preview_ids(browser) == ["9001"])
    assert_nothing_injected(browser, hostile_url)
    webcasts = browser.execute_script(
        "return Array.from(document.querySelectorAll('#events a'), a => a.href)")
    assert webcasts == ["https://good.example/video0"]


def test_hostile_names_stay_text_without_javascript(hostile_url: str) -> None:
    driver = make_driver(javascript=False)
    try:
        for path in ("/?precision=any&past_days=30",
                     "/?feed=launches&precision=any&past_days=30"):
            driver.get(hostile_url + path)
            assert_nothing_injected(driver, hostile_url)
            assert MARKUP in driver.execute_script("return document.body.textContent")
    finally:
        driver.quit()


# -- error states: the layout holds ---------------------------------------------------


@pytest.fixture(scope="module")
def offline_url() -> Iterator[str]:
    """calfeed whose LL2 is unreachable: a closed port on loopback, a short cold wait."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    server = ServerThread(None, upstream=f"http://127.0.0.1:{closed}/2.3.0",
                          cold_start_wait=0.5)
    url = server.start()
    yield url
    server.stop()


def boxes(driver: Any) -> dict[str, Any]:
    found: dict[str, Any] = driver.execute_script("""
        const box = (selector) => {
          const element = document.querySelector(selector);
          if (!element) return null;
          const r = element.getBoundingClientRect();
          return {left: r.left, top: r.top + window.scrollY, width: r.width,
                  text: element.textContent.trim()};
        };
        return {
          error: box('main > .error'), choose: box('#builder h2'),
          subscribe: box('#subscribe-title'), main: box('main'),
          scroll: document.documentElement.scrollWidth,
        };
    """)
    return found


@pytest.mark.parametrize("width", [1280, 375], ids=["desktop", "phone"])
@pytest.mark.parametrize(("state", "path"), [
    ("invalid", "/?type=docking"),
    ("invalid", "/?feed=launches&status=go"),
    ("no-data", "/"),
    ("no-data", "/?feed=launches"),
], ids=["invalid-events", "invalid-launches", "no-data-events", "no-data-launches"])
def test_error_states_keep_the_layout(
    browser: Any, base_url: str, offline_url: str, width: int, state: str, path: str
) -> None:
    browser.set_window_size(width, 900)
    if width < 600:
        browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": width, "height": 812, "deviceScaleFactor": 2, "mobile": True})
    open_page(browser, (base_url if state == "invalid" else offline_url) + path)
    found = boxes(browser)
    error, choose, subscribe = found["error"], found["choose"], found["subscribe"]
    assert error is not None, "the page says what is wrong"
    if state == "invalid":
        assert "invalid value" in error["text"]
    else:
        assert "not available yet" in error["text"] and "try again" in error["text"]
        assert "127.0.0.1" not in error["text"]  # no client text for visitors
    # the message sits above the builder and the subscribe section, across the page
    assert error["top"] < choose["top"] and error["top"] < subscribe["top"]
    assert error["width"] >= found["main"]["width"] - 2
    if width >= 1000:
        # two columns: choose on the left, subscribe on the right, side by side
        assert choose["left"] < subscribe["left"]
        assert abs(choose["top"] - subscribe["top"]) < 5
    else:
        assert choose["top"] < subscribe["top"]
    assert found["scroll"] <= width
    ARTIFACTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / f"error-{state}-{path.count('launches')}-{width}.png"))


@pytest.fixture(scope="module")
def demo_url() -> Iterator[str]:
    server = ServerThread(None, demo=True)
    url = server.start()
    yield url
    server.stop()


@pytest.mark.parametrize("width", [1280, 375], ids=["desktop", "phone"])
def test_demo_banner_only_under_demo(
    browser: Any, base_url: str, demo_url: str, width: int
) -> None:
    browser.set_window_size(width, 900)
    for url, expected in ((demo_url, True), (base_url, False)):
        open_page(browser, url + "/?feed=launches")
        shown = browser.execute_script(
            "const b = document.querySelector('main > .demo');"
            "return b ? b.getBoundingClientRect().height > 0 && b.textContent : false")
        assert bool(shown) is expected
        if expected:
            assert "sample" in shown
            assert "(demo data)" in text_of(browser, "feed-name")
            assert browser.execute_script("return document.documentElement.scrollWidth") <= width
            ARTIFACTS.mkdir(exist_ok=True)
            browser.save_screenshot(str(ARTIFACTS / f"demo-launches-{width}.png"))


@pytest.mark.parametrize("path", ["/", "/?feed=launches"], ids=["events", "launches"])
def test_on_a_phone_subscribing_is_within_reach(browser: Any, base_url: str, path: str) -> None:
    from selenium.webdriver.common.by import By

    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": True})
    open_page(browser, base_url + path)
    bar = browser.execute_script(
        "const r = document.getElementById('bar').getBoundingClientRect();"
        "return {top: r.top, bottom: r.bottom, height: innerHeight}")
    # the bar is on screen from the start, however long the lists below it are
    assert bar["top"] >= 0 and bar["bottom"] <= bar["height"]
    before = text_of(browser, "bar-count")
    # a choice changes the count where the choice was made
    first = browser.find_element(By.CSS_SELECTOR, "details[open] input[type=checkbox]")
    tap(browser, first)
    wait_for(lambda: text_of(browser, "bar-count") != before)
    # and the bar's link takes one to the subscribe buttons
    tap(browser, browser.find_element(By.CSS_SELECTOR, '#bar a[href="#subscribe"]'))
    wait_for(lambda: browser.execute_script(
        "const r = document.getElementById('subscribe-title').getBoundingClientRect();"
        "return r.top >= 0 && r.top < innerHeight"))
    assert browser.execute_script("return document.documentElement.scrollWidth") <= 390
    ARTIFACTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / f"phone-{path.count('launches')}.png"))


def test_preview_dates_read_alike_and_titles_do_not_repeat_them(
    browser: Any, base_url: str
) -> None:
    from selenium.webdriver.common.by import By

    def rows() -> list[dict[str, str]]:
        found: list[dict[str, str]] = browser.execute_script("""
            return Array.from(document.querySelectorAll('#events li'), li => ({
              when: li.querySelector('time').textContent,
              span: li.querySelector('time').dataset.span,
              title: li.querySelector('.title').textContent}));""")
        return found

    open_page(browser, base_url + "/?precision=any")
    for shown in (rows(), None):
        if shown is None:  # again after the script redrew the list
            tap(browser, browser.find_element(By.CSS_SELECTOR, 'input[name="alarm"][value="10"]'))
            wait_for(lambda: "alarm=10" in browser.current_url)
            shown = rows()
        dated = [r["when"] for r in shown if r["span"] != "true"]
        # one format for days and times alike (the visitor's locale, "Tue, Dec 1, 2026")
        assert dated and all(re.match(r"\w{3}, \w{3} \d{1,2}, \d{4}", w) for w in dated), dated
        juice = next(r for r in shown if r["title"].startswith("Juice"))
        assert juice == {"when": "Dec 2026", "span": "true", "title": "Juice flyby"}


def misplaced_ticks(driver: Any) -> list[str]:
    """The timeline's month names that wrap onto a second line, leave the timeline or
    run into the name before them."""
    found: list[str] = driver.execute_script("""
        const box = document.getElementById('timeline').getBoundingClientRect();
        let last = null;
        return Array.from(document.querySelectorAll('#timeline .tick'), t => {
          if (!t.textContent) return null;
          const r = t.getBoundingClientRect();
          const line = parseFloat(getComputedStyle(t).lineHeight) || 1.5 * r.height;
          const bad = r.height > 1.5 * line || r.left < box.left - 1
            || r.right > box.right + 1 || (last !== null && r.left < last.right);
          last = r;
          return bad ? t.textContent : null;
        }).filter(Boolean);""")
    return found


@pytest.mark.parametrize("width", [1280, 375], ids=["desktop", "phone"])
def test_timeline_shows_points_and_periods(browser: Any, base_url: str, width: int) -> None:
    browser.set_window_size(width, 1000)

    def marks() -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = browser.execute_script("""
            const box = document.getElementById('timeline').getBoundingClientRect();
            return Array.from(document.querySelectorAll('#timeline .track'), t => {
              const m = t.querySelector('.mark');
              const l = t.querySelector('.label');
              const mr = m.getBoundingClientRect(), lr = l.getBoundingClientRect();
              return {title: l.textContent,
                      point: m.classList.contains('point'),
                      share: mr.width / box.width,
                      // a point and its label side by side, not on top of each other
                      clear: !m.classList.contains('point') || lr.left >= mr.right
                             || lr.right <= mr.left};
            });""")
        return found

    open_page(browser, base_url + "/?precision=any")
    shown = marks()
    # the list's items within the next six months, in the same order
    assert [m["title"] for m in shown] == browser.execute_script(
        "return Array.from(document.querySelectorAll('#events .title'), t => t.textContent)")
    juice = next(m for m in shown if m["title"].startswith("Juice"))
    assert not juice["point"] and 0.12 < juice["share"] < 0.22  # December: 31 of 183 days
    docking = next(m for m in shown if m["title"] == "Progress MS-36 Docking")
    assert docking["point"]
    assert all(m["clear"] for m in shown), [m["title"] for m in shown if not m["clear"]]
    assert misplaced_ticks(browser) == []
    check(browser, "type", 23)
    wait_for(lambda: [m["title"] for m in marks()] == ["Juice flyby"])
    assert browser.execute_script("return document.documentElement.scrollWidth") <= width
    # the picture shows the timeline itself, with every item back in it
    check(browser, "type", 23)
    wait_for(lambda: len(marks()) == len(shown))
    browser.execute_script("document.getElementById('preview').scrollIntoView()")
    ARTIFACTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / f"timeline-{width}.png"))


def test_fold_counts_and_bar_follow_the_choices(browser: Any, base_url: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    open_page(browser, base_url + "/")

    def note(name: str) -> str:
        text: str = browser.execute_script(
            "return document.getElementById('choices-' + arguments[0])"
            ".closest('details').querySelector('summary .note').textContent", name)
        return text

    assert note("agency") == "(5)"
    check(browser, "agency", 44)
    wait_for(lambda: note("agency") == "(5, 1 chosen)")
    # an answer that is an error shows where the count was, in the bar too
    days = browser.find_element(By.ID, "past_days")
    tap(browser, days)
    days.send_keys(Keys.CONTROL, "a")
    days.send_keys("9999")
    wait_for(lambda: "past_days" in text_of(browser, "bar-count"))
    assert "invalid value" in text_of(browser, "count")


@pytest.fixture(scope="module")
def many_url() -> Iterator[str]:
    """Twelve agencies: a list long enough for its "Find…" box."""
    events = [make_event(i, f"2026-12-{i:02d}T10:00:00Z", name=f"Docking {i}",
                         agencies=(100 + i,)) for i in range(1, 13)]
    server = ServerThread({"events": events, "launches": []})
    url = server.start()
    yield url
    server.stop()


def test_the_find_box_leaves_out_what_does_not_match(browser: Any, many_url: str) -> None:
    from selenium.webdriver.common.by import By

    open_page(browser, many_url + "/")
    fold = browser.find_element(By.CSS_SELECTOR, "#choices-agency").find_element(
        By.XPATH, "./ancestor::details")
    tap(browser, fold.find_element(By.TAG_NAME, "summary"))
    find = browser.find_element(By.CSS_SELECTOR, 'input.filter[data-filter="agency"]')
    find.send_keys("agency 111")

    def shown() -> list[str]:
        found: list[str] = browser.execute_script(
            "return Array.from(document.querySelectorAll('#choices-agency label'))"
            ".filter(l => getComputedStyle(l).display !== 'none' && l.offsetHeight > 0)"
            ".map(l => l.textContent.trim())")
        return found

    wait_for(lambda: len(shown()) == 1)
    assert shown()[0].startswith("Agency 111")


def test_a_choice_the_data_does_not_hold_is_kept(browser: Any, base_url: str) -> None:
    # an old link's type or agency with no current events: one change must not drop it
    # (the feed would then hold every type)
    open_page(browser, base_url + "/?type=999&agency=44")
    assert browser.execute_script(
        "return document.querySelector('input[name=type][value=\"999\"]').checked")
    check(browser, "alarm", 10)
    wait_for(lambda: "alarm=10" in text_of(browser, "feed-url"))
    assert "type=999" in text_of(browser, "feed-url")
    assert "type=999" in browser.current_url


def test_a_reminder_the_page_has_no_box_for_is_kept(browser: Any, base_url: str) -> None:
    from selenium.webdriver.common.by import By

    # an edited link's 15 minutes: shown as a box of its own, ticked, and kept when
    # another reminder is ticked
    open_page(browser, base_url + "/?alarm=15&type=2")
    box = browser.find_element(By.CSS_SELECTOR, 'input[name="alarm"][value="15"]')
    assert box.is_selected()
    assert browser.execute_script(
        "return arguments[0].closest('label').textContent.trim()", box) == "15 minutes before"
    check(browser, "alarm", 60)
    wait_for(lambda: text_of(browser, "feed-url")
             == f"{base_url}/events.ics?type=2&alarm=15,60")
    wait_for(lambda: browser.current_url == f"{base_url}/?type=2&alarm=15,60")
    browser.execute_script("arguments[0].closest('fieldset').scrollIntoView()", box)
    ARTIFACTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "reminder-kept.png"))


def test_the_timeline_shows_the_coming_months_beside_a_decade_long_item(
    browser: Any, demo_url: str,
) -> None:
    # the demo data has items dated to a decade and a year, begun years ago
    open_page(browser, demo_url + "/?precision=any")
    now = browser.execute_script(
        "return parseFloat(document.querySelector('#timeline .now').style.left)")
    assert 0 <= now <= 10, now
    tracks = browser.execute_script("return document.querySelectorAll('#timeline .track').length")
    assert tracks >= 10
    # past days left blank is the default (7) in the feed, and so on the timeline
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    days = browser.find_element(By.ID, "past_days")
    tap(browser, days)
    days.send_keys(Keys.CONTROL, "a")
    days.send_keys("0")
    wait_for(lambda: "past_days=0" in text_of(browser, "feed-url"))
    time.sleep(0.5)
    at_zero = browser.execute_script(
        "return parseFloat(document.querySelector('#timeline .now').style.left)")
    days.send_keys(Keys.BACKSPACE)
    wait_for(lambda: "past_days" not in text_of(browser, "feed-url"))
    time.sleep(0.5)
    blank = browser.execute_script(
        "return parseFloat(document.querySelector('#timeline .now').style.left)")
    assert at_zero < now and abs(blank - now) < 0.2, (at_zero, blank, now)


def test_an_invalid_choice_leaves_no_link_to_a_refused_feed(browser: Any, base_url: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    open_page(browser, base_url + "/")
    days = browser.find_element(By.ID, "past_days")
    tap(browser, days)
    days.send_keys(Keys.CONTROL, "a")
    days.send_keys("45")

    def links() -> list[Any]:
        found: list[Any] = browser.execute_script(
            "return Array.from(document.querySelectorAll('.buttons a'),"
            " a => a.getAttribute('href'))")
        return found

    wait_for(lambda: "past_days" in text_of(browser, "bar-count"))
    assert links() == [None] * 5
    assert browser.find_element(By.ID, "copy").get_attribute("disabled") is not None
    days.send_keys(Keys.BACKSPACE)  # 4: a feed again
    wait_for(lambda: all(links()))
    apple, google, _, _, download = links()
    assert "past_days=4" in apple and "past_days%3D4" in google and "past_days=4" in download


def test_while_the_data_is_unavailable_the_links_stay(browser: Any, offline_url: str) -> None:
    # a 503 preview is no reason to take the buttons away: the feed URL is good and will
    # serve once the data arrives (only a refused choice, a 400, leaves no link)
    open_page(browser, offline_url + "/")
    # (what the page came with goes, so that what follows is the script's own answer)
    browser.execute_script("document.getElementById('bar-count').textContent = ''")
    check(browser, "alarm", 10)
    wait_for(lambda: "alarm=10" in text_of(browser, "feed-url"))
    # (in words for visitors, not the server's: LL2's address, its trouble)
    wait_for(lambda: "No preview yet; the feed link works." in text_of(browser, "bar-count"))
    assert "127.0.0.1" not in text_of(browser, "bar-count")
    hrefs: list[Any] = browser.execute_script(
        "return Array.from(document.querySelectorAll('.buttons a'), a => a.getAttribute('href'))")
    assert len(hrefs) == 5 and all(href and "alarm" in href for href in hrefs), hrefs
    assert browser.find_element("id", "copy").get_attribute("disabled") is None
    # and no list says it holds none: nothing is known of what the data holds
    folds: list[str] = browser.execute_script(
        "return Array.from(document.querySelectorAll('details.facet-fold summary'),"
        " s => s.textContent.trim())")
    assert folds and all("(" not in fold for fold in folds), folds
