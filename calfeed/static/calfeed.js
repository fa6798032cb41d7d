// calfeed subscribe page: rebuilds the feed URL, the client links and the preview as
// choices change. Without this script the form submits by GET and the server renders the
// same page; calfeed/links.py builds the same URLs (keep the two in step).
"use strict";

(function () {
  const config = JSON.parse(document.getElementById("calfeed-config").textContent);
  const form = document.getElementById("builder");
  const byId = (id) => document.getElementById(id);
  let feedName = byId("feed-name").textContent;
  let latest = 0;

  function canonicalQuery() {
    const parts = [];
    for (const param of config.params) {
      if (param.list) {
        const values = Array.from(
          form.querySelectorAll(`input[name="${param.name}"]:checked`), (box) => box.value);
        const numeric = values.every((value) => /^[0-9]+$/.test(value));
        // ids sort as numbers, names (rocket families, orbits) as text, like links.py
        const unique = Array.from(new Set(numeric ? values.map(Number) : values))
          .sort(numeric ? (a, b) => a - b : undefined);
        const encoded = unique.map((value) => encodeURIComponent(String(value)));
        if (encoded.length) parts.push(`${param.name}=${encoded.join(",")}`);
        continue;
      }
      const field = form.elements.namedItem(param.name);
      if (!field) continue;
      const value = String(field.value).trim();
      if (value === "" || value === String(param.default)) continue;
      parts.push(`${param.name}=${encodeURIComponent(value)}`);
    }
    return parts.join("&");
  }

  function feedLinks(query, name) {
    const https = `${config.base}/${config.kind}.ics${query ? "?" + query : ""}`;
    const webcal = "webcal://" + https.split("://")[1];
    const add = (host) => `https://${host}/calendar/0/addfromweb?url=` +
      encodeURIComponent(https) + "&name=" + encodeURIComponent(name);
    return {
      https,
      webcal,
      google: "https://calendar.google.com/calendar/render?cid=" + encodeURIComponent(webcal),
      outlook: add("outlook.live.com"),
      office365: add("outlook.office.com"),
      download: https + (query ? "&" : "?") + "download=1",
      page: (() => {
        const parts = [config.kind === config.defaultKind ? "" : `feed=${config.kind}`, query]
          .filter((part) => part);
        return `${config.base}/${parts.length ? "?" + parts.join("&") : ""}`;
      })(),
    };
  }

  // The embed snippet is HTML for another site: built as an element and serialised by
  // the browser, so the feed's name and URL are escaped by the DOM, not by hand.
  function embedSnippet(links, name) {
    const link = document.createElement("a");
    link.setAttribute("href", links.page);
    link.setAttribute("style", "display:inline-block;padding:.5em 1em;border-radius:.4em;" +
      "background:#1b3a6b;color:#fff;text-decoration:none;font:600 1em sans-serif");
    link.textContent = `Subscribe: ${name}`;
    return link.outerHTML;
  }

  const CLIENTS = ["apple", "google", "outlook", "office365", "download"];

  function showLinks(query) {
    const links = feedLinks(query, feedName);
    byId("feed-url").textContent = links.https;
    byId("copy").dataset.url = links.https;
    byId("feed-name").textContent = feedName;
    for (const client of CLIENTS) {
      const link = byId(`link-${client}`);
      link.href = links[client === "apple" ? "webcal" : client];
      link.removeAttribute("aria-disabled");
    }
    byId("copy").disabled = false;
    byId("embed").value = embedSnippet(links, feedName);
    const tooLong = byId("too-long");
    tooLong.hidden = links.https.length <= config.maxUrl;
    tooLong.textContent = `This feed URL is ${links.https.length} characters long; Google ` +
      `Calendar accepts at most ${config.maxUrl}. Choose fewer of the options above.`;
  }

  const timeFormat = new Intl.DateTimeFormat(undefined, {
    weekday: "short", day: "numeric", month: "short", year: "numeric",
    hour: "2-digit", minute: "2-digit", timeZoneName: "short",
  });
  const dayFormat = new Intl.DateTimeFormat(undefined, {
    weekday: "short", day: "numeric", month: "short", year: "numeric", timeZone: "UTC",
  });

  // page.py's _spanning, _when and preview_title, in the visitor's time zone
  function spanning(event) {
    const levels = ["week", "month", "quarter", "half", "year", "any"];
    return levels.includes(event.precision.level) && Boolean(event.precision.words);
  }

  // a start as the preview shows it: a time in the visitor's zone, or the (UTC) day
  function dateText(start, allDay) {
    return allDay ? dayFormat.format(new Date(start + "T00:00:00Z"))
      : timeFormat.format(new Date(start));
  }

  function when(event) {
    return spanning(event) ? event.precision.words : dateText(event.start, event.all_day);
  }

  function previewTitle(event) {
    const label = event.precision.label;
    const suffix = ` (${label})`;
    return label && spanning(event) && event.title.endsWith(suffix)
      ? event.title.slice(0, -suffix.length) : event.title;
  }

  // the server writes dates in UTC; once the script runs, every date is in one format
  function localiseTimes() {
    for (const time of document.querySelectorAll('#events time:not([data-span="true"])')) {
      time.textContent = dateText(time.getAttribute("datetime"), time.dataset.allDay === "true");
    }
  }

  // Preview rows are clones of the page's <template>, filled with textContent and
  // attributes: item text from LL2 never becomes markup.
  const rowTemplate = byId("preview-item");

  // a part the item lacks goes, with the space before it (as the server leaves it out)
  function dropWithSpace(element) {
    element.previousSibling.remove();
    element.remove();
  }

  function previewRow(event) {
    const row = rowTemplate.content.firstElementChild.cloneNode(true);
    row.dataset.id = event.id;
    row.dataset.end = event.end;
    const time = row.querySelector("time");
    time.setAttribute("datetime", event.start);
    time.dataset.allDay = String(event.all_day);
    time.dataset.span = String(spanning(event));
    time.textContent = when(event);
    row.querySelector(".title").textContent = previewTitle(event);
    const tags = event.tags.join(", ");
    const type = row.querySelector(".type");
    if (tags) {
      type.textContent = tags;
    } else {
      dropWithSpace(type);
    }
    const webcast = row.querySelector("a");
    if (event.webcasts.length) {
      webcast.href = event.webcasts[0].url;
    } else {
      dropWithSpace(webcast);
    }
    return row;
  }

  // The timeline: the next six months, exact items as points, vague ones as bars over
  // their period, drawn from the list (whose words are what screen readers get).
  const DAY = 86400000;
  const SPAN_DAYS = 183;

  function moment(text) {
    return new Date(text.length === 10 ? text + "T00:00:00Z" : text).getTime();
  }

  let drawnWidth = 0;

  function drawTimeline() {
    const box = byId("timeline");
    const rows = Array.from(document.querySelectorAll("#events li"));
    const items = rows.map((li) => ({
      start: moment(li.querySelector("time").getAttribute("datetime")),
      end: moment(li.dataset.end),
      title: li.querySelector(".title").textContent,
      when: li.querySelector("time").textContent,
    }));
    // from the earliest start, but no earlier than the past days kept: an item begun
    // long ago (a decade, a year) and still lasting is clipped at the left edge, rather
    // than pulling the coming months out of view
    // (a blank field is left out of the URL: the feed keeps the default)
    const typed = (form.elements.namedItem("past_days")?.value ?? "").trim();
    const fallback = config.params.find((p) => p.name === "past_days")?.default ?? 0;
    const pastDays = Math.max(0, typed === "" ? Number(fallback) : Number(typed) || 0);
    const from = Math.max(Date.now() - pastDays * DAY,
                          Math.min(Date.now(), ...items.map((i) => i.start))) - DAY;
    const until = from + SPAN_DAYS * DAY;
    const shown = items.filter((i) => i.end > from && i.start < until);
    const parts = [];
    const axis = document.createElement("div");
    axis.className = "axis";
    for (const month = new Date(from); month.getTime() < until;) {
      month.setUTCDate(1);
      month.setUTCMonth(month.getUTCMonth() + 1);
      const at = (month.getTime() - from) / (until - from);
      if (at >= 1) break;
      const tick = document.createElement("span");
      tick.className = "tick";
      tick.style.left = `${(at * 100).toFixed(2)}%`;
      tick.textContent = month.toLocaleDateString(undefined, {month: "short", timeZone: "UTC"});
      if (at > 0.9) {
        // the name before its line near the right edge, where after it there is no room
        tick.classList.add("end");
      }
      axis.append(tick);
    }
    const today = document.createElement("span");
    today.className = "now";
    today.style.left = `${(((Date.now() - from) / (until - from)) * 100).toFixed(2)}%`;
    parts.push(axis, today);
    for (const item of shown) {
      const left = Math.max(0, (item.start - from) / (until - from));
      const right = Math.min(1, (item.end - from) / (until - from));
      const row = document.createElement("div");
      row.className = "track";
      const mark = document.createElement("span");
      // a day or less is a point in time at this scale
      mark.className = item.end - item.start <= DAY ? "mark point" : "mark bar";
      mark.style.left = `${(left * 100).toFixed(2)}%`;
      if (mark.className.endsWith("bar")) {
        mark.style.width = `${((right - left) * 100).toFixed(2)}%`;
      }
      mark.title = `${item.when}: ${item.title}`;
      const label = document.createElement("span");
      label.className = "label";
      label.textContent = item.title;
      // beside its own mark, so no point covers the text: after it, or before it for
      // marks far right (a bar's label starts at the bar's start, over the bar)
      if (left > 0.6) {
        label.classList.add("before");
        label.style.right = `calc(${((1 - left) * 100).toFixed(2)}% + .6rem)`;
      } else {
        const gap = mark.className.endsWith("bar") ? ".3rem" : ".6rem";
        label.style.left = `calc(${(left * 100).toFixed(2)}% + ${gap})`;
      }
      row.append(mark, label);
      parts.push(row);
    }
    box.replaceChildren(...parts);
    box.hidden = shown.length === 0;
    drawnWidth = box.clientWidth;
    // on a narrow screen two month names may meet: the later one keeps only its line
    let last = null;
    for (const tick of box.hidden ? [] : axis.querySelectorAll(".tick")) {
      const at = tick.getBoundingClientRect();
      if (last && at.left < last.right + 4) {
        tick.textContent = "";
      } else {
        last = at;
      }
    }
  }

  function showPreview(data) {
    const listed = data[config.noun] || [];
    byId("events").replaceChildren(...listed.slice(0, 200).map(previewRow));
    drawTimeline();
    const noun = data.matching === 1 ? config.nounOne : config.noun;
    let text = `${data.matching} ${noun} in this feed`;
    if (listed.length > 200) {
      text += " (the first 200 are listed)";
    }
    showCount(text);
  }

  let pending = null;
  const BUSY = "No preview just now; the feed link works.";

  // links change at once; the address bar and the preview follow a moment later, so that
  // typing a search does not send a request (or a history update) per keystroke
  // a folded list says how many of its choices are ticked
  function countChosen() {
    for (const fold of document.querySelectorAll("details.facet-fold")) {
      const note = fold.querySelector("summary .note");
      const chosen = fold.querySelectorAll("input:checked").length;
      // (no total while the data is not available: nothing is known of what it holds)
      const total = note.dataset.total;
      note.textContent = total === "" ? (chosen ? `(${chosen} chosen)` : "")
        : `(${total}${chosen ? `, ${chosen} chosen` : ""})`;
    }
  }

  // while a choice is invalid (the server says why, where the count was), the buttons
  // lead nowhere rather than to a feed that answers 400
  function refuseLinks() {
    for (const client of CLIENTS) {
      const link = byId(`link-${client}`);
      link.removeAttribute("href");
      link.setAttribute("aria-disabled", "true");
    }
    byId("copy").disabled = true;
  }

  function showCount(text) {
    byId("count").textContent = text;
    byId("bar-count").textContent = text;
  }

  function update() {
    countChosen();
    const query = canonicalQuery();
    showLinks(query);
    if (!form.checkValidity()) refuseLinks();
    clearTimeout(pending);
    pending = setTimeout(() => refresh(query), 150);
  }

  async function refresh(query) {
    history.replaceState(null, "", feedLinks(query, feedName).page.slice(config.base.length));
    const ticket = ++latest;
    try {
      const response = await fetch(`/${config.kind}.json${query ? "?" + query : ""}`);
      if (ticket !== latest) return;
      if (!response.ok) {
        // only a refused choice (400) makes the feed a dead link; while the data is
        // unavailable (503) or the preview is throttled (429) the feed URL stays good
        if (response.status === 400) {
          refuseLinks();
          showCount((await response.text()).trim());  // (it names the parameter)
        } else {
          // (the server's words are for operators: LL2's address, its trouble)
          showCount(response.status === 503 ? config.notYet
                    : response.status === 429 ? BUSY : "Preview unavailable.");
        }
        return;
      }
      const data = await response.json();
      if (ticket !== latest) return;
      feedName = data.name;
      showLinks(query);
      showPreview(data);
    } catch (error) {
      if (ticket === latest) showCount("Preview unavailable: " + error);
    }
  }

  function filterChoices(box) {
    const needle = box.value.trim().toLowerCase();
    const list = byId(`choices-${box.dataset.filter}`);
    for (const label of list.querySelectorAll("label")) {
      label.hidden = needle !== "" && !label.textContent.toLowerCase().includes(needle);
    }
  }

  async function copyLink() {
    const url = byId("copy").dataset.url;
    const status = byId("copy-status");
    try {
      await navigator.clipboard.writeText(url);
      status.textContent = "Copied!";
    } catch (error) {
      const range = document.createRange();
      range.selectNodeContents(byId("feed-url"));
      const selection = window.getSelection();
      selection.removeAllRanges();
      selection.addRange(range);
      status.textContent = document.execCommand("copy") ? "Copied!" : "Select and copy the link";
    }
  }

  form.addEventListener("input", (event) => {
    if (event.target.classList.contains("filter")) {
      filterChoices(event.target);
      return;
    }
    update();
  });
  form.addEventListener("change", (event) => {
    if (!event.target.classList.contains("filter")) update();
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    update();
  });
  byId("copy").addEventListener("click", copyLink);
  document.documentElement.classList.add("js");
  localiseTimes();
  drawTimeline();
  // the month names are fitted to the width: drawn again when it changes (not when only
  // the height does, as when a phone's address bar slides away while scrolling)
  window.addEventListener("resize", () => {
    if (byId("timeline").clientWidth !== drawnWidth) drawTimeline();
  });
})();
