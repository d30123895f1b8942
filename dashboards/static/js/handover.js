// Shift handover report: the shift's figures, incidents open at its end, incidents worked in it, key events.
// ?from=&to= (ISO) choose the shift (default: the last 8 hours); Print uses the browser's print (and PDF).
import { initI18n, t, bindLangToggle } from "./i18n.js";
import * as fmt from "./format.js";
import { getJSON } from "./api.js";
import { $, setText } from "./common.js";
import { stateLabel, severityLabel, describe, duration } from "./incidents.js";
import { initMonthly } from "./monthly.js";

const SHIFT_MS = 8 * 3600 * 1000;

// The inputs speak the city's time, as every time on the page does (Ho Chi Minh City: UTC+7, no summer time).
const CITY_OFFSET = "+07:00";

/** A Date as the value of a datetime-local input, in the city's time. */
function cityInput(d) {
  const parts = Object.fromEntries(new Intl.DateTimeFormat("en-GB", {
    timeZone: fmt.TZ, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit",
  }).formatToParts(d).map((p) => [p.type, p.value]));
  return `${parts.year}-${parts.month}-${parts.day}T${parts.hour}:${parts.minute}`;
}

/** A datetime-local value (the city's time) as a Date. */
const fromCityInput = (value) => new Date(`${value}:00${CITY_OFFSET}`);

/** Fill ``body`` with one row per item (cells as text), or one "none" row. */
function rows(body, items, cells, width) {
  body.replaceChildren();
  if (!items.length) {
    const tr = document.createElement("tr");
    tr.className = "empty";
    const td = document.createElement("td");
    td.colSpan = width;
    td.textContent = t("handover.none");
    tr.appendChild(td);
    body.appendChild(tr);
    return;
  }
  for (const item of items) {
    const tr = document.createElement("tr");
    tr.dataset.key = String(item.id ?? item.incident_id);
    for (const text of cells(item)) {
      const td = document.createElement("td");
      td.textContent = text;
      tr.appendChild(td);
    }
    body.appendChild(tr);
  }
}

async function show(from, to) {
  const data = await getJSON(`/api/v1/handover?from=${encodeURIComponent(from.toISOString())}&to=${encodeURIComponent(to.toISOString())}`);
  setText($("shift"), t("handover.shift", { from: fmt.dateTime(data.from), to: fmt.dateTime(data.to) }));
  const k = data.kpis;
  setText($("k-alerts"), fmt.num(k.alerts));
  setText($("k-incidents"), fmt.num(k.incidents));
  setText($("k-resolved"), fmt.num(k.resolved));
  setText($("k-mtta"), duration(k.mean_acknowledge_s));
  setText($("k-mttr"), duration(k.mean_resolve_s));
  setText($("k-breaches"), fmt.num(k.breaches));
  rows($("open"), data.open, (i) => [`#${i.id}`, i.title, severityLabel(i.severity), stateLabel(i.state), i.assignee || i.team || fmt.DASH, fmt.dateTime(i.created_at)], 6);
  const when = (v) => (v ? fmt.dateTime(v) : fmt.DASH);
  rows($("worked"), data.worked, (i) => [
    `#${i.id}`, i.title, stateLabel(i.state), when(i.created_at), when(i.acknowledged_at), when(i.resolved_at), when(i.closed_at), fmt.num(i.steps_done),
  ], 8);
  rows($("events"), data.events.map((e) => ({ ...e.detail, ...e, id: e.incident_id })), (e) => [
    fmt.time(e.time), `#${e.incident_id} ${e.incident_title}`, e.actor === "engine" ? t("console.engine") : e.actor, describe(e),
  ], 4);
  document.body.dataset.ready = "true";
}

async function main() {
  await initI18n();
  bindLangToggle($("lang-toggle"));
  const params = new URLSearchParams(location.search);
  const to = params.get("to") ? new Date(params.get("to")) : new Date();
  const from = params.get("from") ? new Date(params.get("from")) : new Date(to.getTime() - SHIFT_MS);
  $("from").value = cityInput(from);
  $("to").value = cityInput(to);
  $("range").addEventListener("submit", (ev) => {
    ev.preventDefault();
    show(fromCityInput($("from").value), fromCityInput($("to").value));
  });
  $("print").addEventListener("click", () => window.print());
  await Promise.all([show(from, to), initMonthly(cityInput(new Date()).slice(0, 7))]);
}

main();
