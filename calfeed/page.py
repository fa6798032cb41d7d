"""The subscribe page at /: a feed builder that works with and without JavaScript.

The server renders the whole page for the query in its URL (the form submits by GET);
static/calfeed.js then updates the same elements in place as choices change. This module
only decides what the page shows; templates/page.html lays it out, with Jinja2's
autoescaping on, so every value from LL2 or from the URL is escaped where it lands.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import jinja2

from calfeed.feeds import DEFAULT_KIND
from calfeed.links import MAX_FEED_URL, FeedLinks, is_local, param_text
from calfeed.precision import LEVEL, LEVELS
from calfeed.query import Param, Query

# the reminders the page offers a box for (minutes before); any other a URL chose is
# listed beside them
ALARM_CHOICES = (10, 30, 60, 1440)

PREVIEW_LIMIT = 200
# a list of choices longer than this starts folded (unless something in it is chosen)
FOLD_AFTER = 8
# the parameters the form has fields for, besides the facets; others given in the URL
# (last_updated__gte, …) ride along in hidden fields, so the form keeps them
FIELDS = frozenset({"search", "precision", "past_days", "alarm"})


def template_options() -> dict[str, Any]:
    """How the page templates are loaded: autoescaped (HTML is all they produce), and a
    name the template uses but the page does not give is an error, not an empty string."""
    return {
        "loader": jinja2.PackageLoader("calfeed", "templates"),
        "autoescape": True,
        "undefined": jinja2.StrictUndefined,
    }


def environment() -> jinja2.Environment:
    """The page templates outside a running app (aiohttp_jinja2 holds the app's own)."""
    return jinja2.Environment(**template_options())


def _spanning(event: Mapping[str, Any]) -> bool:
    """Whether the preview dates an item by its period in words ("Q3 2026")."""
    return bool(LEVEL[event["precision"]["level"]] >= LEVEL["week"]
                and event["precision"]["words"])


def _when(event: Mapping[str, Any]) -> str:
    """A preview date the way a calendar shows it (UTC here; the script localises)."""
    if not event["all_day"]:
        start = datetime.fromisoformat(event["start"])
        return start.strftime("%a %d %b %Y, %H:%M UTC")
    if _spanning(event):
        return str(event["precision"]["words"])
    return datetime.fromisoformat(event["start"]).strftime("%a %d %b %Y")


def preview_title(event: Mapping[str, Any]) -> str:
    """The title as the preview shows it: beside a period in words, the same words are
    not said again after the name."""
    label = event["precision"].get("label")
    title = str(event["title"])
    return title.removesuffix(f" ({label})") if label and _spanning(event) else title


def preview_items(events: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """What the preview list shows of each item (its JSON form, as the script gets it)."""
    return [
        {
            "id": event["id"],
            "start": event["start"],
            "end": event["end"],
            "all_day": str(event["all_day"]).lower(),
            "when": _when(event),
            "spanning": str(_spanning(event)).lower(),
            "title": preview_title(event),
            "tags": ", ".join(event["tags"]),
            "webcast": event["webcasts"][0]["url"] if event["webcasts"] else None,
        }
        for event in events[:PREVIEW_LIMIT]
    ]


# what the count says while the data is not available (the script takes it from the
# page's config, for a preview asked for later)
NOT_YET = "No preview yet; the feed link works."


def _facet(
    param: Param, options: Sequence[tuple[Any, str]] | None, chosen: frozenset[Any] | None
) -> dict[str, Any]:
    """One fieldset of choices; options None while the data is not available (so nothing
    can be said of what it holds)."""
    title = param.title or param.name
    if param.options:
        picked = next(iter(chosen)) if chosen else ""
        return {"name": param.name, "title": title, "radio": True, "options": [
            {"value": value, "label": label, "checked": value == picked}
            for value, label in param.options
        ]}
    # what the query chose that the data does not hold (an id with no current events, an
    # old link): listed, ticked, so that the next change keeps it rather than widening
    # the feed to everything
    known = options is not None
    held = {value for value, _ in options or ()}
    # (an id is shown by the template beside its name; a word is its own name)
    note = "not in the current data" if known else "chosen"
    options = [*((value, note if isinstance(value, int) else f"{value} ({note})")
                 for value in sorted(chosen or ()) if value not in held), *(options or ())]
    picked = sum(1 for value, _ in options if value in (chosen or ()))
    total = len(options) if known else None
    return {"name": param.name, "title": title, "radio": False, "chosen": picked,
            "known": known, "total": "" if total is None else total,
            "count": fold_count(total, picked),
            "open": bool(picked) or len(options) <= FOLD_AFTER,
            "searchable": len(options) > FOLD_AFTER, "options": [
                {"value": value, "label": label, "checked": value in (chosen or ())}
                for value, label in options
            ]}


def reminder_words(minutes: int) -> str:
    """A reminder time as its box says it: "15 minutes", "1 hour", "2 days"."""
    count, unit = minutes, "minute"
    for size, name in ((1440, "day"), (60, "hour")):
        if minutes and minutes % size == 0:
            count, unit = minutes // size, name
            break
    return f"{count} {unit}{'' if count == 1 else 's'}"


def reminders(chosen: frozenset[int]) -> list[dict[str, Any]]:
    """The reminder boxes: those offered, and any other the query chose (an edited link,
    alarm=15), ticked in its place among them, so that the form and the script send it
    again rather than drop it. (The query holds at most four.)"""
    return [{"value": minutes, "label": reminder_words(minutes), "checked": minutes in chosen}
            for minutes in sorted(chosen.union(ALARM_CHOICES))]


def fold_count(total: int | None, chosen: int) -> str:
    """What a folded list's title says of it: "(12, 2 chosen)"; without a total (the data
    not available: nothing is known of what it holds) only what is chosen. The script
    says the same as boxes are ticked (`countChosen`)."""
    said = ", ".join(words for words in (
        "" if total is None else str(total), f"{chosen} chosen" if chosen else "") if words)
    return f"({said})" if said else ""


def embed_snippet(env: jinja2.Environment, links: FeedLinks, name: str) -> str:
    """HTML a site owner pastes: a subscribe link to this feed's page."""
    return env.get_template("embed.html").render(page=links.page, name=name)


def page_context(
    *,
    env: jinja2.Environment,
    params: Sequence[Param],
    query: Query,
    choices: Mapping[str, Sequence[tuple[Any, str]]] | None,
    links: FeedLinks,
    name: str,
    events: Sequence[Mapping[str, Any]],
    matching: int,
    base: str,
    kind_name: str,
    noun: str,
    noun_one: str,
    kinds: Sequence[tuple[str, str]],
    max_past_days: int,
    demo: bool = False,
    error: str | None = None,
) -> dict[str, Any]:
    """Everything templates/page.html shows for one query."""
    count_text = f"{matching} {noun if matching != 1 else noun_one} in this feed"
    if len(events) > PREVIEW_LIMIT:
        count_text += f" (the first {PREVIEW_LIMIT} are listed)"
    if choices is None:  # (nothing is known of the feed yet: it need not be empty)
        count_text = NOT_YET
    return {
        "kind": kind_name,
        "default_kind": DEFAULT_KIND,
        "demo": demo,
        "noun": noun,
        "error": error,
        "kinds": [
            {"title": title, "current": name_ == kind_name,
             "href": "/" + ("" if name_ == DEFAULT_KIND else "?feed=" + name_)}
            for name_, title in kinds
        ],
        "facets": [
            _facet(p, None if choices is None else choices.get(p.facet or "", []),
                   query[p.name])
            for p in params if p.facet
        ],
        "search": query["search"] or "",
        "hidden": [
            (p.name, param_text(query[p.name])) for p in params
            if p.in_body and not p.facet and p.name not in FIELDS
            and query[p.name] not in (None, p.default)
        ],
        "levels": LEVELS,
        "precision": query["precision"],
        "past_max": max_past_days,
        "past_days": query["past_days"],
        "alarms": reminders(query["alarm"] or frozenset()),
        "name": name,
        "links": links,
        "too_long": (
            f"This feed URL is {len(links.https)} characters long; Google Calendar accepts "
            f"at most {MAX_FEED_URL}. Choose fewer of the options above."
        ),
        "embed": embed_snippet(env, links, name),
        "local": is_local(base),
        "base": base,
        "count_text": count_text,
        "items": preview_items(events),
        "config": {
            "kind": kind_name,
            "defaultKind": DEFAULT_KIND,
            "noun": noun,
            "nounOne": noun_one,
            "base": base,
            "maxUrl": MAX_FEED_URL,
            # what a preview without data says, on the page as first served and after
            "notYet": NOT_YET,
            "params": [
                {"name": p.name,
                 "default": sorted(p.default) if isinstance(p.default, frozenset)
                 else p.default,
                 "list": p.max_values > 1}
                for p in params if p.in_body
            ],
        },
    }
