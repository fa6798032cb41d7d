"""The subscribe page at /: a feed builder that works with and without JavaScript.

The server renders the whole page for the query in its URL (the form submits by GET);
static/calfeed.js then updates the same elements in place as choices change.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from html import escape
from typing import Any

from calfeed.links import MAX_FEED_URL, FeedLinks
from calfeed.mapping import LEVEL, LEVELS
from calfeed.query import Param, Query

ALARM_CHOICES = ((10, "10 minutes"), (30, "30 minutes"), (60, "1 hour"), (1440, "1 day"))

PREVIEW_LIMIT = 200


def _when(event: Mapping[str, Any]) -> str:
    """A preview date the way a calendar shows it (UTC here; the script localises)."""
    if not event["all_day"]:
        start = datetime.fromisoformat(event["start"])
        return start.strftime("%a %d %b %Y, %H:%M UTC")
    if LEVEL[event["precision"]["level"]] >= LEVEL["week"] and event["precision"]["words"]:
        return str(event["precision"]["words"])
    return datetime.fromisoformat(event["start"]).strftime("%a %d %b %Y")


def preview_items(events: Sequence[Mapping[str, Any]]) -> str:
    """The preview list's <li> elements."""
    items = []
    for event in events[:PREVIEW_LIMIT]:
        types = ", ".join(t["name"] for t in event["type"])
        webcast = event["webcasts"][0]["url"] if event["webcasts"] else None
        items.append(
            f'<li data-id="{escape(event["id"])}"><time datetime="{escape(event["start"])}"'
            f' data-all-day="{str(event["all_day"]).lower()}">{escape(_when(event))}</time> '
            f'<span class="title">{escape(event["title"])}</span>'
            + (f' <span class="type">{escape(types)}</span>' if types else "")
            + (f' <a href="{escape(webcast)}" rel="noopener">Webcast</a>' if webcast else "")
            + "</li>"
        )
    return "".join(items)


def _crew_fieldset(param: Param, chosen: frozenset[str] | None) -> str:
    picked = next(iter(chosen)) if chosen else ""
    radios = "".join(
        f'<label class="choice"><input type="radio" name="{param.name}" value="{value}"'
        f'{" checked" if value == picked else ""}> {label}</label>'
        for value, label in (("", "Any"), ("true", "Crewed"), ("false", "Uncrewed"))
    )
    return (f'<fieldset class="facet"><legend>{escape(param.title or param.name)}</legend>'
            f"{radios}</fieldset>")


def _choice_fieldset(
    param: Param, options: Sequence[tuple[Any, str]], chosen: frozenset[Any] | None
) -> str:
    if param.name == "crewed":
        return _crew_fieldset(param, chosen)
    title = param.title or param.name
    boxes = "".join(
        f'<label class="choice"><input type="checkbox" name="{param.name}" value="{value}"'
        f'{" checked" if chosen and value in chosen else ""}> {escape(label)}'
        f' <small>#{value}</small></label>'
        for value, label in options
    )
    empty = "" if options else "<p class=\"note\">None in the current data.</p>"
    return (
        f'<fieldset class="facet"><legend>{escape(title)}</legend>'
        f'<input type="search" class="filter" data-filter="{param.name}" '
        f'aria-label="Find {escape(title.lower())}" placeholder="Find…">'
        f'<div class="choices" id="choices-{param.name}">{boxes}</div>{empty}</fieldset>'
    )


def render_page(
    *,
    params: Sequence[Param],
    query: Query,
    choices: Mapping[str, Sequence[tuple[Any, str]]],
    links: FeedLinks,
    name: str,
    events: Sequence[Mapping[str, Any]],
    matching: int,
    base: str,
    kind_name: str,
    noun: str,
    kinds: Sequence[tuple[str, str]],
    error: str | None = None,
) -> str:
    """The whole subscribe page for one query."""
    facets = "".join(
        _choice_fieldset(p, choices.get(p.facet or "", []), query[p.name])
        for p in params if p.facet
    )
    search = query["search"] or ""
    precision = "".join(
        f'<option value="{level}"{" selected" if level == query["precision"] else ""}>'
        f"{level}</option>" for level in LEVELS
    )
    past_max = next(p for p in params if p.name == "past_days").allowed.split()[-1]
    alarms = query["alarm"] or frozenset()
    alarm_boxes = "".join(
        f'<label class="choice"><input type="checkbox" name="alarm" value="{minutes}"'
        f'{" checked" if minutes in alarms else ""}> {label} before</label>'
        for minutes, label in ALARM_CHOICES
    )
    config = {
        "kind": kind_name,
        "noun": noun,
        "base": base,
        "maxUrl": MAX_FEED_URL,
        "params": [
            {"name": p.name, "default": sorted(p.default) if isinstance(p.default, frozenset)
             else p.default,
             "list": (p.facet is not None or p.name == "alarm") and p.name != "crewed"}
            for p in params if p.in_body
        ],
    }
    shown = len(events)
    count_text = f"{matching} {noun if matching != 1 else noun[:-1]} in this feed"
    switcher = " · ".join(
        f"<strong>{title}</strong>" if name == kind_name
        else f'<a href="/{"" if name == "events" else "?feed=" + name}">{title}</a>'
        for name, title in kinds
    )
    feed_field = ("" if kind_name == "events"
                  else f'<input type="hidden" name="feed" value="{escape(kind_name)}">')
    if shown > PREVIEW_LIMIT:
        count_text += f" (the first {PREVIEW_LIMIT} are listed)"
    error_html = f'<p class="error" role="alert">{escape(error)}</p>' if error else ""
    too_long = (
        f"This feed URL is {len(links.https)} characters long; Google Calendar accepts at "
        f"most {MAX_FEED_URL}. Choose fewer agencies, programs or types."
    )
    # JSON inside <script>: "</" must not close the element
    config_json = json.dumps(config).replace("</", "<\\/")
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>calfeed: space events and launches in your calendar</title>
<link rel="stylesheet" href="/static/calfeed.css">
<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">
</head>
<body>
<header><h1>calfeed</h1>
<p>Space events from Launch Library 2 by The Space Devs, in your own calendar.
Choose what you care about, then subscribe once: the calendar keeps itself up to date.</p>
</header>
<nav aria-label="Feeds"><p>{switcher}</p></nav>
<main>
{error_html}
<form id="builder" method="get" action="/">
{feed_field}
<h2>1. Choose {escape(noun)}</h2>
{facets}
<div class="row">
<label for="search">Name contains</label>
<input id="search" type="search" name="search" value="{escape(search)}" maxlength="200">
</div>
<div class="row">
<label for="precision">Coarsest date</label>
<select id="precision" name="precision" aria-describedby="precision-help">{precision}</select>
<p id="precision-help" class="note">Events whose date LL2 knows only more vaguely are left out
("month" keeps events dated to a month, leaves out quarters and years).</p>
</div>
<div class="row">
<label for="past_days">Past days to keep</label>
<input id="past_days" type="number" name="past_days" min="0" max="{escape(past_max)}"
 value="{query['past_days']}" inputmode="numeric">
</div>
<fieldset class="facet"><legend>Reminders (optional)</legend>
<p class="note">Off by default: many calendar apps ignore reminders in subscriptions.</p>
{alarm_boxes}</fieldset>
<p><button type="submit" id="update">Show my feed</button></p>
</form>
<section id="subscribe" aria-labelledby="subscribe-title">
<h2 id="subscribe-title">2. Subscribe</h2>
<p>Feed: <strong id="feed-name">{escape(name)}</strong></p>
<p class="url"><code id="feed-url">{escape(links.https)}</code></p>
<p><button type="button" id="copy" data-url="{escape(links.https)}">Copy link</button>
<span id="copy-status" role="status" aria-live="polite"></span></p>
<p id="too-long" class="error" role="alert"{"" if links.too_long else " hidden"}>
{escape(too_long)}</p>
<ul class="buttons">
<li><a id="link-apple" href="{escape(links.webcal)}">Apple Calendar (Mac, iPhone, iPad)</a></li>
<li><a id="link-google" href="{escape(links.google)}" rel="noopener">Google Calendar</a></li>
<li><a id="link-outlook" href="{escape(links.outlook)}" rel="noopener">Outlook.com</a></li>
<li><a id="link-office365" href="{escape(links.office365)}" rel="noopener">Microsoft 365</a></li>
<li><a id="link-download" href="{escape(links.download)}">Download .ics file</a></li>
</ul>
<p class="note">Thunderbird and others: copy the link, then add a new network calendar
(iCalendar format) with it.</p>
<h3><label for="embed">Put a subscribe button on your site</label></h3>
<textarea id="embed" readonly rows="3">{escape(links.embed(name))}</textarea>
</section>
<section id="preview" aria-labelledby="preview-title">
<h2 id="preview-title">3. Preview</h2>
<p id="count" aria-live="polite">{escape(count_text)}</p>
<ol id="events">{preview_items(events)}</ol>
</section>
</main>
<footer><p>Data: <a href="https://thespacedevs.com/llapi">Launch Library 2</a> by The Space
Devs. Feed URLs: <code>/{escape(kind_name)}.ics</code>,
JSON: <code>/{escape(kind_name)}.json</code>.</p>
</footer>
<script type="application/json" id="calfeed-config">{config_json}</script>
<script src="/static/calfeed.js" defer></script>
</body>
</html>
"""
